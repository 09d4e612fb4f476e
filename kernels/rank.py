"""Rank-and-rebalance backtests: the best-scored assets held at target weights, traded
back to them on a schedule, one cash balance (docs/semantics.md, Rank-and-rebalance
strategies)."""

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from sweepbt.kernels._core import (
    Costs,
    DUST,
    Ledger,
    RETURN_BLOCK,
    book_trade,
    costs_of,
    fill,
    finish_metrics,
    gross_leverage,
    new_track,
    record_flat_book,
    shared_axis,
    stop_take_levels,
    track_flat,
    tracked,
    units_for,
)
from sweepbt.kernels._position import Position, RuleRow, closed_trade, levels_hit
from sweepbt.kernels.enums import (
    ExitReason,
    FillMode,
    Holdings,
    Metric,
    N_METRICS,
    N_RANK,
    N_RULES,
    N_TALLY,
    Outputs,
    RankRule,
    Rule,
    TRADE_DTYPE,
    Tally,
    Weighting,
)


class HoldT(NamedTuple):
    """Rows of ``RankBook.state``: per asset, the position from the fill that opens it to
    the fill that makes it flat (side 0: none), and two rebalance work rows."""

    side: int = 0  # +1 long, -1 short, 0 flat
    units: int = 1  # units held (>= 0)
    cost: int = 2  # average cost: units-weighted mean fill price of the units held
    extreme: int = 3  # trailing peak (long) / trough (short)
    stop: int = 4  # stop and take levels from the average cost (see stop_take_levels)
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
    commission: int = 15  # its fills' commissions (fixed fees included), taxes, notional
    tax: int = 16
    traded: int = 17
    exc_hi: int = 18  # highest and lowest price it was exposed to (recorded only)
    exc_lo: int = 19
    weight: int = 20  # target weight of the last rebalance
    delta: int = 21  # units a rebalance trades


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
    costs: Costs
    top_n: int
    bottom_n: int
    weighting: int
    position_limit: float  # inf: no cap


@njit(cache=True, inline="always")
def _rank_rules(rules, rank, settings):
    cap = rank[RankRule.position_limit]
    return RankRules(stop_loss=rules[Rule.stop_loss], take_profit=rules[Rule.take_profit],
                     trailing_stop=rules[Rule.trailing_stop],
                     max_bars=int(rules[Rule.max_bars]), costs=costs_of(rules, settings),
                     top_n=int(rank[RankRule.top_n]),
                     bottom_n=int(rank[RankRule.bottom_n]),
                     weighting=int(rank[RankRule.weighting]),
                     position_limit=cap if cap == cap else np.inf)


@njit(cache=True, inline="always")
def _level_rule(rr):
    """A RuleRow carrying only ``rr``'s percent stop and take (for ``stop_take_levels``)."""
    nan = np.nan
    return RuleRow(stop_loss=rr.stop_loss, take_profit=rr.take_profit, trailing_stop=nan,
                   stop_atr=nan, take_atr=nan, trailing_atr=nan, max_bars=0.0, size=1.0,
                   max_positions=0.0, costs=rr.costs)


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
                 entry_cost=st[Hold.committed, a], entry_net=0.0, entry_commission=0.0,
                 entry_tax=0.0, stop=st[Hold.stop, a],
                 take=st[Hold.take, a], trail_frac=np.nan, trail_offset=np.nan, time_exit=-1,
                 extreme=st[Hold.extreme, a], exc_hi=hi, exc_lo=lo)
    # a recording run without room for trades (equity paths) records none
    book_trade(Ledger(book.tally, out.trades, record and out.trades.shape[0] > 0, a),
                closed_trade(p, i, st[Hold.closed_value, a] / closed,
                             st[Hold.closed_quotes, a] / closed, st[Hold.cash_flow, a], reason,
                             st[Hold.commission, a], st[Hold.tax, a], st[Hold.traded, a]))
    st[Hold.side, a] = 0.0


@njit(cache=True, inline="always")
def _rank_fill(book, out, record, a, i, units, quote, rr, reason):
    """Fill ``units`` of asset ``a`` at ``quote`` on bar ``i`` (> 0 buy, < 0 sell), every
    cost by ``fill``. One side of one position per call (a flip is two calls). Returns the
    cash change; books the trade (``reason``) when the position becomes flat."""
    st = book.state
    side = st[Hold.side, a]
    if side != 0.0:
        _expose(st, a, quote, quote)
    u = abs(units)
    done = fill(u, quote, units > 0.0, rr.costs)
    price, flow = done.price, done.cash
    direction = 1.0 if units > 0.0 else -1.0
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
    st[Hold.commission, a] += done.commission
    st[Hold.tax, a] += done.tax
    st[Hold.traded, a] += u * price
    held = st[Hold.units, a]
    if side == direction:  # open or add: the average cost and its levels move
        cost = (held * st[Hold.cost, a] + u * price) / (held + u)
        st[Hold.cost, a] = cost
        st[Hold.units, a] = held + u
        st[Hold.opened_units, a] += u
        st[Hold.opened_value, a] += u * price
        st[Hold.opened_quotes, a] += u * quote
        st[Hold.committed, a] += done.committed
        stop, take = stop_take_levels(int(side), cost, np.nan, _level_rule(rr))
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
                     entry_quote=0.0, entry_cost=0.0, entry_net=0.0, entry_commission=0.0,
                     entry_tax=0.0, stop=st[Hold.stop, a],
                     take=st[Hold.take, a], trail_frac=rr.trailing_stop, trail_offset=np.nan,
                     time_exit=-1, extreme=st[Hold.extreme, a], exc_hi=0.0, exc_lo=0.0)
        quote, reason, at_open = levels_hit(p, o, h, lo)
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
            affordable = units_for(cash, q, True, rr.costs)
            if affordable * q <= DUST * equity:
                break
            units = min(leg, affordable)
            now = st[Hold.side, a] * st[Hold.units, a]
            if units * q <= rr.costs.fixed_fees and not (now < 0.0 and units >= -now):
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
            lot = rr.costs.lot_size
            if lot > 0.0:  # whole lots, toward zero
                target = math.trunc(target / lot) * lot
            d = target - held
            notional = abs(d) * q
            fixed_fees = rr.costs.fixed_fees
            if notional <= DUST * equity or (target != 0.0 and notional <= fixed_fees):
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
        if d < 0.0 and -d * q > max(DUST * equity, rr.costs.fixed_fees):
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

    The bars run as in ``simulate_portfolio`` (``shared_axis``). At each bar: (1) with
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
    axis_start, axis_end = shared_axis(market.start, market.end)
    at_close = settings.fill == FillMode.close
    rr = _rank_rules(rules, rank, settings)
    rules_on = _has_rules(rr)
    cash = settings.init_cash
    t = new_track(cash)
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
        exposure += gross_leverage(gross, equity)
        t = tracked(book.buf, t, equity)
        if record:
            out.equity[i] = equity
            out.cash[i] = cash
        if equity <= 0.0:
            t = _rank_ruin(market, book, out, record, i, n_held, axis_end, t)
            n_held = 0
            if pending >= 0 and keep:
                holdings.bar[pending] = -1  # it never traded
            break
    if n_held > 0:
        _rank_all_marked(market, book, out, record, axis_end - 1, n_held, ExitReason.end)
    finish_metrics(out.metrics, book.tally, settings, book.buf, t, exposure)
    out.metrics[Metric.turnover] = turn.total / turn.n if turn.n > 0 else np.nan
    return int(book.tally[Tally.trades])


@njit(cache=True, _nrt=False)
def _rank_ruin(market, book, out, record, i, n_held, axis_end, t):
    """Ruin at bar ``i``'s close: every position booked at the close (``ruin``), the
    account flat at this equity for the rest of the bars: the Track to finish with."""
    book.tally[Tally.ruined] = 1.0
    _rank_all_marked(market, book, out, record, i, n_held, ExitReason.ruin)
    if record:
        record_flat_book(out, i + 1, axis_end, t.prev)
    return track_flat(book.buf, t, axis_end - i - 1)


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
