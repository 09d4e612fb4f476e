"""Pure-Python reference simulator for portfolio backtests (one cash balance, many assets).

The slow, obviously-correct implementation of docs/semantics.md, "Portfolio backtests",
written from that text and sharing no code with ``sweepbt`` (nothing is imported from the
package). It reuses the per-asset reference (tests/reference.py) only for what the two
modes share by definition: what a signal code does to a position (``_decide``) and the
metric formulas (``reference_metrics``). Every quantity is a plain Python float; the
simulation walks the portfolio axis one bar at a time, in the order of the semantics page:

    1. next_open: queued exits at the open (asset order), then queued entries (asset order)
    2. risk rules of each open position (stop / trail / take, then the time exit)
    3. signals at the close: next_open queues them; close fills exits, then entries
    4. delisting of assets whose span ends here (exit costs paid), end mark at the last bar
    5. mark to market at the close
    6. ruin when equity <= 0

Bars are indices of the Bundle's axis; asset ``a`` trades on ``start[a] <= i < end[a]``;
the portfolio axis is ``P0 = min(start) .. P1 - 1``, ``P1 = max(end)``.
"""

import math

from reference import (FLAT, LONG, NAN, SHORT, Costs, _decide, cost_metrics,
                       reference_metrics)

#: an entry whose budget after fixed fees is at most this fraction of E is skipped: what
#: is left of a cash balance spent to the cent by floating-point rounding is not money
DUST = 1e-9

EXIT_REASONS = ("signal", "stop", "take", "trail", "time", "end", "ruin", "delist")


def _defined(x):
    return x is not None and x == x


class _Position:
    """One open position: its side, size, entry and the risk levels fixed at entry."""

    def __init__(self, side, units, bar, quote, price, atr_at_entry, rules):
        self.side = side
        # what the entry fill moved (set by _Book.open): the cash committed (n + c +
        # fixed_fees, the trade's return), a short's proceeds, commission and tax paid
        self.committed = self.entry_received = NAN
        self.entry_commission = self.entry_tax = 0.0
        self.units = units  # positive amount held; the sign lives in `side`
        self.entry_bar = bar
        self.entry_quote = quote
        self.entry_price = price
        self.extreme = price  # peak (long) / trough (short) for the trailing stops
        self.exc_high = None  # highest / lowest price exposed to (mfe, mae)
        self.exc_low = None
        stops, takes = [], []
        sign = 1.0 if side == LONG else -1.0
        if rules["stop_loss"] is not None:
            stops.append(price * (1.0 - sign * rules["stop_loss"]))
        if rules["take_profit"] is not None:
            takes.append(price * (1.0 + sign * rules["take_profit"]))
        self.trail_offset = None
        if atr_at_entry is not None:  # ATR rules inactive when the ATR is undefined
            if rules["stop_atr"] is not None:
                stops.append(price - sign * rules["stop_atr"] * atr_at_entry)
            if rules["take_atr"] is not None:
                takes.append(price + sign * rules["take_atr"] * atr_at_entry)
            if rules["trailing_atr"] is not None:
                self.trail_offset = rules["trailing_atr"] * atr_at_entry
        tighter_stop, tighter_take = (max, min) if side == LONG else (min, max)
        self.fixed_stop = tighter_stop(stops) if stops else None
        self.take_level = tighter_take(takes) if takes else None

    def expose(self, hi, lo):
        self.exc_high = hi if self.exc_high is None else max(self.exc_high, hi)
        self.exc_low = lo if self.exc_low is None else min(self.exc_low, lo)

    def excursions(self, fallback):
        hi, lo = self.exc_high, self.exc_low
        if hi is None:  # never exposed to a bar (fill='close' entry on the last bar)
            hi = lo = fallback
        if self.side == LONG:
            return max(0.0, hi / self.entry_price - 1.0), max(0.0, 1.0 - lo / self.entry_price)
        return max(0.0, 1.0 - lo / self.entry_price), max(0.0, hi / self.entry_price - 1.0)

    def stop_level(self, trailing_stop):
        """(level, reason) of the stop checked now: the tighter of fixed and trailing."""
        trails = []
        if self.side == LONG:
            if trailing_stop is not None:
                trails.append(self.extreme * (1.0 - trailing_stop))
            if self.trail_offset is not None:
                trails.append(self.extreme - self.trail_offset)
            trail = max(trails) if trails else None
            fixed_wins = lambda f, t: f >= t  # noqa: E731 - the higher stop applies
        else:
            if trailing_stop is not None:
                trails.append(self.extreme * (1.0 + trailing_stop))
            if self.trail_offset is not None:
                trails.append(self.extreme + self.trail_offset)
            trail = min(trails) if trails else None
            fixed_wins = lambda f, t: f <= t  # noqa: E731 - the lower stop applies
        if self.fixed_stop is not None and trail is not None:
            if fixed_wins(self.fixed_stop, trail):
                return self.fixed_stop, "stop"
            return trail, "trail"
        if self.fixed_stop is not None:
            return self.fixed_stop, "stop"
        if trail is not None:
            return trail, "trail"
        return None, None

    def check_bar(self, o, h, lo, trailing_stop):
        """Stop / take check of one bar: (exit quote, reason) or (None, None).

        Records the prices the position was exposed to, and moves the trailing extreme to
        the bar's high (low) after the check when the position survives it."""
        level, reason = self.stop_level(trailing_stop)
        take = self.take_level
        if self.side == LONG:
            adverse_open = level is not None and o <= level
            favourable_open = take is not None and o >= take
            adverse_in = level is not None and lo <= level
            favourable_in = take is not None and h >= take
        else:
            adverse_open = level is not None and o >= level
            favourable_open = take is not None and o <= take
            adverse_in = level is not None and h >= level
            favourable_in = take is not None and lo <= take
        if adverse_open or favourable_open:
            self.expose(o, o)
            return (o, reason) if adverse_open else (o, "take")
        self.expose(h, lo)
        if adverse_in:
            return level, reason
        if favourable_in:
            return take, "take"
        self.extreme = max(self.extreme, h) if self.side == LONG else min(self.extreme, lo)
        return None, None


class _Book:
    """The shared account: cash, the open positions by asset, the trades booked."""

    def __init__(self, init_cash, costs):
        self.cash = init_cash
        self.positions = {}  # asset -> _Position
        self.trades = []
        self.costs = costs  # reference.Costs
        self.fees, self.fixed_fees, self.slippage = costs.fees, costs.fixed_fees, costs.slippage

    def side(self, a):
        pos = self.positions.get(a)
        return FLAT if pos is None else pos.side

    def valued(self, quote_of):
        """(equity, gross) with every open position valued at ``quote_of(asset)``."""
        equity, gross = self.cash, 0.0
        for a, pos in self.positions.items():
            value = pos.units * quote_of(a)
            equity += value if pos.side == LONG else -value
            gross += value
        return equity, gross

    def _book(self, a, pos, bar, quote, price, pnl, reason, commission=0.0, tax=0.0):
        committed = pos.committed
        mfe, mae = pos.excursions(quote)
        self.trades.append({
            "asset": a, "direction": pos.side, "entry_bar": pos.entry_bar, "exit_bar": bar,
            "entry_price": pos.entry_price, "exit_price": price,
            "entry_quote": pos.entry_quote, "exit_quote": quote, "units": pos.units,
            "pnl": pnl, "return": pnl / committed, "exit_reason": reason,
            "mfe": mfe, "mae": mae,
            "commission": pos.entry_commission + commission, "tax": pos.entry_tax + tax,
        })
        del self.positions[a]

    def close(self, a, bar, quote, reason):
        """Exit asset ``a`` at ``quote`` with slippage and fees (a real sale / purchase)."""
        pos = self.positions[a]
        u, costs = pos.units, self.costs
        if pos.side == LONG:
            p = costs.price(quote, False)
            received, commission, tax = costs.sell(u, p)
            self.cash = self.cash + received
            pnl = received - pos.committed
        else:
            p = costs.price(quote, True)
            paid, commission = costs.buy(u, p)
            tax = 0.0
            self.cash = costs.pay(self.cash, u, p)
            pnl = pos.entry_received - paid
        self._book(a, pos, bar, quote, p, pnl, reason, commission, tax)

    def mark(self, a, bar, quote, reason):
        """Book asset ``a`` at ``quote`` with no exit costs (the `end` and `ruin` trades)."""
        pos = self.positions[a]
        u = pos.units
        if pos.side == LONG:
            pnl = u * quote - pos.committed
            self.cash += u * quote
        else:
            pnl = pos.entry_received - u * quote
            self.cash -= u * quote
        self._book(a, pos, bar, quote, quote, pnl, reason)

    def open(self, a, side, bar, quote, budget, atr_at_entry, rules, dust):
        """Enter ``side`` on asset ``a`` at ``quote`` spending at most ``budget`` (costs
        included): the largest units whose notional and charge fit it (a short's with its
        tax), rounded down to a lot. Skipped (False) when nothing fits or the notional is
        at most ``dust``."""
        costs = self.costs
        p = costs.price(quote, side == LONG)
        u = costs.units(budget, p, sale=side == SHORT)
        if not costs.plain or costs.lot_size > 0.0 or side == SHORT and costs.tax > 0.0:
            if u <= 0.0 or u * p <= dust:  # a minimum fee or a lot left nothing (or dust)
                return False
        pos = _Position(side, u, bar, quote, p, atr_at_entry, rules)
        pos.committed = costs.committed(u, p, side == LONG)
        pos.entry_commission = costs.buy(u, p)[1]
        if side == LONG:
            if costs.plain and costs.lot_size == 0.0:
                self.cash = self.cash - budget  # u * p * (1 + fees) + ff, exactly the budget
            else:
                self.cash = costs.pay(self.cash, u, p)
        else:
            pos.entry_received, pos.entry_commission, pos.entry_tax = costs.sell(u, p)
            self.cash = self.cash + pos.entry_received
        self.positions[a] = pos
        return True


def _check_inputs(fill, direction, size, size_type, max_positions, init_cash):
    if fill not in ("next_open", "close"):
        raise ValueError("fill must be 'next_open' or 'close'")
    if direction not in ("long", "short", "both"):
        raise ValueError("direction must be 'long', 'short' or 'both'")
    if size_type == "equity":
        if not 0.0 < size <= 1.0:
            raise ValueError("size_type='equity' needs 0 < size <= 1")
    elif size_type == "value":
        if not 0.0 < size <= init_cash:
            raise ValueError("size_type='value' needs 0 < size <= init_cash")
    else:
        raise ValueError("size_type must be 'equity' or 'value'")
    if max_positions is not None and (int(max_positions) != max_positions or max_positions < 1):
        raise ValueError("max_positions must be an integer >= 1 or None")


def reference_portfolio(open, high, low, close, start, end, codes, atr, *, fill="next_open",
                        direction="long", init_cash=10_000.0, size=1.0, size_type="equity",
                        max_positions=None, stop_loss=None, take_profit=None,
                        trailing_stop=None, stop_atr=None, take_atr=None, trailing_atr=None,
                        max_bars=None, fees=0.0, fixed_fees=0.0, slippage=0.0,
                        fees_per_share=0.0, min_fees=0.0, max_fees=0.0, tax=0.0, lot_size=0.0,
                        commission=None,
                        periods_per_year=252.0):
    """Backtest all assets as ONE account, exactly as docs/semantics.md "Portfolio backtests".

    ``open, high, low, close``: (n_assets, n_bars) prices on the Bundle axis (NaN outside
    each span); ``start``, ``end``: each asset's trade span; ``codes``: (n_assets, n_bars)
    signal codes (0 none; the bits of sweepbt's signal codes), read only inside the span;
    ``atr``: (n_assets, n_bars) the ATR row each asset's ATR rules read (NaN undefined).

    Costs: every fill pays :class:`reference.Costs` (``fees``, ``fixed_fees``,
    ``slippage``, ``fees_per_share``, ``min_fees``, ``max_fees``, ``tax`` on every sale,
    ``lot_size``); an entry takes the largest units whose notional and charge fit its
    budget, and is skipped when none (or dust) does.

    Returns a dict: ``equity``, ``cash`` (n_bars lists, NaN outside [P0, P1)), ``units``
    (n_assets lists of n_bars, signed, NaN outside [P0, P1)), ``trades`` (dicts: asset,
    direction +1/-1, bars on the Bundle axis, prices, units, pnl, return, exit_reason, mfe,
    mae, commission, tax; in booking order), ``assets`` (per asset: pnl, n_trades,
    win_rate) and ``metrics`` (plus ``costs``: every commission, fixed fee and tax paid).
    """
    o = [[float(x) for x in row] for row in open]
    h = [[float(x) for x in row] for row in high]
    lo = [[float(x) for x in row] for row in low]
    c = [[float(x) for x in row] for row in close]
    sig = [[int(x) for x in row] for row in codes]
    atr = [[float(x) if _defined(x) else None for x in row] for row in atr]
    start = [int(s) for s in start]
    end = [int(e) for e in end]
    n_assets, n_bars = len(c), len(c[0])
    size, init_cash = float(size), float(init_cash)
    _check_inputs(fill, direction, size, size_type, max_positions, init_cash)
    rules = {"stop_loss": stop_loss, "take_profit": take_profit, "stop_atr": stop_atr,
             "take_atr": take_atr, "trailing_atr": trailing_atr}
    book = _Book(init_cash, Costs(fees=fees, fixed_fees=fixed_fees, slippage=slippage,
                                  fees_per_share=fees_per_share, min_fees=min_fees,
                                  max_fees=max_fees, tax=tax, lot_size=lot_size,
                                  commission=commission))
    live = [a for a in range(n_assets) if start[a] < end[a]]  # a window may miss a span
    if not live:
        raise ValueError("no asset has a bar to trade (every span is empty)")
    p0, p1 = min(start[a] for a in live), max(end[a] for a in live)

    def enter_all(entries, bar, quotes, atr_bar):
        """Fill the entries of one fill time, in asset order, all sized from one E."""
        quote_of = lambda a: quotes[a][bar]  # noqa: E731
        equity_e, _ = book.valued(quote_of)
        for a, side in entries:
            if max_positions is not None and len(book.positions) >= max_positions:
                continue
            target = size * equity_e if size_type == "equity" else size
            equity_now, gross_now = book.valued(quote_of)
            budget = min(target, equity_now - gross_now)
            if budget - book.fixed_fees <= DUST * max(equity_e, 0.0):  # nothing, or residue
                continue
            book.open(a, side, bar, quotes[a][bar], budget, atr[a][atr_bar], rules,
                      DUST * max(equity_e, 0.0))

    def in_span(a, i):
        return start[a] <= i < end[a]

    equity = [NAN] * n_bars
    cash = [NAN] * n_bars
    units = [[NAN] * n_bars for _ in range(n_assets)]
    exposure = []  # G / equity at each close of [P0, P1)
    pending = {}  # next_open: asset -> code left by the previous close
    ruined = False

    for i in range(p0, p1):
        if ruined:  # flat at the ruin bar's equity, trading no more
            equity[i] = cash[i] = book.cash
            for a in range(n_assets):
                units[a][i] = 0.0
            exposure.append(0.0)
            continue

        # 1. next_open: queued exits, then queued entries, at this bar's opens
        if fill == "next_open" and pending:
            orders = [(a, _decide(pending[a], direction, book.side(a))) for a in sorted(pending)]
            pending = {}
            for a, (close_now, _) in orders:
                if close_now:
                    book.positions[a].expose(o[a][i], o[a][i])
                    book.close(a, i, o[a][i], "signal")
            enter_all([(a, side) for a, (_, side) in orders if side != FLAT], i, o, i - 1)

        # 2. risk rules per open position, in asset order
        rule_exit = set()
        for a in sorted(book.positions):
            pos = book.positions[a]
            if fill == "close" and pos.entry_bar == i:
                continue
            quote, reason = pos.check_bar(o[a][i], h[a][i], lo[a][i], trailing_stop)
            if quote is not None:
                book.close(a, i, quote, reason)
                rule_exit.add(a)
            elif max_bars is not None and i == pos.entry_bar + max_bars:
                book.close(a, i, c[a][i], "time")
                rule_exit.add(a)

        # 3. signals at the close
        due = [a for a in range(n_assets) if in_span(a, i) and sig[a][i] != 0]
        if fill == "next_open":
            pending = {a: sig[a][i] for a in due if i < end[a] - 1}
        else:
            orders = [(a, _decide(sig[a][i], direction, book.side(a))) for a in due]
            for a, (close_now, _) in orders:
                if close_now:
                    book.close(a, i, c[a][i], "signal")
            delisting = lambda a: i == end[a] - 1 and end[a] < p1  # noqa: E731
            enter_all([(a, side) for a, (_, side) in orders
                       if side != FLAT and a not in rule_exit and not delisting(a)], i, c, i)

        # 4. delisting while held (exit costs paid); the end mark comes after the record
        for a in sorted(book.positions):
            if i == end[a] - 1 and i < p1 - 1:
                book.close(a, i, c[a][i], "delist")

        # 5. mark to market at the close
        equity_now, gross = book.valued(lambda a: c[a][i])
        equity[i], cash[i] = equity_now, book.cash
        for a in range(n_assets):
            pos = book.positions.get(a)
            units[a][i] = 0.0 if pos is None else pos.units * pos.side
        if equity_now > 0.0:
            exposure.append(gross / equity_now)
        else:  # Decision: a bust account holding anything is fully exposed
            exposure.append(1.0 if book.positions else 0.0)

        # 6. ruin
        if equity_now <= 0.0:
            ruined = True
            for a in sorted(book.positions):
                book.mark(a, i, c[a][i], "ruin")
            book.cash = equity_now
            pending = {}

    for a in sorted(book.positions):  # end of the axis: marked, no exit costs
        book.mark(a, p1 - 1, c[a][p1 - 1], "end")

    trades = book.trades
    metrics = reference_metrics(equity[p0:p1], [0.0] * (p1 - p0), trades,
                                init_cash=init_cash, periods_per_year=periods_per_year)
    metrics["exposure"] = math.fsum(exposure) / len(exposure)
    metrics["n_delist"] = sum(1 for t in trades if t["exit_reason"] == "delist")
    metrics.update(cost_metrics(trades, equity[p0:p1], periods_per_year))
    assets = []
    for a in range(n_assets):
        own = [t for t in trades if t["asset"] == a]
        assets.append({
            "pnl": sum(t["pnl"] for t in own),
            "n_trades": len(own),
            "win_rate": sum(1 for t in own if t["pnl"] > 0.0) / len(own) if own else NAN,
        })
    return {"equity": equity, "cash": cash, "units": units, "trades": trades,
            "assets": assets, "metrics": metrics}
