"""The fused simulation kernel: signal + risk rules + accounting + metric reduction.

Every backtest is one pass over one asset's bars. It never stores a per-bar series unless
asked to (``record=True`` for single backtests); sweeps reduce straight to one metrics row.
The meaning of every step is specified in docs/semantics.md.

Every function the kernels call lives in this one module, so numba's on-disk cache (which
only watches the file that defines a function) sees every edit; only the frozen signal
codes come from :mod:`sweepbt.kernels.codes`.
"""

import math

import numpy as np
from numba import njit, prange

from sweepbt.kernels.codes import ENTER_LONG, ENTER_SHORT, EXIT_LONG, EXIT_SHORT

# --- int enums (vectorbt style); the shell maps user strings to these -------------------
FILL_NEXT_OPEN = 0
FILL_CLOSE = 1

DIR_LONG = 0
DIR_SHORT = 1
DIR_BOTH = 2

EXIT_SIGNAL = 0
EXIT_STOP = 1
EXIT_TAKE = 2
EXIT_TRAIL = 3
EXIT_TIME = 4
EXIT_END = 5
EXIT_RUIN = 6  # equity reached 0 or below: the backtest stops (docs/semantics.md, Ruin)
EXIT_REASONS = ("signal", "stop", "take", "trail", "time", "end", "ruin")

METRIC_NAMES = (
    "total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar",
    "n_trades", "win_rate", "profit_factor", "avg_trade", "exposure", "avg_bars_held",
    "n_stop", "n_take", "n_trail", "n_time", "n_signal", "skew", "kurtosis", "ruined",
)
N_METRICS = len(METRIC_NAMES)
M_TOTAL_RETURN, M_CAGR, M_VOLATILITY, M_SHARPE, M_SORTINO, M_MAX_DRAWDOWN, M_CALMAR = range(7)
M_N_TRADES, M_WIN_RATE, M_PROFIT_FACTOR, M_AVG_TRADE, M_EXPOSURE, M_AVG_BARS_HELD = range(7, 13)
M_N_STOP = 13  # n_stop, n_take, n_trail, n_time follow in EXIT_* order; n_signal is last
M_N_SIGNAL = 17
M_SKEW = 18  # of the per-bar returns (population moments)
M_KURTOSIS = 19  # raw (not excess): 3 for normal returns
M_RUINED = 20  # 1.0 when equity reached 0 or below, else 0.0

TRADE_FIELDS = (
    "direction", "entry_bar", "exit_bar", "entry_price", "exit_price", "entry_quote",
    "exit_quote", "units", "pnl", "return", "exit_reason", "mfe", "mae",
)
N_TRADE_FIELDS = len(TRADE_FIELDS)

RETURN_BLOCK = 64  # returns are reduced two-pass in blocks of this many bars, then merged


# trade tally: per-backtest counters kept in a small per-thread scratch array
T_TRADES, T_WINS, T_GROSS_PROFIT, T_GROSS_LOSS, T_SUM_RETURN, T_SUM_BARS, T_RUINED = range(7)
T_REASON = 7  # T_REASON + EXIT_* counts trades by exit reason
N_TALLY = T_REASON + len(EXIT_REASONS)


@njit(cache=True, inline="always")
def _merge_moments(n, mean, m2, m3, m4, nb, mean_b, m2_b, m3_b, m4_b):
    """Merge two groups' (count, mean, central moment sums M2..M4) (Chan; Pebay 2008)."""
    n_new = n + nb
    delta = mean_b - mean
    d_n = delta / n_new
    na_nb = n * nb
    m4 += (m4_b + delta * d_n ** 3 * na_nb * (n * n - na_nb + nb * nb)
           + 6.0 * d_n * d_n * (n * n * m2_b + nb * nb * m2)
           + 4.0 * d_n * (n * m3_b - nb * m3))
    m3 += m3_b + delta * d_n * d_n * na_nb * (n - nb) + 3.0 * d_n * (n * m2_b - nb * m2)
    m2 += m2_b + delta * d_n * na_nb
    return n_new, mean + d_n * nb, m2, m3, m4


@njit(cache=True, inline="always")
def _merge_block(buf, k, n, mean, m2, m3, m4):
    """Two-pass moments of ``buf[:k]`` (mean, then M2..M4 about it), merged into the totals.

    The passes keep interleaved partial sums (four for the mean, two per moment): that
    breaks the chain of dependent additions without fastmath, and each partial sum is
    shorter, so rounding error does not grow.
    """
    s0 = s1 = s2 = s3 = 0.0
    j = 0
    while j + 4 <= k:
        s0 += buf[j]
        s1 += buf[j + 1]
        s2 += buf[j + 2]
        s3 += buf[j + 3]
        j += 4
    while j < k:
        s0 += buf[j]
        j += 1
    b_mean = ((s0 + s1) + (s2 + s3)) / k
    a2 = b2 = a3 = b3 = a4 = b4 = 0.0
    j = 0
    while j + 2 <= k:
        d = buf[j] - b_mean
        e = buf[j + 1] - b_mean
        d2 = d * d
        e2 = e * e
        a2 += d2
        b2 += e2
        a3 += d2 * d
        b3 += e2 * e
        a4 += d2 * d2
        b4 += e2 * e2
        j += 2
    if j < k:
        d = buf[j] - b_mean
        d2 = d * d
        a2 += d2
        a3 += d2 * d
        a4 += d2 * d2
    b_m2 = a2 + b2
    b_m3 = a3 + b3
    b_m4 = a4 + b4
    return _merge_moments(n, mean, m2, m3, m4, k, b_mean, b_m2, b_m3, b_m4)


@njit(cache=True, inline="always")
def _merge_zeros(buf, k, n_zeros, n, mean, m2, m3, m4):
    """Merge the ``k`` returns waiting in ``buf``, then ``n_zeros`` returns of exactly 0
    (a flat stretch), into the totals; the caller empties ``buf`` (k = 0)."""
    if k > 0:
        n, mean, m2, m3, m4 = _merge_block(buf, k, n, mean, m2, m3, m4)
    return _merge_moments(n, mean, m2, m3, m4, n_zeros, 0.0, 0.0, 0.0, 0.0)


@njit(cache=True, inline="always")
def _honoured(code, direction):
    """The bits of a signal code that ``direction`` acts on.

    The entry and exit bits of one side cancel each other (a conflicting code says nothing
    about that side), as vectorbt's default ``upon_long_conflict="ignore"`` does.
    """
    if direction == DIR_LONG:
        code &= ENTER_LONG | EXIT_LONG
    elif direction == DIR_SHORT:
        code &= ENTER_SHORT | EXIT_SHORT
    if code & (ENTER_LONG | EXIT_LONG) == ENTER_LONG | EXIT_LONG:
        code &= ~(ENTER_LONG | EXIT_LONG)
    if code & (ENTER_SHORT | EXIT_SHORT) == ENTER_SHORT | EXIT_SHORT:
        code &= ~(ENTER_SHORT | EXIT_SHORT)
    return code


@njit(cache=True, inline="always")
def _orders(code, direction, pos):
    """What a signal does to a position: (close it?, direction to open: +1, -1 or 0).

    Entering one side closes the other (a reversal); contradictory entry bits open nothing.
    """
    code = _honoured(code, direction)
    close_now = (pos > 0 and (code & (EXIT_LONG | ENTER_SHORT)) != 0) or (
        pos < 0 and (code & (EXIT_SHORT | ENTER_LONG)) != 0)
    if pos != 0 and not close_now:
        return False, 0
    enter_long = (code & ENTER_LONG) != 0
    enter_short = (code & ENTER_SHORT) != 0
    if enter_long and not enter_short:
        return close_now, 1
    if enter_short and not enter_long:
        return close_now, -1
    return close_now, 0


@njit(cache=True, inline="always")
def _opens(code, direction):
    """Whether a signal code can open a position from flat under ``direction``."""
    return (_honoured(code, direction) & (ENTER_LONG | ENTER_SHORT)) != 0


@njit(cache=True, inline="always")
def _levels(pos, entry_price, atr_at_entry, stop_loss, take_profit, stop_atr, take_atr):
    """Stop and take levels fixed at entry: the tighter of the percent and ATR rules.

    Rules are off when NaN; ATR rules also when the ATR is undefined at entry (NaN).
    Returns (stop, take) with -inf/+inf (long) or +inf/-inf (short) meaning none.
    """
    if pos > 0:
        stop = -np.inf
        take = np.inf
        if stop_loss == stop_loss:
            stop = entry_price * (1.0 - stop_loss)
        if stop_atr == stop_atr and atr_at_entry == atr_at_entry:
            stop = max(stop, entry_price - stop_atr * atr_at_entry)
        if take_profit == take_profit:
            take = entry_price * (1.0 + take_profit)
        if take_atr == take_atr and atr_at_entry == atr_at_entry:
            take = min(take, entry_price + take_atr * atr_at_entry)
    else:
        stop = np.inf
        take = -np.inf
        if stop_loss == stop_loss:
            stop = entry_price * (1.0 + stop_loss)
        if stop_atr == stop_atr and atr_at_entry == atr_at_entry:
            stop = min(stop, entry_price + stop_atr * atr_at_entry)
        if take_profit == take_profit:
            take = entry_price * (1.0 - take_profit)
        if take_atr == take_atr and atr_at_entry == atr_at_entry:
            take = max(take, entry_price - take_atr * atr_at_entry)
    return stop, take


@njit(cache=True, inline="always")
def _risk_exit(pos, o, h, lo, stop_level, take_level, extreme, trailing_stop, trail_offset):
    """Stop / trailing / take-profit check within one bar: (quote, reason, at_open).

    ``stop_level``/``take_level`` were fixed at entry; the trailing level follows
    ``extreme`` (peak or trough) by the fraction ``trailing_stop`` and/or the distance
    ``trail_offset`` (NaN = off), the tighter applying. ``reason`` is -1 when no rule
    fires. The open is checked first (gaps fill at the open), then the stop, then the take.
    """
    reason_stop = EXIT_STOP
    if pos > 0:
        trail = -np.inf
        if trailing_stop == trailing_stop:
            trail = extreme * (1.0 - trailing_stop)
        if trail_offset == trail_offset:
            trail = max(trail, extreme - trail_offset)
        if trail > stop_level:
            stop_level = trail
            reason_stop = EXIT_TRAIL
        if o <= stop_level:
            return o, reason_stop, True
        if o >= take_level:
            return o, EXIT_TAKE, True
        if lo <= stop_level:
            return stop_level, reason_stop, False
        if h >= take_level:
            return take_level, EXIT_TAKE, False
    else:
        trail = np.inf
        if trailing_stop == trailing_stop:
            trail = extreme * (1.0 + trailing_stop)
        if trail_offset == trail_offset:
            trail = min(trail, extreme + trail_offset)
        if trail < stop_level:
            stop_level = trail
            reason_stop = EXIT_TRAIL
        if o >= stop_level:
            return o, reason_stop, True
        if o <= take_level:
            return o, EXIT_TAKE, True
        if h >= stop_level:
            return stop_level, reason_stop, False
        if lo <= take_level:
            return take_level, EXIT_TAKE, False
    return 0.0, -1, False


@njit(cache=True, inline="always")
def _book_trade(tally, record, trades_out, pos, entry_bar, exit_bar, entry_price, exit_price,
                entry_quote, exit_quote, units, pnl, entry_cost, reason, exc_hi, exc_lo):
    """Count a closed round trip in ``tally``; with ``record`` also write its trades row.

    MFE/MAE are non-negative fractions of the entry price, from the highest high
    (``exc_hi``) and lowest low (``exc_lo``) the position was exposed to.
    """
    ret = pnl / entry_cost
    if record:
        row = trades_out[int(tally[T_TRADES])]
        row[0] = pos
        row[1] = entry_bar
        row[2] = exit_bar
        row[3] = entry_price
        row[4] = exit_price
        row[5] = entry_quote
        row[6] = exit_quote
        row[7] = units
        row[8] = pnl
        row[9] = ret
        row[10] = reason
        up = max(0.0, exc_hi / entry_price - 1.0)
        down = max(0.0, 1.0 - exc_lo / entry_price)
        row[11] = up if pos > 0 else down
        row[12] = down if pos > 0 else up
    tally[T_TRADES] += 1.0
    if pnl > 0.0:
        tally[T_WINS] += 1.0
        tally[T_GROSS_PROFIT] += pnl
    elif pnl < 0.0:
        tally[T_GROSS_LOSS] -= pnl
    tally[T_SUM_RETURN] += ret
    tally[T_SUM_BARS] += exit_bar - entry_bar
    tally[T_REASON + reason] += 1.0


@njit(cache=True, inline="always")
def _exit(tally, record, trades_out, i, quote, reason, at_open, o, h, lo, pos, units,
          entry_bar, entry_price, entry_quote, entry_cost, entry_net, exc_hi, exc_lo,
          fees, fixed_fees, slippage):
    """Close the position at ``quote`` on bar ``i``; returns the cash change."""
    if at_open:
        exc_hi = max(exc_hi, o)
        exc_lo = min(exc_lo, o)
    else:
        exc_hi = max(exc_hi, h)
        exc_lo = min(exc_lo, lo)
    if pos > 0:
        p = quote * (1.0 - slippage)
        cash_change = units * p * (1.0 - fees) - fixed_fees
        pnl = cash_change - entry_cost
    else:
        p = quote * (1.0 + slippage)
        cash_change = -(units * p * (1.0 + fees) + fixed_fees)
        pnl = entry_net + cash_change
    _book_trade(tally, record, trades_out, pos, entry_bar, i, entry_price, p, entry_quote,
                quote, units, pnl, entry_cost, reason, exc_hi, exc_lo)
    return cash_change


@njit(cache=True, inline="always")
def _entry(open_dir, quote, atr_at_signal, cash, size, fees, fixed_fees, slippage, stop_loss,
           take_profit, stop_atr, take_atr, trailing_atr):
    """Open a position: (units, entry_price, entry_cost, entry_net, cash change, stop level,
    take level, trailing ATR distance), the levels fixed at entry (see ``_levels``).

    ``units`` is 0 when ``size * cash - fixed_fees <= 0`` (the entry is skipped).
    """
    budget = size * cash - fixed_fees
    if budget <= 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, np.nan
    p = quote * (1.0 + slippage) if open_dir > 0 else quote * (1.0 - slippage)
    units = budget / (p * (1.0 + fees))
    entry_cost = units * p * (1.0 + fees) + fixed_fees
    entry_net = units * p * (1.0 - fees) - fixed_fees
    stop, take = _levels(open_dir, p, atr_at_signal, stop_loss, take_profit, stop_atr,
                         take_atr)
    return (units, p, entry_cost, entry_net, -entry_cost if open_dir > 0 else entry_net,
            stop, take, trailing_atr * atr_at_signal)


@njit(cache=True)
def simulate(
    open_, high, low, close, start, end, event_bar, event_code, atr,
    stop_loss, take_profit, trailing_stop, stop_atr, take_atr, trailing_atr, max_bars,
    fees, fixed_fees, slippage, size, fill, direction, init_cash, periods_per_year,
    buf, tally, metrics_out, record, equity_out, cash_out, units_out, trades_out,
):
    """Run one backtest of one asset over bars ``start <= i < end``; return its trade count.

    Prices are 1-D rows of the Bundle; ``event_bar``/``event_code`` are the strategy's
    signals (increasing bars inside the span, codes of :mod:`sweepbt.kernels.codes`,
    judged at the close). ``atr`` is the asset's ATR row for the ATR-scaled rules
    (``stop_atr``, ``take_atr``, ``trailing_atr``: multiples of the ATR at the signal bar of
    the entry). Risk rules are off when NaN, ``max_bars`` when 0. ``buf`` (RETURN_BLOCK
    floats) and ``tally`` (N_TALLY floats) are scratch owned by the caller's thread.
    Writes N_METRICS values (METRIC_NAMES order) to ``metrics_out``. With ``record`` it
    also writes per-bar ``equity_out``, ``cash_out``, ``units_out`` (signed) and one row per
    trade to ``trades_out`` (TRADE_FIELDS order, bars as absolute indices).

    While flat with no order pending, equity is constant and every return is exactly 0, so
    the loop jumps straight to the next signal that can open a position, folding the skipped
    bars into the statistics as one block of zero returns.
    """
    next_open = fill == FILL_NEXT_OPEN
    tally[:] = 0.0
    n_events = event_bar.shape[0]
    e = 0  # next signal event

    cash = init_cash
    units = 0.0
    pos = 0  # +1 long, -1 short, 0 flat
    entry_bar = -1
    entry_price = entry_quote = entry_cost = entry_net = 0.0
    stop_level = take_level = 0.0  # fixed at entry
    trail_offset = np.nan  # trailing_atr distance, fixed at entry
    extreme = 0.0  # peak (long) / trough (short) for the trailing stop
    exc_hi = exc_lo = 0.0  # price extremes seen by the open position (MFE/MAE)
    pending = 0  # next_open: the signal waiting for the next bar's open
    bars_exposed = 0

    k = 0  # returns waiting in buf
    n_ret = 0
    mean_ret = m2_ret = m3_ret = m4_ret = downside_sq = 0.0
    prev_equity = peak_equity = init_cash
    max_dd = 0.0

    while e < n_events and event_bar[e] < start:  # signals before the span never act
        e += 1
    i = start
    while i < end:
        if pos == 0 and pending == 0:
            # flat: skip to the close of the next bar whose signal opens a position
            while e < n_events and not _opens(event_code[e], direction):
                e += 1
            j = min(event_bar[e], end) if e < n_events else end
            if j > i:
                # bars i..j-1: equity == cash, returns exactly 0, drawdown unchanged
                n_ret, mean_ret, m2_ret, m3_ret, m4_ret = _merge_zeros(
                    buf, k, j - i, n_ret, mean_ret, m2_ret, m3_ret, m4_ret)
                k = 0
                if record:
                    equity_out[i:j] = cash
                    cash_out[i:j] = cash
                    units_out[i:j] = 0.0
                i = j
                if i == end:
                    break

        o = open_[i]
        h = high[i]
        lo = low[i]
        c = close[i]
        ruled_out = False  # a stop, take-profit or time exit happened on this bar

        # 1. next_open: the order left by the previous close fills at this open
        if pending != 0:
            close_now, open_dir = _orders(pending, direction, pos)
            pending = 0
            if close_now:
                cash += _exit(tally, record, trades_out, i, o, EXIT_SIGNAL, True, o, h, lo,
                              pos, units, entry_bar, entry_price, entry_quote, entry_cost,
                              entry_net, exc_hi, exc_lo, fees, fixed_fees, slippage)
                pos = 0
            if open_dir != 0:
                # ATR of the signal bar (i - 1): the last close known at this open
                (units, entry_price, entry_cost, entry_net, dc, stop_level, take_level,
                 trail_offset) = _entry(open_dir, o, atr[i - 1], cash, size, fees,
                                        fixed_fees, slippage, stop_loss, take_profit,
                                        stop_atr, take_atr, trailing_atr)
                if units > 0.0:
                    cash += dc
                    pos = open_dir
                    entry_bar = i
                    entry_quote = o
                    extreme = exc_hi = exc_lo = entry_price

        # 2. risk rules, then the time exit at the close
        if pos != 0 and (next_open or entry_bar < i):
            quote, reason, at_open = _risk_exit(pos, o, h, lo, stop_level, take_level,
                                                extreme, trailing_stop, trail_offset)
            if reason < 0 and max_bars > 0 and i == entry_bar + max_bars:
                quote = c
                reason = EXIT_TIME
            if reason >= 0:
                cash += _exit(tally, record, trades_out, i, quote, reason, at_open, o, h, lo,
                              pos, units, entry_bar, entry_price, entry_quote, entry_cost,
                              entry_net, exc_hi, exc_lo, fees, fixed_fees, slippage)
                pos = 0
                ruled_out = True
            elif pos > 0:
                extreme = max(extreme, h)
            else:
                extreme = min(extreme, lo)

        # 3. the strategy's signal at the close
        if e < n_events and event_bar[e] == i:
            sig = event_code[e]
            e += 1
            if next_open:
                if i + 1 < end:
                    pending = sig
            else:
                close_now, open_dir = _orders(sig, direction, pos)
                if close_now:
                    cash += _exit(tally, record, trades_out, i, c, EXIT_SIGNAL, False, o, h,
                                  lo, pos, units, entry_bar, entry_price, entry_quote,
                                  entry_cost, entry_net, exc_hi, exc_lo, fees, fixed_fees,
                                  slippage)
                    pos = 0
                if open_dir != 0 and not ruled_out:
                    (units, entry_price, entry_cost, entry_net, dc, stop_level, take_level,
                     trail_offset) = _entry(open_dir, c, atr[i], cash, size, fees, fixed_fees,
                                            slippage, stop_loss, take_profit, stop_atr,
                                            take_atr, trailing_atr)
                    if units > 0.0:
                        cash += dc
                        pos = open_dir
                        entry_bar = i
                        entry_quote = c
                        extreme = exc_hi = exc_lo = entry_price

        # 4. mark to market at the close, and fold the bar's return into the statistics
        if pos != 0:
            bars_exposed += 1
            equity = cash + pos * units * c
            if record and (next_open or entry_bar < i):
                exc_hi = max(exc_hi, h)
                exc_lo = min(exc_lo, lo)
        else:
            units = 0.0
            equity = cash
        r = equity / prev_equity - 1.0
        prev_equity = equity
        buf[k] = r
        k += 1
        if k == RETURN_BLOCK:
            n_ret, mean_ret, m2_ret, m3_ret, m4_ret = _merge_block(
                buf, k, n_ret, mean_ret, m2_ret, m3_ret, m4_ret)
            k = 0
        if r < 0.0:
            downside_sq += r * r
        if equity > peak_equity:
            peak_equity = equity
        elif equity < peak_equity * (1.0 - max_dd):
            max_dd = 1.0 - equity / peak_equity
        if record:
            equity_out[i] = equity
            cash_out[i] = cash
            units_out[i] = pos * units
        i += 1
        if equity <= 0.0:
            # ruin: the position is closed at this close like an end-of-data mark; the
            # account stays flat at this equity for the rest of the span (zero returns)
            tally[T_RUINED] = 1.0
            if pos != 0:
                exc_hi = max(exc_hi, c)
                exc_lo = min(exc_lo, c)
                pnl = units * c - entry_cost if pos > 0 else entry_net - units * c
                _book_trade(tally, record, trades_out, pos, entry_bar, i - 1, entry_price, c,
                            entry_quote, c, units, pnl, entry_cost, EXIT_RUIN, exc_hi,
                            exc_lo)
                pos = 0
            if i < end:
                n_ret, mean_ret, m2_ret, m3_ret, m4_ret = _merge_zeros(
                    buf, k, end - i, n_ret, mean_ret, m2_ret, m3_ret, m4_ret)
                k = 0
                if record:
                    equity_out[i:end] = equity
                    cash_out[i:end] = equity
                    units_out[i:end] = 0.0
            break

    if k > 0:
        n_ret, mean_ret, m2_ret, m3_ret, m4_ret = _merge_block(
            buf, k, n_ret, mean_ret, m2_ret, m3_ret, m4_ret)

    # a position still open at the end is marked at the last close, with no exit costs
    if pos != 0:
        last = end - 1
        c = close[last]
        pnl = units * c - entry_cost if pos > 0 else entry_net - units * c
        exc_hi = max(exc_hi, c)  # the mark is part of the path, even for an entry at it
        exc_lo = min(exc_lo, c)
        _book_trade(tally, record, trades_out, pos, entry_bar, last, entry_price, c,
                    entry_quote, c, units, pnl, entry_cost, EXIT_END, exc_hi, exc_lo)

    _finish_metrics(metrics_out, tally, prev_equity, init_cash, periods_per_year, n_ret,
                    mean_ret, m2_ret, m3_ret, m4_ret, downside_sq, max_dd, bars_exposed)
    return int(tally[T_TRADES])


@njit(cache=True, inline="always")
def _finish_metrics(m, tally, final_equity, init_cash, periods_per_year, n_ret, mean_ret,
                    m2_ret, m3_ret, m4_ret, downside_sq, max_dd, bars_exposed):
    """Write the METRIC_NAMES row; undefined ratios are NaN (docs/semantics.md, Metrics)."""
    nan = np.nan
    if n_ret == 0:  # an empty span (a trade window the asset does not reach)
        m[:] = nan
        for j in (M_N_TRADES, M_N_STOP, M_N_STOP + 1, M_N_STOP + 2, M_N_STOP + 3, M_N_SIGNAL,
                  M_RUINED):
            m[j] = 0.0
        return
    sqrt_ppy = math.sqrt(periods_per_year)
    m[M_TOTAL_RETURN] = final_equity / init_cash - 1.0
    ruined = tally[T_RUINED] != 0.0
    m[M_RUINED] = 1.0 if ruined else 0.0
    if ruined or final_equity <= 0.0:
        cagr = -1.0
    else:
        cagr = (final_equity / init_cash) ** (periods_per_year / n_ret) - 1.0
    m[M_CAGR] = cagr
    std = math.sqrt(m2_ret / (n_ret - 1)) if n_ret > 1 else nan
    m[M_VOLATILITY] = std * sqrt_ppy
    m[M_SHARPE] = mean_ret / std * sqrt_ppy if std > 0.0 else nan
    m[M_SORTINO] = (mean_ret / math.sqrt(downside_sq / n_ret) * sqrt_ppy if downside_sq > 0.0
                    else nan)
    m[M_MAX_DRAWDOWN] = max_dd
    m[M_CALMAR] = cagr / max_dd if max_dd > 0.0 else nan
    n_trades = tally[T_TRADES]
    m[M_N_TRADES] = n_trades
    has_trades = n_trades > 0.0
    m[M_WIN_RATE] = tally[T_WINS] / n_trades if has_trades else nan
    gross_loss = tally[T_GROSS_LOSS]
    m[M_PROFIT_FACTOR] = tally[T_GROSS_PROFIT] / gross_loss if gross_loss > 0.0 else nan
    m[M_AVG_TRADE] = tally[T_SUM_RETURN] / n_trades if has_trades else nan
    m[M_EXPOSURE] = bars_exposed / n_ret
    m[M_AVG_BARS_HELD] = tally[T_SUM_BARS] / n_trades if has_trades else nan
    for reason in range(EXIT_STOP, EXIT_TIME + 1):
        m[M_N_STOP + reason - EXIT_STOP] = tally[T_REASON + reason]
    m[M_N_SIGNAL] = tally[T_REASON + EXIT_SIGNAL]
    if m2_ret > 0.0:
        m[M_SKEW] = math.sqrt(n_ret) * m3_ret / m2_ret ** 1.5
        m[M_KURTOSIS] = n_ret * m4_ret / (m2_ret * m2_ret)
    else:
        m[M_SKEW] = nan
        m[M_KURTOSIS] = nan
    if ruined:  # returns through a bust account mean nothing
        for j in (M_VOLATILITY, M_SHARPE, M_SORTINO, M_CALMAR, M_SKEW, M_KURTOSIS):
            m[j] = nan


@njit(parallel=True, cache=True)
def sweep_metrics(
    open_, high, low, close, start, end, event_ptr, event_bar, event_code, signal_idx,
    atr_bank, atr_idx, stop_loss, take_profit, trailing_stop, stop_atr, take_atr,
    trailing_atr, max_bars, fees, fixed_fees, slippage, size, fill, direction, init_cash,
    periods_per_year, pair_lo, pair_hi, n_tasks, out,
):
    """Metrics for backtests ``pair_lo <= p < pair_hi`` of a sweep, into ``out[p - pair_lo]``.

    Pair ``p`` is combo ``p // n_assets`` on asset ``p % n_assets``. Combo ``c`` reads the
    signal events of CSR row ``signal_idx[c] * n_assets + asset`` (see kernels.signals) and
    the ATR row ``atr_bank[asset, atr_idx[c]]``. Every per-combo parameter is an array of
    length n_combos. The pairs are split over ``n_tasks`` ``prange`` tasks with per-task
    scratch buffers (no allocation per backtest); each output row has one writer.
    Task ``t`` takes pairs ``pair_lo + t``, ``pair_lo + t + n_tasks``, ...: dealt round-robin,
    so cheap and expensive regions of the grid spread evenly over the threads.
    """
    n_assets = close.shape[0]
    empty1 = np.empty(0)
    empty2 = np.empty((0, N_TRADE_FIELDS))
    for task in prange(n_tasks):
        buf = np.empty(RETURN_BLOCK)
        tally = np.empty(N_TALLY)
        for p in range(pair_lo + task, pair_hi, n_tasks):
            c = p // n_assets
            a = p - c * n_assets
            row = signal_idx[c] * n_assets + a
            ev_lo = event_ptr[row]
            ev_hi = event_ptr[row + 1]
            simulate(
                open_[a], high[a], low[a], close[a], start[a], end[a],
                event_bar[ev_lo:ev_hi], event_code[ev_lo:ev_hi], atr_bank[a, atr_idx[c]],
                stop_loss[c], take_profit[c], trailing_stop[c], stop_atr[c], take_atr[c],
                trailing_atr[c], max_bars[c], fees[c], fixed_fees[c], slippage[c], size[c],
                fill, direction, init_cash, periods_per_year, buf, tally, out[p - pair_lo],
                False, empty1, empty1, empty1, empty2,
            )


@njit(cache=True)
def backtest_record(
    open_, high, low, close, start, end, event_bar, event_code, atr,
    stop_loss, take_profit, trailing_stop, stop_atr, take_atr, trailing_atr, max_bars,
    fees, fixed_fees, slippage, size, fill, direction, init_cash, periods_per_year,
    metrics_out, equity_out, cash_out, units_out, trades_out,
):
    """One asset's backtest with every per-bar series and trade recorded; returns n_trades.

    ``trades_out`` must have room for every trade: run without recording first (through
    ``sweep_metrics``) to learn the count.
    """
    buf = np.empty(RETURN_BLOCK)
    tally = np.empty(N_TALLY)
    return simulate(
        open_, high, low, close, start, end, event_bar, event_code, atr,
        stop_loss, take_profit, trailing_stop, stop_atr, take_atr, trailing_atr, max_bars,
        fees, fixed_fees, slippage, size, fill, direction, init_cash, periods_per_year,
        buf, tally, metrics_out, True, equity_out, cash_out, units_out, trades_out,
    )


@njit(parallel=True, cache=True)
def equity_paths(
    open_, high, low, close, start, end, event_ptr, event_bar, event_code, signal_idx,
    atr_bank, atr_idx, stop_loss, take_profit, trailing_stop, stop_atr, take_atr,
    trailing_atr, max_bars, fees, fixed_fees, slippage, size, fill, direction, init_cash,
    periods_per_year, out,
):
    """Per-bar equity of every (combo, asset) pair into ``out[p]`` (NaN outside the span).

    Same arguments as ``sweep_metrics`` (all pairs); ``out`` is ``(n_pairs, n_bars)``.
    Scratch (cash, units, trades) is allocated once per task, not per backtest.
    """
    n_assets = close.shape[0]
    n_bars = close.shape[1]
    n_pairs = out.shape[0]
    n_tasks = min(n_pairs, 64)
    for task in prange(n_tasks):
        buf = np.empty(RETURN_BLOCK)
        tally = np.empty(N_TALLY)
        metrics = np.empty(N_METRICS)
        cash = np.empty(n_bars)
        units = np.empty(n_bars)
        trades = np.empty((2 * n_bars + 2, N_TRADE_FIELDS))
        for p in range(task, n_pairs, n_tasks):
            c = p // n_assets
            a = p - c * n_assets
            row = signal_idx[c] * n_assets + a
            ev_lo = event_ptr[row]
            ev_hi = event_ptr[row + 1]
            out[p, :] = np.nan
            simulate(
                open_[a], high[a], low[a], close[a], start[a], end[a],
                event_bar[ev_lo:ev_hi], event_code[ev_lo:ev_hi], atr_bank[a, atr_idx[c]],
                stop_loss[c], take_profit[c], trailing_stop[c], stop_atr[c], take_atr[c],
                trailing_atr[c], max_bars[c], fees[c], fixed_fees[c], slippage[c], size[c],
                fill, direction, init_cash, periods_per_year, buf, tally, metrics,
                True, out[p], cash, units, trades,
            )
