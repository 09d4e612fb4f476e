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

Inputs cover ONE asset's span only (bar 0 = span start).
"""

import math

NAN = float("nan")

LONG = 1
SHORT = -1
FLAT = 0


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


def _target_position(position, signal, direction):
    """The position a signal asks for, or None when the signal does nothing.

    long:  +1 = entry (open long if flat), -1 = exit (close long)
    short: -1 = entry (open short if flat), +1 = exit (close short)
    both:  +1 = go long (reverse if short), -1 = go short (reverse if long)
    """
    if signal > 0:
        signal = 1
    elif signal < 0:
        signal = -1
    else:
        return None
    if direction == "long":
        if signal == 1 and position == FLAT:
            return LONG
        if signal == -1 and position == LONG:
            return FLAT
        return None
    if direction == "short":
        if signal == -1 and position == FLAT:
            return SHORT
        if signal == 1 and position == SHORT:
            return FLAT
        return None
    # both
    if signal == 1 and position != LONG:
        return LONG
    if signal == -1 and position != SHORT:
        return SHORT
    return None


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
    max_bars=None,
    fees=0.0,
    fixed_fees=0.0,
    slippage=0.0,
    size=1.0,
    fill="next_open",
    direction="long",
    init_cash=10_000.0,
    periods_per_year=252.0,
):
    """Backtest one asset bar by bar, exactly as docs/semantics.md describes.

    Returns a dict with per-bar lists ``equity``, ``cash``, ``units`` (signed: + long,
    - short, 0 flat, as held at the close), the list of ``trades`` (dicts) and the
    ``metrics`` dict.
    """
    o = [float(x) for x in open]
    h = [float(x) for x in high]
    lo = [float(x) for x in low]
    c = [float(x) for x in close]
    sig = [int(x) for x in signals]
    n = len(c)
    if not (len(o) == len(h) == len(lo) == n == len(sig)):
        raise ValueError("open, high, low, close and signals must have the same length")
    if fill not in ("next_open", "close"):
        raise ValueError("fill must be 'next_open' or 'close'")
    if direction not in ("long", "short", "both"):
        raise ValueError("direction must be 'long', 'short' or 'both'")

    fees = float(fees)
    fixed_fees = float(fixed_fees)
    slippage = float(slippage)
    size = float(size)
    init_cash = float(init_cash)
    periods_per_year = float(periods_per_year)

    # ---- account state ----
    cash = init_cash
    position = FLAT  # LONG, SHORT or FLAT
    units = 0.0  # positive amount held (the sign lives in `position`)

    # ---- state of the open position ----
    entry_bar = -1
    entry_quote = NAN
    entry_price = NAN
    extreme = NAN  # peak for a long, trough for a short (trailing stop)
    exc_high = None  # highest price the position was exposed to (for mfe/mae)
    exc_low = None  # lowest price the position was exposed to

    pending = None  # next_open: target position ordered at the previous close

    trades = []
    equity_path = []
    cash_path = []
    units_path = []

    def expose(hi, lo_):
        nonlocal exc_high, exc_low
        exc_high = hi if exc_high is None else max(exc_high, hi)
        exc_low = lo_ if exc_low is None else min(exc_low, lo_)

    def open_position(bar, quote, side):
        """Enter `side` at `quote`; returns False when the entry is skipped."""
        nonlocal cash, position, units, entry_bar, entry_quote, entry_price, extreme
        nonlocal exc_high, exc_low
        equity_now = cash  # flat here: equity is all cash
        budget = size * equity_now - fixed_fees
        if budget <= 0.0:
            return False  # Decision in semantics.md: entry skipped
        if side == LONG:
            p = quote * (1.0 + slippage)  # buying
        else:
            p = quote * (1.0 - slippage)  # selling short
        u = budget / (p * (1.0 + fees))
        if side == LONG:
            cash = cash - u * p * (1.0 + fees) - fixed_fees
        else:
            cash = cash + u * p * (1.0 - fees) - fixed_fees
        position = side
        units = u
        entry_bar = bar
        entry_quote = quote
        entry_price = p
        extreme = p  # the peak / trough starts at entry_price
        exc_high = None
        exc_low = None
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
            p = quote * (1.0 - slippage)  # selling
            cash = cash + units * p * (1.0 - fees) - fixed_fees
            pnl = units * p * (1.0 - fees) - fixed_fees - (
                units * entry_price * (1.0 + fees) + fixed_fees
            )
        else:
            p = quote * (1.0 + slippage)  # buying back
            cash = cash - units * p * (1.0 + fees) - fixed_fees
            pnl = units * entry_price * (1.0 - fees) - fixed_fees - (
                units * p * (1.0 + fees) + fixed_fees
            )
        committed = units * entry_price * (1.0 + fees) + fixed_fees
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
            }
        )
        position = FLAT
        units = 0.0

    for i in range(n):
        risk_exit_this_bar = False

        # 1. next_open: fill the order left by bar i-1's signal at this bar's open.
        if fill == "next_open" and pending is not None:
            target = pending
            pending = None
            if position != FLAT and target != position:
                expose(o[i], o[i])  # exited at the open: only the open counts
                close_position(i, o[i], "signal")
            if target != FLAT and position == FLAT:
                open_position(i, o[i], target)

        # 2. Stop / take-profit checks: every bar after the entry fill; on the entry bar
        #    itself only for next_open (its open came first).
        in_force = position != FLAT and (fill == "next_open" or entry_bar < i)
        if in_force:
            stop_level = None
            stop_reason = None
            take_level = None
            if position == LONG:
                fixed_stop = entry_price * (1.0 - stop_loss) if stop_loss is not None else None
                trail_stop = extreme * (1.0 - trailing_stop) if trailing_stop is not None else None
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
                if take_profit is not None:
                    take_level = entry_price * (1.0 + take_profit)

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
                fixed_stop = entry_price * (1.0 + stop_loss) if stop_loss is not None else None
                trail_stop = extreme * (1.0 + trailing_stop) if trailing_stop is not None else None
                if fixed_stop is not None and trail_stop is not None:
                    if fixed_stop <= trail_stop:
                        stop_level, stop_reason = fixed_stop, "stop"
                    else:
                        stop_level, stop_reason = trail_stop, "trail"
                elif fixed_stop is not None:
                    stop_level, stop_reason = fixed_stop, "stop"
                elif trail_stop is not None:
                    stop_level, stop_reason = trail_stop, "trail"
                if take_profit is not None:
                    take_level = entry_price * (1.0 - take_profit)

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
        target = _target_position(position, sig[i], direction)
        if target is not None:
            if fill == "next_open":
                if i < n - 1:  # a signal on the last bar never fills
                    pending = target
            else:  # fill == "close": at once, at this close
                if position != FLAT and target != position:
                    close_position(i, c[i], "signal")
                if target != FLAT and position == FLAT and not risk_exit_this_bar:
                    open_position(i, c[i], target)

        # 5. Record the bar at its close.
        if position == LONG:
            position_value = units * c[i]
        elif position == SHORT:
            position_value = -units * c[i]
        else:
            position_value = 0.0
        equity_path.append(cash + position_value)
        cash_path.append(cash)
        units_path.append(units * position)

    # End of data: an open position is marked at the last close, no exit fees/slippage.
    if position != FLAT and n > 0:
        last = n - 1
        q = c[last]
        if position == LONG:
            pnl = units * q - (units * entry_price * (1.0 + fees) + fixed_fees)
        else:
            pnl = units * entry_price * (1.0 - fees) - fixed_fees - units * q
        committed = units * entry_price * (1.0 + fees) + fixed_fees
        mfe, mae = excursions(q)
        trades.append(
            {
                "direction": "long" if position == LONG else "short",
                "entry_bar": entry_bar,
                "exit_bar": last,
                "entry_price": entry_price,
                "exit_price": q,
                "entry_quote": entry_quote,
                "exit_quote": q,
                "units": units,
                "pnl": pnl,
                "return": pnl / committed,
                "exit_reason": "end",
                "mfe": mfe,
                "mae": mae,
            }
        )

    metrics = reference_metrics(
        equity_path, units_path, trades, init_cash=init_cash, periods_per_year=periods_per_year
    )
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
            cagr = (last / init_cash) ** (ppy / n) - 1.0
        m["cagr"] = cagr

        r = reference_returns(equity, init_cash)
        mean_r = _mean(r)
        if n < 2:
            vol = NAN
            sharpe = NAN
        else:
            sd = _std_ddof1(r)
            vol = sd * math.sqrt(ppy)
            sharpe = NAN if sd == 0.0 else mean_r / sd * math.sqrt(ppy)
        m["volatility"] = vol
        m["sharpe"] = sharpe

        if any(x < 0.0 for x in r):
            downside = math.sqrt(_mean([min(x, 0.0) ** 2 for x in r]))
            sortino = NAN if downside == 0.0 else mean_r / downside * math.sqrt(ppy)
        else:
            sortino = NAN
        m["sortino"] = sortino

        running_max = init_cash
        mdd = 0.0
        for e in equity:
            running_max = max(running_max, e)
            dd = 1.0 - e / running_max
            if dd > mdd:
                mdd = dd
        m["max_drawdown"] = mdd
        m["calmar"] = NAN if mdd == 0.0 else cagr / mdd

        m["exposure"] = sum(1 for u in units if u != 0.0) / n

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

    # fixed key order, same as the engine's metric names
    order = ["total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
             "calmar", "n_trades", "win_rate", "profit_factor", "avg_trade", "exposure",
             "avg_bars_held", "n_stop", "n_take", "n_trail", "n_time", "n_signal", "skew",
             "kurtosis"]
    return {k: m[k] for k in order}
