"""The core every engine shares: the one fill function and its sizing (docs/semantics.md,
Costs), moments of returns, drawdown, metrics, the trade book and the stop/take levels
(docs/semantics.md, Metrics)."""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from sweepbt.kernels.commission import call_commission
from sweepbt.kernels.enums import ExitReason, Metric, N_RULES, Rule, Tally


RETURN_BLOCK = 64  # returns are reduced two-pass in blocks of this many bars, then merged
#: a spread (std of returns, downside deviation, std of trade pnl) at most NOISE x |mean|
#: is rounding noise, not dispersion: the ratio over it is NaN, as for a spread of 0
NOISE = 1e-12


class Costs(NamedTuple):
    """A combo's costs (docs/semantics.md, Costs): what every fill of every engine pays."""

    fees: float  # a fraction of the notional
    fixed_fees: float  # cash per fill
    slippage: float  # a fraction of the quote, against the trader
    tax: float  # a fraction of a sale's notional
    fees_per_share: float  # cash per unit
    min_fees: float  # the commission's minimum per fill (0: none)
    max_fees: float  # the commission's cap, a fraction of the notional (0: none)
    lot_size: float  # units trade in whole multiples of it (0: fractional)
    #: the address of the user's commission callback (SimSettings.commission), used when
    #: ``custom``
    commission: int
    custom: bool


class Fill(NamedTuple):
    """One fill: its price (slippage included), the cash it moves (a buy pays, < 0; a sale
    receives, >= 0), its commission (fixed fee included), its tax, and the cash it commits
    (the notional plus the commission, tax apart: the base of a trade's return)."""

    price: float
    cash: float
    commission: float
    tax: float
    committed: float


@njit(cache=True, inline="always")
def costs_of(rules, settings):
    """The Costs of a row of Combos.rules under a launch's SimSettings (its commission
    function, if any)."""
    return Costs(fees=rules[Rule.fees], fixed_fees=rules[Rule.fixed_fees],
                 slippage=rules[Rule.slippage], tax=rules[Rule.tax],
                 fees_per_share=rules[Rule.fees_per_share], min_fees=rules[Rule.min_fees],
                 max_fees=rules[Rule.max_fees], lot_size=rules[Rule.lot_size],
                 commission=settings.commission, custom=settings.user_commission)


@njit(cache=True, inline="always")
def fill_price(quote, buy, costs):
    """The price a buy (``buy``) or a sale at ``quote`` fills at: slippage against it."""
    return quote * (1.0 + costs.slippage) if buy else quote * (1.0 - costs.slippage)


@njit(cache=True, inline="always")
def commission_of(units, price, buy, costs):
    """The commission of a fill of ``units`` at ``price`` (fixed fee apart): the user's
    commission function when there is one, else per share plus a fraction of the
    notional, at least ``min_fees``, at most ``max_fees`` of the notional when that is
    on."""
    if costs.custom:
        return call_commission(costs.commission, units, price, 1.0 if buy else -1.0)
    notional = units * price
    c = max(costs.fees * notional + costs.fees_per_share * units, costs.min_fees)
    return min(c, costs.max_fees * notional) if costs.max_fees > 0.0 else c


@njit(cache=True, inline="always")
def proportional(costs):
    """Whether ``costs`` charge a plain fraction of the notional: no per-share commission,
    no minimum, no cap (every fill then uses the proportional formula's arithmetic, so
    default costs are bit-identical to the engine before the other models existed)."""
    return (costs.fees_per_share == 0.0 and costs.min_fees == 0.0 and costs.max_fees == 0.0
            and not costs.custom)


@njit(cache=True, inline="always")
def fill(units, quote, buy, costs):
    """The Fill of ``units`` (> 0) bought (``buy``) or sold at ``quote``. A sale's costs
    take at most its notional. Inlined: it runs on every trade of every engine, and the
    proportional case is a few multiplications."""
    price = fill_price(quote, buy, costs)
    notional = units * price
    if not proportional(costs):
        return _charged_fill(units, price, notional, buy, costs)
    committed = notional * (1.0 + costs.fees) + costs.fixed_fees
    commission = notional * costs.fees + costs.fixed_fees
    if buy:
        return Fill(price=price, cash=-committed, commission=commission, tax=0.0,
                    committed=committed)
    cash = notional * (1.0 - costs.fees - costs.tax) - costs.fixed_fees
    return _sale(price, cash, notional, commission, costs.tax * notional, committed)


@njit(cache=True)
def _charged_fill(units, price, notional, buy, costs):
    """:func:`fill` with a per-share commission, a minimum, a cap or a user's commission
    function."""
    c = commission_of(units, price, buy, costs)
    tax = 0.0 if buy else costs.tax * notional
    committed = notional + c + costs.fixed_fees
    if buy:
        return Fill(price=price, cash=-committed, commission=c + costs.fixed_fees, tax=0.0,
                    committed=committed)
    return _sale(price, notional - c - tax - costs.fixed_fees, notional, c + costs.fixed_fees,
                 tax, committed)


@njit(cache=True, inline="always")
def _sale(price, cash, notional, commission, tax, committed):
    """The Fill of a sale receiving ``cash`` before the cap: a sale never costs cash, so
    costs above its notional are cut, the commission first (what it reports is what the
    cash paid)."""
    if cash > 0.0:
        return Fill(price=price, cash=cash, commission=commission, tax=tax,
                    committed=committed)
    paid = min(commission, notional)
    return Fill(price=price, cash=0.0, commission=paid, tax=min(tax, notional - paid),
                committed=committed)


@njit(cache=True, inline="always")
def units_for(budget, quote, buy, costs):
    """The most units that ``budget`` pays for, bought (``buy``) or sold short at
    ``quote``: the largest ``q`` with ``q * p + charge(q) <= budget`` (the charge is
    linear on each piece: proportional, the minimum, the cap), rounded down to a whole
    number of lots; 0 when the budget pays for none."""
    available = budget - costs.fixed_fees
    if available <= 0.0:
        return 0.0
    price = fill_price(quote, buy, costs)
    if proportional(costs) and (buy or costs.tax == 0.0):
        q = available / (price * (1.0 + costs.fees))
    else:
        q = _charged_units(available, price, buy, costs)
    if costs.lot_size > 0.0:
        q = math.floor(q / costs.lot_size) * costs.lot_size
    return q


@njit(cache=True)
def _charged_units(available, price, buy, costs):
    """:func:`units_for` before lots with a per-share commission, a minimum, a cap or a
    sale's tax: the largest of each piece's closed form that the budget pays for; with a
    user's commission function, found by bisection."""
    tax = 0.0 if buy else costs.tax
    if costs.custom:
        return _bisected_units(available, price, buy, tax, costs)
    q = available / (price * (1.0 + costs.fees + tax) + costs.fees_per_share)
    if costs.min_fees == 0.0 and costs.max_fees == 0.0:
        return q
    best = 0.0
    at_min = ((available - costs.min_fees) / (price * (1.0 + tax))
              if costs.min_fees > 0.0 else 0.0)
    at_cap = (available / (price * (1.0 + costs.max_fees + tax))
              if costs.max_fees > 0.0 else 0.0)
    for candidate in (q, at_min, at_cap):
        if candidate > best:
            spent = (candidate * price * (1.0 + tax)
                     + commission_of(candidate, price, buy, costs))
            if spent <= available * (1.0 + 1e-12):
                best = candidate
    return best


@njit(cache=True)
def _bisected_units(available, price, buy, tax, costs):
    """The largest ``q`` with ``q * price * (1 + tax) + commission(q) <= available``
    (the commission nondecreasing in ``q``, checked when the function was given), by
    bisection to the last representable ``q``; 0 when none pays."""
    lo, hi = 0.0, available / (price * (1.0 + tax))
    if hi * price * (1.0 + tax) + commission_of(hi, price, buy, costs) <= available:
        return hi
    for _ in range(1100):  # a float64 interval halves to adjacent values in < 1100 steps
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if mid * price * (1.0 + tax) + commission_of(mid, price, buy, costs) <= available:
            lo = mid
        else:
            hi = mid
    return lo


class Moments(NamedTuple):
    """A group of returns: count, mean and central moment sums M2..M4."""

    n: int
    mean: float
    m2: float
    m3: float
    m4: float


class Ledger(NamedTuple):
    """Where a closed trade of ``asset`` is booked: always counted in ``tally``; with
    ``record`` also written to ``trades``."""

    tally: np.ndarray
    trades: np.ndarray
    record: bool
    asset: int


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
def merge_block(buf, k, mom):
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
def merge_waiting(buf, k, mom):
    """``mom`` with the ``k`` returns waiting in ``buf`` merged in."""
    if k > 0:
        return merge_block(buf, k, mom)
    return mom


@njit(cache=True, inline="always")
def merge_zeros(buf, k, n_zeros, mom):
    """``mom`` with the ``k`` returns waiting in ``buf``, then ``n_zeros`` returns of
    exactly 0 (a flat stretch), merged in; the caller empties ``buf`` (k = 0)."""
    return _merge_moments(merge_waiting(buf, k, mom), Moments(n_zeros, 0.0, 0.0, 0.0, 0.0))


class Track(NamedTuple):
    """The running statistics of a backtest's per-bar returns, for every engine: ``k``
    returns waiting in the buffer, the Moments of the others, the sum of squared negative
    returns, the peak equity, the max drawdown, the last equity and the sum of the equity
    at every close so far (turnover's mean equity)."""

    k: int
    mom: Moments
    downside_sq: float
    peak: float
    max_dd: float
    prev: float
    equity_sum: float


@njit(cache=True, inline="always")
def new_track(init_cash):
    """The Track before the first bar (the last equity is ``init_cash``)."""
    return Track(k=0, mom=Moments(0, 0.0, 0.0, 0.0, 0.0), downside_sq=0.0, peak=init_cash,
                 max_dd=0.0, prev=init_cash, equity_sum=0.0)


@njit(cache=True, inline="always")
def tracked(buf, t, equity):
    """Track ``t`` after a bar closing at ``equity`` (its return waits in ``buf``)."""
    r = equity / t.prev - 1.0
    buf[t.k] = r
    k = t.k + 1
    mom = t.mom
    if k == RETURN_BLOCK:
        mom = merge_block(buf, k, mom)
        k = 0
    downside_sq = t.downside_sq + r * r if r < 0.0 else t.downside_sq
    peak, max_dd = track_drawdown(equity, t.peak, t.max_dd)
    return Track(k=k, mom=mom, downside_sq=downside_sq, peak=peak, max_dd=max_dd,
                 prev=equity, equity_sum=t.equity_sum + equity)


@njit(cache=True, inline="always")
def track_flat(buf, t, n_bars):
    """Track ``t`` after ``n_bars`` closing at its last equity (a flat stretch: returns of
    exactly 0, the drawdown unchanged), the returns waiting in ``buf`` merged first."""
    if n_bars <= 0:
        return t
    return Track(k=0, mom=merge_zeros(buf, t.k, n_bars, t.mom), downside_sq=t.downside_sq,
                 peak=t.peak, max_dd=t.max_dd, prev=t.prev,
                 equity_sum=t.equity_sum + n_bars * t.prev)


@njit(cache=True, inline="always")
def record_flat(out, lo, hi, value):
    """Recorded bars ``lo..hi-1`` flat at equity ``value`` (cash ``value``, no units)."""
    out.equity[lo:hi] = value
    out.cash[lo:hi] = value
    out.units[lo:hi] = 0.0


@njit(cache=True, inline="always")
def track_drawdown(equity, peak, max_dd):
    """(peak equity, max drawdown) after a bar closing at ``equity``."""
    if equity > peak:
        return equity, max_dd
    if equity < peak * (1.0 - max_dd):
        return peak, 1.0 - equity / peak
    return peak, max_dd


@njit(cache=True, inline="always")
def stop_take_levels(pos, entry_price, atr_at_entry, rule):
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


@njit(cache=True, _nrt=False)
def book_trade(ledger, t):
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
        row["commission"] = t.commission
        row["tax"] = t.tax
    n = tally[Tally.trades] + 1.0
    first = n == 1.0
    tally[Tally.best_return] = ret if first else max(tally[Tally.best_return], ret)
    tally[Tally.worst_return] = ret if first else min(tally[Tally.worst_return], ret)
    delta = pnl - tally[Tally.pnl_mean]
    tally[Tally.pnl_mean] += delta / n
    tally[Tally.pnl_m2] += delta * (pnl - tally[Tally.pnl_mean])
    tally[Tally.trades] = n
    tally[Tally.costs] += t.commission + t.tax
    tally[Tally.traded] += t.traded
    if pnl > 0.0:
        tally[Tally.wins] += 1.0
        tally[Tally.gross_profit] += pnl
    elif pnl < 0.0:
        tally[Tally.gross_loss] -= pnl
    tally[Tally.sum_return] += ret
    tally[Tally.sum_bars] += t.exit_bar - p.entry_bar
    tally[Tally.reason + t.reason] += 1.0


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


@njit(cache=True, inline="always")
def _cost_stats(m, tally, periods_per_year, equity_sum):
    """Write costs, cost_rate and turnover (the traded value per year over the mean
    equity; a rank backtest writes its own turnover after this) from the tally and the
    sum of the equity at every close."""
    traded = tally[Tally.traded]
    m[Metric.costs] = tally[Tally.costs]
    m[Metric.cost_rate] = tally[Tally.costs] / traded if traded > 0.0 else np.nan
    m[Metric.turnover] = (traded * periods_per_year / equity_sum if equity_sum > 0.0
                          else np.nan)


@njit(cache=True, _nrt=False)
def finish_metrics(m, tally, settings, buf, t, bars_exposed):
    """Write the METRIC_NAMES row from the tally and the Track ``t`` of the span (its
    returns waiting in ``buf`` merged here); undefined ratios are NaN (docs/semantics.md,
    Metrics)."""
    nan = np.nan
    final_equity, downside_sq, max_dd = t.prev, t.downside_sq, t.max_dd
    n_ret, mean_ret, m2_ret, m3_ret, m4_ret = merge_waiting(buf, t.k, t.mom)
    if n_ret == 0:  # an empty span (a trade window the asset does not reach)
        m[:] = nan
        for j in (Metric.n_trades, Metric.n_stop, Metric.n_take, Metric.n_trail,
                  Metric.n_time, Metric.n_signal, Metric.ruined, Metric.costs):
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
    _cost_stats(m, tally, periods_per_year, t.equity_sum)
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
def check_launch(market, atr_bank, combos, n_pairs):
    """The shapes the grid kernels rely on (they do not bounds-check)."""
    n_combos = combos.rules.shape[0]
    if combos.rules.shape[1] != N_RULES:
        raise ValueError("combos.rules must have N_RULES columns (RULE_COLUMNS)")
    if combos.signal_idx.shape[0] != n_combos or combos.atr_idx.shape[0] != n_combos:
        raise ValueError("combos.signal_idx, atr_idx and rules must have one row per combo")
    if n_pairs > n_combos * market.close.shape[0] or atr_bank.shape[0] != market.close.shape[0]:
        raise ValueError("more (combo, asset) pairs than combos x assets, or an ATR bank "
                         "for another number of assets")
#: a portfolio entry whose budget after fixed fees is at most DUST x equity is skipped
DUST = 1e-9


@njit(cache=True, inline="always")
def record_flat_book(out, lo, hi, value):
    """Recorded portfolio bars ``lo..hi-1`` flat at equity ``value``."""
    out.equity[lo:hi] = value
    out.cash[lo:hi] = value
    out.units[:, lo:hi] = 0.0


@njit(cache=True, inline="always")
def shared_axis(start, end):
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
def gross_leverage(gross, equity):
    """Gross leverage at a close; on a ruin bar (equity <= 0) 1 if anything is held."""
    if equity > 0.0:
        return gross / equity
    return 1.0 if gross > 0.0 else 0.0
