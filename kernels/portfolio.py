"""Portfolio backtests: every asset of the Bundle, one cash balance (docs/semantics.md,
Portfolio backtests)."""

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from sweepbt.kernels._core import (
    DUST,
    Ledger,
    RETURN_BLOCK,
    book_trade,
    check_launch,
    finish_metrics,
    gross_leverage,
    new_track,
    record_flat_book,
    shared_axis,
    track_flat,
    tracked,
)
from sweepbt.kernels._position import (
    Bar,
    Position,
    RuleRow,
    book_mark,
    enter,
    exit_position,
    flat_position,
    mark_position,
    opens_position,
    order_sides,
    rule_exit,
    rule_row,
)
from sweepbt.kernels.enums import (
    ExitReason,
    FillMode,
    N_METRICS,
    N_TALLY,
    Outputs,
    SizeType,
    TRADE_DTYPE,
    Tally,
)


class ColumnT(NamedTuple):
    """Columns of ``Book.positions``: an open Position's fields as floats, in order (ints
    are exact below 2**53)."""

    direction: int = 0
    units: int = 1
    entry_bar: int = 2
    entry_price: int = 3
    entry_quote: int = 4
    entry_cost: int = 5
    entry_net: int = 6
    entry_commission: int = 7
    entry_tax: int = 8
    stop: int = 9
    take: int = 10
    trail_frac: int = 11
    trail_offset: int = 12
    time_exit: int = 13
    extreme: int = 14
    exc_hi: int = 15
    exc_lo: int = 16


Col = ColumnT()
N_POSITION = len(ColumnT._fields)
if ColumnT._fields != Position._fields:
    raise AssertionError("Book.positions' columns must be Position's fields, in order")
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
    return Position(direction=int(positions[a, Col.direction]), units=positions[a, Col.units],
                    entry_bar=int(positions[a, Col.entry_bar]), entry_price=positions[a, Col.entry_price],
                    entry_quote=positions[a, Col.entry_quote], entry_cost=positions[a, Col.entry_cost],
                    entry_net=positions[a, Col.entry_net],
                    entry_commission=positions[a, Col.entry_commission],
                    entry_tax=positions[a, Col.entry_tax], stop=positions[a, Col.stop], take=positions[a, Col.take],
                    trail_frac=positions[a, Col.trail_frac], trail_offset=positions[a, Col.trail_offset],
                    time_exit=int(positions[a, Col.time_exit]), extreme=positions[a, Col.extreme],
                    exc_hi=positions[a, Col.exc_hi], exc_lo=positions[a, Col.exc_lo])


@njit(cache=True, inline="always")
def _store(positions, a, p):
    """Write Position ``p`` to asset ``a``'s row of ``positions``."""
    positions[a, Col.direction] = p.direction
    positions[a, Col.units] = p.units
    positions[a, Col.entry_bar] = p.entry_bar
    positions[a, Col.entry_price] = p.entry_price
    positions[a, Col.entry_quote] = p.entry_quote
    positions[a, Col.entry_cost] = p.entry_cost
    positions[a, Col.entry_net] = p.entry_net
    positions[a, Col.entry_commission] = p.entry_commission
    positions[a, Col.entry_tax] = p.entry_tax
    positions[a, Col.stop] = p.stop
    positions[a, Col.take] = p.take
    positions[a, Col.trail_frac] = p.trail_frac
    positions[a, Col.trail_offset] = p.trail_offset
    positions[a, Col.time_exit] = p.time_exit
    positions[a, Col.extreme] = p.extreme
    positions[a, Col.exc_hi] = p.exc_hi
    positions[a, Col.exc_lo] = p.exc_lo


@njit(cache=True, inline="always")
def _unit_sized(rule):
    """``rule`` with ``size`` 1: ``enter`` then spends exactly the cash it is given."""
    return RuleRow(stop_loss=rule.stop_loss, take_profit=rule.take_profit,
                   trailing_stop=rule.trailing_stop, stop_atr=rule.stop_atr,
                   take_atr=rule.take_atr, trailing_atr=rule.trailing_atr,
                   max_bars=rule.max_bars, size=1.0, max_positions=rule.max_positions,
                   costs=rule.costs)


@njit(cache=True, inline="always")
def _bar_of(market, a, i):
    return Bar(i=i, open=market.open[a, i], high=market.high[a, i], low=market.low[a, i],
               close=market.close[a, i])


@njit(cache=True, inline="always")
def _book_closed(book, out, record, a, closed):
    """Book asset ``a``'s closed round trip; mark it flat in ``book``."""
    book_trade(Ledger(book.tally, out.trades, record, a), closed)
    book.positions[a, Col.direction] = 0.0


@njit(cache=True, inline="always")
def _book_marked(book, out, record, a, i, c, reason):
    """Book asset ``a``'s open position marked at close ``c`` of bar ``i`` with no exit
    costs (the end of the data, or ruin)."""
    book_mark(Ledger(book.tally, out.trades, record, a), _load(book.positions, a), i, c,
               reason)
    book.positions[a, Col.direction] = 0.0


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
        while e < hi and (events.bar[e] < lo or not opens_position(events.code[e], direction)):
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
        d = positions[a, Col.direction]
        if d != 0.0:
            quote = market.open[a, i] if at_open else market.close[a, i]
            equity += d * positions[a, Col.units] * quote
            gross += positions[a, Col.units] * quote
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
        return flat_position(), fund
    target = rule.size * sizing if settings.size_type == SizeType.equity else rule.size
    budget = min(target, fund.equity - fund.gross)
    if budget - rule.costs.fixed_fees <= DUST * max(sizing, 0.0):
        return flat_position(), fund  # nothing left to spend but rounding residue
    quote = bar.open if at_open else bar.close
    p, cash_change = enter(open_dir, bar.i, quote, atr_at_signal, budget, _unit_sized(rule))
    if p.units > 0.0:
        return p, Fund(cash=fund.cash + cash_change,
                       equity=fund.equity + cash_change + open_dir * p.units * quote,
                       gross=fund.gross + p.units * quote, n_open=fund.n_open + 1)
    return flat_position(), fund


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
        if book.positions[a, Col.direction] != 0.0 or book.ruled[a] == i:
            continue
        if not at_open and i == market.end[a] - 1 and market.end[a] < axis_end:
            continue  # delisted at this close: an entry now would close at once
        _, open_dir = order_sides(code, direction, 0)
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
        if code == 0 or book.positions[a, Col.direction] == 0.0:
            continue
        p = _load(book.positions, a)
        close_now, _ = order_sides(code, direction, p.direction)
        if close_now:
            cash_change, closed = exit_position(p, _bar_of(market, a, i), market.open[a, i],
                                        ExitReason.signal, True, rule)
            cash += cash_change
            _book_closed(book, out, record, a, closed)
            n_open -= 1
    return cash, n_open


@njit(cache=True, inline="always")
def _inside(positions, a, i, low, high):
    """Whether asset ``a``'s open position, its stop and take fixed at entry, held through
    bar ``i`` (range ``low..high``, which holds the open) with neither level touched and
    no time exit at this bar (see ``levels_hit``: a long fires at ``low <= stop`` or
    ``high >= take``, a short at ``high >= stop`` or ``low <= take``)."""
    stop, take = positions[a, Col.stop], positions[a, Col.take]
    if positions[a, Col.time_exit] == i:
        return False
    if positions[a, Col.direction] > 0.0:
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
        if (due[a] > i and positions[a, Col.direction] == 0.0) or i < start[a] or i >= end[a]:
            continue  # flat with no signal due (the common case first), or outside its span
        code = _signal_at(ev_bar, ev_code, cursor, cursor_end, due, a, i)
        if code == 0 and (positions[a, Col.direction] == 0.0 or held_rules == HELD_NO_RULE
                          or (held_rules == HELD_FIXED
                              and _inside(positions, a, i, lows[a, i], highs[a, i]))):
            continue
        bar = Bar(i=i, open=opens[a, i], high=highs[a, i], low=lows[a, i], close=closes[a, i])
        p = _load(positions, a)
        quote, reason, at_open, held = rule_exit(p, bar, next_open)
        if reason >= 0:
            cash_change, closed = exit_position(p, bar, quote, reason, at_open, rule)
            cash += cash_change
            _book_closed(book, out, record, a, closed)
            ruled[a] = i
            n_open -= 1
            p = flat_position()
        elif p.direction != 0:
            positions[a, Col.extreme] = held.extreme  # the one field a bar held through moves
            p = held
        if code == 0:
            continue
        if not next_open:
            close_now, _ = order_sides(code, direction, p.direction)
            if close_now:
                cash_change, closed = exit_position(p, bar, bar.close, ExitReason.signal, False, rule)
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
        d = positions[a, Col.direction]
        if d == 0.0:
            if record:
                out.units[a, i] = 0.0
            continue
        c = closes[a, i]
        if i == end[a] - 1 and i < axis_end - 1:
            cash_change, closed = exit_position(_load(positions, a), _bar_of(market, a, i), c,
                                        ExitReason.delist, False, rule)
            cash += cash_change
            _book_closed(book, out, record, a, closed)
            n_open -= 1
            if record:
                out.units[a, i] = 0.0
            continue
        units = positions[a, Col.units]
        value += d * units * c
        gross += units * c
        if record:
            out.units[a, i] = d * units
            _, p = mark_position(_load(positions, a), 0.0, _bar_of(market, a, i), True, next_open)
            _store(positions, a, p)
    return cash, n_open, cash + value, gross


@njit(cache=True, inline="always")
def _book_all_marked(market, book, out, record, i, reason):
    """Book every open position marked at bar ``i``'s close (no exit costs)."""
    for a in range(book.positions.shape[0]):
        if book.positions[a, Col.direction] != 0.0:
            _book_marked(book, out, record, a, i, market.close[a, i], reason)


@njit(cache=True, inline="always")
def _reset_book(book, events, row0):
    book.tally[:] = 0.0
    book.positions[:, Col.direction] = 0.0
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


@njit(cache=True, _nrt=False)
def simulate_portfolio(market, events, row0, atr, rules, settings, book, out, record):
    """Run one portfolio backtest over every asset of ``market`` with one cash balance;
    return its trade count.

    The portfolio's bars run from the first start to the last end of the assets with a
    non-empty span (``shared_axis``); asset ``a`` trades inside its
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
    axis_start, axis_end = shared_axis(market.start, market.end)
    next_open = settings.fill == FillMode.next_open
    rule = rule_row(rules, settings)
    held_rules = _held_rules(rule)
    cash = settings.init_cash
    n_open = 0
    waiting = 0  # next_open orders queued at the last close
    t = new_track(cash)  # the returns' statistics (book.buf: waiting ones)
    exposure = 0.0
    i = axis_start
    while i < axis_end:
        if n_open == 0 and waiting == 0:
            j = _next_opening_bar(events, book, market, i, axis_end, settings.direction)
            if j > i:
                t = track_flat(book.buf, t, j - i)
                if record:
                    record_flat_book(out, i, j, cash)
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
        exposure += gross_leverage(gross, equity)
        t = tracked(book.buf, t, equity)
        if record:
            out.equity[i] = equity
            out.cash[i] = cash
        if equity <= 0.0:
            book.tally[Tally.ruined] = 1.0
            _book_all_marked(market, book, out, record, i, ExitReason.ruin)
            if record:
                record_flat_book(out, i + 1, axis_end, equity)
            t = track_flat(book.buf, t, axis_end - i - 1)
            break
        i += 1
    if book.tally[Tally.ruined] == 0.0 and axis_end > axis_start:
        _book_all_marked(market, book, out, record, axis_end - 1, ExitReason.end)
    finish_metrics(out.metrics, book.tally, settings, book.buf, t, exposure)
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
    check_launch(market, atr_bank, combos, n_combos)
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
    check_launch(market, atr_bank, combos, combo + 1)
    return _run_portfolio(market, events, atr_bank, combos, settings, combo,
                          _new_book(market.close.shape[0]), out, True)


@njit(parallel=True, cache=True)
def portfolio_equity_paths(market, events, atr_bank, combos, settings, out):
    """Per-bar portfolio equity of every combo into ``out[c]`` ``(n_combos, n_bars)``
    (NaN outside the portfolio's bars)."""
    n_assets, n_bars = market.close.shape
    n_combos = out.shape[0]
    check_launch(market, atr_bank, combos, n_combos)
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
