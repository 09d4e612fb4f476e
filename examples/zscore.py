"""Z-score mean reversion: a complete custom sweepbt strategy (docs/custom-strategies.md).

Indicator stage, once per ``lookback`` per asset: the z-score of the close against its own
recent history,

    z[i] = (close[i] - mean(close[i-lookback+1 .. i])) / std(close[i-lookback+1 .. i])

(population standard deviation, two-pass over the window), defined from the span's bar
``lookback - 1``; NaN before, and NaN where the window is flat (std 0, e.g. ``lookback=1``).

Signal stage, at the close of each bar ``i``:

* ``z[i] < -entry_z``: BUY (enter long; with ``direction="both"`` also cover a short);
* ``z[i] > exit_z``: SELL (exit the long; with ``direction="both"`` also go short);
* otherwise (or z undefined): nothing.

The signal is a level, not a crossing: it is repeated on every bar the condition holds, and
an entry signal while already long does nothing. So a long opened in an oversold dip is held
until the price has reverted above ``mean + exit_z * std``, or a risk rule exits it; after a
stop, a still-oversold market is bought again at the next signal.

Run it:

    sweepbt sweep --demo --strategy examples/zscore.py:zscore \\
        --param lookback=10:50:10 --param entry_z=1:2.5:0.5 --param exit_z=0,0.5 \\
        --stop-loss none,0.05 --fees 0.001

or from Python:

    import sweepbt as sb
    zscore = sb.load_strategy("examples/zscore.py:zscore")
    res = sb.sweep(sb.demo(), zscore, lookback=range(10, 60, 10), entry_z=[1.0, 1.5, 2.0])
"""

import numpy as np
from numba import njit

from sweepbt import BUY, SELL, define_strategy


@njit(cache=True)
def zscore_features(close, lookback):
    """Feature 0: the z-score of ``close`` over the last ``lookback`` bars."""
    n = close.shape[0]
    out = np.full((1, n), np.nan)
    for i in range(lookback - 1, n):
        total = 0.0
        for k in range(i - lookback + 1, i + 1):
            total += close[k]
        mean = total / lookback
        ss = 0.0
        for k in range(i - lookback + 1, i + 1):
            d = close[k] - mean
            ss += d * d
        std = np.sqrt(ss / lookback)
        if std > 0.0:
            out[0, i] = (close[i] - mean) / std
    return out


@njit(cache=True)
def zscore_signal(features, i, entry_z, exit_z):
    """BUY when oversold (z < -entry_z), SELL when reverted (z > exit_z), else 0."""
    z = features[0, i]
    if z < -entry_z:  # False when z is NaN (warm-up, flat window)
        return BUY
    if z > exit_z:
        return SELL
    return 0


zscore = define_strategy(
    "zscore",
    indicators=zscore_features,
    signal=zscore_signal,
    indicator_params={"lookback": 20},
    signal_params={"entry_z": 2.0, "exit_z": 0.0},
    inputs=("close",),
    doc="Mean reversion: BUY when the close's z-score over `lookback` bars is below "
        "-entry_z, SELL when it is above exit_z.",
    param_docs={
        "lookback": "bars in the rolling mean and standard deviation",
        "entry_z": "buy when z < -entry_z (oversold)",
        "exit_z": "sell when z > exit_z (reverted)",
    },
)
