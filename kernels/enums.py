"""Named constants and argument types of the simulation kernels, in vectorbt's enums style.

An enum is a NamedTuple class of int fields and its one instance: ``FillMode.close == 1``,
``FillModeT._fields`` its names in order. numba reads a global NamedTuple instance as a
compile-time constant, so ``Metric.sharpe`` in a kernel compiles to the literal it stands
for. Every enum's values are its field positions (checked below), so its names double as
column names: ``METRIC_NAMES``, ``RULE_COLUMNS``, ``EXIT_REASONS``.

The argument types (``Market``, ``Events``, ``Combos``, ``SimSettings``, ``Outputs``...)
group the kernels' arrays and scalars by name, so no two arguments of a kernel can be
swapped by position; ``TRADE_DTYPE`` is the record of one round trip.

Everything here is compiled into the simulation kernels; numba's cache of each kernel is
stamped by its file and every kernel file it imports, this one included
(sweepbt/_numba_cache.py), so any edit here recompiles them.
"""

from typing import NamedTuple

import numpy as np


class FillModeT(NamedTuple):
    """When an order fills (docs/semantics.md, Fills)."""

    next_open: int = 0  # at the open of the bar after the signal
    close: int = 1  # at the close of the signal bar


FillMode = FillModeT()


class SizeTypeT(NamedTuple):
    """What a portfolio's ``size`` means (docs/semantics.md, Portfolio backtests)."""

    equity: int = 0  # a fraction of the equity at the fill
    value: int = 1  # a cash amount per entry


SizeType = SizeTypeT()


class DirectionT(NamedTuple):
    """Which signal bits a backtest honours (kernels.codes)."""

    long: int = 0
    short: int = 1
    both: int = 2  # entering one side while holding the other reverses the position


Direction = DirectionT()


class ExitReasonT(NamedTuple):
    """Why a round trip ended (the trades table's ``exit_reason``)."""

    signal: int = 0
    stop: int = 1
    take: int = 2
    trail: int = 3
    time: int = 4
    end: int = 5  # still open at the end of the span: marked at the last close
    ruin: int = 6  # equity reached 0 or below: the backtest stops (docs/semantics.md, Ruin)
    delist: int = 7  # portfolio: the asset's span ended before the data's (closed, with costs)


ExitReason = ExitReasonT()
EXIT_REASONS = ExitReasonT._fields


class MetricT(NamedTuple):
    """Columns of a backtest's metrics row (docs/semantics.md, Metrics)."""

    total_return: int = 0
    cagr: int = 1
    volatility: int = 2
    sharpe: int = 3
    sortino: int = 4
    max_drawdown: int = 5
    calmar: int = 6
    n_trades: int = 7
    win_rate: int = 8
    profit_factor: int = 9
    avg_trade: int = 10
    exposure: int = 11
    avg_bars_held: int = 12
    n_stop: int = 13  # n_stop, n_take, n_trail, n_time follow in ExitReason order
    n_take: int = 14
    n_trail: int = 15
    n_time: int = 16
    n_signal: int = 17
    skew: int = 18  # of the per-bar returns (population moments)
    kurtosis: int = 19  # raw (not excess): 3 for normal returns
    best_trade: int = 20  # of the trades' returns; these four from the trade tally alone
    worst_trade: int = 21
    expectancy: int = 22  # mean trade pnl, in cash
    sqn: int = 23  # sqrt(n_trades) * mean(pnl) / std(pnl, ddof=1)
    ruined: int = 24  # 1.0 when equity reached 0 or below, else 0.0
    #: rank: traded fraction of equity per rebalance; per asset and portfolio: traded value
    #: per year as a multiple of the mean equity
    turnover: int = 25
    costs: int = 26  # cash paid in commissions, fixed fees and taxes
    cost_rate: int = 27  # costs / traded value (NaN when nothing traded)


Metric = MetricT()
METRIC_NAMES = MetricT._fields
N_METRICS = len(METRIC_NAMES)


class TallyT(NamedTuple):
    """Slots of a backtest's trade tally (float64 scratch, one per thread)."""

    trades: int = 0
    wins: int = 1
    gross_profit: int = 2
    gross_loss: int = 3
    sum_return: int = 4
    sum_bars: int = 5
    ruined: int = 6
    pnl_mean: int = 7  # running mean and sum of squared deviations of trade pnl (Welford)
    pnl_m2: int = 8
    best_return: int = 9  # the largest and smallest trade return (set by the first trade)
    worst_return: int = 10
    costs: int = 11  # commissions, fixed fees and taxes of the booked trades
    traded: int = 12  # the notional of their fills (marks apart)
    reason: int = 13  # trades by exit reason: slot reason + ExitReason.<name>


Tally = TallyT()
N_TALLY = Tally.reason + len(EXIT_REASONS)


class RuleT(NamedTuple):
    """Columns of the per-combo risk and cost matrix ``Combos.rules`` (float64).

    Rates are off when NaN; ``max_bars`` is a whole number of bars (exact up to 2**53),
    0 = off. The shell fills column ``RULE_COLUMNS[j]`` from the grid's parameter of that
    name (``sweepbt._combo_options.OPTIONS``).
    """

    stop_loss: int = 0
    take_profit: int = 1
    trailing_stop: int = 2
    stop_atr: int = 3
    take_atr: int = 4
    trailing_atr: int = 5
    max_bars: int = 6
    fees: int = 7
    fixed_fees: int = 8
    slippage: int = 9
    size: int = 10
    max_positions: int = 11  # portfolio: a whole number of open positions at most, 0 = no cap
    tax: int = 12  # a fraction of every sale's notional
    fees_per_share: int = 13  # cash per unit traded
    min_fees: int = 14  # the commission's minimum per fill, cash (0: none)
    max_fees: int = 15  # the commission's cap, a fraction of the notional (0: none)
    lot_size: int = 16  # units trade in whole multiples of it (0: fractional)


Rule = RuleT()
RULE_COLUMNS = RuleT._fields
N_RULES = len(RULE_COLUMNS)

#: one closed round trip; bars are absolute bar indices, ``direction`` +1 long / -1 short,
#: ``exit_reason`` an ExitReason value, ``mfe``/``mae`` fractions of the entry price,
#: ``asset`` the Bundle index of the asset traded
TRADE_DTYPE = np.dtype([
    ("direction", np.int64), ("entry_bar", np.int64), ("exit_bar", np.int64),
    ("entry_price", np.float64), ("exit_price", np.float64), ("entry_quote", np.float64),
    ("exit_quote", np.float64), ("units", np.float64), ("pnl", np.float64),
    ("return", np.float64), ("exit_reason", np.int64), ("mfe", np.float64),
    ("mae", np.float64), ("asset", np.int64), ("commission", np.float64),
    ("tax", np.float64),
], align=True)


class WeightingT(NamedTuple):
    """How a rank strategy splits each side's budget over the assets it chose."""

    equal: int = 0
    inverse_vol: int = 1  # in proportion to 1 / volatility
    score: int = 2  # in proportion to the score's distance from the worst eligible score


Weighting = WeightingT()
WEIGHTINGS = WeightingT._fields


class RankRuleT(NamedTuple):
    """Columns of ``RankCombos.rank`` (float64): a rank combo's selection. ``top_n``,
    ``bottom_n`` whole numbers; ``weighting`` a Weighting value; ``position_limit`` the
    cap on |weight| (NaN = none)."""

    top_n: int = 0
    bottom_n: int = 1
    weighting: int = 2
    position_limit: int = 3


RankRule = RankRuleT()
RANK_COLUMNS = RankRuleT._fields
N_RANK = len(RANK_COLUMNS)


class Market(NamedTuple):
    """Every asset's prices, float64 ``(n_assets, n_bars)``, and its trade span: bars
    ``start[a] <= i < end[a]`` (int64 ``(n_assets,)``)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    start: np.ndarray
    end: np.ndarray


class Events(NamedTuple):
    """Signal events in CSR form (see kernels.signals): row ``r`` holds the bars
    ``bar[ptr[r]:ptr[r + 1]]`` (int64, increasing) and their codes ``code`` (int8)."""

    ptr: np.ndarray
    bar: np.ndarray
    code: np.ndarray


class Combos(NamedTuple):
    """The combos of one launch: combo ``c`` reads the signal events of CSR row
    ``signal_idx[c] * n_assets + asset``, the ATR row ``atr_bank[asset, atr_idx[c]]`` and
    the risk and cost rules ``rules[c]`` (float64 ``(n_combos, N_RULES)``, C order,
    columns RULE_COLUMNS). ``signal_idx`` and ``atr_idx`` are int64 ``(n_combos,)``."""

    signal_idx: np.ndarray
    atr_idx: np.ndarray
    rules: np.ndarray


class SimSettings(NamedTuple):
    """The run settings every backtest of a launch shares. Build it with :meth:`of`, which
    types it as the kernels are compiled for (int64, int64, float64, float64, int64,
    int64, bool)."""

    fill: int  # a FillMode value
    direction: int  # a Direction value
    init_cash: float
    periods_per_year: float
    size_type: int  # a SizeType value (portfolio backtests only)
    #: the address of the user's commission callback (kernels.commission), 0: none
    commission: int
    user_commission: bool

    @classmethod
    def of(cls, fill, direction, init_cash, periods_per_year, size_type=0, commission=None):
        """``commission``: a user's ``@njit f(units, price, is_buy)``, or None for the
        commission of the cost rules."""
        address = 0
        if commission is not None:
            from sweepbt.kernels.commission import commission_callback  # numba: not here

            address = commission_callback(commission).address
        return cls(int(fill), int(direction), float(init_cash), float(periods_per_year),
                   int(size_type), address, commission is not None)


class Scores(NamedTuple):
    """The rank inputs of a launch. ``score[s, k, a]`` is asset a's score (NaN: not
    eligible) and ``vol[v, k, a]`` its return volatility at bar ``bars[k]``, float64
    ``(n_scores | n_vols, n_keys, n_assets)``; ``key[i]`` is the row ``k`` holding bar
    ``i`` (-1: none), int64 ``(n_bars,)``; ``rebalance[j, i]`` whether schedule ``j``
    rebalances at bar ``i``, bool ``(n_schedules, n_bars)``. Every bar a schedule
    rebalances at has a key."""

    score: np.ndarray
    vol: np.ndarray
    key: np.ndarray
    rebalance: np.ndarray


class RankCombos(NamedTuple):
    """The combos of a rank launch: combo ``c`` ranks by ``score[score_idx[c]]``, weights by
    ``vol[vol_idx[c]]``, rebalances on schedule ``schedule_idx[c]`` (int64 ``(n_combos,)``),
    with risk and cost rules ``rules[c]`` (RULE_COLUMNS; ``size``, ``max_positions`` and
    the ATR rules unused) and ``rank[c]`` (RANK_COLUMNS)."""

    score_idx: np.ndarray
    vol_idx: np.ndarray
    schedule_idx: np.ndarray
    rules: np.ndarray
    rank: np.ndarray


class Holdings(NamedTuple):
    """A recorded rank backtest's rebalances, in order: row ``m`` rebalanced at the close of
    ``bar[m]`` (-1: a row not used) to target ``weights[m]`` (signed fractions of equity,
    ``(n_rebalances, n_assets)``) and traded ``turnover[m]`` (0: it traded nothing)."""

    bar: np.ndarray
    weights: np.ndarray
    turnover: np.ndarray


class Outputs(NamedTuple):
    """Where one backtest writes: ``metrics`` (N_METRICS floats, METRIC_NAMES order) and,
    when recording, per-bar ``equity``, ``cash``, ``units`` (signed) over the Market's bar
    axis and one TRADE_DTYPE record per trade in ``trades`` (room for every trade). A
    portfolio's ``units`` is ``(n_assets, n_bars)``, one row per asset."""

    metrics: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    units: np.ndarray
    trades: np.ndarray


class Bars(NamedTuple):
    """One asset's price rows, its ATR row (for the ATR-scaled rules) and trade span."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    atr: np.ndarray
    start: int
    end: int
    asset: int  # its index in the Bundle (written to its trade records)


class Signals(NamedTuple):
    """One CSR row of Events: increasing ``bar`` and their ``code``."""

    bar: np.ndarray
    code: np.ndarray


class Scratch(NamedTuple):
    """Per-thread scratch of the backtests: ``buf`` (a block of returns waiting to be
    reduced) and ``tally`` (N_TALLY trade counters)."""

    buf: np.ndarray
    tally: np.ndarray


def _check_positions():
    """Every enum's values are its field positions (its names are column names)."""
    for enum in (FillMode, SizeType, Direction, ExitReason, Metric, Tally, Rule, Weighting,
                 RankRule):
        if tuple(enum) != tuple(range(len(enum))):
            raise AssertionError(f"{type(enum).__name__}: values must be 0, 1, 2, ...")


_check_positions()
