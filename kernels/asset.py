"""Per-asset backtests: one pass over one asset's bars, and the prange drivers of a
sweep (metrics only), a recorded backtest and equity paths."""

import numpy as np
from numba import njit, prange

from sweepbt.kernels._core import (
    Ledger,
    RETURN_BLOCK,
    book_trade,
    check_launch,
    finish_metrics,
    new_track,
    record_flat,
    track_flat,
    tracked,
)
from sweepbt.kernels._position import (
    Bar,
    book_mark,
    enter,
    exit_position,
    flat_position,
    mark_position,
    none_closed,
    opens_position,
    order_sides,
    rule_exit,
    rule_row,
)
from sweepbt.kernels.enums import (
    Bars,
    ExitReason,
    FillMode,
    N_METRICS,
    N_TALLY,
    Outputs,
    Scratch,
    Signals,
    TRADE_DTYPE,
    Tally,
)


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
    return bar < i or not opens_position(code, direction)


@njit(cache=True, inline="always")
def _act(p, cash, code, at_open, may_open, bar, atr_at_signal, direction, rule):
    """Carry out signal ``code`` on ``bar``, at its open (``at_open``: a next_open order)
    or at its close: ``(position, cash, Closed)`` (the Closed's reason is -1 when nothing
    closed). ``may_open`` False: close only. An entry sizes its ATR rules by
    ``atr_at_signal``.
    """
    close_now, open_dir = order_sides(code, direction, p.direction)
    quote = bar.open if at_open else bar.close
    closed = none_closed()
    if close_now:
        cash_change, closed = exit_position(p, bar, quote, ExitReason.signal, at_open, rule)
        cash += cash_change
        p = flat_position()
    if open_dir != 0 and may_open:
        q, cash_change = enter(open_dir, bar.i, quote, atr_at_signal, cash, rule)
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
        return p, cash, none_closed(), (code if bar.i + 1 < end else 0)
    p, cash, closed = _act(p, cash, code, False, may_open, bar, atr_at_signal,
                           settings.direction, rule)
    return p, cash, closed, 0


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
    rule = rule_row(rules, settings)
    end = bars.end
    n_events = signals.bar.shape[0]

    cash = settings.init_cash
    p = flat_position()
    pending = 0  # next_open: the signal waiting for the next bar's open
    bars_exposed = 0
    t = new_track(settings.init_cash)  # the returns' statistics (scratch.buf: waiting ones)

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
                t = track_flat(scratch.buf, t, j - i)
                if record:
                    record_flat(out, i, j, cash)
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
                book_trade(ledger, closed)

        # 2. risk rules, then the time exit at the close
        quote, reason, at_open, held = rule_exit(p, bar, next_open)
        ruled_out = reason >= 0  # no entry at this close after a rule exit
        if ruled_out:
            cash_change, closed = exit_position(p, bar, quote, reason, at_open, rule)
            cash += cash_change
            book_trade(ledger, closed)
            p = flat_position()
        else:
            p = held

        # 3. the strategy's signal at the close
        if e < n_events and signals.bar[e] == i:
            p, cash, closed, pending = _at_close(p, cash, signals.code[e], not ruled_out, bar,
                                                 bars.atr[i], end, settings, rule)
            e += 1
            if closed.reason >= 0:
                book_trade(ledger, closed)

        # 4. mark to market at the close, and fold the bar's return into the statistics
        equity, p = mark_position(p, cash, bar, record, next_open)
        bars_exposed += p.direction != 0  # a position open at the close
        t = tracked(scratch.buf, t, equity)
        if record:
            out.equity[i] = equity
            out.cash[i] = cash
            out.units[i] = p.direction * p.units
        if equity <= 0.0:
            # ruin: the position is closed at this close like an end-of-data mark; the
            # account stays flat at this equity for the rest of the span (zero returns)
            ledger.tally[Tally.ruined] = 1.0
            p = book_mark(ledger, p, i, bar.close, ExitReason.ruin)
            if record:
                record_flat(out, i + 1, end, equity)
            t = track_flat(scratch.buf, t, end - i - 1)
            break
        i += 1

    # a position still open at the end is marked at the last close, with no exit costs
    if p.direction != 0:
        book_mark(ledger, p, end - 1, bars.close[end - 1], ExitReason.end)
    finish_metrics(out.metrics, ledger.tally, settings, scratch.buf, t, bars_exposed)
    return int(ledger.tally[Tally.trades])


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
    check_launch(market, atr_bank, combos, n_pairs)
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
    check_launch(market, atr_bank, combos, pair + 1)
    return _run_pair(market, events, atr_bank, combos, settings, pair, _scratch(), out, True)


@njit(parallel=True, cache=True)
def equity_paths(market, events, atr_bank, combos, settings, out):
    """Per-bar equity of every (combo, asset) pair into ``out[p]`` (NaN outside the span).

    Pairs as in ``sweep_metrics``; ``out`` is ``(n_pairs, n_bars)``. Scratch (cash, units,
    trades) is allocated once per task, not per backtest.
    """
    n_bars = market.close.shape[1]
    n_pairs = out.shape[0]
    check_launch(market, atr_bank, combos, n_pairs)
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
