"""The fused simulation kernel: signal + risk rules + accounting + metric reduction.

Every backtest is one pass over one asset's bars. It never stores a per-bar series unless
asked to (``record=True`` for single backtests); sweeps reduce straight to one metrics row.
The meaning of every step is specified in docs/semantics.md.

Every function the kernels call lives in this one module, so numba's on-disk cache (which
only watches the file that defines a function) sees every edit. Two modules are compiled in
besides: the frozen signal codes of :mod:`sweepbt.kernels.codes`, and the enums and
argument types of :mod:`sweepbt.kernels.enums`, pinned here by ``ENUMS_FINGERPRINT`` (an
edit there fails the import until this file is edited too, which invalidates the cache).
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from sweepbt.kernels import enums
from sweepbt.kernels.codes import ENTER_LONG, ENTER_SHORT, EXIT_LONG, EXIT_SHORT
from sweepbt.kernels.enums import (
    N_METRICS,
    N_RANK,
    N_RULES,
    N_TALLY,
    TRADE_DTYPE,
    Bars,
    Direction,
    ExitReason,
    FillMode,
    Holdings,
    Metric,
    Outputs,
    RankRule,
    Rule,
    Scratch,
    Signals,
    SizeType,
    Tally,
    Weighting,
)

#: enums.fingerprint() of the kernels/enums.py this file is compiled against
ENUMS_FINGERPRINT = "c105b54a4050c0ec"
if enums.fingerprint() != ENUMS_FINGERPRINT:
    raise RuntimeError(
        "kernels/enums.py changed since kernels/simulate.py was last edited for it; set "
        f"ENUMS_FINGERPRINT = {enums.fingerprint()!r} in kernels/simulate.py (editing it "
        "invalidates numba's cache of the kernels compiled with the old values)")

RETURN_BLOCK = 64  # returns are reduced two-pass in blocks of this many bars, then merged
#: a spread (std of returns, downside deviation, std of trade pnl) at most NOISE x |mean|
#: is rounding noise, not dispersion: the ratio over it is NaN, as for a spread of 0
NOISE = 1e-12


class Moments(NamedTuple):
    """A group of returns: count, mean and central moment sums M2..M4."""

    n: int
    mean: float
    m2: float
    m3: float
    m4: float


class Position(NamedTuple):
    """The open position (``direction`` 0: flat); all but the last three fixed at entry."""

    direction: int  # +1 long, -1 short, 0 flat
    units: float
    entry_bar: int
    entry_price: float  # the fill, slippage included
    entry_quote: float  # the quote it filled at
    entry_cost: float  # cash a long entry pays (the base of a trade's return)
    entry_net: float  # cash a short entry receives
    stop: float  # stop and take levels (see _levels)
    take: float
    trail_frac: float  # the trailing_stop fraction (NaN = off)
    trail_offset: float  # the trailing_atr distance (NaN = off)
    time_exit: int  # the bar whose close the max_bars rule exits at (-1 = off)
    extreme: float  # peak (long) / trough (short) for the trailing stop
    exc_hi: float  # highest and lowest price the position was exposed to (MFE/MAE)
    exc_lo: float


class Bar(NamedTuple):
    """Bar ``i`` of the asset: its index and prices (scalars, so helpers take it for free:
    numba counts references to arrays passed around, even to inlined helpers)."""

    i: int
    open: float
    high: float
    low: float
    close: float


class RuleRow(NamedTuple):
    """One combo's risk and cost rules as scalars: its row of Combos.rules, fields
    RULE_COLUMNS (rates off when NaN; max_bars a whole number of bars, 0 = off)."""

    stop_loss: float
    take_profit: float
    trailing_stop: float
    stop_atr: float
    take_atr: float
    trailing_atr: float
    max_bars: float
    fees: float
    fixed_fees: float
    slippage: float
    size: float
    max_positions: float


class Closed(NamedTuple):
    """A round trip just closed (``reason`` -1: none): the position with its final path
    extremes, and its exit."""

    position: Position
    exit_bar: int
    exit_price: float  # the fill, slippage included
    exit_quote: float
    pnl: float
    reason: int  # an ExitReason value


class Ledger(NamedTuple):
    """Where a closed trade of ``asset`` is booked: always counted in ``tally``; with
    ``record`` also written to ``trades``."""

    tally: np.ndarray
    trades: np.ndarray
    record: bool
    asset: int


@njit(cache=True, inline="always")
def _flat():
    return Position(direction=0, units=0.0, entry_bar=-1, entry_price=0.0, entry_quote=0.0,
                    entry_cost=0.0, entry_net=0.0, stop=0.0, take=0.0, trail_frac=np.nan,
                    trail_offset=np.nan, time_exit=-1, extreme=0.0, exc_hi=0.0, exc_lo=0.0)


@njit(cache=True, inline="always")
def _rule_row(rules):
    """The RuleRow of a row of Combos.rules."""
    return RuleRow(stop_loss=rules[Rule.stop_loss], take_profit=rules[Rule.take_profit],
                   trailing_stop=rules[Rule.trailing_stop], stop_atr=rules[Rule.stop_atr],
                   take_atr=rules[Rule.take_atr], trailing_atr=rules[Rule.trailing_atr],
                   max_bars=rules[Rule.max_bars], fees=rules[Rule.fees],
                   fixed_fees=rules[Rule.fixed_fees], slippage=rules[Rule.slippage],
                   size=rules[Rule.size], max_positions=rules[Rule.max_positions])


@njit(cache=True, inline="always")
def _with_path(p, extreme, exc_hi, exc_lo):
    """``p`` with new path extremes (the fields that move while it is open)."""
    return Position(direction=p.direction, units=p.units, entry_bar=p.entry_bar,
                    entry_price=p.entry_price, entry_quote=p.entry_quote,
                    entry_cost=p.entry_cost, entry_net=p.entry_net, stop=p.stop, take=p.take,
                    trail_frac=p.trail_frac, trail_offset=p.trail_offset,
                    time_exit=p.time_exit, extreme=extreme, exc_hi=exc_hi, exc_lo=exc_lo)


@njit(cache=True, inline="always")
def _merge_moments(a, b):
    """Merge two groups' Moments (Chan; Pebay 2008)."""
    n, mean, m2, m3, m4 = a
    nb, mean_b, m2_b, m3_b, m4_b = b
    n_new = n + nb
    delta = mean_b - mean
    d_n = delta / n_new
    na_nb = n * nb
    m4 += (m4_b + delta * d_n ** 3 * na_nb * (n * n - na_nb + nb * nb)
           + 6.0 * d_n * d_n * (n * n * m2_b + nb * nb * m2)
           + 4.0 * d_n * (n * m3_b - nb * m3))
    m3 += m3_b + delta * d_n * d_n * na_nb * (n - nb) + 3.0 * d_n * (n * m2_b - nb * m2)
    m2 += m2_b + delta * d_n * na_nb
    return Moments(n_new, mean + d_n * nb, m2, m3, m4)


@njit(cache=True, inline="always")
def _merge_block(buf, k, mom):
    """Two-pass moments of ``buf[:k]`` (mean, then M2..M4 about it), merged into ``mom``.

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
    return _merge_moments(mom, Moments(k, b_mean, a2 + b2, a3 + b3, a4 + b4))


@njit(cache=True, inline="always")
def _merge_waiting(buf, k, mom):
    """``mom`` with the ``k`` returns waiting in ``buf`` merged in."""
    if k > 0:
        return _merge_block(buf, k, mom)
    return mom


@njit(cache=True, inline="always")
def _merge_zeros(buf, k, n_zeros, mom):
    """``mom`` with the ``k`` returns waiting in ``buf``, then ``n_zeros`` returns of
    exactly 0 (a flat stretch), merged in; the caller empties ``buf`` (k = 0)."""
    return _merge_moments(_merge_waiting(buf, k, mom), Moments(n_zeros, 0.0, 0.0, 0.0, 0.0))


@njit(cache=True, inline="always")
def _record_flat(out, lo, hi, value):
    """Recorded bars ``lo..hi-1`` flat at equity ``value`` (cash ``value``, no units)."""
    out.equity[lo:hi] = value
    out.cash[lo:hi] = value
    out.units[lo:hi] = 0.0


@njit(cache=True, inline="always")
def _flat_stretch(buf, k, mom, lo, hi, value, out, record):
    """Bars ``lo..hi-1`` flat at equity ``value``, as ``_merge_zeros`` and (with
    ``record``) ``_record_flat``: ``(mom, returns left in buf)``."""
    if hi <= lo:
        return mom, k
    if record:
        _record_flat(out, lo, hi, value)
    return _merge_zeros(buf, k, hi - lo, mom), 0


@njit(cache=True, inline="always")
def _drawdown(equity, peak, max_dd):
    """(peak equity, max drawdown) after a bar closing at ``equity``."""
    if equity > peak:
        return equity, max_dd
    if equity < peak * (1.0 - max_dd):
        return peak, 1.0 - equity / peak
    return peak, max_dd


@njit(cache=True, inline="always")
def _honoured(code, direction):
    """The bits of a signal code that ``direction`` acts on.

    The entry and exit bits of one side cancel each other (a conflicting code says nothing
    about that side), as vectorbt's default ``upon_long_conflict="ignore"`` does.
    """
    if direction == Direction.long:
        code &= ENTER_LONG | EXIT_LONG
    elif direction == Direction.short:
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
def _idle(p, pending):
    """Flat, with no next_open order pending: nothing can happen before the next signal
    that opens a position."""
    return p.direction == 0 and pending == 0


@njit(cache=True, inline="always")
def _passed_over(bar, code, i, direction):
    """Whether an idle backtest at bar ``i`` passes over the signal event (``bar``,
    ``code``): it comes before bar ``i`` (signals before the span never act), or it cannot
    open a position."""
    return bar < i or not _opens(code, direction)


@njit(cache=True, inline="always")
def _levels(pos, entry_price, atr_at_entry, rule):
    """Stop and take levels fixed at entry: the tighter of the percent and ATR rules.

    Rules are off when NaN; ATR rules also when the ATR is undefined at entry (NaN).
    Returns (stop, take) with -inf/+inf (long) or +inf/-inf (short) meaning none.
    """
    stop_loss = rule.stop_loss
    take_profit = rule.take_profit
    stop_atr = rule.stop_atr
    take_atr = rule.take_atr
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
def _exposed(p, i, next_open):
    """Whether open position ``p`` held through bar ``i``'s range: it was open before the
    bar, or filled at its open (next_open); an entry at the close of ``i`` was not."""
    return next_open or p.entry_bar < i


@njit(cache=True, inline="always")
def _levels_hit(p, o, h, lo):
    """Stop / trailing / take-profit check of open position ``p`` within a bar of open
    ``o``, high ``h``, low ``lo``: (quote, reason, at_open), reason -1 when none fires.

    ``p.stop``/``p.take`` were fixed at entry; the trailing level follows ``p.extreme``
    (peak or trough) by the fraction ``p.trail_frac`` and/or the distance
    ``p.trail_offset`` (NaN = off), the tighter applying. The open is checked first (gaps
    fill at the open), then the stop, then the take.
    """
    stop_level = p.stop
    take_level = p.take
    extreme = p.extreme
    reason_stop = ExitReason.stop
    if p.direction > 0:
        trail = -np.inf
        if p.trail_frac == p.trail_frac:
            trail = extreme * (1.0 - p.trail_frac)
        if p.trail_offset == p.trail_offset:
            trail = max(trail, extreme - p.trail_offset)
        if trail > stop_level:
            stop_level = trail
            reason_stop = ExitReason.trail
        if o <= stop_level:
            return o, reason_stop, True
        if o >= take_level:
            return o, ExitReason.take, True
        if lo <= stop_level:
            return stop_level, reason_stop, False
        if h >= take_level:
            return take_level, ExitReason.take, False
    else:
        trail = np.inf
        if p.trail_frac == p.trail_frac:
            trail = extreme * (1.0 + p.trail_frac)
        if p.trail_offset == p.trail_offset:
            trail = min(trail, extreme + p.trail_offset)
        if trail < stop_level:
            stop_level = trail
            reason_stop = ExitReason.trail
        if o >= stop_level:
            return o, reason_stop, True
        if o <= take_level:
            return o, ExitReason.take, True
        if h >= stop_level:
            return stop_level, reason_stop, False
        if lo <= take_level:
            return take_level, ExitReason.take, False
    return 0.0, -1, False


@njit(cache=True, inline="always")
def _rule_exit(p, bar, next_open):
    """The risk rules of position ``p`` within ``bar`` (if it held through it), then the
    time exit at its close: (quote, reason, at_open, position held on): reason -1 when
    none fires, and then the position's trailing peak (long) or trough (short) has taken
    in the bar."""
    if p.direction == 0 or not _exposed(p, bar.i, next_open):
        return 0.0, -1, False, p
    quote, reason, at_open = _levels_hit(p, bar.open, bar.high, bar.low)
    if reason < 0 and bar.i == p.time_exit:
        return bar.close, ExitReason.time, False, p
    extreme = max(p.extreme, bar.high) if p.direction > 0 else min(p.extreme, bar.low)
    return quote, reason, at_open, _with_path(p, extreme, p.exc_hi, p.exc_lo)


@njit(cache=True, inline="always")
def _closed(p, exit_bar, exit_price, exit_quote, pnl, reason):
    return Closed(position=p, exit_bar=exit_bar, exit_price=exit_price,
                  exit_quote=exit_quote, pnl=pnl, reason=reason)


@njit(cache=True, inline="always")
def _none_closed():
    return _closed(_flat(), -1, 0.0, 0.0, 0.0, -1)


@njit(cache=True, _nrt=False)
def _book_trade(ledger, t):
    """Count the Closed round trip ``t`` in the tally; with ``record`` also write its trade
    record.

    MFE/MAE are non-negative fractions of the entry price, from the highest high
    (``exc_hi``) and lowest low (``exc_lo``) the position was exposed to.
    """
    tally = ledger.tally
    p = t.position
    pnl = t.pnl
    ret = pnl / p.entry_cost
    if ledger.record:
        row = ledger.trades[int(tally[Tally.trades])]
        row["direction"] = p.direction
        row["entry_bar"] = p.entry_bar
        row["exit_bar"] = t.exit_bar
        row["entry_price"] = p.entry_price
        row["exit_price"] = t.exit_price
        row["entry_quote"] = p.entry_quote
        row["exit_quote"] = t.exit_quote
        row["units"] = p.units
        row["pnl"] = pnl
        row["return"] = ret
        row["exit_reason"] = t.reason
        up = max(0.0, p.exc_hi / p.entry_price - 1.0)
        down = max(0.0, 1.0 - p.exc_lo / p.entry_price)
        row["mfe"] = up if p.direction > 0 else down
        row["mae"] = down if p.direction > 0 else up
        row["asset"] = ledger.asset
    n = tally[Tally.trades] + 1.0
    first = n == 1.0
    tally[Tally.best_return] = ret if first else max(tally[Tally.best_return], ret)
    tally[Tally.worst_return] = ret if first else min(tally[Tally.worst_return], ret)
    delta = pnl - tally[Tally.pnl_mean]
    tally[Tally.pnl_mean] += delta / n
    tally[Tally.pnl_m2] += delta * (pnl - tally[Tally.pnl_mean])
    tally[Tally.trades] = n
    if pnl > 0.0:
        tally[Tally.wins] += 1.0
        tally[Tally.gross_profit] += pnl
    elif pnl < 0.0:
        tally[Tally.gross_loss] -= pnl
    tally[Tally.sum_return] += ret
    tally[Tally.sum_bars] += t.exit_bar - p.entry_bar
    tally[Tally.reason + t.reason] += 1.0


@njit(cache=True, _nrt=False)
def _book_mark(ledger, p, bar, c, reason):
    """Book position ``p``, if open, marked at the close ``c`` of ``bar`` with no exit
    costs (the end of the data, or ruin); returns the flat position."""
    if p.direction != 0:
        pnl = p.units * c - p.entry_cost if p.direction > 0 else p.entry_net - p.units * c
        # the mark is part of the path, even for an entry at it
        _book_trade(ledger, _closed(_with_path(p, p.extreme, max(p.exc_hi, c),
                                               min(p.exc_lo, c)), bar, c, c, pnl, reason))
    return _flat()


@njit(cache=True, _nrt=False)
def _exit(p, bar, quote, reason, at_open, rule):
    """Close position ``p`` at ``quote`` on ``bar`` (at its open: ``at_open``):
    ``(cash change, Closed)``."""
    if at_open:
        exc_hi = max(p.exc_hi, bar.open)
        exc_lo = min(p.exc_lo, bar.open)
    else:
        exc_hi = max(p.exc_hi, bar.high)
        exc_lo = min(p.exc_lo, bar.low)
    fees = rule.fees
    fixed_fees = rule.fixed_fees
    slippage = rule.slippage
    if p.direction > 0:  # a sale: its costs take at most its notional
        price = quote * (1.0 - slippage)
        cash_change = max(p.units * price * (1.0 - fees) - fixed_fees, 0.0)
        pnl = cash_change - p.entry_cost
    else:
        price = quote * (1.0 + slippage)
        cash_change = -(p.units * price * (1.0 + fees) + fixed_fees)
        pnl = p.entry_net + cash_change
    return cash_change, _closed(_with_path(p, p.extreme, exc_hi, exc_lo), bar.i, price, quote,
                                pnl, reason)


@njit(cache=True, _nrt=False)
def _entry(open_dir, i, quote, atr_at_signal, cash, rule):
    """Open a position on bar ``i`` at ``quote``: ``(position, cash change)``, its levels
    fixed at entry (see ``_levels``); the ATR-scaled rules use ``atr_at_signal``.

    The position is flat when ``size * cash - fixed_fees <= 0`` (the entry is skipped).
    """
    fees = rule.fees
    fixed_fees = rule.fixed_fees
    slippage = rule.slippage
    budget = rule.size * cash - fixed_fees
    if budget <= 0.0:
        return _flat(), 0.0
    price = quote * (1.0 + slippage) if open_dir > 0 else quote * (1.0 - slippage)
    units = budget / (price * (1.0 + fees))
    entry_cost = units * price * (1.0 + fees) + fixed_fees
    entry_net = max(units * price * (1.0 - fees) - fixed_fees, 0.0)  # a sale's proceeds
    stop, take = _levels(open_dir, price, atr_at_signal, rule)
    max_bars = int(rule.max_bars)
    p = Position(direction=open_dir, units=units, entry_bar=i, entry_price=price,
                 entry_quote=quote, entry_cost=entry_cost, entry_net=entry_net, stop=stop,
                 take=take, trail_frac=rule.trailing_stop,
                 trail_offset=rule.trailing_atr * atr_at_signal,
                 time_exit=i + max_bars if max_bars > 0 else -1, extreme=price,
                 exc_hi=price, exc_lo=price)
    return p, (-entry_cost if open_dir > 0 else entry_net)


@njit(cache=True, inline="always")
def _act(p, cash, code, at_open, may_open, bar, atr_at_signal, direction, rule):
    """Carry out signal ``code`` on ``bar``, at its open (``at_open``: a next_open order)
    or at its close: ``(position, cash, Closed)`` (the Closed's reason is -1 when nothing
    closed). ``may_open`` False: close only. An entry sizes its ATR rules by
    ``atr_at_signal``.
    """
    close_now, open_dir = _orders(code, direction, p.direction)
    quote = bar.open if at_open else bar.close
    closed = _none_closed()
    if close_now:
        cash_change, closed = _exit(p, bar, quote, ExitReason.signal, at_open, rule)
        cash += cash_change
        p = _flat()
    if open_dir != 0 and may_open:
        q, cash_change = _entry(open_dir, bar.i, quote, atr_at_signal, cash, rule)
        if q.units > 0.0:
            cash += cash_change
            p = q
    return p, cash, closed


@njit(cache=True, inline="always")
def _at_close(p, cash, code, may_open, bar, atr_at_signal, end, settings, rule):
    """The strategy's signal ``code`` at the close of ``bar``: ``(position, cash, Closed,
    pending order)``. With next_open fills it waits for the next bar's open (none after
    the last bar of the span); at the close it acts now (``_act``)."""
    if settings.fill == FillMode.next_open:
        return p, cash, _none_closed(), (code if bar.i + 1 < end else 0)
    p, cash, closed = _act(p, cash, code, False, may_open, bar, atr_at_signal,
                           settings.direction, rule)
    return p, cash, closed, 0


@njit(cache=True, inline="always")
def _mark(p, cash, bar, record, next_open):
    """Equity at the close of ``bar``, and the position: with ``record`` its price
    extremes (MFE/MAE) take in the bar's range when it held through it."""
    if p.direction == 0:
        return cash, p
    if record and _exposed(p, bar.i, next_open):
        p = _with_path(p, p.extreme, max(p.exc_hi, bar.high), min(p.exc_lo, bar.low))
    return cash + p.direction * p.units * bar.close, p


@njit(cache=True, _nrt=False)
def simulate_asset(bars, signals, rules, settings, scratch, out, record):
    """Run one backtest of one asset over bars ``bars.start <= i < bars.end``; return its
    trade count.

    ``bars`` holds the asset's price rows and its ATR row for the ATR-scaled rules
    (``stop_atr``, ``take_atr``, ``trailing_atr``: multiples of the ATR at the signal bar of
    the entry); ``signals`` the strategy's events (increasing bars, codes of
    :mod:`sweepbt.kernels.codes`, judged at the close); ``rules`` the combo's row of risk
    and cost rules (RULE_COLUMNS; off when NaN, ``max_bars`` when 0); ``scratch`` is owned
    by the caller's thread. Writes N_METRICS values (METRIC_NAMES order) to
    ``out.metrics``. With ``record`` it also writes per-bar ``out.equity``, ``out.cash``,
    ``out.units`` (signed) and one TRADE_DTYPE record per trade to ``out.trades``.

    While flat with no order pending, equity is constant and every return is exactly 0, so
    the loop jumps straight to the next signal that can open a position, folding the skipped
    bars into the statistics as one block of zero returns.

    Compiled with ``_nrt=False`` (no reference counting: the loop allocates nothing).
    numba counts references to every array handed to a helper, inlined or not, and to
    every array kept in a local variable (an atomic increment and decrement each, worse
    when threads share the array): the loop reads ``bars.open[i]`` and the like in place,
    and per bar and per signal calls only helpers of scalars (Position, Bar, RuleRow,
    Closed); arrays go only to the helpers that book a closed trade or merge a block of
    returns.
    """
    ledger = Ledger(scratch.tally, out.trades, record, bars.asset)
    ledger.tally[:] = 0.0
    direction = settings.direction
    next_open = settings.fill == FillMode.next_open
    rule = _rule_row(rules)
    end = bars.end
    n_events = signals.bar.shape[0]

    cash = settings.init_cash
    p = _flat()
    pending = 0  # next_open: the signal waiting for the next bar's open
    bars_exposed = 0
    k = 0  # returns waiting in scratch.buf
    mom = Moments(0, 0.0, 0.0, 0.0, 0.0)
    downside_sq = 0.0
    prev_equity = peak_equity = settings.init_cash
    max_dd = 0.0

    e = 0  # the next signal event
    i = bars.start
    while i < end:
        if _idle(p, pending):
            # flat: skip to the close of the next bar whose signal opens a position
            while e < n_events and _passed_over(signals.bar[e], signals.code[e], i,
                                                direction):
                e += 1
            j = min(signals.bar[e], end) if e < n_events else end
            if j > i:
                # bars i..j-1: equity == cash, returns exactly 0, drawdown unchanged
                mom = _merge_zeros(scratch.buf, k, j - i, mom)
                k = 0
                if record:
                    _record_flat(out, i, j, cash)
                i = j
                if i == end:
                    break
        bar = Bar(i=i, open=bars.open[i], high=bars.high[i], low=bars.low[i],
                  close=bars.close[i])

        # 1. next_open: the order left by the previous close fills at this open; an entry's
        # ATR rules use the ATR of the signal bar, the last close known now
        if pending != 0:
            p, cash, closed = _act(p, cash, pending, True, True, bar, bars.atr[i - 1],
                                   direction, rule)
            pending = 0
            if closed.reason >= 0:
                _book_trade(ledger, closed)

        # 2. risk rules, then the time exit at the close
        quote, reason, at_open, held = _rule_exit(p, bar, next_open)
        ruled_out = reason >= 0  # no entry at this close after a rule exit
        if ruled_out:
            cash_change, closed = _exit(p, bar, quote, reason, at_open, rule)
            cash += cash_change
            _book_trade(ledger, closed)
            p = _flat()
        else:
            p = held

        # 3. the strategy's signal at the close
        if e < n_events and signals.bar[e] == i:
            p, cash, closed, pending = _at_close(p, cash, signals.code[e], not ruled_out, bar,
                                                 bars.atr[i], end, settings, rule)
            e += 1
            if closed.reason >= 0:
                _book_trade(ledger, closed)

        # 4. mark to market at the close, and fold the bar's return into the statistics
        equity, p = _mark(p, cash, bar, record, next_open)
        bars_exposed += p.direction != 0  # a position open at the close
        r = equity / prev_equity - 1.0
        prev_equity = equity
        scratch.buf[k] = r
        k += 1
        if k == RETURN_BLOCK:
            mom = _merge_block(scratch.buf, k, mom)
            k = 0
        if r < 0.0:
            downside_sq += r * r
        peak_equity, max_dd = _drawdown(equity, peak_equity, max_dd)
        if record:
            out.equity[i] = equity
            out.cash[i] = cash
            out.units[i] = p.direction * p.units
        if equity <= 0.0:
            # ruin: the position is closed at this close like an end-of-data mark; the
            # account stays flat at this equity for the rest of the span (zero returns)
            ledger.tally[Tally.ruined] = 1.0
            p = _book_mark(ledger, p, i, bar.close, ExitReason.ruin)
            mom, k = _flat_stretch(scratch.buf, k, mom, i + 1, end, equity, out, record)
            break
        i += 1

    mom = _merge_waiting(scratch.buf, k, mom)
    # a position still open at the end is marked at the last close, with no exit costs
    if p.direction != 0:
        _book_mark(ledger, p, end - 1, bars.close[end - 1], ExitReason.end)
    _finish_metrics(out.metrics, ledger.tally, settings, prev_equity, mom, downside_sq,
                    max_dd, bars_exposed)
    return int(ledger.tally[Tally.trades])


@njit(cache=True, inline="always")
def _trade_stats(m, tally, n_trades):
    """Write best_trade, worst_trade, expectancy and sqn from the tally (NaN without trades;
    sqn also with fewer than two trades or a pnl spread of at most NOISE x |mean pnl|)."""
    nan = np.nan
    has_trades = n_trades > 0.0
    m[Metric.best_trade] = tally[Tally.best_return] if has_trades else nan
    m[Metric.worst_trade] = tally[Tally.worst_return] if has_trades else nan
    m[Metric.expectancy] = tally[Tally.pnl_mean] if has_trades else nan
    spread = math.sqrt(tally[Tally.pnl_m2] / (n_trades - 1.0)) if n_trades > 1.0 else 0.0
    mean_pnl = tally[Tally.pnl_mean]
    m[Metric.sqn] = (math.sqrt(n_trades) * mean_pnl / spread
                     if spread > NOISE * abs(mean_pnl) else nan)


@njit(cache=True, _nrt=False)
def _finish_metrics(m, tally, settings, final_equity, mom, downside_sq, max_dd,
                    bars_exposed):
    """Write the METRIC_NAMES row; undefined ratios are NaN (docs/semantics.md, Metrics)."""
    nan = np.nan
    n_ret, mean_ret, m2_ret, m3_ret, m4_ret = mom
    m[Metric.turnover] = nan  # a rank backtest writes its own after this
    if n_ret == 0:  # an empty span (a trade window the asset does not reach)
        m[:] = nan
        for j in (Metric.n_trades, Metric.n_stop, Metric.n_take, Metric.n_trail,
                  Metric.n_time, Metric.n_signal, Metric.ruined):
            m[j] = 0.0
        return
    init_cash = settings.init_cash
    periods_per_year = settings.periods_per_year
    sqrt_ppy = math.sqrt(periods_per_year)
    m[Metric.total_return] = final_equity / init_cash - 1.0
    ruined = tally[Tally.ruined] != 0.0
    m[Metric.ruined] = 1.0 if ruined else 0.0
    if ruined or final_equity <= 0.0:
        cagr = -1.0
    else:
        cagr = (final_equity / init_cash) ** (periods_per_year / n_ret) - 1.0
        if cagr == math.inf:  # a huge gain annualized over a short span: beyond float64
            cagr = nan
    m[Metric.cagr] = cagr
    std = math.sqrt(m2_ret / (n_ret - 1)) if n_ret > 1 else nan
    m[Metric.volatility] = std * sqrt_ppy
    m[Metric.sharpe] = mean_ret / std * sqrt_ppy if std > NOISE * abs(mean_ret) else nan
    downside = math.sqrt(downside_sq / n_ret)
    m[Metric.sortino] = (mean_ret / downside * sqrt_ppy
                         if downside > NOISE * abs(mean_ret) else nan)
    m[Metric.max_drawdown] = max_dd
    m[Metric.calmar] = cagr / max_dd if max_dd > 0.0 else nan
    n_trades = tally[Tally.trades]
    m[Metric.n_trades] = n_trades
    has_trades = n_trades > 0.0
    m[Metric.win_rate] = tally[Tally.wins] / n_trades if has_trades else nan
    gross_loss = tally[Tally.gross_loss]
    m[Metric.profit_factor] = (tally[Tally.gross_profit] / gross_loss if gross_loss > 0.0
                               else nan)
    m[Metric.avg_trade] = tally[Tally.sum_return] / n_trades if has_trades else nan
    m[Metric.exposure] = bars_exposed / n_ret
    m[Metric.avg_bars_held] = tally[Tally.sum_bars] / n_trades if has_trades else nan
    for reason in range(ExitReason.stop, ExitReason.time + 1):
        m[Metric.n_stop + reason - ExitReason.stop] = tally[Tally.reason + reason]
    m[Metric.n_signal] = tally[Tally.reason + ExitReason.signal]
    _trade_stats(m, tally, n_trades)
    if m2_ret > 0.0:
        m[Metric.skew] = math.sqrt(n_ret) * m3_ret / m2_ret ** 1.5
        m[Metric.kurtosis] = n_ret * m4_ret / (m2_ret * m2_ret)
    else:
        m[Metric.skew] = nan
        m[Metric.kurtosis] = nan
    if ruined:  # returns through a bust account mean nothing
        for j in (Metric.volatility, Metric.sharpe, Metric.sortino, Metric.calmar,
                  Metric.skew, Metric.kurtosis):
            m[j] = nan


@njit(cache=True, inline="always")
def _check_launch(market, atr_bank, combos, n_pairs):
    """The shapes the grid kernels rely on (they do not bounds-check)."""
    n_combos = combos.rules.shape[0]
    if combos.rules.shape[1] != N_RULES:
        raise ValueError("combos.rules must have N_RULES columns (RULE_COLUMNS)")
    if combos.signal_idx.shape[0] != n_combos or combos.atr_idx.shape[0] != n_combos:
        raise ValueError("combos.signal_idx, atr_idx and rules must have one row per combo")
    if n_pairs > n_combos * market.close.shape[0] or atr_bank.shape[0] != market.close.shape[0]:
        raise ValueError("more (combo, asset) pairs than combos x assets, or an ATR bank "
                         "for another number of assets")


@njit(cache=True, inline="always")
def _run_pair(market, events, atr_bank, combos, settings, pair, scratch, out, record):
    """Backtest ``pair`` of a launch: combo ``pair // n_assets`` on asset
    ``pair % n_assets`` (see ``sweep_metrics``)."""
    n_assets = market.close.shape[0]
    c = pair // n_assets
    a = pair - c * n_assets
    row = combos.signal_idx[c] * n_assets + a
    ev_lo = events.ptr[row]
    ev_hi = events.ptr[row + 1]
    bars = Bars(open=market.open[a], high=market.high[a], low=market.low[a],
                close=market.close[a], atr=atr_bank[a, combos.atr_idx[c]],
                start=market.start[a], end=market.end[a], asset=a)
    signals = Signals(bar=events.bar[ev_lo:ev_hi], code=events.code[ev_lo:ev_hi])
    return simulate_asset(bars, signals, combos.rules[c], settings, scratch, out, record)


@njit(cache=True, inline="always")
def _scratch():
    return Scratch(buf=np.empty(RETURN_BLOCK), tally=np.empty(N_TALLY))


@njit(parallel=True, cache=True)
def sweep_metrics(market, events, atr_bank, combos, settings, n_tasks, out):
    """Metrics of every (combo, asset) pair of a launch into ``out`` ``(n_pairs,
    N_METRICS)``.

    Pair ``p`` is combo ``p // n_assets`` on asset ``p % n_assets``: it reads the signal
    events of CSR row ``combos.signal_idx[c] * n_assets + asset``, the ATR row
    ``atr_bank[asset, combos.atr_idx[c]]`` and the rules row ``combos.rules[c]``. The pairs
    are split over ``n_tasks`` ``prange`` tasks with per-task scratch buffers (no
    allocation per backtest); each output row has one writer. Task ``t`` takes pairs
    ``t``, ``t + n_tasks``, ...: dealt round-robin, so cheap and expensive regions of the
    grid spread evenly over the threads.
    """
    n_pairs = out.shape[0]
    _check_launch(market, atr_bank, combos, n_pairs)
    empty = np.empty(0)
    no_trades = np.empty(0, TRADE_DTYPE)
    for task in prange(n_tasks):
        scratch = _scratch()
        for p in range(task, n_pairs, n_tasks):
            _run_pair(market, events, atr_bank, combos, settings, p, scratch,
                      Outputs(metrics=out[p], equity=empty, cash=empty, units=empty,
                              trades=no_trades), False)


@njit(cache=True)
def backtest_record(market, events, atr_bank, combos, settings, pair, out):
    """Backtest ``pair`` (as in ``sweep_metrics``) with every per-bar series and trade
    recorded into ``out`` (Outputs); returns its trade count.

    ``out.trades`` must have room for every trade: run without recording first (through
    ``sweep_metrics``) to learn the count.
    """
    if pair < 0:
        raise ValueError("pair must be >= 0")
    _check_launch(market, atr_bank, combos, pair + 1)
    return _run_pair(market, events, atr_bank, combos, settings, pair, _scratch(), out, True)


@njit(parallel=True, cache=True)
def equity_paths(market, events, atr_bank, combos, settings, out):
    """Per-bar equity of every (combo, asset) pair into ``out[p]`` (NaN outside the span).

    Pairs as in ``sweep_metrics``; ``out`` is ``(n_pairs, n_bars)``. Scratch (cash, units,
    trades) is allocated once per task, not per backtest.
    """
    n_bars = market.close.shape[1]
    n_pairs = out.shape[0]
    _check_launch(market, atr_bank, combos, n_pairs)
    n_tasks = min(n_pairs, 64)
    for task in prange(n_tasks):
        scratch = _scratch()
        metrics = np.empty(N_METRICS)
        cash = np.empty(n_bars)
        units = np.empty(n_bars)
        trades = np.empty(2 * n_bars + 2, TRADE_DTYPE)
        for p in range(task, n_pairs, n_tasks):
            out[p, :] = np.nan
            _run_pair(market, events, atr_bank, combos, settings, p, scratch,
                      Outputs(metrics=metrics, equity=out[p], cash=cash, units=units,
                              trades=trades), True)


# ----------------------------------------------------------------------------------------
# portfolio backtests: every asset of the Bundle, one cash balance (docs/semantics.md,
# Portfolio backtests)

#: a Position stored as a row of floats in Book.positions (ints are exact below 2**53)
N_POSITION = len(Position._fields)
#: a portfolio entry whose budget after fixed fees is at most DUST x equity is skipped
DUST = 1e-9
#: Book.due of an asset whose signal events are all read
NO_EVENT = np.iinfo(np.int64).max
#: what a held position's rules need on a bar without a signal (``_held_rules``)
HELD_NO_RULE, HELD_FIXED, HELD_MOVING = 0, 1, 2


class Book(NamedTuple):
    """One thread's scratch for portfolio backtests (n = n_assets): ``positions[a]`` asset
    a's open Position as floats (direction 0: flat); ``orders[a]`` its signal code waiting
    for the next open (next_open) or for this close's entries (close), 0 = none;
    ``cursor[a]`` its next signal event, ``cursor_end[a]`` the end of its CSR row and
    ``due[a]`` the bar of the event at its cursor (NO_EVENT past the end: one load tells
    the loop over assets that nothing is due); ``ruled[a]`` the last bar a risk rule closed
    it; ``buf`` and ``tally`` as in Scratch."""

    positions: np.ndarray  # (n, N_POSITION) float64
    orders: np.ndarray  # (n,) int64
    cursor: np.ndarray  # (n,) int64
    cursor_end: np.ndarray  # (n,) int64
    due: np.ndarray  # (n,) int64
    ruled: np.ndarray  # (n,) int64
    buf: np.ndarray
    tally: np.ndarray


class Fund(NamedTuple):
    """The account during one fill time of a portfolio bar: ``cash``, ``equity`` and
    ``gross`` exposure (sum of |units| * quote) at that fill time's quotes, and the number
    of open positions."""

    cash: float
    equity: float
    gross: float
    n_open: int


@njit(cache=True, inline="always")
def _load(positions, a):
    """Asset ``a``'s Position from its row of ``positions`` (read in place: a row view
    would count a reference per call)."""
    return Position(direction=int(positions[a, 0]), units=positions[a, 1],
                    entry_bar=int(positions[a, 2]), entry_price=positions[a, 3],
                    entry_quote=positions[a, 4], entry_cost=positions[a, 5],
                    entry_net=positions[a, 6], stop=positions[a, 7], take=positions[a, 8],
                    trail_frac=positions[a, 9], trail_offset=positions[a, 10],
                    time_exit=int(positions[a, 11]), extreme=positions[a, 12],
                    exc_hi=positions[a, 13], exc_lo=positions[a, 14])


@njit(cache=True, inline="always")
def _store(positions, a, p):
    """Write Position ``p`` to asset ``a``'s row of ``positions``."""
    positions[a, 0] = p.direction
    positions[a, 1] = p.units
    positions[a, 2] = p.entry_bar
    positions[a, 3] = p.entry_price
    positions[a, 4] = p.entry_quote
    positions[a, 5] = p.entry_cost
    positions[a, 6] = p.entry_net
    positions[a, 7] = p.stop
    positions[a, 8] = p.take
    positions[a, 9] = p.trail_frac
    positions[a, 10] = p.trail_offset
    positions[a, 11] = p.time_exit
    positions[a, 12] = p.extreme
    positions[a, 13] = p.exc_hi
    positions[a, 14] = p.exc_lo


@njit(cache=True, inline="always")
def _unit_sized(rule):
    """``rule`` with ``size`` 1: ``_entry`` then spends exactly the cash it is given."""
    return RuleRow(stop_loss=rule.stop_loss, take_profit=rule.take_profit,
                   trailing_stop=rule.trailing_stop, stop_atr=rule.stop_atr,
                   take_atr=rule.take_atr, trailing_atr=rule.trailing_atr,
                   max_bars=rule.max_bars, fees=rule.fees, fixed_fees=rule.fixed_fees,
                   slippage=rule.slippage, size=1.0, max_positions=rule.max_positions)


@njit(cache=True, inline="always")
def _bar_of(market, a, i):
    return Bar(i=i, open=market.open[a, i], high=market.high[a, i], low=market.low[a, i],
               close=market.close[a, i])


@njit(cache=True, inline="always")
def _book_closed(book, out, record, a, closed):
    """Book asset ``a``'s closed round trip; mark it flat in ``book``."""
    _book_trade(Ledger(book.tally, out.trades, record, a), closed)
    book.positions[a, 0] = 0.0


@njit(cache=True, inline="always")
def _book_marked(book, out, record, a, i, c, reason):
    """Book asset ``a``'s open position marked at close ``c`` of bar ``i`` with no exit
    costs (the end of the data, or ruin)."""
    _book_mark(Ledger(book.tally, out.trades, record, a), _load(book.positions, a), i, c,
               reason)
    book.positions[a, 0] = 0.0


@njit(cache=True, inline="always")
def _record_flat_book(out, lo, hi, value):
    """Recorded portfolio bars ``lo..hi-1`` flat at equity ``value``."""
    out.equity[lo:hi] = value
    out.cash[lo:hi] = value
    out.units[:, lo:hi] = 0.0


@njit(cache=True, inline="always")
def _next_opening_bar(events, book, market, i, stop, direction):
    """The first bar ``>= i`` (at most ``stop``) with a signal that can open a position in
    its asset's span; every asset's cursor moves past the events before it (a flat book
    with no order waiting passes over them)."""
    j = stop
    for a in range(book.cursor.shape[0]):
        e = book.cursor[a]
        hi = book.cursor_end[a]
        lo = max(i, market.start[a])
        while e < hi and (events.bar[e] < lo or not _opens(events.code[e], direction)):
            e += 1
        book.cursor[a] = e
        book.due[a] = events.bar[e] if e < hi else NO_EVENT
        if e < hi and events.bar[e] < min(j, market.end[a]):
            j = events.bar[e]
    return j


@njit(cache=True, inline="always")
def _valued(market, book, i, at_open, cash, n_open):
    """The Fund at bar ``i``'s open (``at_open``) or close quotes."""
    equity = cash
    gross = 0.0
    positions = book.positions
    for a in range(positions.shape[0]):
        d = positions[a, 0]
        if d != 0.0:
            quote = market.open[a, i] if at_open else market.close[a, i]
            equity += d * positions[a, 1] * quote
            gross += positions[a, 1] * quote
    return Fund(cash=cash, equity=equity, gross=gross, n_open=n_open)


@njit(cache=True, inline="always")
def _open_position(fund, open_dir, a, bar, at_open, atr_at_signal, sizing, rule, settings):
    """One entry of a fill time, sized from ``sizing`` (E, the equity after the fill
    time's exits) and capped by ``fund``'s equity minus gross exposure: ``(position,
    Fund)``; the position is flat when the entry is skipped (max_positions reached, or a
    budget after fixed fees of at most DUST * E: once the cash is spent, equity minus
    gross exposure is zero only up to rounding, and that residue opens nothing)."""
    cap = int(rule.max_positions)
    if cap > 0 and fund.n_open >= cap:
        return _flat(), fund
    target = rule.size * sizing if settings.size_type == SizeType.equity else rule.size
    budget = min(target, fund.equity - fund.gross)
    if budget - rule.fixed_fees <= DUST * max(sizing, 0.0):
        return _flat(), fund  # nothing left to spend but rounding residue
    quote = bar.open if at_open else bar.close
    p, cash_change = _entry(open_dir, bar.i, quote, atr_at_signal, budget, _unit_sized(rule))
    if p.units > 0.0:
        return p, Fund(cash=fund.cash + cash_change,
                       equity=fund.equity + cash_change + open_dir * p.units * quote,
                       gross=fund.gross + p.units * quote, n_open=fund.n_open + 1)
    return _flat(), fund


@njit(cache=True, inline="always")
def _fill_entries(market, atr, book, i, at_open, fund, rule, settings, axis_end):
    """The entries of the orders waiting in ``book.orders`` at bar ``i``'s open or close,
    in asset order, each sized from the same equity; clears the orders. Returns the Fund."""
    sizing = fund.equity
    direction = settings.direction
    for a in range(book.orders.shape[0]):
        code = book.orders[a]
        if code == 0:
            continue
        book.orders[a] = 0
        if book.positions[a, 0] != 0.0 or book.ruled[a] == i:
            continue
        if not at_open and i == market.end[a] - 1 and market.end[a] < axis_end:
            continue  # delisted at this close: an entry now would close at once
        _, open_dir = _orders(code, direction, 0)
        if open_dir == 0:
            continue
        p, fund = _open_position(fund, open_dir, a, _bar_of(market, a, i), at_open,
                                 atr[a, i - 1] if at_open else atr[a, i], sizing, rule,
                                 settings)
        if p.direction != 0:
            _store(book.positions, a, p)
    return fund


@njit(cache=True, inline="always")
def _fill_open_exits(market, book, out, record, i, cash, n_open, rule, direction):
    """next_open: the exits of the orders queued at the last close, at bar ``i``'s open
    (asset order): ``(cash, open positions)``."""
    for a in range(book.orders.shape[0]):
        code = book.orders[a]
        if code == 0 or book.positions[a, 0] == 0.0:
            continue
        p = _load(book.positions, a)
        close_now, _ = _orders(code, direction, p.direction)
        if close_now:
            cash_change, closed = _exit(p, _bar_of(market, a, i), market.open[a, i],
                                        ExitReason.signal, True, rule)
            cash += cash_change
            _book_closed(book, out, record, a, closed)
            n_open -= 1
    return cash, n_open


@njit(cache=True, inline="always")
def _inside(positions, a, i, low, high):
    """Whether asset ``a``'s open position, its stop and take fixed at entry, held through
    bar ``i`` (range ``low..high``, which holds the open) with neither level touched and
    no time exit at this bar (see ``_levels_hit``: a long fires at ``low <= stop`` or
    ``high >= take``, a short at ``high >= stop`` or ``low <= take``)."""
    stop, take = positions[a, 7], positions[a, 8]
    if positions[a, 11] == i:
        return False
    if positions[a, 0] > 0.0:
        return low > stop and high < take
    return high < stop and low > take


@njit(cache=True, inline="always")
def _signal_at(bars, codes, cursor, cursor_end, due, a, i):
    """Asset ``a``'s signal code at the close of bar ``i`` (0: none); moves its cursor
    and ``due`` (``bars``, ``codes``: the Events arrays)."""
    if due[a] > i:
        return 0
    e = cursor[a]
    hi = cursor_end[a]
    while e < hi and bars[e] < i:
        e += 1
    code = 0
    if e < hi and bars[e] == i:
        code = codes[e]
        e += 1
    cursor[a] = e
    due[a] = bars[e] if e < hi else NO_EVENT
    return code


@njit(cache=True, inline="always")
def _close_bar(market, events, book, out, record, i, cash, n_open, rule, held_rules,
               settings):
    """Bar ``i`` after its open fills, asset by asset: the risk rules, then the signal at
    the close (queued for the next open, or its exit filled now and its entry left in
    ``book.orders``). Returns ``(cash, open positions, entries waiting)``. A held asset
    with no signal is passed over (nothing can change) when ``held_rules`` (of
    ``_held_rules``) is HELD_NO_RULE, or HELD_FIXED and the bar's range stays strictly
    inside its levels before its time exit (``_inside``).

    The arrays are taken out of their tuples once per bar: inside the loop over assets
    only scalars and bare arrays reach the helpers (numba counts a reference for every
    array a tuple argument carries, on every call)."""
    next_open = settings.fill == FillMode.next_open
    direction = settings.direction
    positions, orders, ruled = book.positions, book.orders, book.ruled
    cursor, cursor_end, due = book.cursor, book.cursor_end, book.due
    ev_bar, ev_code = events.bar, events.code
    start, end = market.start, market.end
    opens, highs, lows, closes = market.open, market.high, market.low, market.close
    waiting = 0
    for a in range(positions.shape[0]):
        if (due[a] > i and positions[a, 0] == 0.0) or i < start[a] or i >= end[a]:
            continue  # flat with no signal due (the common case first), or outside its span
        code = _signal_at(ev_bar, ev_code, cursor, cursor_end, due, a, i)
        if code == 0 and (positions[a, 0] == 0.0 or held_rules == HELD_NO_RULE
                          or (held_rules == HELD_FIXED
                              and _inside(positions, a, i, lows[a, i], highs[a, i]))):
            continue
        bar = Bar(i=i, open=opens[a, i], high=highs[a, i], low=lows[a, i], close=closes[a, i])
        p = _load(positions, a)
        quote, reason, at_open, held = _rule_exit(p, bar, next_open)
        if reason >= 0:
            cash_change, closed = _exit(p, bar, quote, reason, at_open, rule)
            cash += cash_change
            _book_closed(book, out, record, a, closed)
            ruled[a] = i
            n_open -= 1
            p = _flat()
        elif p.direction != 0:
            positions[a, 12] = held.extreme  # the one field a bar held through moves
            p = held
        if code == 0:
            continue
        if not next_open:
            close_now, _ = _orders(code, direction, p.direction)
            if close_now:
                cash_change, closed = _exit(p, bar, bar.close, ExitReason.signal, False, rule)
                cash += cash_change
                _book_closed(book, out, record, a, closed)
                n_open -= 1
        if not next_open or i + 1 < end[a]:
            orders[a] = code
            waiting += 1
    return cash, n_open, waiting


@njit(cache=True, inline="always")
def _mark_book(market, book, out, record, i, cash, n_open, rule, axis_end, next_open):
    """The close of bar ``i``: an asset whose span ends here before the data's does (its
    position is closed at the close with exit costs, reason ``delist``); then every open
    position is marked: ``(cash, open positions, equity, gross exposure)``. With
    ``record`` also each asset's units and the positions' price extremes (MFE/MAE)."""
    value = 0.0
    gross = 0.0
    positions, end, closes = book.positions, market.end, market.close
    for a in range(positions.shape[0]):
        d = positions[a, 0]
        if d == 0.0:
            if record:
                out.units[a, i] = 0.0
            continue
        c = closes[a, i]
        if i == end[a] - 1 and i < axis_end - 1:
            cash_change, closed = _exit(_load(positions, a), _bar_of(market, a, i), c,
                                        ExitReason.delist, False, rule)
            cash += cash_change
            _book_closed(book, out, record, a, closed)
            n_open -= 1
            if record:
                out.units[a, i] = 0.0
            continue
        units = positions[a, 1]
        value += d * units * c
        gross += units * c
        if record:
            out.units[a, i] = d * units
            _, p = _mark(_load(positions, a), 0.0, _bar_of(market, a, i), True, next_open)
            _store(positions, a, p)
    return cash, n_open, cash + value, gross


@njit(cache=True, inline="always")
def _book_all_marked(market, book, out, record, i, reason):
    """Book every open position marked at bar ``i``'s close (no exit costs)."""
    for a in range(book.positions.shape[0]):
        if book.positions[a, 0] != 0.0:
            _book_marked(book, out, record, a, i, market.close[a, i], reason)


@njit(cache=True, inline="always")
def _axis(start, end):
    """The portfolio's bars ``(first, stop)``: from the first start to the last end of the
    assets whose span is not empty (a window may miss an asset); (0, 0) when all are."""
    first = np.iinfo(np.int64).max
    stop = 0
    for a in range(start.shape[0]):
        if end[a] > start[a]:
            first = min(first, start[a])
            stop = max(stop, end[a])
    return (first, stop) if stop > 0 else (0, 0)


@njit(cache=True, inline="always")
def _reset_book(book, events, row0):
    book.tally[:] = 0.0
    book.positions[:, 0] = 0.0
    book.orders[:] = 0
    book.ruled[:] = -1
    for a in range(book.cursor.shape[0]):
        e = events.ptr[row0 + a]
        hi = events.ptr[row0 + a + 1]
        book.cursor[a] = e
        book.cursor_end[a] = hi
        book.due[a] = events.bar[e] if e < hi else NO_EVENT


@njit(cache=True, inline="always")
def _held_rules(rule):
    """What the risk rules of RuleRow ``rule`` ask of a held position on a bar without a
    signal: HELD_NO_RULE (no rule is on), HELD_FIXED (no trailing stop: its stop and take
    were fixed at entry) or HELD_MOVING (a trailing stop follows the price)."""
    if rule.trailing_stop == rule.trailing_stop or rule.trailing_atr == rule.trailing_atr:
        return HELD_MOVING
    if (rule.stop_loss == rule.stop_loss or rule.take_profit == rule.take_profit
            or rule.stop_atr == rule.stop_atr or rule.take_atr == rule.take_atr
            or rule.max_bars > 0):
        return HELD_FIXED
    return HELD_NO_RULE


@njit(cache=True, inline="always")
def _leverage(gross, equity):
    """Gross leverage at a close; on a ruin bar (equity <= 0) 1 if anything is held."""
    if equity > 0.0:
        return gross / equity
    return 1.0 if gross > 0.0 else 0.0


@njit(cache=True, _nrt=False)
def simulate_portfolio(market, events, row0, atr, rules, settings, book, out, record):
    """Run one portfolio backtest over every asset of ``market`` with one cash balance;
    return its trade count.

    The portfolio's bars run from the first start to the last end of the assets with a
    non-empty span (``_axis``); asset ``a`` trades inside its
    span and reads the signal events of CSR row ``row0 + a``; ``atr`` holds each asset's
    ATR row ``(n_assets, n_bars)``; ``rules`` the combo's RULE_COLUMNS row (``size`` per
    ``settings.size_type``, ``max_positions`` 0 = no cap). ``book`` is the caller thread's
    scratch. Writes the metrics row to ``out.metrics``; with ``record`` also the per-bar
    ``out.equity``, ``out.cash`` and ``out.units`` ``(n_assets, n_bars)`` (untouched
    outside the portfolio's bars) and the trades. docs/semantics.md, Portfolio backtests,
    is the specification; while nothing is held and no order waits, the loop jumps to the
    next bar with a signal that can open a position. Compiled with ``_nrt=False``: it
    allocates nothing, and without reference counting its per-asset loops run 4x faster.
    """
    _reset_book(book, events, row0)
    axis_start, axis_end = _axis(market.start, market.end)
    next_open = settings.fill == FillMode.next_open
    rule = _rule_row(rules)
    held_rules = _held_rules(rule)
    cash = settings.init_cash
    n_open = 0
    waiting = 0  # next_open orders queued at the last close
    k = 0
    mom = Moments(0, 0.0, 0.0, 0.0, 0.0)
    downside_sq = exposure = max_dd = 0.0
    prev_equity = peak_equity = cash
    i = axis_start
    while i < axis_end:
        if n_open == 0 and waiting == 0:
            j = _next_opening_bar(events, book, market, i, axis_end, settings.direction)
            if j > i:
                mom = _merge_zeros(book.buf, k, j - i, mom)
                k = 0
                if record:
                    _record_flat_book(out, i, j, cash)
                i = j
                if i == axis_end:
                    break
        if waiting > 0:
            cash, n_open = _fill_open_exits(market, book, out, record, i, cash, n_open,
                                            rule, settings.direction)
            fund = _fill_entries(market, atr, book, i, True,
                                 _valued(market, book, i, True, cash, n_open), rule,
                                 settings, axis_end)
            cash, n_open = fund.cash, fund.n_open
        cash, n_open, waiting = _close_bar(market, events, book, out, record, i, cash,
                                           n_open, rule, held_rules, settings)
        if waiting > 0 and not next_open:
            fund = _fill_entries(market, atr, book, i, False,
                                 _valued(market, book, i, False, cash, n_open), rule,
                                 settings, axis_end)
            cash, n_open, waiting = fund.cash, fund.n_open, 0
        cash, n_open, equity, gross = _mark_book(market, book, out, record, i, cash, n_open,
                                                 rule, axis_end, next_open)
        exposure += _leverage(gross, equity)
        r = equity / prev_equity - 1.0
        prev_equity = equity
        book.buf[k] = r
        k += 1
        if k == RETURN_BLOCK:
            mom = _merge_block(book.buf, k, mom)
            k = 0
        if r < 0.0:
            downside_sq += r * r
        peak_equity, max_dd = _drawdown(equity, peak_equity, max_dd)
        if record:
            out.equity[i] = equity
            out.cash[i] = cash
        if equity <= 0.0:
            book.tally[Tally.ruined] = 1.0
            _book_all_marked(market, book, out, record, i, ExitReason.ruin)
            if record:
                _record_flat_book(out, i + 1, axis_end, equity)
            mom = _merge_zeros(book.buf, k, axis_end - i - 1, mom) if i + 1 < axis_end \
                else _merge_waiting(book.buf, k, mom)
            k = 0
            break
        i += 1
    mom = _merge_waiting(book.buf, k, mom)
    if book.tally[Tally.ruined] == 0.0 and axis_end > axis_start:
        _book_all_marked(market, book, out, record, axis_end - 1, ExitReason.end)
    _finish_metrics(out.metrics, book.tally, settings, prev_equity, mom, downside_sq, max_dd,
                    exposure)
    return int(book.tally[Tally.trades])


@njit(cache=True, inline="always")
def _new_book(n_assets):
    return Book(positions=np.zeros((n_assets, N_POSITION)),
                orders=np.zeros(n_assets, np.int64), cursor=np.zeros(n_assets, np.int64),
                cursor_end=np.zeros(n_assets, np.int64), due=np.zeros(n_assets, np.int64),
                ruled=np.zeros(n_assets, np.int64),
                buf=np.empty(RETURN_BLOCK), tally=np.empty(N_TALLY))


@njit(cache=True, inline="always")
def _run_portfolio(market, events, atr_bank, combos, settings, c, book, out, record):
    """Portfolio backtest of combo ``c`` of a launch (see ``portfolio_metrics``)."""
    return simulate_portfolio(market, events, combos.signal_idx[c] * market.close.shape[0],
                              atr_bank[:, combos.atr_idx[c]], combos.rules[c], settings,
                              book, out, record)


@njit(parallel=True, cache=True)
def portfolio_metrics(market, events, atr_bank, combos, settings, n_tasks, out):
    """Metrics of every combo's portfolio backtest into ``out`` ``(n_combos, N_METRICS)``.

    Combo ``c`` trades every asset with one cash balance, reading the signal events of CSR
    rows ``combos.signal_idx[c] * n_assets + asset``, the ATR rows
    ``atr_bank[:, combos.atr_idx[c]]`` and the rules row ``combos.rules[c]``. The combos
    are dealt round-robin over ``n_tasks`` ``prange`` tasks, each with its own Book.
    """
    n_combos = out.shape[0]
    _check_launch(market, atr_bank, combos, n_combos)
    empty = np.empty(0)
    no_units = np.empty((0, 0))
    no_trades = np.empty(0, TRADE_DTYPE)
    for task in prange(n_tasks):
        book = _new_book(market.close.shape[0])
        for c in range(task, n_combos, n_tasks):
            _run_portfolio(market, events, atr_bank, combos, settings, c, book,
                           Outputs(metrics=out[c], equity=empty, cash=empty, units=no_units,
                                   trades=no_trades), False)


@njit(cache=True)
def portfolio_record(market, events, atr_bank, combos, settings, combo, out):
    """Combo ``combo``'s portfolio backtest with every per-bar series and trade recorded
    into ``out`` (``units`` ``(n_assets, n_bars)``); returns its trade count. ``out.trades``
    must have room for every trade (run ``portfolio_metrics`` first)."""
    if combo < 0:
        raise ValueError("combo must be >= 0")
    _check_launch(market, atr_bank, combos, combo + 1)
    return _run_portfolio(market, events, atr_bank, combos, settings, combo,
                          _new_book(market.close.shape[0]), out, True)


@njit(parallel=True, cache=True)
def portfolio_equity_paths(market, events, atr_bank, combos, settings, out):
    """Per-bar portfolio equity of every combo into ``out[c]`` ``(n_combos, n_bars)``
    (NaN outside the portfolio's bars)."""
    n_assets, n_bars = market.close.shape
    n_combos = out.shape[0]
    _check_launch(market, atr_bank, combos, n_combos)
    n_tasks = min(n_combos, 64)
    for task in prange(n_tasks):
        book = _new_book(n_assets)
        metrics = np.empty(N_METRICS)
        cash = np.empty(n_bars)
        units = np.empty((n_assets, n_bars))
        trades = np.empty(2 * n_assets * n_bars + 2, TRADE_DTYPE)
        for c in range(task, n_combos, n_tasks):
            out[c, :] = np.nan
            _run_portfolio(market, events, atr_bank, combos, settings, c, book,
                           Outputs(metrics=metrics, equity=out[c], cash=cash, units=units,
                                   trades=trades), True)


# ----------------------------------------------------------------------------------------
# rank-and-rebalance backtests: the best-scored assets held at target weights, traded back
# to them on a schedule, one cash balance (docs/semantics.md, Rank-and-rebalance strategies)


class HoldT(NamedTuple):
    """Rows of ``RankBook.state``: per asset, the position from the fill that opens it to
    the fill that makes it flat (side 0: none), and two rebalance work rows."""

    side: int = 0  # +1 long, -1 short, 0 flat
    units: int = 1  # units held (>= 0)
    cost: int = 2  # average cost: units-weighted mean fill price of the units held
    extreme: int = 3  # trailing peak (long) / trough (short)
    stop: int = 4  # stop and take levels from the average cost (see _levels)
    take: int = 5
    entry_bar: int = 6  # the bar of the opening fill
    opened_units: int = 7  # units bought (long) or sold short, and their fill values
    opened_value: int = 8
    opened_quotes: int = 9
    committed: int = 10  # cash the opening and adding fills committed (the return's base)
    closed_units: int = 11  # units sold (long) or covered, and their fill values
    closed_value: int = 12
    closed_quotes: int = 13
    cash_flow: int = 14  # net cash the position has moved
    exc_hi: int = 15  # highest and lowest price it was exposed to (recorded only)
    exc_lo: int = 16
    weight: int = 17  # target weight of the last rebalance
    delta: int = 18  # units a rebalance trades


Hold = HoldT()
N_HOLD = len(HoldT._fields)


class RankBook(NamedTuple):
    """One thread's scratch for rank backtests (n = n_assets): ``state`` (N_HOLD, n) rows
    HoldT; ``flag[a]`` at a rebalance: 0 not eligible, 1 eligible, 2 chosen long, 3 chosen
    short; ``ruled[a]`` the last bar a risk rule closed it; ``held[:n_held]`` the assets
    held, in asset order; ``heap`` the selection heap; ``buf`` and ``tally`` as in
    Scratch."""

    state: np.ndarray  # (N_HOLD, n) float64
    flag: np.ndarray  # (n,) int64
    ruled: np.ndarray  # (n,) int64
    held: np.ndarray  # (n,) int64
    heap: np.ndarray  # (n,) int64
    buf: np.ndarray
    tally: np.ndarray


class Ranking(NamedTuple):
    """One rank combo's inputs: its score and volatility rows ``(n_keys, n_assets)``, the
    key of each bar, and its schedule (bool ``(n_bars,)``), as in enums.Scores."""

    score: np.ndarray
    vol: np.ndarray
    key: np.ndarray
    rebalance: np.ndarray


class RankRules(NamedTuple):
    """A rank combo's rules as scalars (rates off when NaN, ``max_bars`` 0 = off)."""

    stop_loss: float
    take_profit: float
    trailing_stop: float
    max_bars: int
    fees: float
    fixed_fees: float
    slippage: float
    tax: float
    top_n: int
    bottom_n: int
    weighting: int
    position_limit: float  # inf: no cap


class Track(NamedTuple):
    """The running statistics of a backtest's per-bar returns: ``k`` returns waiting in
    the buffer, the Moments of the others, the sum of squared negative returns, the peak
    equity, the max drawdown and the last equity."""

    k: int
    mom: Moments
    downside_sq: float
    peak: float
    max_dd: float
    prev: float


@njit(cache=True, inline="always")
def _tracked(buf, t, equity):
    """Track ``t`` after a bar closing at ``equity``."""
    r = equity / t.prev - 1.0
    buf[t.k] = r
    k = t.k + 1
    mom = t.mom
    if k == RETURN_BLOCK:
        mom = _merge_block(buf, k, mom)
        k = 0
    downside_sq = t.downside_sq + r * r if r < 0.0 else t.downside_sq
    peak, max_dd = _drawdown(equity, t.peak, t.max_dd)
    return Track(k=k, mom=mom, downside_sq=downside_sq, peak=peak, max_dd=max_dd, prev=equity)


@njit(cache=True, inline="always")
def _rank_rules(rules, rank):
    cap = rank[RankRule.position_limit]
    return RankRules(stop_loss=rules[Rule.stop_loss], take_profit=rules[Rule.take_profit],
                     trailing_stop=rules[Rule.trailing_stop],
                     max_bars=int(rules[Rule.max_bars]), fees=rules[Rule.fees],
                     fixed_fees=rules[Rule.fixed_fees], slippage=rules[Rule.slippage],
                     tax=rank[RankRule.tax], top_n=int(rank[RankRule.top_n]),
                     bottom_n=int(rank[RankRule.bottom_n]),
                     weighting=int(rank[RankRule.weighting]),
                     position_limit=cap if cap == cap else np.inf)


@njit(cache=True, inline="always")
def _level_rule(rr):
    """A RuleRow carrying only ``rr``'s percent stop and take (for ``_levels``)."""
    nan = np.nan
    return RuleRow(stop_loss=rr.stop_loss, take_profit=rr.take_profit, trailing_stop=nan,
                   stop_atr=nan, take_atr=nan, trailing_atr=nan, max_bars=0.0, fees=0.0,
                   fixed_fees=0.0, slippage=0.0, size=1.0, max_positions=0.0)


@njit(cache=True, inline="always")
def _expose(state, a, hi, lo):
    state[Hold.exc_hi, a] = max(state[Hold.exc_hi, a], hi)
    state[Hold.exc_lo, a] = min(state[Hold.exc_lo, a], lo)


@njit(cache=True, inline="always")
def _rank_booked(book, out, record, a, i, quote, reason):
    """Book asset ``a``'s position, flat now at bar ``i`` (its last fill or mark at
    ``quote``), as one trade ending for ``reason``."""
    st = book.state
    hi = st[Hold.exc_hi, a]
    lo = st[Hold.exc_lo, a]
    if hi == -np.inf:  # never exposed to a price before this one
        hi = lo = quote
    opened = st[Hold.opened_units, a]
    closed = st[Hold.closed_units, a]
    p = Position(direction=int(st[Hold.side, a]), units=opened,
                 entry_bar=int(st[Hold.entry_bar, a]),
                 entry_price=st[Hold.opened_value, a] / opened,
                 entry_quote=st[Hold.opened_quotes, a] / opened,
                 entry_cost=st[Hold.committed, a], entry_net=0.0, stop=st[Hold.stop, a],
                 take=st[Hold.take, a], trail_frac=np.nan, trail_offset=np.nan, time_exit=-1,
                 extreme=st[Hold.extreme, a], exc_hi=hi, exc_lo=lo)
    # a recording run without room for trades (equity paths) records none
    _book_trade(Ledger(book.tally, out.trades, record and out.trades.shape[0] > 0, a),
                _closed(p, i, st[Hold.closed_value, a] / closed,
                        st[Hold.closed_quotes, a] / closed, st[Hold.cash_flow, a], reason))
    st[Hold.side, a] = 0.0


@njit(cache=True, inline="always")
def _rank_fill(book, out, record, a, i, units, quote, rr, reason):
    """Fill ``units`` of asset ``a`` at ``quote`` on bar ``i`` (> 0 buy, < 0 sell):
    slippage against the trader, ``fees`` and ``fixed_fees`` on every fill, ``tax`` on
    sells, a sale's costs at most its notional. One side of one position per call (a flip is two calls). Returns the cash
    change; books the trade (``reason``) when the position becomes flat."""
    st = book.state
    side = st[Hold.side, a]
    if side != 0.0:
        _expose(st, a, quote, quote)
    if units > 0.0:
        u = units
        price = quote * (1.0 + rr.slippage)
        flow = -(u * price * (1.0 + rr.fees) + rr.fixed_fees)
        direction = 1.0
    else:
        u = -units
        price = quote * (1.0 - rr.slippage)
        flow = max(u * price * (1.0 - rr.fees - rr.tax) - rr.fixed_fees, 0.0)
        direction = -1.0
    if side == 0.0:  # the opening fill
        side = direction
        st[Hold.side, a] = side
        st[Hold.units, a] = 0.0
        st[Hold.entry_bar, a] = i
        st[Hold.extreme, a] = price
        for f in range(Hold.opened_units, Hold.exc_hi):
            st[f, a] = 0.0
        st[Hold.exc_hi, a] = -np.inf
        st[Hold.exc_lo, a] = np.inf
    st[Hold.cash_flow, a] += flow
    held = st[Hold.units, a]
    if side == direction:  # open or add: the average cost and its levels move
        cost = (held * st[Hold.cost, a] + u * price) / (held + u)
        st[Hold.cost, a] = cost
        st[Hold.units, a] = held + u
        st[Hold.opened_units, a] += u
        st[Hold.opened_value, a] += u * price
        st[Hold.opened_quotes, a] += u * quote
        st[Hold.committed, a] += u * price * (1.0 + rr.fees) + rr.fixed_fees
        stop, take = _levels(int(side), cost, np.nan, _level_rule(rr))
        st[Hold.stop, a] = stop
        st[Hold.take, a] = take
        if side > 0.0:
            st[Hold.extreme, a] = max(st[Hold.extreme, a], price)
        else:
            st[Hold.extreme, a] = min(st[Hold.extreme, a], price)
        return flow
    st[Hold.units, a] = 0.0 if u >= held else held - u
    st[Hold.closed_units, a] += u
    st[Hold.closed_value, a] += u * price
    st[Hold.closed_quotes, a] += u * quote
    if st[Hold.units, a] == 0.0:
        _rank_booked(book, out, record, a, i, quote, reason)
    return flow


@njit(cache=True, inline="always")
def _rank_close(book, out, record, a, i, quote, rr, reason):
    """Sell (buy back) asset ``a``'s whole position at ``quote``: the cash change."""
    st = book.state
    return _rank_fill(book, out, record, a, i, -st[Hold.side, a] * st[Hold.units, a], quote,
                      rr, reason)


@njit(cache=True, _nrt=False)
def _rank_mark_out(book, out, record, a, i, quote, reason):
    """Book asset ``a``'s position marked at ``quote`` with no costs (``end``, ``ruin``):
    the cash change."""
    st = book.state
    units = st[Hold.units, a]
    flow = st[Hold.side, a] * units * quote
    st[Hold.cash_flow, a] += flow
    st[Hold.closed_units, a] += units
    st[Hold.closed_value, a] += units * quote
    st[Hold.closed_quotes, a] += units * quote
    st[Hold.units, a] = 0.0
    if st[Hold.exc_hi, a] != -np.inf:
        _expose(st, a, quote, quote)
    _rank_booked(book, out, record, a, i, quote, reason)
    return flow


@njit(cache=True, inline="always")
def _compact_held(book, n_held):
    """Drop the assets that became flat from ``held[:n_held]``: the new count."""
    held, side = book.held, book.state[Hold.side]
    n = 0
    for j in range(n_held):
        a = held[j]
        if side[a] != 0.0:
            held[n] = a
            n += 1
    return n


@njit(cache=True, inline="always")
def _rank_risk(market, book, out, record, i, cash, n_held, rr):
    """Bar ``i``'s risk rules for every position held, in asset order (stop, trailing
    stop, take-profit at the open or inside the bar, then the time exit at the close):
    ``(cash, n_held)``. A position that survives the bar takes in its range (trailing
    extreme; with ``record`` the prices it was exposed to)."""
    st = book.state
    for j in range(n_held):
        a = book.held[j]
        side = st[Hold.side, a]
        o = market.open[a, i]
        h = market.high[a, i]
        lo = market.low[a, i]
        p = Position(direction=int(side), units=0.0, entry_bar=0, entry_price=0.0,
                     entry_quote=0.0, entry_cost=0.0, entry_net=0.0, stop=st[Hold.stop, a],
                     take=st[Hold.take, a], trail_frac=rr.trailing_stop, trail_offset=np.nan,
                     time_exit=-1, extreme=st[Hold.extreme, a], exc_hi=0.0, exc_lo=0.0)
        quote, reason, at_open = _levels_hit(p, o, h, lo)
        if record:
            if reason >= 0 and at_open:
                _expose(st, a, o, o)
            else:
                _expose(st, a, h, lo)
        if reason < 0 and rr.max_bars > 0 and i == st[Hold.entry_bar, a] + rr.max_bars:
            quote = market.close[a, i]
            reason = ExitReason.time
        if reason >= 0:
            cash += _rank_close(book, out, record, a, i, quote, rr, reason)
            book.ruled[a] = i
        elif side > 0.0:
            st[Hold.extreme, a] = max(st[Hold.extreme, a], h)
        else:
            st[Hold.extreme, a] = min(st[Hold.extreme, a], lo)
    return cash, _compact_held(book, n_held)


@njit(cache=True, inline="always")
def _better(score, x, y, sign):
    """Whether asset ``x`` ranks before ``y`` on a side (``sign`` +1: higher scores first,
    -1: lower first); ties go to the earlier asset."""
    sx = sign * score[x]
    sy = sign * score[y]
    return sx > sy or (sx == sy and x < y)


@njit(cache=True, inline="always")
def _sift_down(heap, m, score, sign):
    """Restore the heap ``heap[:m]`` (worst chosen asset at the root) from the root."""
    j = 0
    while True:
        child = 2 * j + 1
        if child >= m:
            return
        if child + 1 < m and _better(score, heap[child], heap[child + 1], sign):
            child += 1  # the worse child
        if not _better(score, heap[j], heap[child], sign):
            return
        heap[j], heap[child] = heap[child], heap[j]
        j = child


@njit(cache=True, inline="always")
def _sift_up(heap, j, score, sign):
    while j > 0:
        parent = (j - 1) // 2
        if not _better(score, heap[parent], heap[j], sign):
            return
        heap[j], heap[parent] = heap[parent], heap[j]
        j = parent


@njit(cache=True, inline="always")
def _choose(book, score, n_slots, sign, mark):
    """The ``n_slots`` best assets of flag 1 on a side into ``heap[:m]`` (a bounded heap:
    O(n_assets log n_slots)); flags them ``mark``; returns ``m``."""
    heap, flag = book.heap, book.flag
    m = 0
    if n_slots == 0:
        return 0
    for a in range(flag.shape[0]):
        if flag[a] != 1:
            continue
        if m < n_slots:
            heap[m] = a
            _sift_up(heap, m, score, sign)
            m += 1
        elif _better(score, a, heap[0], sign):
            heap[0] = a
            _sift_down(heap, m, score, sign)
    for j in range(m):
        flag[heap[j]] = mark
    return m


@njit(cache=True, inline="always")
def _side_weights(book, score, vol, m, n_slots, side, budget, worst, rr):
    """Target weights of the ``m`` assets in ``heap[:m]`` chosen for a side of
    ``n_slots`` slots: the side's budget times ``m / n_slots``, split by the weighting,
    each capped at ``position_limit``."""
    if m == 0:
        return
    heap, w = book.heap, book.state[Hold.weight]
    total = 0.0
    for j in range(m):
        a = heap[j]
        if rr.weighting == Weighting.inverse_vol:
            raw = 1.0 / vol[a]
        elif rr.weighting == Weighting.score:
            raw = side * (score[a] - worst)
        else:
            raw = 1.0
        w[a] = raw
        total += raw
    if total <= 0.0:  # every chosen score equals the worst: equal weights
        for j in range(m):
            w[heap[j]] = 1.0
        total = float(m)
    share = budget * m / n_slots
    for j in range(m):
        a = heap[j]
        w[a] = side * min(share * w[a] / total, rr.position_limit)


@njit(cache=True, inline="always")
def _targets(market, ranking, book, r, rr):
    """Target weights at rebalance bar ``r`` into ``state[Hold.weight]``: eligible assets
    (``r`` and ``r + 1`` in the span, a score, and with inverse_vol a volatility > 0),
    the ``top_n`` best long and the ``bottom_n`` worst of the rest short."""
    k = ranking.key[r]
    score = ranking.score[k]
    vol = ranking.vol[k] if rr.weighting == Weighting.inverse_vol else score
    flag = book.flag
    start, end = market.start, market.end
    lowest = np.inf
    highest = -np.inf
    for a in range(flag.shape[0]):
        s = score[a]
        ok = start[a] <= r and r + 1 < end[a] and s == s
        if ok and rr.weighting == Weighting.inverse_vol:
            v = vol[a]
            ok = v == v and v > 0.0
        flag[a] = 1 if ok else 0
        if ok:
            lowest = min(lowest, s)
            highest = max(highest, s)
        book.state[Hold.weight, a] = 0.0
    budget = 0.5 if rr.top_n > 0 and rr.bottom_n > 0 else 1.0
    m = _choose(book, score, rr.top_n, 1.0, 2)
    _side_weights(book, score, vol, m, rr.top_n, 1.0, budget, lowest, rr)
    m = _choose(book, score, rr.bottom_n, -1.0, 3)
    _side_weights(book, score, vol, m, rr.bottom_n, -1.0, budget, highest, rr)


@njit(cache=True, inline="always")
def _quote(market, a, i, at_open):
    return market.open[a, i] if at_open else market.close[a, i]


@njit(cache=True, inline="always")
def _rank_buys(market, book, out, record, i, at_open, cash, equity, rr):
    """The buys of a rebalance (asset order), each cut to the cash left: ``(cash, notional
    traded)``. A buy of a short position covers it first, then opens the long; a fill that
    leaves a position open with a notional of at most ``fixed_fees`` is skipped."""
    st = book.state
    traded = 0.0
    for a in range(st.shape[1]):
        d = st[Hold.delta, a]
        if d <= 0.0:
            continue
        q = _quote(market, a, i, at_open)
        held = st[Hold.side, a] * st[Hold.units, a]
        cover = min(-held, d) if held < 0.0 else 0.0
        for leg in (cover, d - cover):
            if leg <= 0.0 or leg * q <= DUST * equity:
                continue
            affordable = (cash - rr.fixed_fees) / (q * (1.0 + rr.slippage) * (1.0 + rr.fees))
            if affordable * q <= DUST * equity:
                break
            units = min(leg, affordable)
            now = st[Hold.side, a] * st[Hold.units, a]
            if units * q <= rr.fixed_fees and not (now < 0.0 and units >= -now):
                break  # it leaves a position open and does not cover its fixed fee
            cash += _rank_fill(book, out, record, a, i, units, q, rr, ExitReason.signal)
            traded += units * q
    return cash, traded


@njit(cache=True, _nrt=False)
def _rebalance(market, book, out, record, i, at_open, cash, blocked, rr):
    """Trade every asset to its target ``weight * E / quote`` units at bar ``i``'s open
    or close (E: the equity at those quotes): every sell, then every buy, in asset order;
    a trade of notional at most DUST * E, or one that leaves a position open with a
    notional of at most ``fixed_fees``, is skipped; with ``blocked`` an asset a risk rule
    closed on this bar is not bought back. Returns ``(cash, turnover)``, turnover 0 when
    E <= 0 (nothing trades)."""
    st = book.state
    n_assets = st.shape[1]
    equity = cash
    for a in range(n_assets):
        if st[Hold.side, a] != 0.0:
            equity += st[Hold.side, a] * st[Hold.units, a] * _quote(market, a, i, at_open)
    if equity <= 0.0:
        return cash, 0.0
    for a in range(n_assets):
        w = st[Hold.weight, a]
        held = st[Hold.side, a] * st[Hold.units, a]
        d = 0.0
        if held != 0.0 or w != 0.0:
            q = _quote(market, a, i, at_open)
            target = 0.0 if w == 0.0 or (blocked and book.ruled[a] == i) else w * equity / q
            d = target - held
            notional = abs(d) * q
            if notional <= DUST * equity or (target != 0.0 and notional <= rr.fixed_fees):
                d = 0.0
        st[Hold.delta, a] = d
    traded = 0.0
    for a in range(n_assets):  # sells: reductions and closes, then new or larger shorts
        d = st[Hold.delta, a]
        if d >= 0.0:
            continue
        q = _quote(market, a, i, at_open)
        held = st[Hold.side, a] * st[Hold.units, a]
        if held > 0.0:
            sold = min(held, -d)
            cash += _rank_fill(book, out, record, a, i, -sold, q, rr, ExitReason.signal)
            traded += sold * q
            d += sold
        if d < 0.0 and -d * q > max(DUST * equity, rr.fixed_fees):
            cash += _rank_fill(book, out, record, a, i, d, q, rr, ExitReason.signal)
            traded -= d * q
    cash, bought = _rank_buys(market, book, out, record, i, at_open, cash, equity, rr)
    return cash, (traded + bought) / equity


@njit(cache=True, inline="always")
def _held_list(book):
    """Rebuild ``held`` from the positions: the count."""
    side = book.state[Hold.side]
    n = 0
    for a in range(side.shape[0]):
        if side[a] != 0.0:
            book.held[n] = a
            n += 1
    return n


@njit(cache=True, inline="always")
def _rank_close_bar(market, book, out, record, i, cash, n_held, axis_end, rr):
    """The close of bar ``i``: positions in assets delisted here are sold with every cost
    (``delist``); every other is marked: ``(cash, n_held, equity, gross exposure)``; with
    ``record`` also every asset's units."""
    st = book.state
    value = 0.0
    gross = 0.0
    delisted = False
    for j in range(n_held):
        a = book.held[j]
        c = market.close[a, i]
        if i == market.end[a] - 1 and i < axis_end - 1:
            cash += _rank_close(book, out, record, a, i, c, rr, ExitReason.delist)
            delisted = True
            continue
        units = st[Hold.units, a]
        value += st[Hold.side, a] * units * c
        gross += units * c
    if delisted:
        n_held = _compact_held(book, n_held)
    if record:
        for a in range(st.shape[1]):
            out.units[a, i] = st[Hold.side, a] * st[Hold.units, a]
    return cash, n_held, cash + value, gross


@njit(cache=True, _nrt=False)
def _rank_all_marked(market, book, out, record, i, n_held, reason):
    """Book every position held at bar ``i``'s close (no costs): the cash change."""
    flow = 0.0
    for j in range(n_held):
        a = book.held[j]
        flow += _rank_mark_out(book, out, record, a, i, market.close[a, i], reason)
    return flow


@njit(cache=True, inline="always")
def _reset_rank_book(book):
    book.tally[:] = 0.0
    book.state[Hold.side, :] = 0.0
    book.ruled[:] = -1


class Turnover(NamedTuple):
    """The rebalances that took place so far and the sum of their turnovers."""

    n: int
    total: float


@njit(cache=True, inline="always")
def _trade_to_targets(market, book, out, record, holdings, row, i, at_open, cash, rr, turn):
    """Rebalance ``row`` (of ``holdings``, recorded when it has rows) trading at bar
    ``i``'s open or close (at the close an asset a rule closed on this bar is not bought
    back): ``(cash, n_held, Turnover)``."""
    cash, turnover = _rebalance(market, book, out, record, i, at_open, cash, not at_open, rr)
    if record and holdings.bar.shape[0] > 0:
        holdings.turnover[row] = turnover
    return cash, _held_list(book), Turnover(n=turn.n + 1, total=turn.total + turnover)


@njit(cache=True, inline="always")
def _has_rules(rr):
    """Whether any risk rule of ``rr`` is on."""
    return (rr.stop_loss == rr.stop_loss or rr.take_profit == rr.take_profit
            or rr.trailing_stop == rr.trailing_stop or rr.max_bars > 0)


@njit(cache=True, inline="always")
def _record_targets(book, holdings, row, i):
    holdings.bar[row] = i
    for a in range(book.state.shape[1]):
        holdings.weights[row, a] = book.state[Hold.weight, a]


@njit(cache=True, _nrt=False)
def simulate_rank(market, ranking, rules, rank, settings, book, out, record, holdings):
    """Run one rank-and-rebalance backtest over every asset of ``market`` with one cash
    balance; return its trade count.

    The bars run as in ``simulate_portfolio`` (``_axis``). At each bar: (1) with
    next_open, the last close's rebalance trades at this open; (2) the risk rules of every
    position; (3) at a bar of ``ranking.rebalance`` (not the axis's last), target weights
    from the scores at this close, traded now (fill close) or queued; (4) delisting, the
    mark to market, ruin. ``rules`` and ``rank`` are the combo's RULE_COLUMNS and
    RANK_COLUMNS rows; ``book`` the caller thread's scratch. Writes the metrics row to
    ``out.metrics``, ``turnover`` included (the mean traded fraction of equity over the
    rebalances that took place, one that trades nothing counting 0; NaN when none did); with ``record`` also the per-bar series,
    the trades and, when ``holdings`` has rows, each rebalance. docs/semantics.md,
    Rank-and-rebalance strategies, is the specification.
    """
    _reset_rank_book(book)
    keep = record and holdings.bar.shape[0] > 0  # record the rebalances too
    if keep:
        holdings.bar[:] = -1
    axis_start, axis_end = _axis(market.start, market.end)
    at_close = settings.fill == FillMode.close
    rr = _rank_rules(rules, rank)
    rules_on = _has_rules(rr)
    cash = settings.init_cash
    t = Track(k=0, mom=Moments(0, 0.0, 0.0, 0.0, 0.0), downside_sq=0.0, peak=cash,
              max_dd=0.0, prev=cash)
    turn = Turnover(n=0, total=0.0)
    exposure = 0.0
    n_rebalances = n_held = 0
    pending = -1  # the rebalance whose orders fill at this open
    for i in range(axis_start, axis_end):
        if pending >= 0:
            cash, n_held, turn = _trade_to_targets(market, book, out, record, holdings,
                                                   pending, i, True, cash, rr, turn)
            pending = -1
        if n_held > 0 and (rules_on or record):
            cash, n_held = _rank_risk(market, book, out, record, i, cash, n_held, rr)
        if ranking.rebalance[i] and i < axis_end - 1:
            _targets(market, ranking, book, i, rr)
            if keep:
                _record_targets(book, holdings, n_rebalances, i)
            if at_close:
                cash, n_held, turn = _trade_to_targets(market, book, out, record, holdings,
                                                       n_rebalances, i, False, cash, rr, turn)
            else:
                pending = n_rebalances
            n_rebalances += 1
        cash, n_held, equity, gross = _rank_close_bar(market, book, out, record, i, cash,
                                                      n_held, axis_end, rr)
        exposure += _leverage(gross, equity)
        t = _tracked(book.buf, t, equity)
        if record:
            out.equity[i] = equity
            out.cash[i] = cash
        if equity <= 0.0:
            t = _rank_ruin(market, book, out, record, i, n_held, axis_end, t)
            n_held = 0
            if pending >= 0 and keep:
                holdings.bar[pending] = -1  # it never traded
            break
    mom = _merge_waiting(book.buf, t.k, t.mom)
    if n_held > 0:
        _rank_all_marked(market, book, out, record, axis_end - 1, n_held, ExitReason.end)
    _finish_metrics(out.metrics, book.tally, settings, t.prev, mom, t.downside_sq, t.max_dd,
                    exposure)
    out.metrics[Metric.turnover] = turn.total / turn.n if turn.n > 0 else np.nan
    return int(book.tally[Tally.trades])


@njit(cache=True, _nrt=False)
def _rank_ruin(market, book, out, record, i, n_held, axis_end, t):
    """Ruin at bar ``i``'s close: every position booked at the close (``ruin``), the
    account flat at this equity for the rest of the bars: the Track to finish with."""
    book.tally[Tally.ruined] = 1.0
    _rank_all_marked(market, book, out, record, i, n_held, ExitReason.ruin)
    if record:
        _record_flat_book(out, i + 1, axis_end, t.prev)
    mom = _merge_zeros(book.buf, t.k, axis_end - i - 1, t.mom) if i + 1 < axis_end \
        else _merge_waiting(book.buf, t.k, t.mom)
    return Track(k=0, mom=mom, downside_sq=t.downside_sq, peak=t.peak, max_dd=t.max_dd,
                 prev=t.prev)


@njit(cache=True, inline="always")
def _new_rank_book(n_assets):
    return RankBook(state=np.zeros((N_HOLD, n_assets)), flag=np.zeros(n_assets, np.int64),
                    ruled=np.zeros(n_assets, np.int64), held=np.zeros(n_assets, np.int64),
                    heap=np.zeros(n_assets, np.int64), buf=np.empty(RETURN_BLOCK),
                    tally=np.empty(N_TALLY))


@njit(cache=True, inline="always")
def _check_rank_launch(market, scores, combos, n_combos):
    """The shapes the rank kernels rely on (they do not bounds-check)."""
    n_assets, n_bars = market.close.shape
    n = combos.rules.shape[0]
    if combos.rules.shape[1] != N_RULES or combos.rank.shape[1] != N_RANK:
        raise ValueError("combos.rules and combos.rank must have N_RULES and N_RANK columns")
    if (combos.rank.shape[0] != n or combos.score_idx.shape[0] != n
            or combos.vol_idx.shape[0] != n or combos.schedule_idx.shape[0] != n):
        raise ValueError("every RankCombos array must have one row per combo")
    if n_combos > n:
        raise ValueError("more combos than RankCombos rows")
    if (scores.score.shape[2] != n_assets or scores.vol.shape[2] != n_assets
            or scores.key.shape[0] != n_bars or scores.rebalance.shape[1] != n_bars):
        raise ValueError("Scores must match the market's assets and bars")


@njit(cache=True, inline="always")
def _run_rank(market, scores, combos, settings, c, book, out, record, holdings):
    """Rank backtest of combo ``c`` of a launch (see ``rank_metrics``)."""
    v = combos.vol_idx[c]
    ranking = Ranking(score=scores.score[combos.score_idx[c]],
                      vol=scores.vol[v] if v >= 0 else scores.score[combos.score_idx[c]],
                      key=scores.key, rebalance=scores.rebalance[combos.schedule_idx[c]])
    return simulate_rank(market, ranking, combos.rules[c], combos.rank[c], settings, book, out,
                         record, holdings)


@njit(cache=True, inline="always")
def _no_holdings():
    return Holdings(bar=np.empty(0, np.int64), weights=np.empty((0, 0)),
                    turnover=np.empty(0))


@njit(parallel=True, cache=True)
def rank_metrics(market, scores, combos, settings, n_tasks, out):
    """Metrics of every combo's rank backtest into ``out`` ``(n_combos, N_METRICS)``.

    Combo ``c`` reads the Scores rows its RankCombos name (``vol_idx`` -1: none, for a
    weighting that reads no volatility). The combos are dealt round-robin over ``n_tasks``
    ``prange`` tasks, each with its own RankBook: memory grows with threads and assets,
    not with bars x combos.
    """
    n_combos = out.shape[0]
    _check_rank_launch(market, scores, combos, n_combos)
    empty = np.empty(0)
    no_units = np.empty((0, 0))
    no_trades = np.empty(0, TRADE_DTYPE)
    for task in prange(n_tasks):
        book = _new_rank_book(market.close.shape[0])
        for c in range(task, n_combos, n_tasks):
            _run_rank(market, scores, combos, settings, c, book,
                      Outputs(metrics=out[c], equity=empty, cash=empty, units=no_units,
                              trades=no_trades), False, _no_holdings())


@njit(cache=True)
def rank_record(market, scores, combos, settings, combo, out, holdings):
    """Combo ``combo``'s rank backtest with every per-bar series, trade and rebalance
    recorded into ``out`` (``units`` ``(n_assets, n_bars)``) and ``holdings`` (a row per
    bar of its schedule); returns its trade count. ``out.trades`` must have room for every
    trade (run ``rank_metrics`` first)."""
    if combo < 0:
        raise ValueError("combo must be >= 0")
    _check_rank_launch(market, scores, combos, combo + 1)
    return _run_rank(market, scores, combos, settings, combo,
                     _new_rank_book(market.close.shape[0]), out, True, holdings)


@njit(parallel=True, cache=True)
def rank_equity_paths(market, scores, combos, settings, out):
    """Per-bar equity of every combo's rank backtest into ``out[c]`` ``(n_combos,
    n_bars)`` (NaN outside the portfolio's bars)."""
    n_assets, n_bars = market.close.shape
    n_combos = out.shape[0]
    _check_rank_launch(market, scores, combos, n_combos)
    n_tasks = min(n_combos, 64)
    for task in prange(n_tasks):
        book = _new_rank_book(n_assets)
        metrics = np.empty(N_METRICS)
        cash = np.empty(n_bars)
        units = np.empty((n_assets, n_bars))
        no_trades = np.empty(0, TRADE_DTYPE)  # series only: no trades, no holdings
        for c in range(task, n_combos, n_tasks):
            out[c, :] = np.nan
            _run_rank(market, scores, combos, settings, c, book,
                      Outputs(metrics=metrics, equity=out[c], cash=cash, units=units,
                              trades=no_trades), True, _no_holdings())
