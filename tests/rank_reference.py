"""Pure-Python reference for rank-and-rebalance strategies (cross-sectional portfolios).

The slow, obviously-correct implementation of docs/semantics.md, "Rank-and-rebalance
strategies", written from that text and sharing no code with ``sweepbt``. It reuses the
portfolio reference (tests/portfolio_reference.py) only for what the two share by
definition: one position's stop / take / trail checks (``_Position``), the dust threshold,
and the metric formulas (tests/reference.py). Every quantity is a plain Python float.

Scores are computed outside the simulation by the score functions below (a float per asset
per bar, NaN = not eligible); the simulation walks the portfolio axis one bar at a time:

    1. fill="next_open": the orders of the previous bar's rebalance fill at this open
       (every sell in asset order, then every buy in asset order)
    2. risk rules of each open position (stop / trail / take, then the time exit)
    3. a rebalance bar: target weights from the scores at this close; fill="close" trades
       at once, fill="next_open" queues them for the next open
    4. delisting of assets whose span ends here (exit costs paid)
    5. mark to market at the close
    6. ruin when equity <= 0
"""

import math

from portfolio_reference import DUST, _Position
from reference import LONG, NAN, SHORT, Costs, cost_metrics, reference_metrics

WEIGHTINGS = ("equal", "inverse_vol", "score")


# --------------------------------------------------------------------------------------
# scores: float (n_assets, n_bars), NaN where undefined (reaching before the span, or
# outside it); each reads bars up to i only
# --------------------------------------------------------------------------------------


def _rows(close):
    return [[float(x) for x in row] for row in close]


def _momentum(c, start, lookback, skip, i, a):
    j, k = i - skip, i - skip - lookback
    if k < start[a] or c[a][i] != c[a][i]:
        return NAN
    return c[a][j] / c[a][k] - 1.0


def momentum_score(close, start, lookback, skip=0):
    """``close[i-skip] / close[i-skip-lookback] - 1``; NaN when that reaches before the span."""
    if lookback < 1 or skip < 0:
        raise ValueError("momentum needs lookback >= 1 and skip >= 0")
    c = _rows(close)
    return [[_momentum(c, start, lookback, skip, i, a) for i in range(len(c[a]))]
            for a in range(len(c))]


def reversal_score(close, start, lookback):
    """Minus the return over ``lookback`` bars: ``-(close[i] / close[i-lookback] - 1)``."""
    return [[-x for x in row] for row in momentum_score(close, start, lookback, 0)]


def volatility(close, start, vol_window):
    """Sample std (ddof=1) of the ``vol_window`` simple returns ending at bar ``i``
    (``close[k]/close[k-1] - 1`` for ``k = i-vol_window+1 .. i``); NaN when
    ``i - vol_window < start`` (the first return needs the close before it)."""
    if vol_window < 2:
        raise ValueError("vol_window must be >= 2 (a sample std needs two returns)")
    c = _rows(close)
    out = []
    for a in range(len(c)):
        row = []
        for i in range(len(c[a])):
            if i - vol_window < start[a] or c[a][i] != c[a][i]:
                row.append(NAN)
                continue
            r = [c[a][k] / c[a][k - 1] - 1.0 for k in range(i - vol_window + 1, i + 1)]
            mean = math.fsum(r) / len(r)
            row.append(math.sqrt(math.fsum((x - mean) ** 2 for x in r) / (len(r) - 1)))
        out.append(row)
    return out


def low_volatility_score(close, start, vol_window):
    """Minus :func:`volatility`: the calmest asset scores highest."""
    return [[-x for x in row] for row in volatility(close, start, vol_window)]


# --------------------------------------------------------------------------------------
# selection and target weights at one rebalance bar
# --------------------------------------------------------------------------------------


def select(score, eligible, top_n, bottom_n):
    """(longs, shorts): the ``top_n`` highest scores, then the ``bottom_n`` lowest of the
    rest; ties by asset order."""
    cands = [a for a in range(len(score)) if eligible[a]]
    longs = sorted(cands, key=lambda a: (-score[a], a))[:top_n]
    rest = [a for a in cands if a not in longs]
    shorts = sorted(rest, key=lambda a: (score[a], a))[:bottom_n]
    return longs, shorts


def _raw_weights(chosen, side, weighting, score, vol, cands):
    if weighting == "equal":
        return [1.0 for _ in chosen]
    if weighting == "inverse_vol":
        return [1.0 / vol[a] for a in chosen]
    if side == LONG:  # "score": the excess over the worst eligible score
        floor = min(score[a] for a in cands)
        return [score[a] - floor for a in chosen]
    ceiling = max(score[a] for a in cands)
    return [ceiling - score[a] for a in chosen]


def target_weights(score, vol, eligible, *, top_n, bottom_n, weighting, position_limit):
    """Signed target weight per asset (fractions of equity; 0 = hold none)."""
    longs, shorts = select(score, eligible, top_n, bottom_n)
    cands = [a for a in range(len(score)) if eligible[a]]
    side_budget = 0.5 if top_n > 0 and bottom_n > 0 else 1.0
    cap = 1.0 if position_limit is None else position_limit
    w = [0.0] * len(score)
    for side, chosen, slots in ((LONG, longs, top_n), (SHORT, shorts, bottom_n)):
        if not chosen:
            continue
        raw = _raw_weights(chosen, side, weighting, score, vol, cands)
        total = math.fsum(raw)
        if total <= 0.0:  # every selected score equal to the worst: equal weights
            raw, total = [1.0] * len(chosen), float(len(chosen))
        share = side_budget * len(chosen) / slots  # empty slots stay in cash
        for a, x in zip(chosen, raw):
            w[a] = side * min(share * x / total, cap)
    return w


# --------------------------------------------------------------------------------------
# the account
# --------------------------------------------------------------------------------------


class _Holding:
    """One position from its opening fill to the fill that makes it flat: its units, its
    average cost (the level the risk rules read) and the cash it has moved (its pnl)."""

    def __init__(self, side, bar, rules):
        self.side, self.entry_bar, self.rules = side, bar, rules
        self.units = 0.0  # positive amount held; the sign lives in `side`
        self.cost_price = 0.0  # average cost of the units held (after slippage)
        self.opened_units = self.opened_value = self.committed = 0.0
        self.closed_units = self.closed_value = 0.0
        self.cash_flow = 0.0  # cash in minus cash out of this position so far
        self.commission = self.tax = 0.0  # paid by its fills: c + fixed_fees, and taxes
        self.n_fills = 0
        self.risk = None  # _Position carrying the stop / take / trail levels

    def increase(self, bar, units, quote, price, committed):
        self.cost_price = (self.units * self.cost_price + units * price) / (self.units + units)
        self.units += units
        self.opened_units += units
        self.opened_value += units * price
        self.committed += committed
        old = self.risk
        self.risk = _Position(self.side, self.units, self.entry_bar, quote, self.cost_price,
                              None, self.rules)
        if old is not None:  # the trailing extreme and the excursions carry over
            pick = max if self.side == LONG else min
            self.risk.extreme = pick(old.extreme, price)
            self.risk.exc_high, self.risk.exc_low = old.exc_high, old.exc_low

    def reduce(self, units, price):
        self.units = 0.0 if units >= self.units else self.units - units
        self.closed_units += units
        self.closed_value += units * price


class _Account:
    def __init__(self, init_cash, costs, rules):
        self.cash = init_cash
        self.costs = costs  # reference.Costs
        self.fees, self.fixed_fees = costs.fees, costs.fixed_fees
        self.slippage, self.tax = costs.slippage, costs.tax
        self.rules = rules
        self.holdings = {}  # asset -> _Holding
        self.trades = []
        self.fills = []

    def signed_units(self, a):
        h = self.holdings.get(a)
        return 0.0 if h is None else h.side * h.units

    def valued(self, quote_of):
        equity, gross = self.cash, 0.0
        for a, h in self.holdings.items():
            value = h.units * quote_of(a)
            equity += h.side * value
            gross += value
        return equity, gross

    def trade(self, a, bar, delta, quote, reason="signal"):
        """Fill ``delta`` units of asset ``a`` (+ buy, - sell) at ``quote``: slippage,
        fees and fixed fees on every fill, tax on sells. One side of one position per call:
        the caller splits a flip into a close and an open. A position traded at a quote
        was exposed to it (mfe / mae)."""
        if a in self.holdings:
            self.holdings[a].risk.expose(quote, quote)
        costs = self.costs
        if delta > 0.0:
            p = costs.price(quote, True)
            paid, commission = costs.buy(delta, p)
            flow, tax = -paid, 0.0
        else:
            p = costs.price(quote, False)
            flow, commission, tax = costs.sell(-delta, p)
        self.cash += flow
        side = LONG if delta > 0.0 else SHORT
        h = self.holdings.get(a)
        if h is None:
            h = self.holdings[a] = _Holding(side, bar, self.rules)
        h.cash_flow += flow
        h.commission += commission
        h.tax += tax
        h.n_fills += 1
        if h.side == side:  # committed: n + c + fixed_fees (a short sale's without its tax)
            h.increase(bar, abs(delta), quote, p, costs.committed(abs(delta), p, delta > 0.0))
        else:
            h.reduce(abs(delta), p)
        self.fills.append({"asset": a, "bar": bar, "units": delta, "quote": quote,
                           "price": p, "cash": flow, "commission": commission, "tax": tax})
        if h.units == 0.0:
            self._book(a, bar, quote, reason)

    def close(self, a, bar, quote, reason):
        """Sell (buy back) the whole position at ``quote`` with every cost."""
        h = self.holdings[a]
        self.trade(a, bar, -h.side * h.units, quote, reason)

    def mark(self, a, bar, quote, reason):
        """Book the whole position at ``quote`` with no costs (`end`, `ruin`)."""
        h = self.holdings[a]
        flow = h.side * h.units * quote
        self.cash += flow
        h.cash_flow += flow
        h.reduce(h.units, quote)
        self._book(a, bar, quote, reason)

    def _book(self, a, bar, quote, reason):
        h = self.holdings.pop(a)
        entry_price = h.opened_value / h.opened_units
        hi, lo = h.risk.exc_high, h.risk.exc_low
        if hi is None:  # never exposed to a bar
            hi = lo = quote
        if reason in ("end", "ruin"):
            hi, lo = max(hi, quote), min(lo, quote)
        up, down = max(0.0, hi / entry_price - 1.0), max(0.0, 1.0 - lo / entry_price)
        self.trades.append({
            "asset": a, "direction": h.side, "entry_bar": h.entry_bar, "exit_bar": bar,
            "entry_price": entry_price, "exit_price": h.closed_value / h.closed_units,
            "units": h.opened_units, "pnl": h.cash_flow, "return": h.cash_flow / h.committed,
            "exit_reason": reason, "mfe": up if h.side == LONG else down,
            "mae": down if h.side == LONG else up, "n_fills": h.n_fills,
            "commission": h.commission, "tax": h.tax,
        })


def _rebalance(acct, bar, quote_of, weights, blocked):
    """Trade every asset to ``weight * E / quote`` units (rounded toward zero to a lot):
    sells first, then buys (each in asset order), buys cut to the cash left (the largest
    units whose notional and charge the cash pays, rounded down to a lot). A trade that
    leaves a position open and whose notional is at most the fixed fee is skipped.
    Returns the traded fraction of E (0 when E <= 0: nothing can trade)."""
    equity, _ = acct.valued(quote_of)
    if equity <= 0.0:
        return 0.0
    traded = []
    delta = {}
    for a in range(len(weights)):
        target = 0.0 if a in blocked else weights[a] * equity / quote_of(a) if weights[a] else 0.0
        target = acct.costs.round_lot_toward_zero(target)
        d = target - acct.signed_units(a)
        notional = abs(d) * quote_of(a)
        if d != 0.0 and notional > DUST * equity and (target == 0.0
                                                      or notional > acct.fixed_fees):
            delta[a] = d
    for a in sorted(x for x in delta if delta[x] < 0.0):  # sells: reductions and closes
        held, d, q = acct.signed_units(a), delta[a], quote_of(a)
        if held > 0.0:
            acct.trade(a, bar, -min(held, -d), q)
            d += min(held, -d)
            traded.append(min(held, -delta[a]) * q)
        if d < 0.0 and abs(d) * q > max(DUST * equity, acct.fixed_fees):
            acct.trade(a, bar, d, q)  # open or add to a short
            traded.append(-d * q)
    for a in sorted(x for x in delta if delta[x] > 0.0):  # buys, cut to the cash left
        held, d, q = acct.signed_units(a), delta[a], quote_of(a)
        legs = [min(-held, d), d - min(-held, d)] if held < 0.0 else [0.0, d]
        for leg in legs:
            if leg <= 0.0 or leg * q <= DUST * equity:
                continue
            p = acct.costs.price(q, True)
            affordable = acct.costs.units(acct.cash, p)
            if affordable * q <= DUST * equity:
                break
            units = min(leg, affordable)
            closes_short = acct.signed_units(a) == -units
            if units * q <= acct.fixed_fees and not closes_short:
                break  # a trade left open that does not pay its fixed fee
            acct.trade(a, bar, units, q)
            traded.append(units * q)
    return math.fsum(traded) / equity


def _check_inputs(n_assets, top_n, bottom_n, weighting, position_limit, fill, costs, vol):
    for name, n in (("top_n", top_n), ("bottom_n", bottom_n)):
        if int(n) != n or n < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {n!r}")
    if top_n + bottom_n < 1:
        raise ValueError("top_n + bottom_n must be at least 1")
    if top_n + bottom_n > n_assets:
        raise ValueError(f"top_n + bottom_n = {top_n + bottom_n} exceeds the universe of "
                         f"{n_assets} assets")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "inverse_vol" and vol is None:
        raise ValueError("weighting='inverse_vol' needs vol")
    if position_limit is not None and not 0.0 < position_limit <= 1.0:
        raise ValueError("position_limit must be in (0, 1] or None")
    if fill not in ("next_open", "close"):
        raise ValueError("fill must be 'next_open' or 'close'")
    if costs.fees + costs.tax >= 1.0 or costs.slippage >= 1.0:
        raise ValueError("costs must be >= 0, with fees + tax < 1 and slippage < 1")


def reference_rank_portfolio(open, high, low, close, start, end, scores, rebalance_bars, *,
                             top_n, bottom_n=0, weighting="equal", position_limit=None,
                             fill="next_open", init_cash=10_000.0, fees=0.0, fixed_fees=0.0,
                             slippage=0.0, tax=0.0, fees_per_share=0.0, min_fees=0.0,
                             max_fees=0.0, lot_size=0.0, commission=None, stop_loss=None,
                             take_profit=None,
                             trailing_stop=None, max_bars=None, vol=None,
                             periods_per_year=252.0):
    """One rank-and-rebalance backtest, exactly as docs/semantics.md says.

    ``open, high, low, close``: (n_assets, n_bars), NaN outside each span ``start[a] <= i <
    end[a]``; ``scores``: (n_assets, n_bars), the score at each bar's close (NaN = not
    eligible); ``rebalance_bars``: bar indices on the same axis; ``vol``: (n_assets,
    n_bars) :func:`volatility`, read by ``weighting="inverse_vol"`` (NaN or 0 = not
    eligible under it).

    Costs: every fill pays :class:`reference.Costs` (``fees``, ``fixed_fees``,
    ``slippage``, ``fees_per_share``, ``min_fees``, ``max_fees``, ``tax`` on every sale,
    ``lot_size``: targets rounded toward zero to a lot).

    Returns a dict: ``equity``, ``cash`` (n_bars lists, NaN outside [P0, P1)), ``units``
    (n_assets lists of n_bars, signed), ``trades`` (one per position, open to flat, with
    the ``commission`` and ``tax`` its fills paid), ``fills`` (every fill, with its
    ``commission`` and ``tax``), ``rebalances`` (bar, fill_bar, weights, turnover) and
    ``metrics`` (the portfolio metrics plus ``turnover`` and ``costs``, every commission,
    fixed fee and tax paid).
    """
    o, h, lo, c = _rows(open), _rows(high), _rows(low), _rows(close)
    s = _rows(scores)
    v = None if vol is None else _rows(vol)
    start, end = [int(x) for x in start], [int(x) for x in end]
    n_assets, n_bars = len(c), len(c[0])
    costs = Costs(fees=fees, fixed_fees=fixed_fees, slippage=slippage, tax=tax,
                  fees_per_share=fees_per_share, min_fees=min_fees, max_fees=max_fees,
                  lot_size=lot_size, commission=commission)
    _check_inputs(n_assets, top_n, bottom_n, weighting, position_limit, fill, costs, vol)
    rules = {"stop_loss": stop_loss, "take_profit": take_profit, "stop_atr": None,
             "take_atr": None, "trailing_atr": None}
    acct = _Account(float(init_cash), costs, rules)
    live = [a for a in range(n_assets) if start[a] < end[a]]
    p0, p1 = min(start[a] for a in live), max(end[a] for a in live)
    schedule = {int(r) for r in rebalance_bars if p0 <= r < p1 - 1}

    def weights_at(r):
        def eligible(a):
            ok = start[a] <= r and r + 1 < end[a] and s[a][r] == s[a][r]
            if ok and weighting == "inverse_vol":
                ok = v[a][r] == v[a][r] and v[a][r] > 0.0
            return ok
        return target_weights([x[r] for x in s], None if v is None else [x[r] for x in v],
                              [eligible(a) for a in range(n_assets)], top_n=top_n,
                              bottom_n=bottom_n, weighting=weighting,
                              position_limit=position_limit)

    equity = [NAN] * n_bars
    cash = [NAN] * n_bars
    units = [[NAN] * n_bars for _ in range(n_assets)]
    exposure, rebalances = [], []
    pending = None  # next_open: the rebalance record whose orders fill at this open
    ruined = False

    for i in range(p0, p1):
        if ruined:
            equity[i] = cash[i] = acct.cash
            for a in range(n_assets):
                units[a][i] = 0.0
            exposure.append(0.0)
            continue

        if pending is not None:  # 1. last close's rebalance at this open
            pending["turnover"] = _rebalance(acct, i, lambda a: o[a][i], pending["weights"],
                                             set())
            pending = None

        blocked = set()  # 2. risk rules per open position
        for a in sorted(acct.holdings):
            hold = acct.holdings[a]
            quote, reason = hold.risk.check_bar(o[a][i], h[a][i], lo[a][i], trailing_stop)
            if quote is not None:
                acct.close(a, i, quote, reason)
                blocked.add(a)
            elif max_bars is not None and i == hold.entry_bar + max_bars:
                acct.close(a, i, c[a][i], "time")
                blocked.add(a)

        if i in schedule:  # 3. rebalance at this close
            record = {"bar": i, "fill_bar": i + (fill == "next_open"),
                      "weights": weights_at(i), "turnover": NAN}
            rebalances.append(record)
            if fill == "close":
                record["turnover"] = _rebalance(acct, i, lambda a: c[a][i],
                                                record["weights"], blocked)
            else:
                pending = record

        for a in sorted(acct.holdings):  # 4. delisting while held
            if i == end[a] - 1 and i < p1 - 1:
                acct.close(a, i, c[a][i], "delist")

        equity_now, gross = acct.valued(lambda a: c[a][i])  # 5. mark to market
        equity[i], cash[i] = equity_now, acct.cash
        for a in range(n_assets):
            units[a][i] = acct.signed_units(a)
        if equity_now > 0.0:
            exposure.append(gross / equity_now)
        else:
            exposure.append(1.0 if acct.holdings else 0.0)

        if equity_now <= 0.0:  # 6. ruin
            ruined = True
            for a in sorted(acct.holdings):
                acct.mark(a, i, c[a][i], "ruin")
            acct.cash = equity_now
            if pending is not None:
                rebalances.remove(pending)
                pending = None

    for a in sorted(acct.holdings):
        acct.mark(a, p1 - 1, c[a][p1 - 1], "end")

    metrics = reference_metrics(equity[p0:p1], [0.0] * (p1 - p0), acct.trades,
                                init_cash=float(init_cash), periods_per_year=periods_per_year)
    metrics["exposure"] = math.fsum(exposure) / len(exposure)
    metrics["n_delist"] = sum(1 for t in acct.trades if t["exit_reason"] == "delist")
    done = [r["turnover"] for r in rebalances]  # every rebalance that took place
    traded = math.fsum(abs(f["units"]) * f["price"] for f in acct.fills)
    metrics.update(cost_metrics(acct.trades, equity[p0:p1], periods_per_year, traded))
    metrics["turnover"] = math.fsum(done) / len(done) if done else NAN
    return {"equity": equity, "cash": cash, "units": units, "trades": acct.trades,
            "fills": acct.fills, "rebalances": rebalances, "metrics": metrics}
