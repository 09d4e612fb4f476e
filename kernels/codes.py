"""Signal codes shared by the signal kernels and the simulation kernel (frozen API values).

A signal event is a bit set: what the strategy says at a bar's close. ``direction`` then
decides which bits count: ``long`` honours the long bits, ``short`` the short bits,
``both`` all of them (entering one side while holding the other reverses the position).
"""

ENTER_LONG = 1
EXIT_LONG = 2
ENTER_SHORT = 4
EXIT_SHORT = 8
BUY = ENTER_LONG | EXIT_SHORT  # bullish: the usual "cross above"
SELL = EXIT_LONG | ENTER_SHORT  # bearish: the usual "cross below"
ALL_CODES = ENTER_LONG | EXIT_LONG | ENTER_SHORT | EXIT_SHORT
