"""The one internal API for running a grid: prepare, then chunks, then run one chunk, then
per-bar equity of given combos.

``prepare`` validates a call's arguments into a :class:`Plan`: the data, the strategy, the
parameter grid and the run settings. A plan names everything a run needs and pickles (the
signal events and ATR rows it builds on first use are left out and rebuilt where it lands).
``Plan.chunks`` cuts the grid ids (or a sample of them) into launches of about
CHUNK_BAR_EVALUATIONS bar-evaluations; ``Plan.run_chunk`` runs one launch and labels its
rows with their grid ids, so chunks can run in any order, anywhere, and merge the same.
``backtest``, ``sweep``, ``estimate`` and ``walk_forward`` all go through here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import numpy as np

from sweepbt import kernels
from sweepbt._commission import check_commission, commission_record
from sweepbt._threading import check_threads, kernel_threads, n_threads, single_thread
from sweepbt._validate import check_count
from sweepbt.data import Bundle, load
from sweepbt._combo_options import check_costs
from sweepbt._engines import engine_for
from sweepbt._options import DEFAULTS, SIZE_TYPES, options_of
from sweepbt._params import (EXACT_COUNT_LIMIT, OPTIONS, build_grid, check_fixed, is_null,
                            user_value)
from sweepbt.strategies.ranking import check_rank_call, check_settings, unbounded_windows
from sweepbt.strategies.builtin import STRATEGIES
from sweepbt.strategies.lookup import get_strategy

#: a chunk of a sweep aims at this many bar-evaluations (tens of milliseconds of kernel time)
CHUNK_BAR_EVALUATIONS = 50_000_000
#: launches with less work than this run on the calling thread alone: waking a thread pool
#: costs more than it saves, and much more on a busy machine
SERIAL_BAR_EVALUATIONS = 2_000_000
#: a sample= run gives up after this many random draws per combo wanted (constraint too tight)
SAMPLE_DRAWS_PER_COMBO = 256
ATR_RULES = ("stop_atr", "take_atr", "trailing_atr")


@dataclass(frozen=True)
class Settings:
    """The non-sweepable options in kernel form, and the per-asset trade span (bars
    ``start[a] <= i < end[a]``)."""

    fill: int
    direction: int
    init_cash: float
    periods_per_year: float
    threads: object
    start: np.ndarray
    end: np.ndarray
    portfolio: bool = False
    size_type: int = 0  # a kernels.SizeType value
    commission: object = None  # the user's @njit commission function (_commission.py)

    @property
    def bars_per_combo(self):
        """Bar-evaluations of one combo over every asset (asset-bars for a portfolio)."""
        return int((self.end - self.start).sum())

    def row_spans(self):
        """(start, end) of each result row of a combo: each asset's trade span, or for a
        portfolio the one span from the first start to the last end of the assets with
        bars in the span (the kernel's ``_axis``)."""
        if not self.portfolio:
            return self.start, self.end
        traded = self.end > self.start
        if not traded.any():
            return np.zeros(1, np.int64), np.zeros(1, np.int64)
        return self.start[traded].min(keepdims=True), self.end[traded].max(keepdims=True)


@dataclass(frozen=True)
class ChunkResult:
    """The rows of one chunk: ``metrics[k * n_rows + a]`` is combo ``ids[k]`` (a grid
    index) on asset ``a`` (``n_rows`` = n_assets), or its portfolio (``n_rows`` = 1);
    ``params[name][k]`` its parameter values (kernel dtypes)."""

    ids: np.ndarray
    params: dict
    metrics: np.ndarray


class Plan:
    """A validated grid run: ``bundle``, ``strategy``, ``grid``, ``settings`` (kernel
    form), ``options`` (the call's options.RunOptions, checked), ``strategy_settings`` (a
    rank strategy's keyword settings) and ``engine`` (the engines.Engine it runs). A plan
    is never changed once built. It is a ``protocols.Runner``: an executor runs its chunks
    (``chunks()``, ``run_chunk(ids)``), here or on Dask workers."""

    def __init__(self, bundle, strategy, grid, settings, options, strategy_settings,
                 built=None):
        self.bundle, self.strategy, self.grid = bundle, strategy, grid
        self.settings, self.options = settings, options
        self.strategy_settings = strategy_settings
        self.engine = engine_for(strategy.is_rank, settings.portfolio)
        self._built = {} if built is None else built  # shared with with_window() plans

    def __getstate__(self):
        """A registered strategy travels by name (looked up again where it lands); the
        signal events and ATR rows are left out and rebuilt there."""
        state = self.__dict__.copy()
        state["_built"] = {}
        if STRATEGIES.get(self.strategy.name) is self.strategy:
            state["strategy"] = self.strategy.name
            state["grid"] = replace(self.grid, strategy=None)
        return state

    def __setstate__(self, state):
        if isinstance(state["strategy"], str):
            state["strategy"] = get_strategy(state["strategy"])
            state["grid"] = replace(state["grid"], strategy=state["strategy"])
        self.__dict__.update(state)

    def with_window(self, lo, hi):
        """This plan trading only bars ``lo <= i < hi`` (indicators warm up before), sharing
        the built signals and ATR rows."""
        start, end = trade_span(self.bundle, (lo, hi))
        return Plan(self.bundle, self.strategy, self.grid,
                    replace(self.settings, start=start, end=end), self.options,
                    self.strategy_settings, self._built)

    def single(self, params, threads=None):
        """A plan of the one combo ``params`` (a backtest) on this plan's data, strategy
        and backtest options (``threads``: default this plan's)."""
        given = {f.name: getattr(self.options, f.name) for f in options_of("backtest")}
        if threads is not None:
            given["threads"] = threads
        return prepare(self.bundle, self.strategy, params, replace(DEFAULTS, **given))

    @property
    def fixed(self):
        """The run options as the result metadata (JSON) records them."""
        o = self.options
        fixed = {"fill": o.fill, "direction": o.direction, "init_cash": o.init_cash,
                 "periods_per_year": o.periods_per_year, "constraint": o.constraint,
                 **self.engine.metadata, **self.strategy_settings,
                 **{name: getattr(o, name) for name in self.engine.recorded}}
        if o.window is not None:
            fixed["window"] = list(o.window)  # as asked, not as each asset's span cuts it
        if o.train is not None:  # a walk-forward's
            fixed.update(train=o.train, test=o.test, step=o.test if o.step is None else o.step,
                         anchored=bool(o.anchored), partial=bool(o.partial),
                         objective=o.objective)
        if o.sample is not None:
            fixed.update(sample=o.sample, seed=o.seed)
        if o.commission is not None:
            fixed["commission"] = commission_record(o.commission)
        return fixed

    @property
    def n_assets(self):
        return self.bundle.n_assets

    @property
    def row_symbols(self):
        """The ``symbol`` of each result row of a combo: the assets, or ``"portfolio"``."""
        return self.engine.row_symbols(self.bundle.symbols)

    @property
    def n_rows(self):
        """Result rows per combo: one per asset, or one for a portfolio."""
        return self.engine.n_rows(self.n_assets)

    def built(self):
        """(signal source, ATR cache), built once (call inside ``kernel_threads``); a rank
        strategy's: (ranking.RankSource, None)."""
        if not self._built:
            values = {**self.grid.strategy_values, **self.strategy_settings}
            self._built["signals"] = self.strategy.build(self.bundle, values)
            self._built["atr"] = AtrCache.build(self.bundle, self.grid) \
                if self.engine.atr else None
        return self._built["signals"], self._built["atr"]

    def chunk_size(self, mean_span=None):
        """Combos per chunk: about CHUNK_BAR_EVALUATIONS bar-evaluations for backtests of
        ``mean_span`` bars (default: the mean trade span)."""
        if mean_span is None:
            mean_span = float((self.settings.end - self.settings.start).mean())
        return max(1, int(CHUNK_BAR_EVALUATIONS / (self.n_assets * max(1.0, mean_span))))

    def chunks(self, ids=None, mean_span=None, size=None):
        """The grid ids to run, cut into chunks (int64 arrays, ascending) of ``size`` combos
        (default: ``chunk_size(mean_span)``): every id of the grid, or the sorted ``ids``
        (a sample). Chunk ``k`` holds positions ``k*size`` to ``(k+1)*size - 1`` of those
        ids. Constrained-out ids are dropped by ``run_chunk``."""
        size = self.chunk_size(mean_span) if size is None else size
        n = self.grid.n_total if ids is None else ids.size
        for lo in range(0, n, size):
            hi = min(n, lo + size)
            yield np.arange(lo, hi, dtype=np.int64) if ids is None else ids[lo:hi]

    def run_chunk(self, ids):
        """Metrics of the grid combos ``ids`` that pass the constraint, on every asset;
        None when the constraint keeps none of them."""
        return self.run_selection(self.grid.columns_at(np.asarray(ids, dtype=np.int64)))

    def run_selection(self, selection):
        """``run_chunk`` of a ``grid.columns_at`` result (several plans may share one)."""
        columns, signal_idx, kept = selection
        if kept.size == 0:
            return None
        metrics = np.empty((kept.size * self.n_rows, kernels.N_METRICS))
        n_rows = metrics.shape[0]
        work = kept.size * self.settings.bars_per_combo
        threads = 1 if work < SERIAL_BAR_EVALUATIONS else n_threads(self.settings.threads)
        n_tasks = max(1, min(n_rows, 8 * threads))
        with single_thread() if threads == 1 else contextlib.nullcontext():
            self.engine.kernel("metrics")(**self._inputs(columns, signal_idx),
                                          n_tasks=n_tasks, out=metrics)
        return ChunkResult(kept, {n: columns[n] for n in self.grid.names}, metrics)

    def equity(self, ids):
        """Per-bar equity ``(len(ids), n_rows, n_bars)`` of the grid combos ``ids`` (NaN
        outside each row's span). The Bundle is checked again first: its arrays may have
        been written since the plan was prepared."""
        self.bundle.check()
        columns, signal_idx, _ = self.grid.columns_at(np.asarray(ids, dtype=np.int64))
        n_bars = self.bundle.n_bars
        out = np.empty((signal_idx.size * self.n_rows, n_bars))
        if signal_idx.size:
            with kernel_threads(self.settings.threads):
                self.engine.kernel("equity")(**self._inputs(columns, signal_idx), out=out)
        return out.reshape(signal_idx.size, self.n_rows, n_bars)

    def record(self):
        """Grid combo 0 with everything recorded: ``(params, metrics, equity, cash,
        units, trades, rebalances)``. Per asset: per-bar arrays ``(n_assets, n_bars)``,
        NaN outside each span, and one kernels.TRADE_DTYPE record array per asset. A
        portfolio: ``equity`` and ``cash`` ``(n_bars,)``, ``units`` ``(n_assets,
        n_bars)``, NaN outside the portfolio's span, and one record array of every trade.
        ``rebalances``: a rank strategy's kernels.Holdings, else None."""
        columns, signal_idx, _ = self.grid.columns_at(np.zeros(1, np.int64))
        with kernel_threads(self.settings.threads):
            metrics = self.run_chunk(np.zeros(1, np.int64)).metrics  # sizes the trades
            n_trades = metrics[:, kernels.Metric.n_trades].astype(np.int64)
            recorded = self.engine.recorder(self._inputs(columns, signal_idx), metrics,
                                            self.bundle, self.settings, n_trades)
        return (self.params_of(0), metrics, *recorded)

    def params_of(self, combo):
        """The parameters of grid combo ``combo`` as the user would pass them: Python
        scalars, None for a rule that is off. ValueError when the id is outside the grid or
        the constraint drops it."""
        if not 0 <= combo < self.grid.n_total:
            raise ValueError(f"combo {combo} is not in this grid "
                             f"(ids 0..{self.grid.n_total - 1})")
        columns, _, kept = self.grid.columns_at(np.array([combo], np.int64))
        if kept.size == 0:
            raise ValueError(f"combo {combo} does not pass the constraint "
                             f"{self.options.constraint!r}")
        return {**self.strategy_settings,
                **{name: user_value(name, columns[name][0]) for name in self.grid.names}}

    def _inputs(self, columns, signal_idx):
        """The keyword arguments of this plan's engine's kernels for the combos of
        ``columns`` (their signals: rows ``signal_idx`` of the signal source)."""
        bundle, settings = self.bundle, self.settings
        source, atr = self.built()
        common = {
            "market": kernels.Market(open=bundle.open, high=bundle.high, low=bundle.low,
                                     close=bundle.close, start=settings.start,
                                     end=settings.end),
            "settings": kernels.SimSettings.of(settings.fill, settings.direction,
                                               settings.init_cash, settings.periods_per_year,
                                               settings.size_type,
                                               settings.commission),
        }
        return self.engine.inputs(common, source, atr, columns, signal_idx)


@dataclass(frozen=True)
class AtrCache:
    """Wilder ATR once per distinct ``atr_window`` per asset (NaN rows if no ATR rule)."""

    windows: np.ndarray
    bank: np.ndarray

    @classmethod
    def build(cls, bundle, grid):
        used = any(n in grid.values and not np.all(is_null(n, grid.values[n]))
                   for n in ATR_RULES)
        if not used:
            return cls(np.zeros(1, np.int64), np.full((bundle.n_assets, 1, bundle.n_bars),
                                                      np.nan))
        windows = np.unique(grid.values["atr_window"] if "atr_window" in grid.values
                            else np.array([OPTIONS["atr_window"].default]))
        bank = np.empty((bundle.n_assets, windows.size, bundle.n_bars))
        kernels.atr_bank(bundle.high, bundle.low, bundle.close, bundle.start, bundle.end,
                         windows, bank)
        return cls(windows, bank)

    def index(self, atr_window):
        if self.windows.size == 1:
            return np.zeros(atr_window.size, np.int64)
        return np.searchsorted(self.windows, atr_window).astype(np.int64)


def prepare(data, strategy, params, options=DEFAULTS, **given):
    """Validate one call's arguments (``options``, an options.RunOptions, with the
    ``given`` fields replaced) into a Plan (nothing is computed yet). A Bundle is checked
    again (``Bundle.check``): its arrays may have been written since it was built."""
    o = replace(options, **given)
    if isinstance(data, Bundle):
        data.check()
    bundle = data if isinstance(data, Bundle) else load(data)
    strat = get_strategy(strategy)
    given = {k: params[k] for k in strat.settings if k in params}
    params = {k: v for k, v in params.items() if k not in strat.settings}
    fill_code, dir_code, cash, ppy = check_fixed(o.fill, o.direction, o.init_cash,
                                                 o.periods_per_year)
    threads = check_threads(o.threads)
    window = check_window(o.window, bundle.n_bars)
    start, end = trade_span(bundle, window)
    longest_span = int((bundle.end - bundle.start).max())
    grid = build_grid(strat, params, longest_span, o.constraint, unbounded_windows(strat))
    if ppy is None:
        ppy = float(bundle.periods_per_year)
    portfolio = o.portfolio
    if strat.is_rank:  # always one portfolio; its sizing is the strategy's own
        check_rank_call(strat, grid, params, o.direction, bundle.n_assets, longest_span)
        portfolio = True
    check_costs(grid.values, cash)
    commission = check_commission(o.commission, grid.values)
    size_code = check_sizing(portfolio, o.size_type, grid, params, cash)
    settings = Settings(fill_code, dir_code, cash, ppy, threads, start, end,
                        bool(portfolio), size_code, commission)
    strategy_settings = check_settings(strat, given, bundle) if strat.is_rank else {}
    sample, seed = check_sample(o.sample, o.seed)
    o = replace(o, strategy=strat.name, init_cash=cash, periods_per_year=ppy,
                threads=threads, window=window, portfolio=portfolio, sample=sample,
                seed=seed, scheduler=None, commission=commission)
    return Plan(bundle, strat, grid, settings, o, strategy_settings)


def check_sizing(portfolio, size_type, grid, params, init_cash):
    """Check ``portfolio``, ``size_type`` and the grid's ``size`` and ``max_positions``
    against each other; return the kernels.SizeType code."""
    if not isinstance(portfolio, (bool, np.bool_)):
        raise TypeError(f"portfolio must be True or False, got {portfolio!r}")
    if isinstance(size_type, str) and size_type in SIZE_TYPES:
        code = SIZE_TYPES[size_type]
    else:
        raise ValueError(f"unknown size_type {size_type!r}; expected one of "
                         f"{sorted(SIZE_TYPES)}")
    if not portfolio:
        if code != kernels.SizeType.equity:
            raise ValueError(f"size_type={size_type!r} needs portfolio=True (a per-asset "
                             "backtest sizes each entry as a fraction of its own equity)")
        if "max_positions" in params:
            raise ValueError("max_positions needs portfolio=True (a per-asset backtest "
                             "holds one position at most)")
    sizes = grid.values["size"] if "size" in grid.values else np.array([1.0])
    if code == kernels.SizeType.equity and sizes.max() > 1.0:
        raise ValueError(
            f"size={sizes.max():g} is a fraction of equity and must be in (0, 1]; for a "
            "cash amount per entry use portfolio=True with size_type='value'")
    if code == kernels.SizeType.value:
        if "size" not in params:
            raise ValueError("size_type='value' needs size= (the cash amount of each "
                             "entry)")
        if sizes.max() > init_cash:
            raise ValueError(
                f"size={sizes.max():g} is more cash per entry than init_cash={init_cash:g}; "
                "give a size at most init_cash, or a larger init_cash")
    return code


def check_window(window, n_bars):
    """``window``: None, or a ``(start_bar, stop_bar)`` pair of integer bar indices with
    ``0 <= start_bar < stop_bar <= n_bars``; returned as a tuple of Python ints."""
    if window is None:
        return None
    if isinstance(window, (str, bytes)) or not hasattr(window, "__len__") \
            or len(window) != 2:
        raise TypeError(f"window must be a (start_bar, stop_bar) pair, got {window!r}")
    lo = check_count("window[0] (start_bar)", window[0], 0, wrong_type=TypeError)
    hi = check_count("window[1] (stop_bar)", window[1], 0, wrong_type=TypeError)
    if not lo < hi <= n_bars:
        raise ValueError(f"window=({lo}, {hi}) must satisfy 0 <= start_bar < stop_bar <= "
                         f"n_bars={n_bars}")
    return lo, hi


def trade_span(bundle, window):
    """Per-asset bars where backtests trade: the asset's span, cut to ``window``.

    ``window=(start_bar, stop_bar)`` (checked) trades and measures only bars
    ``start_bar <= i < stop_bar``; indicators still warm up on the bars before it, and
    nothing after it is read (every indicator is causal).
    """
    if window is None:
        return bundle.start, bundle.end
    lo, hi = window
    start = np.maximum(bundle.start, lo)
    end = np.minimum(bundle.end, hi)
    return start, np.maximum(end, start)


def check_resume(resume, out, sample, seed):
    """``resume=True`` needs ``out=``, and with ``sample=`` a ``seed=`` (the same combos
    must be drawn again)."""
    if resume and out is None:
        raise ValueError("resume=True continues an out= folder; pass out='results_dir'")
    if resume and sample is not None and seed is None:
        raise ValueError("resume=True with sample= needs seed= (the same combos must be "
                         "drawn again)")


def check_sample(sample, seed):
    """``sample`` (None or a count >= 1) and ``seed`` (None or an integer >= 0)."""
    if sample is None:
        return None, None
    return (check_count("sample", sample),
            None if seed is None else check_count("seed", seed, minimum=0))


def sampled_combos(grid, n, seed):
    """The grid indices a ``sample=n`` run uses, sorted (grid order); None for every combo
    of the grid (it keeps no more than ``n``).

    ``n`` distinct indices are drawn uniformly from the combos that pass the constraint, by
    rejection sampling over the unconstrained product (never materialized, never counted
    when it is larger than EXACT_COUNT_LIMIT); duplicates are dropped keeping the first
    draw, so the sample is uniform without replacement and reproducible for a given
    ``seed``. ValueError when the constraint keeps too few combos to find ``n`` of them
    within SAMPLE_DRAWS_PER_COMBO draws per combo.
    """
    if n is None:
        return None
    if grid.constraint is None or grid.n_total <= EXACT_COUNT_LIMIT:
        if n >= grid.count():
            return None
    return draw_distinct(n, grid.n_total, lambda flat: grid.columns_at(flat)[2], seed,
                         f"the constraint {grid.constraint!r}")


def draw_distinct(n, n_total, passing, seed, what):
    """``n`` distinct ids of ``range(n_total)``, sorted, drawn uniformly among those
    ``passing(ids)`` keeps (it returns the kept ones, in order) by rejection sampling,
    duplicates dropped keeping the first draw (:func:`sampled_combos`); ``what`` names
    the filter in the error when too few pass."""
    rng = np.random.default_rng(seed)
    chosen = np.empty(0, np.int64)
    drawn, budget = 0, SAMPLE_DRAWS_PER_COMBO * max(n, 1024)
    while chosen.size < n:
        if drawn >= budget:
            raise ValueError(
                f"sample={n}: {what} kept only {chosen.size:,} distinct combos in "
                f"{drawn:,} random draws from a grid of {n_total:,}; use a smaller sample "
                "or a looser constraint")
        size = max(1024, 2 * (n - chosen.size))
        draw = rng.integers(0, n_total, size=size)
        drawn += size
        merged = np.concatenate([chosen, passing(draw)])
        _, first = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first)]
    return np.sort(chosen[:n])


def no_combination(grid):
    """The error of a grid whose constraint keeps nothing."""
    return ValueError(f"constraint {grid.constraint!r} leaves no combination to run")
