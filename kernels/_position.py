"""One open position: its state, the bar it sees, the combo's rule row; entries, exits and
the risk rules' exits (docs/semantics.md, Fills and Risk rules)."""

from typing import NamedTuple

import numpy as np
from numba import njit

from sweepbt.kernels._core import Costs, book_trade, costs_of, fill, stop_take_levels, units_for
from sweepbt.kernels.codes import ENTER_LONG, ENTER_SHORT, EXIT_LONG, EXIT_SHORT
from sweepbt.kernels.enums import Direction, ExitReason, Rule


class Position(NamedTuple):
    """The open position (``direction`` 0: flat); all but the last three fixed at entry."""

    direction: int  # +1 long, -1 short, 0 flat
    units: float
    entry_bar: int
    entry_price: float  # the fill, slippage included
    entry_quote: float  # the quote it filled at
    entry_cost: float  # cash a long entry pays (the base of a trade's return)
    entry_net: float  # cash a short entry receives
    entry_commission: float  # the entry fill's commission (fixed fee included) and tax
    entry_tax: float
    stop: float  # stop and take levels (see stop_take_levels)
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
    size: float
    max_positions: float
    costs: Costs


class Closed(NamedTuple):
    """A round trip just closed (``reason`` -1: none): the position with its final path
    extremes, and its exit."""

    position: Position
    exit_bar: int
    exit_price: float  # the fill, slippage included
    exit_quote: float
    pnl: float
    reason: int  # an ExitReason value
    commission: float  # the round trip's commissions (fixed fees included) and taxes
    tax: float
    traded: float  # the notional of its fills (a mark is not a fill)


@njit(cache=True, inline="always")
def flat_position():
    return Position(direction=0, units=0.0, entry_bar=-1, entry_price=0.0, entry_quote=0.0,
                    entry_cost=0.0, entry_net=0.0, entry_commission=0.0, entry_tax=0.0,
                    stop=0.0, take=0.0, trail_frac=np.nan,
                    trail_offset=np.nan, time_exit=-1, extreme=0.0, exc_hi=0.0, exc_lo=0.0)


@njit(cache=True, inline="always")
def rule_row(rules, settings):
    """The RuleRow of a row of Combos.rules under a launch's SimSettings."""
    return RuleRow(stop_loss=rules[Rule.stop_loss], take_profit=rules[Rule.take_profit],
                   trailing_stop=rules[Rule.trailing_stop], stop_atr=rules[Rule.stop_atr],
                   take_atr=rules[Rule.take_atr], trailing_atr=rules[Rule.trailing_atr],
                   max_bars=rules[Rule.max_bars], size=rules[Rule.size],
                   max_positions=rules[Rule.max_positions],
                   costs=costs_of(rules, settings))


@njit(cache=True, inline="always")
def _with_path(p, extreme, exc_hi, exc_lo):
    """``p`` with new path extremes (the fields that move while it is open)."""
    return Position(direction=p.direction, units=p.units, entry_bar=p.entry_bar,
                    entry_price=p.entry_price, entry_quote=p.entry_quote,
                    entry_cost=p.entry_cost, entry_net=p.entry_net,
                    entry_commission=p.entry_commission, entry_tax=p.entry_tax, stop=p.stop,
                    take=p.take,
                    trail_frac=p.trail_frac, trail_offset=p.trail_offset,
                    time_exit=p.time_exit, extreme=extreme, exc_hi=exc_hi, exc_lo=exc_lo)


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
def order_sides(code, direction, pos):
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
def opens_position(code, direction):
    """Whether a signal code can open a position from flat under ``direction``."""
    return (_honoured(code, direction) & (ENTER_LONG | ENTER_SHORT)) != 0


@njit(cache=True, inline="always")
def _exposed(p, i, next_open):
    """Whether open position ``p`` held through bar ``i``'s range: it was open before the
    bar, or filled at its open (next_open); an entry at the close of ``i`` was not."""
    return next_open or p.entry_bar < i


@njit(cache=True, inline="always")
def levels_hit(p, o, h, lo):
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
def rule_exit(p, bar, next_open):
    """The risk rules of position ``p`` within ``bar`` (if it held through it), then the
    time exit at its close: (quote, reason, at_open, position held on): reason -1 when
    none fires, and then the position's trailing peak (long) or trough (short) has taken
    in the bar."""
    if p.direction == 0 or not _exposed(p, bar.i, next_open):
        return 0.0, -1, False, p
    quote, reason, at_open = levels_hit(p, bar.open, bar.high, bar.low)
    if reason < 0 and bar.i == p.time_exit:
        return bar.close, ExitReason.time, False, p
    extreme = max(p.extreme, bar.high) if p.direction > 0 else min(p.extreme, bar.low)
    return quote, reason, at_open, _with_path(p, extreme, p.exc_hi, p.exc_lo)


@njit(cache=True, inline="always")
def closed_trade(p, exit_bar, exit_price, exit_quote, pnl, reason, commission, tax, traded):
    return Closed(position=p, exit_bar=exit_bar, exit_price=exit_price,
                  exit_quote=exit_quote, pnl=pnl, reason=reason, commission=commission,
                  tax=tax, traded=traded)


@njit(cache=True, inline="always")
def none_closed():
    return closed_trade(flat_position(), -1, 0.0, 0.0, 0.0, -1, 0.0, 0.0, 0.0)


@njit(cache=True, _nrt=False)
def book_mark(ledger, p, bar, c, reason):
    """Book position ``p``, if open, marked at the close ``c`` of ``bar`` with no exit
    costs (the end of the data, or ruin); returns the flat position."""
    if p.direction != 0:
        pnl = p.units * c - p.entry_cost if p.direction > 0 else p.entry_net - p.units * c
        # the mark is part of the path, even for an entry at it
        book_trade(ledger, closed_trade(_with_path(p, p.extreme, max(p.exc_hi, c),
                                               min(p.exc_lo, c)), bar, c, c, pnl, reason,
                                        p.entry_commission, p.entry_tax,
                                        p.units * p.entry_price))
    return flat_position()


@njit(cache=True, _nrt=False)
def exit_position(p, bar, quote, reason, at_open, rule):
    """Close position ``p`` at ``quote`` on ``bar`` (at its open: ``at_open``):
    ``(cash change, Closed)``."""
    if at_open:
        exc_hi = max(p.exc_hi, bar.open)
        exc_lo = min(p.exc_lo, bar.open)
    else:
        exc_hi = max(p.exc_hi, bar.high)
        exc_lo = min(p.exc_lo, bar.low)
    done = fill(p.units, quote, p.direction < 0, rule.costs)
    pnl = done.cash - p.entry_cost if p.direction > 0 else p.entry_net + done.cash
    return done.cash, closed_trade(_with_path(p, p.extreme, exc_hi, exc_lo), bar.i,
                                   done.price, quote, pnl, reason,
                                   p.entry_commission + done.commission,
                                   p.entry_tax + done.tax,
                                   p.units * (p.entry_price + done.price))


@njit(cache=True, _nrt=False)
def enter(open_dir, i, quote, atr_at_signal, cash, rule):
    """Open a position on bar ``i`` at ``quote``: ``(position, cash change)``, its levels
    fixed at entry (see ``stop_take_levels``); the ATR-scaled rules use ``atr_at_signal``.

    The entry spends ``size * cash``, costs included (``units_for``); the position is
    flat when that buys no unit (the entry is skipped).
    """
    units = units_for(rule.size * cash, quote, open_dir > 0, rule.costs)
    if units <= 0.0:
        return flat_position(), 0.0
    done = fill(units, quote, open_dir > 0, rule.costs)
    price = done.price
    entry_cost = done.committed
    entry_net = done.cash  # a short sale's proceeds
    stop, take = stop_take_levels(open_dir, price, atr_at_signal, rule)
    max_bars = int(rule.max_bars)
    time_exit = i + max_bars if max_bars > 0 else -1  # not inside the call: numba's bytecode
    p = Position(direction=open_dir, units=units, entry_bar=i, entry_price=price,
                 entry_quote=quote, entry_cost=entry_cost, entry_net=entry_net,
                 entry_commission=done.commission, entry_tax=done.tax, stop=stop,
                 take=take, trail_frac=rule.trailing_stop,
                 trail_offset=rule.trailing_atr * atr_at_signal,
                 time_exit=time_exit, extreme=price,
                 exc_hi=price, exc_lo=price)
    return p, (-entry_cost if open_dir > 0 else entry_net)


@njit(cache=True, inline="always")
def mark_position(p, cash, bar, record, next_open):
    """Equity at the close of ``bar``, and the position: with ``record`` its price
    extremes (MFE/MAE) take in the bar's range when it held through it."""
    if p.direction == 0:
        return cash, p
    if record and _exposed(p, bar.i, next_open):
        p = _with_path(p, p.extreme, max(p.exc_hi, bar.high), min(p.exc_lo, bar.low))
    return cash + p.direction * p.units * bar.close, p
