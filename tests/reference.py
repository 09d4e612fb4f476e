"""Pure-Python reference simulator for sweepbt.

This module is the slow, obviously-correct implementation of docs/semantics.md that the
compiled engine is tested against. It deliberately shares no code with ``sweepbt``: it
imports nothing from the package and uses only the standard library (``math``). Every
quantity is a plain Python float and the simulation walks one bar at a time, in the order
the semantics page describes:

    next_open: fill the order left by bar i-1 at the open -> stop/take checks -> time exit
               -> signal at the close (an order for bar i+1)
    close:     stop/take checks (positions entered before bar i) -> time exit
               -> signal at the close, filled at once
    both:      then equity judged at the close: <= 0 ruins the backtest (docs "Ruin")

Inputs cover ONE asset's span only (bar 0 = span start).

Signals are per-bar integers: by default +1 (bullish, the code BUY), -1 (bearish, SELL) or
0; with ``codes=True`` each is a bit set of the signal codes below (the values of
sweepbt.kernels.codes, restated here so that nothing is imported from the package).
The reference indicators and signals of every built-in strategy (docs/strategies.md) are
further down; undefined indicator values are ``None``.
"""

import math

NAN = float("nan")

ENTER_LONG = 1
EXIT_LONG = 2
ENTER_SHORT = 4
EXIT_SHORT = 8
BUY = ENTER_LONG | EXIT_SHORT
SELL = EXIT_LONG | ENTER_SHORT

LONG = 1
SHORT = -1
FLAT = 0

#: semantics.md, Metrics: a spread of at most NOISE x |mean| counts as no spread
NOISE = 1e-12


def sale_proceeds(notional, fees, fixed_fees, tax=0.0):
    """What a sale of ``notional`` (units x fill price) receives: its costs take at most
    the notional (semantics.md, "a sale never costs cash")."""
    return max(notional * (1.0 - fees - tax) - fixed_fees, 0.0)


COST_NAMES = ("fees", "fixed_fees", "slippage", "fees_per_share", "min_fees", "max_fees",
              "tax", "lot_size")


class Costs:
    """The costs of one fill, in every mode (DESIGN.md, "Costs: one formula for every
    fill, in every mode"), written from that text alone.

    A fill of ``q > 0`` units at quote ``x``: ``p = x * (1 + s * slippage)`` (``s = +1``
    buying, ``-1`` selling), ``n = q * p``; commission ``c = fees_per_share * q + fees * n``,
    then ``c = max(c, min_fees)``, then ``c = min(c, max_fees * n)`` when ``max_fees > 0``;
    the charge is ``c + fixed_fees``, plus ``tax * n`` on a sale. A buy pays ``n +
    charge``; a sale receives ``max(n - charge, 0)`` (a sale never costs cash).

    While the commission is proportional (``fees_per_share``, ``min_fees`` and
    ``max_fees`` all 0: ``plain``) every amount keeps today's arithmetic
    (``n * (1 + fees) + fixed_fees``, :func:`sale_proceeds`, ``(B - fixed_fees) /
    (p * (1 + fees))``), so the references are bit for bit what they were before these
    costs existed.

    What a capped sale paid (its costs took the whole notional) is attributed to the
    commission first (``min(c + fixed_fees, n)``), the tax getting the rest: the
    ``commission`` and ``tax`` a trade reports are what the cash actually paid.
    """

    def __init__(self, fees=0.0, fixed_fees=0.0, slippage=0.0, fees_per_share=0.0,
                 min_fees=0.0, max_fees=0.0, tax=0.0, lot_size=0.0, commission=None):
        given = dict(fees=fees, fixed_fees=fixed_fees, slippage=slippage,
                     fees_per_share=fees_per_share, min_fees=min_fees, max_fees=max_fees,
                     tax=tax, lot_size=lot_size)
        for name in COST_NAMES:
            value = float(given[name])
            if not 0.0 <= value < math.inf:
                raise ValueError(f"costs must be >= 0 and finite: {name} = {given[name]!r}")
            setattr(self, name, value)
        # a user's commission f(q, p, is_buy) replaces fees, fees_per_share, min_fees and
        # max_fees (DESIGN.md: "replaces the commission line")
        self.user = commission
        self.plain = (self.fees_per_share == 0.0 and self.min_fees == 0.0
                      and self.max_fees == 0.0 and commission is None)

    # ---- one fill ----

    def price(self, quote, buy):
        """The fill price: the quote moved by slippage against the trader."""
        return quote * (1.0 + self.slippage) if buy else quote * (1.0 - self.slippage)

    def commission(self, q, p, buy=True):
        """``c`` of a fill of ``q`` units at price ``p`` (before the fixed fee); ``buy``
        False for a sale (only a user's commission function tells them apart)."""
        if self.user is not None:
            return float(self.user(q, p, buy))
        n = q * p
        if self.plain:
            return self.fees * n
        c = self.fees_per_share * q + self.fees * n
        c = max(c, self.min_fees)
        if self.max_fees > 0.0:
            c = min(c, self.max_fees * n)
        return c

    def buy(self, q, p):
        """(paid, commission) of a buy of ``q`` at ``p``: ``n + c + fixed_fees`` and
        ``c + fixed_fees``."""
        if self.plain:
            paid = q * p * (1.0 + self.fees) + self.fixed_fees
        else:
            paid = self.committed(q, p, True)
        return paid, self.commission(q, p) + self.fixed_fees

    def committed(self, q, p, buy):
        """What a fill of ``q`` at ``p`` commits (the base of a trade's return): ``n + c +
        fixed_fees``, the tax apart."""
        if self.plain:
            return q * p * (1.0 + self.fees) + self.fixed_fees
        return q * p + self.commission(q, p, buy) + self.fixed_fees

    def pay(self, cash, q, p):
        """``cash`` after a buy of ``q`` at ``p`` (today's ``cash - n*(1+fees) -
        fixed_fees`` while plain; else ``cash`` minus :meth:`buy`'s paid)."""
        if self.plain:
            return cash - q * p * (1.0 + self.fees) - self.fixed_fees
        return cash - self.buy(q, p)[0]

    def sell(self, q, p):
        """(received, commission, tax) of a sale of ``q`` at ``p``; the costs take at most
        the notional, the commission first."""
        n = q * p
        c = self.commission(q, p, False) + self.fixed_fees
        t = self.tax * n
        if self.plain:
            received = sale_proceeds(n, self.fees, self.fixed_fees, self.tax)
        else:
            received = max(n - (c + t), 0.0)
        if received == 0.0:  # capped: the costs took exactly the notional
            c = min(c, n)
            t = min(t, n - c)
        return received, c, t

    # ---- sizing ----

    def spend(self, q, p, sale=False):
        """``q*p + charge(q)``: what a budget must cover for ``q`` units (the tax included
        on a sale)."""
        n = q * p
        total = n + self.commission(q, p, not sale) + self.fixed_fees
        if sale:
            total += self.tax * n
        return total

    def _piece(self, q, a, m, k):
        """(alpha, beta): the linear piece ``alpha + beta * q`` the commission follows at
        ``q`` (``a``: per-unit commission before the minimum and the cap, ``m``: the
        minimum, ``k``: the cap per unit, 0 = none)."""
        alpha, beta = (0.0, a) if a * q >= m else (m, 0.0)
        if k > 0.0 and k * q < alpha + beta * q:
            alpha, beta = 0.0, k
        return alpha, beta

    def units(self, budget, p, sale=False):
        """The largest ``q`` with ``q*p + charge(q) <= budget``, rounded down to a
        multiple of ``lot_size`` when it is > 0; 0.0 when no ``q > 0`` fits.

        Plain commission (and no tax on a sale): today's closed form ``(budget -
        fixed_fees) / (p * (1 + fees))`` (callers skip ``budget - fixed_fees <= 0``).
        Otherwise the charge is piecewise linear and nondecreasing in ``q``: the piece
        holding the solution is the first whose right end costs more than the budget, and
        ``q`` is that piece's closed form. Floating-point rounding can leave that ``q`` a
        few ulps over the budget: it is then stepped down until the inequality holds
        (so a buy sized from the cash never leaves it negative)."""
        ff = self.fixed_fees
        if self.user is not None:
            return self.round_lot(self._bisect(budget, p, sale))
        if self.plain and not (sale and self.tax > 0.0):
            q = max((budget - ff) / (p * (1.0 + self.fees)), 0.0)
        else:
            t = self.tax * p if sale else 0.0
            a = self.fees_per_share + self.fees * p
            m = self.min_fees
            k = self.max_fees * p
            cuts = set()
            if m > 0.0 and a > 0.0:
                cuts.add(m / a)
            if m > 0.0 and k > 0.0:
                cuts.add(m / k)
            edges = [0.0] + sorted(x for x in cuts if 0.0 < x < math.inf) + [math.inf]
            q = 0.0
            for lo, hi in zip(edges, edges[1:]):
                if hi < math.inf and self.spend(hi, p, sale) <= budget:
                    continue  # the whole piece fits: the answer lies further
                inside = (lo + hi) / 2.0 if hi < math.inf else 2.0 * lo + 1.0
                alpha, beta = self._piece(inside, a, m, k)
                q = min(max((budget - ff - alpha) / (p + t + beta), lo), hi)
                break
            step = math.ulp(q) if q > 0.0 else 0.0
            while q > 0.0 and self.spend(q, p, sale) > budget:
                q = max(q - step, 0.0)
                step *= 2.0
        return self.round_lot(q)

    def _bisect(self, budget, p, sale):
        """The largest ``q`` with ``spend(q) <= budget`` under a user's commission
        (nondecreasing in ``q``): bisection until the bracket's ends are adjacent
        floats."""
        lo, hi = 0.0, max((budget - self.fixed_fees) / (p * (1.0 + (self.tax if sale
                                                                      else 0.0))), 0.0)
        if self.spend(hi, p, sale) <= budget:
            return hi
        while True:
            mid = (lo + hi) / 2.0
            if mid <= lo or mid >= hi:
                return lo
            if self.spend(mid, p, sale) <= budget:
                lo = mid
            else:
                hi = mid

    def round_lot(self, q):
        """``q >= 0`` rounded down to a multiple of ``lot_size`` (unchanged when 0)."""
        if self.lot_size <= 0.0 or q <= 0.0:
            return q
        k = math.floor(q / self.lot_size)
        while k > 0 and k * self.lot_size > q:
            k -= 1
        return k * self.lot_size

    def round_lot_toward_zero(self, x):
        """A signed amount rounded toward zero to a multiple of ``lot_size``."""
        return math.copysign(self.round_lot(abs(x)), x) if x != 0.0 else x


# --------------------------------------------------------------------------------------
# Indicators and signals
# --------------------------------------------------------------------------------------


def sma(values, window):
    """Simple moving average of ``values``; ``None`` for the first ``window - 1`` bars."""
    values = [float(v) for v in values]
    window = int(window)
    if window < 1:
        raise ValueError("window must be >= 1")
    out = []
    for i in range(len(values)):
        if i < window - 1:
            out.append(None)
        else:
            total = 0.0
            for v in values[i - window + 1 : i + 1]:
                total += v
            out.append(total / window)
    return out


def sma_cross_signals(close, fast, slow, direction="long"):
    """Per-bar crossing signal of sma(close, fast) over sma(close, slow).

    +1 at bar i when fast[i] > slow[i] and fast[i-1] <= slow[i-1] (bullish cross),
    -1 when fast[i] < slow[i] and fast[i-1] >= slow[i-1] (bearish cross), else 0; both
    averages must be defined at i and at i-1. The signal is the raw cross: how it maps to
    orders (entry / exit) depends on ``direction`` and is done by ``reference_backtest``.
    ``direction`` is accepted for symmetry with the engine API and does not change the
    output.
    """
    if direction not in ("long", "short", "both"):
        raise ValueError("direction must be 'long', 'short' or 'both'")
    f = sma(close, fast)
    s = sma(close, slow)
    out = []
    for i in range(len(f)):
        if i == 0 or f[i] is None or s[i] is None or f[i - 1] is None or s[i - 1] is None:
            out.append(0)
        elif f[i] > s[i] and f[i - 1] <= s[i - 1]:
            out.append(1)
        elif f[i] < s[i] and f[i - 1] >= s[i - 1]:
            out.append(-1)
        else:
            out.append(0)
    return out


def _defined(x):
    return x is not None and x == x


def ema(values, window):
    """SMA-seeded EMA, ``alpha = 2 / (window + 1)``; ``None`` where undefined.

    With ``f`` the first defined value, ``ema[f+window-1]`` is the mean of
    ``values[f .. f+window-1]`` and ``ema[i] = alpha*values[i] + (1-alpha)*ema[i-1]`` after.
    """
    window = int(window)
    n = len(values)
    out = [None] * n
    f = 0
    while f < n and not _defined(values[f]):
        f += 1
    if n - f < window:
        return out
    total = 0.0
    for v in values[f:f + window]:
        total += float(v)
    e = total / window
    out[f + window - 1] = e
    alpha = 2.0 / (window + 1.0)
    for i in range(f + window, n):
        e = alpha * float(values[i]) + (1.0 - alpha) * e
        out[i] = e
    return out


def cross_codes(a, b):
    """BUY where ``a`` crosses above ``b`` (a[i] > b[i], a[i-1] <= b[i-1]), SELL where it
    crosses below (a[i] < b[i], a[i-1] >= b[i-1]); both defined at i and i-1; else 0."""
    out = [0] * len(a)
    for i in range(1, len(a)):
        if not all(_defined(x) for x in (a[i], b[i], a[i - 1], b[i - 1])):
            continue
        if a[i] > b[i] and a[i - 1] <= b[i - 1]:
            out[i] = BUY
        elif a[i] < b[i] and a[i - 1] >= b[i - 1]:
            out[i] = SELL
    return out


def ema_cross_signals(close, fast, slow):
    """Codes of ema_cross: EMA(fast) crossing EMA(slow)."""
    close = [float(x) for x in close]
    return cross_codes(ema(close, fast), ema(close, slow))


def wilder_rsi(close, window):
    """Wilder's RSI: ``None`` before bar ``window`` and where both averages are 0.

    Gains/losses of ``d[i] = close[i] - close[i-1]`` (i >= 1); the averages start at bar
    ``window`` as the plain means of the first ``window`` gains/losses, then
    ``avg = (avg*(window-1) + x) / window``; ``rsi = 100*avg_gain / (avg_gain + avg_loss)``,
    exactly 100 with no average loss and 0 with no average gain.
    """
    close = [float(x) for x in close]
    window = int(window)
    n = len(close)
    out = [None] * n
    if n <= window:
        return out
    gains = [0.0] + [max(close[i] - close[i - 1], 0.0) for i in range(1, n)]
    losses = [0.0] + [max(close[i - 1] - close[i], 0.0) for i in range(1, n)]
    avg_gain = 0.0
    avg_loss = 0.0
    for i in range(1, window + 1):
        avg_gain += gains[i]
        avg_loss += losses[i]
    avg_gain /= window
    avg_loss /= window
    for i in range(window, n):
        if i > window:
            avg_gain = (avg_gain * (window - 1) + gains[i]) / window
            avg_loss = (avg_loss * (window - 1) + losses[i]) / window
        if avg_gain == 0.0 and avg_loss == 0.0:
            continue  # no change at all: undefined
        if avg_loss == 0.0:
            out[i] = 100.0
        elif avg_gain == 0.0:
            out[i] = 0.0
        else:
            out[i] = 100.0 * avg_gain / (avg_gain + avg_loss)
    return out


def rsi_reversion_signals(close, window, lower, upper):
    """Codes of rsi_reversion: BUY on every bar with RSI < lower, SELL with RSI > upper."""
    out = []
    for r in wilder_rsi(close, window):
        if r is None:
            out.append(0)
        elif r < lower:
            out.append(BUY)
        elif r > upper:
            out.append(SELL)
        else:
            out.append(0)
    return out


def rolling_std(values, window):
    """Population standard deviation of each full window about its mean (two-pass)."""
    values = [float(v) for v in values]
    mid = sma(values, window)
    out = [None] * len(values)
    for i in range(window - 1, len(values)):
        ss = 0.0
        for v in values[i - window + 1:i + 1]:
            ss += (v - mid[i]) ** 2
        out[i] = math.sqrt(ss / window)
    return out


def bollinger_bands(close, window, k):
    """(lower, mid, upper): mid = SMA(window), bands mid -/+ k * population std."""
    mid = sma(close, window)
    sd = rolling_std(close, window)
    lower = [None if m is None else m - k * d for m, d in zip(mid, sd)]
    upper = [None if m is None else m + k * d for m, d in zip(mid, sd)]
    return lower, mid, upper


def _band_codes(x, lower, upper, breakout):
    out = []
    for v, lo, hi in zip(x, lower, upper):
        if lo is None or hi is None or v is None:
            out.append(0)
        elif v < lo:
            out.append(SELL if breakout else BUY)
        elif v > hi:
            out.append(BUY if breakout else SELL)
        else:
            out.append(0)
    return out


def bollinger_reversion_signals(close, window, k):
    """BUY on every bar with close < lower band, SELL with close > upper band."""
    close = [float(x) for x in close]
    lower, _, upper = bollinger_bands(close, window, k)
    return _band_codes(close, lower, upper, breakout=False)


def bollinger_breakout_signals(close, window, k):
    """BUY on every bar with close > upper band, SELL with close < lower band."""
    close = [float(x) for x in close]
    lower, _, upper = bollinger_bands(close, window, k)
    return _band_codes(close, lower, upper, breakout=True)


def donchian_channel(high, low, window):
    """(hh, ll): max(high[i-window .. i-1]) and min(low[...]), the current bar excluded."""
    n = len(high)
    hh = [None] * n
    ll = [None] * n
    for i in range(window, n):
        hh[i] = max(float(x) for x in high[i - window:i])
        ll[i] = min(float(x) for x in low[i - window:i])
    return hh, ll


def donchian_breakout_signals(high, low, close, entry_window, exit_window):
    """Codes of donchian_breakout: ENTER_LONG close > HH_entry, EXIT_LONG close < LL_exit,
    ENTER_SHORT close < LL_entry, EXIT_SHORT close > HH_exit (bits combined per bar)."""
    hh_en, ll_en = donchian_channel(high, low, entry_window)
    hh_ex, ll_ex = donchian_channel(high, low, exit_window)
    out = []
    for i, c in enumerate(close):
        c = float(c)
        code = 0
        if hh_en[i] is not None and c > hh_en[i]:
            code |= ENTER_LONG
        if ll_ex[i] is not None and c < ll_ex[i]:
            code |= EXIT_LONG
        if ll_en[i] is not None and c < ll_en[i]:
            code |= ENTER_SHORT
        if hh_ex[i] is not None and c > hh_ex[i]:
            code |= EXIT_SHORT
        out.append(code)
    return out


def macd(close, fast, slow, signal):
    """(macd line, signal line): EMA(fast) - EMA(slow), and the EMA(signal) of that line."""
    close = [float(x) for x in close]
    ef = ema(close, fast)
    es = ema(close, slow)
    line = [a - b if a is not None and b is not None else None for a, b in zip(ef, es)]
    return line, ema(line, signal)


def macd_cross_signals(close, fast, slow, signal):
    """Codes of macd_cross: the MACD line crossing its signal line."""
    line, sig = macd(close, fast, slow, signal)
    return cross_codes(line, sig)


def roc(close, lookback):
    """Rate of change ``close[i] / close[i-lookback] - 1`` from bar ``lookback``."""
    close = [float(x) for x in close]
    return [None if i < lookback else close[i] / close[i - lookback] - 1.0
            for i in range(len(close))]


def momentum_signals(close, lookback, threshold):
    """BUY on every bar with ROC > threshold, SELL with ROC < -threshold."""
    r = roc(close, lookback)
    return _band_codes(r, [None if x is None else -threshold for x in r],
                       [None if x is None else threshold for x in r], breakout=True)


def true_range(high, low, close):
    """``high - low`` on the first bar, then max(h - l, |h - prev close|, |l - prev close|)."""
    out = []
    for i in range(len(close)):
        tr = float(high[i]) - float(low[i])
        if i > 0:
            prev = float(close[i - 1])
            tr = max(tr, abs(float(high[i]) - prev), abs(float(low[i]) - prev))
        out.append(tr)
    return out


def wilder_atr(high, low, close, window):
    """Wilder's ATR: the mean of the first ``window`` true ranges at bar ``window - 1``,
    then ``atr = (atr*(window-1) + tr) / window``; ``None`` before."""
    window = int(window)
    tr = true_range(high, low, close)
    out = [None] * len(tr)
    if len(tr) < window:
        return out
    total = 0.0
    for x in tr[:window]:
        total += x
    atr = total / window
    out[window - 1] = atr
    for i in range(window, len(tr)):
        atr = (atr * (window - 1) + tr[i]) / window
        out[i] = atr
    return out


# --------------------------------------------------------------------------------------
# Small helpers (plain floats only)
# --------------------------------------------------------------------------------------


def _ieee_div(a, b):
    """a / b with IEEE-754 results for b == 0 (inf or nan) instead of an exception."""
    if b == 0.0:
        if a == 0.0 or a != a:
            return NAN
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _mean(xs):
    return sum(xs) / len(xs)


def _std_ddof1(xs):
    """Two-pass sample standard deviation (ddof=1)."""
    m = _mean(xs)
    ss = 0.0
    for x in xs:
        d = x - m
        ss += d * d
    return math.sqrt(ss / (len(xs) - 1))


def _as_code(signal, codes):
    """A per-bar signal as a code bit set: +1 -> BUY, -1 -> SELL unless ``codes``."""
    signal = int(signal)
    if codes:
        if not 0 <= signal <= ENTER_LONG | EXIT_LONG | ENTER_SHORT | EXIT_SHORT:
            raise ValueError(f"signal code {signal} is not a bit set of the four codes")
        return signal
    if signal > 0:
        return BUY
    if signal < 0:
        return SELL
    return 0


def _decide(code, direction, position):
    """What a signal code does to ``position``: (close it?, side to open or FLAT).

    ``long`` honours the long bits only, ``short`` the short bits, ``both`` all four. Then
    the entry and exit bits of one side, when both are set, cancel (semantics.md, "Decision
    (conflicting bits of one side)"): ENTER_LONG | EXIT_LONG says nothing about the long
    side, ENTER_SHORT | EXIT_SHORT nothing about the short side. A long is closed by
    EXIT_LONG or ENTER_SHORT, a short by EXIT_SHORT or ENTER_LONG (so an opposite entry
    reverses). A side is opened from flat (or right after that close) when exactly one
    entry bit is set. Anything else does nothing: an entry while already in that position
    (no pyramiding), an exit while flat.
    """
    # 1. the direction filter
    if direction == "long":
        code &= ENTER_LONG | EXIT_LONG
    elif direction == "short":
        code &= ENTER_SHORT | EXIT_SHORT
    # 2. conflicting bits of one side cancel (after the filter)
    if code & ENTER_LONG and code & EXIT_LONG:
        code &= ~(ENTER_LONG | EXIT_LONG)
    if code & ENTER_SHORT and code & EXIT_SHORT:
        code &= ~(ENTER_SHORT | EXIT_SHORT)
    close_now = (position == LONG and code & (EXIT_LONG | ENTER_SHORT) != 0) or (
        position == SHORT and code & (EXIT_SHORT | ENTER_LONG) != 0)
    if position != FLAT and not close_now:
        return False, FLAT
    enter_long = code & ENTER_LONG != 0
    enter_short = code & ENTER_SHORT != 0
    if enter_long and not enter_short:
        return close_now, LONG
    if enter_short and not enter_long:
        return close_now, SHORT
    return close_now, FLAT


# --------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------


def reference_backtest(
    open,
    high,
    low,
    close,
    signals,
    *,
    stop_loss=None,
    take_profit=None,
    trailing_stop=None,
    stop_atr=None,
    take_atr=None,
    trailing_atr=None,
    atr_window=14,
    atr=None,
    max_bars=None,
    fees=0.0,
    fixed_fees=0.0,
    slippage=0.0,
    fees_per_share=0.0,
    min_fees=0.0,
    max_fees=0.0,
    tax=0.0,
    lot_size=0.0,
    commission=None,
    size=1.0,
    fill="next_open",
    direction="long",
    init_cash=10_000.0,
    periods_per_year=252.0,
    codes=False,
):
    """Backtest one asset bar by bar, exactly as docs/semantics.md describes.

    ``signals`` are +1 / -1 / 0 per bar, or signal code bit sets with ``codes=True``.
    The ATR-scaled rules (``stop_atr``, ``take_atr``, ``trailing_atr``: multiples of
    Wilder's ATR(``atr_window``) at the entry's signal bar) use ``wilder_atr`` of the
    given bars, or ``atr`` (one value or None per bar) when given, e.g. an ATR warmed up
    on bars before these.

    Costs (every fill, DESIGN.md "Costs"): ``fees``, ``fixed_fees``, ``slippage``,
    ``fees_per_share``, ``min_fees``, ``max_fees`` (0 = no cap), ``tax`` (on every sale:
    closing a long, opening a short) and ``lot_size`` (0 = fractional units), see
    :class:`Costs`; an entry spends at most ``size * equity``, costs included.

    Returns a dict with per-bar lists ``equity``, ``cash``, ``units`` (signed: + long,
    - short, 0 flat, as held at the close), the list of ``trades`` (dicts, each with its
    ``commission``, the commissions and fixed fees of its fills, and ``tax``) and the
    ``metrics`` dict (plus ``costs``, every commission, fixed fee and tax paid). On a ruin bar (equity <= 0 at the close) these lists record the
    position held at that close; the bars after it record the ruin bar's equity as cash
    and no units.
    """
    o = [float(x) for x in open]
    h = [float(x) for x in high]
    lo = [float(x) for x in low]
    c = [float(x) for x in close]
    sig = [_as_code(x, codes) for x in signals]
    n = len(c)
    if not (len(o) == len(h) == len(lo) == n == len(sig)):
        raise ValueError("open, high, low, close and signals must have the same length")
    if fill not in ("next_open", "close"):
        raise ValueError("fill must be 'next_open' or 'close'")
    if direction not in ("long", "short", "both"):
        raise ValueError("direction must be 'long', 'short' or 'both'")

    costs = Costs(fees=fees, fixed_fees=fixed_fees, slippage=slippage,
                  fees_per_share=fees_per_share, min_fees=min_fees, max_fees=max_fees, tax=tax,
                  lot_size=lot_size, commission=commission)
    fixed_fees = costs.fixed_fees
    size = float(size)
    init_cash = float(init_cash)
    periods_per_year = float(periods_per_year)
    if atr is None:
        atr = wilder_atr(h, lo, c, atr_window)
    atr = [None if x is None or x != x else float(x) for x in atr]
    if len(atr) != n:
        raise ValueError("atr must have one value per bar")

    # ---- account state ----
    cash = init_cash
    position = FLAT  # LONG, SHORT or FLAT
    units = 0.0  # positive amount held (the sign lives in `position`)

    # ---- state of the open position ----
    entry_bar = -1
    entry_quote = NAN
    entry_price = NAN
    extreme = NAN  # peak for a long, trough for a short (trailing stop)
    fixed_stop = None  # stop level fixed at entry (stop_loss and/or stop_atr)
    take_level = None  # take-profit level fixed at entry (take_profit and/or take_atr)
    trail_offset = None  # trailing_atr * ATR, fixed at entry
    exc_high = None  # highest price the position was exposed to (for mfe/mae)
    exc_low = None  # lowest price the position was exposed to
    committed = NAN  # the cash committed at entry: n + c + fixed_fees (the trade's return)
    entry_received = NAN  # a short's sale proceeds at entry
    entry_commission = 0.0  # c + fixed_fees paid by the entry fill
    entry_tax = 0.0  # tax paid by the entry fill (a short sale)

    pending = None  # next_open: the signal code left by the previous close

    trades = []
    equity_path = []
    cash_path = []
    units_path = []

    def expose(hi, lo_):
        nonlocal exc_high, exc_low
        exc_high = hi if exc_high is None else max(exc_high, hi)
        exc_low = lo_ if exc_low is None else min(exc_low, lo_)

    def open_position(bar, quote, side, atr_at_entry):
        """Enter `side` at `quote`; returns False when the entry is skipped."""
        nonlocal cash, position, units, entry_bar, entry_quote, entry_price, extreme
        nonlocal exc_high, exc_low, fixed_stop, take_level, trail_offset
        nonlocal committed, entry_received, entry_commission, entry_tax
        equity_now = cash  # flat here: equity is all cash
        budget = size * equity_now
        if budget - fixed_fees <= 0.0:
            return False  # Decision in semantics.md: entry skipped
        p = costs.price(quote, side == LONG)  # buying, or selling short
        # the largest u whose notional and charge fit the budget (a short's with its tax)
        u = costs.units(budget, p, sale=side == SHORT)
        if u <= 0.0:
            return False  # nothing fits (a minimum fee, a lot): entry skipped
        committed = costs.committed(u, p, side == LONG)
        if side == LONG:
            cash = costs.pay(cash, u, p)
            entry_commission, entry_tax = costs.buy(u, p)[1], 0.0
        else:
            entry_received, entry_commission, entry_tax = costs.sell(u, p)
            cash = cash + entry_received
        position = side
        units = u
        entry_bar = bar
        entry_quote = quote
        entry_price = p
        extreme = p  # the peak / trough starts at entry_price
        exc_high = None
        exc_low = None
        # levels fixed at entry: the tighter of the percent rule and the ATR rule; the ATR
        # rules are inactive when the ATR is undefined at the signal bar
        stops = []
        takes = []
        if stop_loss is not None:
            stops.append(p * (1.0 - stop_loss) if side == LONG else p * (1.0 + stop_loss))
        if take_profit is not None:
            takes.append(p * (1.0 + take_profit) if side == LONG else p * (1.0 - take_profit))
        trail_offset = None
        if atr_at_entry is not None:
            if stop_atr is not None:
                stops.append(p - stop_atr * atr_at_entry if side == LONG
                             else p + stop_atr * atr_at_entry)
            if take_atr is not None:
                takes.append(p + take_atr * atr_at_entry if side == LONG
                             else p - take_atr * atr_at_entry)
            if trailing_atr is not None:
                trail_offset = trailing_atr * atr_at_entry
        tighter_stop, tighter_take = (max, min) if side == LONG else (min, max)
        fixed_stop = tighter_stop(stops) if stops else None
        take_level = tighter_take(takes) if takes else None
        return True

    def excursions(fallback_price):
        hi, lo_ = exc_high, exc_low
        if hi is None:  # never exposed to a bar (fill='close' entry on the last bar)
            hi = lo_ = fallback_price
        if position == LONG:
            mfe = max(0.0, hi / entry_price - 1.0)
            mae = max(0.0, 1.0 - lo_ / entry_price)
        else:
            mfe = max(0.0, 1.0 - lo_ / entry_price)
            mae = max(0.0, hi / entry_price - 1.0)
        return mfe, mae

    def close_position(bar, quote, reason):
        """Exit the whole position at `quote` (a sale/purchase with fees and slippage)."""
        nonlocal cash, position, units
        if position == LONG:
            p = costs.price(quote, False)  # selling
            received, exit_commission, exit_tax = costs.sell(units, p)
            cash = cash + received
            pnl = received - committed
        else:
            p = costs.price(quote, True)  # buying back
            paid, exit_commission = costs.buy(units, p)
            exit_tax = 0.0
            cash = costs.pay(cash, units, p)
            pnl = entry_received - paid
        mfe, mae = excursions(quote)
        trades.append(
            {
                "direction": "long" if position == LONG else "short",
                "entry_bar": entry_bar,
                "exit_bar": bar,
                "entry_price": entry_price,
                "exit_price": p,
                "entry_quote": entry_quote,
                "exit_quote": quote,
                "units": units,
                "pnl": pnl,
                "return": pnl / committed,
                "exit_reason": reason,
                "mfe": mfe,
                "mae": mae,
                "commission": entry_commission + exit_commission,
                "tax": entry_tax + exit_tax,
            }
        )
        position = FLAT
        units = 0.0

    def mark_to_close(bar, reason):
        """Close the position at close[bar] with no exit fees or slippage: the `end` trade
        (End of data) and the `ruin` trade (Ruin) of semantics.md."""
        nonlocal cash, position, units
        q = c[bar]
        if position == LONG:
            pnl = units * q - committed
        else:
            pnl = entry_received - units * q
        mfe, mae = excursions(q)
        trades.append(
            {
                "direction": "long" if position == LONG else "short",
                "entry_bar": entry_bar,
                "exit_bar": bar,
                "entry_price": entry_price,
                "exit_price": q,
                "entry_quote": entry_quote,
                "exit_quote": q,
                "units": units,
                "pnl": pnl,
                "return": pnl / committed,
                "exit_reason": reason,
                "mfe": mfe,
                "mae": mae,
                "commission": entry_commission,  # the mark itself pays nothing
                "tax": entry_tax,
            }
        )
        if position == LONG:
            cash = cash + units * q
        else:
            cash = cash - units * q
        position = FLAT
        units = 0.0

    ruined = False  # semantics.md, Ruin: set at the first close with equity <= 0

    for i in range(n):
        # Ruin: after the ruin bar nothing acts; the account is flat and its equity (all
        # cash) stays at the ruin bar's equity until the end of the span.
        if ruined:
            equity_path.append(cash)
            cash_path.append(cash)
            units_path.append(0.0)
            continue

        risk_exit_this_bar = False

        # 1. next_open: fill the order left by bar i-1's signal at this bar's open.
        if fill == "next_open" and pending is not None:
            close_now, side = _decide(pending, direction, position)
            pending = None
            if close_now:
                expose(o[i], o[i])  # exited at the open: only the open counts
                close_position(i, o[i], "signal")
            if side != FLAT:
                open_position(i, o[i], side, atr[i - 1])  # ATR of the signal bar

        # 2. Stop / take-profit checks: every bar after the entry fill; on the entry bar
        #    itself only for next_open (its open came first).
        in_force = position != FLAT and (fill == "next_open" or entry_bar < i)
        if in_force:
            stop_level = None
            stop_reason = None
            if position == LONG:
                trails = []
                if trailing_stop is not None:
                    trails.append(extreme * (1.0 - trailing_stop))
                if trail_offset is not None:
                    trails.append(extreme - trail_offset)
                trail_stop = max(trails) if trails else None
                # the higher stop applies; 'stop' when the fixed level is higher or equal
                if fixed_stop is not None and trail_stop is not None:
                    if fixed_stop >= trail_stop:
                        stop_level, stop_reason = fixed_stop, "stop"
                    else:
                        stop_level, stop_reason = trail_stop, "trail"
                elif fixed_stop is not None:
                    stop_level, stop_reason = fixed_stop, "stop"
                elif trail_stop is not None:
                    stop_level, stop_reason = trail_stop, "trail"

                if stop_level is not None and o[i] <= stop_level:
                    exit_quote, exit_reason, at_open = o[i], stop_reason, True
                elif take_level is not None and o[i] >= take_level:
                    exit_quote, exit_reason, at_open = o[i], "take", True
                elif stop_level is not None and lo[i] <= stop_level:
                    exit_quote, exit_reason, at_open = stop_level, stop_reason, False
                elif take_level is not None and h[i] >= take_level:
                    exit_quote, exit_reason, at_open = take_level, "take", False
                else:
                    exit_quote, exit_reason, at_open = None, None, False
            else:  # SHORT mirrors: the lower stop applies, high and low swap roles
                trails = []
                if trailing_stop is not None:
                    trails.append(extreme * (1.0 + trailing_stop))
                if trail_offset is not None:
                    trails.append(extreme + trail_offset)
                trail_stop = min(trails) if trails else None
                if fixed_stop is not None and trail_stop is not None:
                    if fixed_stop <= trail_stop:
                        stop_level, stop_reason = fixed_stop, "stop"
                    else:
                        stop_level, stop_reason = trail_stop, "trail"
                elif fixed_stop is not None:
                    stop_level, stop_reason = fixed_stop, "stop"
                elif trail_stop is not None:
                    stop_level, stop_reason = trail_stop, "trail"

                if stop_level is not None and o[i] >= stop_level:
                    exit_quote, exit_reason, at_open = o[i], stop_reason, True
                elif take_level is not None and o[i] <= take_level:
                    exit_quote, exit_reason, at_open = o[i], "take", True
                elif stop_level is not None and h[i] >= stop_level:
                    exit_quote, exit_reason, at_open = stop_level, stop_reason, False
                elif take_level is not None and lo[i] <= take_level:
                    exit_quote, exit_reason, at_open = take_level, "take", False
                else:
                    exit_quote, exit_reason, at_open = None, None, False

            if at_open:
                expose(o[i], o[i])
            else:
                expose(h[i], lo[i])
            if exit_quote is not None:
                close_position(i, exit_quote, exit_reason)
                risk_exit_this_bar = True
            else:
                # the peak (trough) moves to this bar's high (low) only after the check
                if position == LONG:
                    extreme = max(extreme, h[i])
                else:
                    extreme = min(extreme, lo[i])

        # 3. Time exit at the close of bar entry_bar + max_bars.
        if position != FLAT and max_bars is not None and i == entry_bar + max_bars:
            close_position(i, c[i], "time")
            risk_exit_this_bar = True

        # 4. The strategy's signal at the close.
        if sig[i] != 0:
            if fill == "next_open":
                if i < n - 1:  # a signal on the last bar never fills
                    pending = sig[i]
            else:  # fill == "close": at once, at this close
                close_now, side = _decide(sig[i], direction, position)
                if close_now:
                    close_position(i, c[i], "signal")
                if side != FLAT and not risk_exit_this_bar:
                    open_position(i, c[i], side, atr[i])

        # 5. Record the bar at its close.
        if position == LONG:
            position_value = units * c[i]
        elif position == SHORT:
            position_value = -units * c[i]
        else:
            position_value = 0.0
        equity_now = cash + position_value
        # (the bar records the position held at this close, so a ruin bar with a position
        # counts towards exposure, and equity == cash + position value holds on it)
        equity_path.append(equity_now)
        cash_path.append(cash)
        units_path.append(units * position)

        # 6. Ruin (semantics.md, Ruin): equity is judged at every close, after the signal.
        #    At <= 0 an open position is closed at this close like an `end` trade (reason
        #    `ruin`, no exit fees or slippage), cash becomes the equity, a pending
        #    next_open order is dropped, and nothing acts on the later bars.
        if equity_now <= 0.0:
            ruined = True
            if position != FLAT:
                mark_to_close(i, "ruin")
            cash = equity_now  # exactly the recorded equity
            pending = None

    # End of data: an open position is marked at the last close, no exit fees/slippage.
    if position != FLAT and n > 0:
        mark_to_close(n - 1, "end")

    metrics = reference_metrics(
        equity_path, units_path, trades, init_cash=init_cash, periods_per_year=periods_per_year
    )
    metrics.update(cost_metrics(trades, equity_path, periods_per_year))
    return {
        "equity": equity_path,
        "cash": cash_path,
        "units": units_path,
        "trades": trades,
        "metrics": metrics,
    }


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------


def trade_costs(trades):
    """Every commission, fixed fee and tax the trades paid (the ``costs`` metric)."""
    return math.fsum([t["commission"] for t in trades] + [t["tax"] for t in trades])


def traded_value(trades):
    """The notional of the trades' fills: each entry, and each exit that is a fill (an
    ``end`` or ``ruin`` mark is a valuation, not a fill)."""
    return math.fsum([t["units"] * t["entry_price"] for t in trades]
                     + [t["units"] * t["exit_price"] for t in trades
                        if t["exit_reason"] not in ("end", "ruin")])


def cost_metrics(trades, equity, periods_per_year, traded=None):
    """``costs`` (cash), ``cost_rate`` (costs / traded value) and ``turnover`` (traded
    value per year over the mean equity: ``traded * periods_per_year / sum(equity)``, the
    equity at every close of the span) of a backtest; ``traded`` defaults to
    :func:`traded_value` of the trades."""
    costs = trade_costs(trades)
    traded = traded_value(trades) if traded is None else traded
    total = math.fsum(equity)
    return {"costs": costs, "cost_rate": costs / traded if traded > 0.0 else NAN,
            "turnover": traded * periods_per_year / total if total > 0.0 else NAN}


def reference_returns(equity, init_cash):
    """r_i = equity_i / equity_{i-1} - 1 with equity_{-1} = init_cash."""
    out = []
    prev = float(init_cash)
    for e in equity:
        out.append(_ieee_div(e, prev) - 1.0)
        prev = e
    return out


def reference_metrics(equity, units, trades, *, init_cash=10_000.0, periods_per_year=252.0):
    """The metric row of semantics.md from an equity path, held units and trades."""
    n = len(equity)
    init_cash = float(init_cash)
    ppy = float(periods_per_year)
    m = {}

    # Ruin (semantics.md): 1 when equity reached 0 or below at some close, else 0.
    ruined = any(e <= 0.0 for e in equity)
    m["ruined"] = 1.0 if ruined else 0.0

    if n == 0:
        for k in ("total_return", "cagr", "volatility", "sharpe", "sortino",
                  "max_drawdown", "calmar", "exposure", "skew", "kurtosis"):
            m[k] = NAN
    else:
        last = equity[-1]
        m["total_return"] = last / init_cash - 1.0
        if last <= 0.0:
            cagr = -1.0
        else:
            try:
                cagr = (last / init_cash) ** (ppy / n) - 1.0
            except OverflowError:  # not representable: NaN (semantics.md)
                cagr = NAN
        m["cagr"] = cagr

        running_max = init_cash
        mdd = 0.0
        for e in equity:
            running_max = max(running_max, e)
            dd = 1.0 - e / running_max
            if dd > mdd:
                mdd = dd
        m["max_drawdown"] = mdd

        m["exposure"] = sum(1 for u in units if u != 0.0) / n

        if ruined:
            # Ruin: the per-bar returns mean nothing once equity is <= 0, so every metric
            # built on them (and calmar) is NaN; total_return, cagr (-1, above),
            # max_drawdown (its formula, >= 1) and exposure stay as computed.
            for k in ("volatility", "sharpe", "sortino", "calmar", "skew", "kurtosis"):
                m[k] = NAN
        else:
            r = reference_returns(equity, init_cash)
            mean_r = _mean(r)
            if n < 2:
                vol = NAN
                sharpe = NAN
            else:
                sd = _std_ddof1(r)
                vol = sd * math.sqrt(ppy)
                sharpe = NAN if sd <= NOISE * abs(mean_r) else mean_r / sd * math.sqrt(ppy)
            m["volatility"] = vol
            m["sharpe"] = sharpe

            if any(x < 0.0 for x in r):
                downside = math.sqrt(_mean([min(x, 0.0) ** 2 for x in r]))
                sortino = (NAN if downside <= NOISE * abs(mean_r)
                           else mean_r / downside * math.sqrt(ppy))
            else:
                sortino = NAN
            m["sortino"] = sortino

            m["calmar"] = NAN if mdd == 0.0 else cagr / mdd

            # population skewness and raw (non-excess) kurtosis of the per-bar returns
            central2 = _mean([(x - mean_r) ** 2 for x in r])
            if central2 > 0.0:
                m["skew"] = _mean([(x - mean_r) ** 3 for x in r]) / central2 ** 1.5
                m["kurtosis"] = _mean([(x - mean_r) ** 4 for x in r]) / central2 ** 2
            else:
                m["skew"] = m["kurtosis"] = NAN

    nt = len(trades)
    m["n_trades"] = nt
    if nt == 0:
        m["win_rate"] = NAN
        m["avg_trade"] = NAN
        m["avg_bars_held"] = NAN
    else:
        m["win_rate"] = sum(1 for t in trades if t["pnl"] > 0.0) / nt
        m["avg_trade"] = _mean([t["return"] for t in trades])
        m["avg_bars_held"] = _mean([float(t["exit_bar"] - t["entry_bar"]) for t in trades])
    gains = sum(t["pnl"] for t in trades if t["pnl"] > 0.0)
    losses = sum(t["pnl"] for t in trades if t["pnl"] < 0.0)
    m["profit_factor"] = NAN if losses == 0.0 else gains / -losses
    for reason in ("stop", "take", "trail", "time", "signal"):
        m["n_" + reason] = sum(1 for t in trades if t["exit_reason"] == reason)

    # trade statistics: from the trades alone (so a sweep's rows carry them too)
    rets = [t["return"] for t in trades]
    pnls = [t["pnl"] for t in trades]
    m["best_trade"] = max(rets) if rets else NAN
    m["worst_trade"] = min(rets) if rets else NAN
    m["expectancy"] = _mean(pnls) if pnls else NAN
    spread = _std_ddof1(pnls) if nt > 1 else 0.0
    mean_pnl = _mean(pnls) if pnls else 0.0
    m["sqn"] = math.sqrt(nt) * mean_pnl / spread if spread > NOISE * abs(mean_pnl) else NAN

    # fixed key order, same as the engine's metric names
    order = ["total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
             "calmar", "n_trades", "win_rate", "profit_factor", "avg_trade", "exposure",
             "avg_bars_held", "n_stop", "n_take", "n_trail", "n_time", "n_signal", "skew",
             "kurtosis", "best_trade", "worst_trade", "expectancy", "sqn", "ruined"]
    return {k: m[k] for k in order}


# --------------------------------------------------------------------------------------
# Single-backtest statistics (docs/semantics.md, "Single-backtest statistics")
# --------------------------------------------------------------------------------------


def reference_extra_stats(equity, close, trades, init_cash, exposure):
    """The descriptive statistics of one backtest from its per-bar ``equity`` (one value per
    bar of the span) and the span's ``close``, in plain Python. Times (start, end,
    duration) are left to the caller; the trade statistics (best and worst trade,
    expectancy, SQN) are metrics (:func:`reference_metrics`). ``trades`` is unused."""
    out = {"buy_and_hold_return": close[-1] / close[0] - 1.0}
    peak, run, runs = float(init_cash), 0, []
    for e in equity:
        peak = max(peak, e)
        if e < peak:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    if run:
        runs.append(run)
    out["max_drawdown_duration"] = max(runs) if runs else 0
    out["avg_drawdown_duration"] = sum(runs) / len(runs) if runs else NAN
    total = equity[-1] / init_cash - 1.0
    out["exposure_adjusted_return"] = total / exposure if exposure > 0 else NAN
    return out
