"""Result objects: Arrow tables out, numpy arrays for per-bar series. No pandas needed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sweepbt import _display as display, _frames as frames
from sweepbt import _html_report as html_report, _result_stats as result_stats
from sweepbt._compiling import notice
from sweepbt._files import write_parquet
from sweepbt._display import table_metadata
from sweepbt._backtest_stats import drawdown, extra_columns, trades_table
from sweepbt._series import returns_from_equity
from sweepbt._validate import check_count, combo_id
from sweepbt._params import (CHOICE_PARAMS, decode_choice, encode_choice, evaluate_constraint,
                            is_null)
from sweepbt.strategies.ranking import holdings_table, rebalances_table
from sweepbt._vocabulary import (
    COUNT_METRICS, METRIC_NAMES, N_METRICS, mean_over_assets, metric_index, rank_order)


def _metric_columns(metrics, names, counts_as_int=True):
    """Arrow arrays of the metrics ``names`` (an engine's) of a (rows, N_METRICS) float
    block; counts as int64."""
    return {name: pa.array(metrics[:, j].astype(np.int64)
                           if counts_as_int and name in COUNT_METRICS else metrics[:, j])
            for j, name in enumerate(names)}


def param_arrays(params):
    """Arrow arrays for per-row parameter values (kernel form, name -> array); a risk rule that is off is null; a rank
    strategy's ``rebalance`` and ``weighting`` as the words (or number) a user gives."""
    return {name: pa.array([str(decode_choice(name, v)) for v in values.tolist()],
                           pa.string()) if name in CHOICE_PARAMS else
            pa.array(values, mask=is_null(name, values)) for name, values in params.items()}


def sweep_table(symbols, strategy, fixed, combo_ids, params, metrics, names=None):
    """The rows of a sweep: ``combo``, parameters, ``symbol``, metrics (combo-major);
    ``symbols`` labels the rows of one combo (its assets, or ``"portfolio"``); ``names``
    the metrics (default: those the metadata ``fixed`` of the plan's engine says)."""
    n_rows = len(symbols)
    repeat = np.repeat(np.arange(combo_ids.size), n_rows)
    cols = {"combo": pa.array(combo_ids[repeat])}
    cols.update(param_arrays({n: v[repeat] for n, v in params.items()}))
    labels = pa.array(list(symbols), pa.string())
    cols["symbol"] = labels.take(pa.array(np.tile(np.arange(n_rows), combo_ids.size)))
    if names is None:
        names = METRIC_NAMES
    cols.update(_metric_columns(metrics, names))
    return pa.table(cols).replace_schema_metadata(table_metadata(strategy, fixed))


def rows_of_table(table, names, n_rows):
    """The inverse of :func:`sweep_table`: ``(combo ids, params, metrics)`` in kernel form
    (parameters ``names``; a rule that is off back to NaN or 0; ``n_rows`` rows per
    combo), rows in table order."""
    combos = table["combo"].to_numpy()[::n_rows]
    params = {n: _filled(n, table[n])[::n_rows] for n in names}
    nan = np.full(table.num_rows, np.nan)
    metrics = np.column_stack([table[m].to_numpy().astype(np.float64)
                               if m in table.column_names else nan
                               for m in METRIC_NAMES]).reshape(-1, N_METRICS)
    return combos, params, metrics


class _Recorded:
    """What a recorded backtest (per asset, or a portfolio) shows: the notebook displays,
    Arrow, pandas and Polars frames and the HTML report. A portfolio's 1-D ``equity`` and ``cash``
    are its one curve (``"portfolio"``)."""

    @property
    def drawdown(self) -> np.ndarray:
        """Per-bar drawdown, the shape of ``equity``: ``1 - equity / running peak`` (peak
        from ``init_cash``), a positive fraction; NaN outside each span."""
        rows = np.atleast_2d(self.equity)
        return np.array([drawdown(row, self.options.init_cash) for row in rows]).reshape(
            np.shape(self.equity))

    def __repr__(self):
        return display.backtest_repr(self)

    def __str__(self):
        return display.backtest_text(self)

    def _repr_html_(self):
        return display.backtest_html(self)

    def to_pandas(self):
        """Per-bar ``equity``, ``cash``, ``units`` and ``drawdown`` as a pandas DataFrame:
        a UTC DatetimeIndex, columns ``(series, symbol)`` (``df["equity"]["AAA"]``; a
        portfolio's equity, cash and drawdown: ``df["equity"]["portfolio"]``). Tables
        convert themselves: ``bt.stats.to_pandas()``, ``bt.trades.to_pandas()``."""
        return frames.series_pandas(self.bundle, self._series(), self.options.init_cash,
                                    f"{type(self).__name__}.to_pandas()")

    def to_arrow(self) -> pa.Table:
        """Per-bar series as an Arrow table: long (``timestamp, symbol, equity, cash,
        units, drawdown``, the bars of each asset's span) per asset; wide for a portfolio
        (``timestamp, equity, cash, drawdown, units_SYMBOL...``, its span's bars)."""
        return frames.series_arrow(self.bundle, self._series(), self.options.init_cash)

    def to_polars(self):
        """:meth:`to_arrow` as a Polars frame."""
        return frames.table_polars(self.to_arrow(), f"{type(self).__name__}.to_polars()")

    def _series(self):
        return {"equity": self.equity, "cash": self.cash, "units": self.units}

    def report(self, path=None, **options):
        """The HTML report (:func:`sweepbt.report`, same options): written to ``path``
        when given (the path is returned), else returned as text."""
        return html_report.report(self, path, **options)


@dataclass(repr=False)
class BacktestResult(_Recorded):
    """One backtest per asset: ``stats`` and ``trades`` tables and per-bar arrays.

    ``equity``, ``cash`` and ``units`` (signed: + long, - short) are float64
    ``(n_assets, n_bars)`` on the Bundle's bar axis, NaN outside each asset's span;
    ``equity == cash + units * close`` on every bar. ``params`` is the combination that
    was run (None = rule off).
    """

    bundle: object
    strategy: str
    params: dict
    metrics: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    units: np.ndarray
    trade_rows: list
    fixed: dict
    engine: object  # the engines.Engine that ran it
    options: object  # the run's options.RunOptions, checked
    _stats: pa.Table = field(default=None, repr=False)
    _trades: pa.Table = field(default=None, repr=False)

    @property
    def stats(self) -> pa.Table:
        """One row per asset: ``symbol`` and the metrics of docs/semantics.md."""
        if self._stats is None:
            cols = {"symbol": pa.array(list(self.bundle.symbols), pa.string())}
            cols.update(_metric_columns(self.metrics, self.engine.metric_names))
            cols.update(extra_columns(self.bundle, self.options.init_cash, self.metrics, self.equity,
                                       self.bundle.close))
            self._stats = pa.table(cols).replace_schema_metadata(
                table_metadata(self.strategy, {**self.fixed, **self.params}))
        return self._stats

    @property
    def trades(self) -> pa.Table:
        """One row per round trip, all assets, in order of asset then entry."""
        if self._trades is None:
            self._trades = display.mark_table(trades_table(self.bundle, self.trade_rows))
        return self._trades


def record_backtest(plan):
    """Run grid combo 0 of ``plan`` with everything recorded: a :class:`BacktestResult`,
    or a :class:`PortfolioResult` for a portfolio plan (saying so when it compiles)."""
    with notice(plan, ("record",)):
        params_used, metrics, equity, cash, units, trades, rebalances = plan.record()
    fields = {} if rebalances is None else {"rebalance_rows": rebalances}
    return RESULTS[plan.engine.result](
        bundle=plan.bundle, strategy=plan.strategy.name, params=params_used, metrics=metrics,
        equity=equity, cash=cash, units=units, trade_rows=trades, fixed=plan.fixed,
        engine=plan.engine, options=plan.options, **fields)


@dataclass(repr=False)
class PortfolioResult(_Recorded):
    """One portfolio backtest: every asset traded from one cash balance.

    ``equity`` and ``cash`` are float64 ``(n_bars,)`` on the Bundle's bar axis and
    ``units`` (signed: + long, - short) ``(n_assets, n_bars)``, 0.0 where flat; all NaN
    outside the portfolio's span (the first asset's start to the last asset's end).
    ``equity == cash + sum over assets of units * close`` on every bar. ``params`` is the
    combination that was run (None = rule off).
    """

    bundle: object
    strategy: str
    params: dict
    metrics: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    units: np.ndarray
    trade_rows: np.ndarray
    fixed: dict
    engine: object  # the engines.Engine that ran it
    options: object  # the run's options.RunOptions, checked
    #: a rank strategy's rebalances (kernels.Holdings); None for other portfolios
    rebalance_rows: object = None
    _stats: pa.Table = field(default=None, repr=False)
    _trades: pa.Table = field(default=None, repr=False)

    @property
    def rebalances(self) -> pa.Table:
        """A rank strategy's rebalances (ranking.rebalances_table)."""
        return display.mark_table(rebalances_table(self, self.options.fill == "next_open"))

    @property
    def holdings(self) -> pa.Table:
        """A rank strategy's target weights (ranking.holdings_table)."""
        return display.mark_table(holdings_table(self))

    @property
    def stats(self) -> pa.Table:
        """One row: ``symbol`` ``"portfolio"`` and the metrics of docs/semantics.md."""
        if self._stats is None:
            cols = {"symbol": pa.array(["portfolio"], pa.string())}
            cols.update(_metric_columns(self.metrics, self.engine.metric_names))
            cols.update(extra_columns(self.bundle, self.options.init_cash, self.metrics, [self.equity],
                                       [None]))
            self._stats = pa.table(cols).replace_schema_metadata(
                table_metadata(self.strategy, {**self.fixed, **self.params}))
        return self._stats

    @property
    def trades(self) -> pa.Table:
        """One row per round trip of every asset (``symbol``), in the order they closed."""
        if self._trades is None:
            self._trades = display.mark_table(trades_table(self.bundle,
                                                                   [self.trade_rows]))
        return self._trades

    @property
    def values(self) -> np.ndarray:
        """Each asset's position value per bar, ``units * close`` ``(n_assets, n_bars)``
        (signed; 0.0 where flat, NaN outside the portfolio's span)."""
        with np.errstate(invalid="ignore"):
            return np.where(self.units == 0.0, 0.0, self.units * self.bundle.close)

    @property
    def assets(self) -> pa.Table:
        """One row per asset: ``symbol``, ``pnl`` (its trades' pnl, the final open mark
        included: the column sums to the equity change), ``n_trades``, ``win_rate``."""
        asset = self.trade_rows["asset"]
        pnl = self.trade_rows["pnl"]
        n = self.bundle.n_assets
        n_trades = np.bincount(asset, minlength=n)
        wins = np.bincount(asset, weights=pnl > 0.0, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            win_rate = np.where(n_trades > 0, wins / n_trades, np.nan)
        return display.mark_table(pa.table({
            "symbol": pa.array(list(self.bundle.symbols), pa.string()),
            "pnl": pa.array(np.bincount(asset, weights=pnl, minlength=n)),
            "n_trades": pa.array(n_trades.astype(np.int64)), "win_rate": pa.array(win_rate)}))


#: the result class of each kind an engine names (engines.Engine.result)
RESULTS = {"backtest": BacktestResult, "portfolio": PortfolioResult}


@dataclass
class SweepResult:
    """The results of a sweep.

    In memory: ``combos`` (combo ids, in grid order), ``param_columns`` (name -> one value
    per kept combo) and ``metrics``, float64 ``(len(combos) * len(symbols), N_METRICS)``,
    combo-major: a row per asset, or one per combo for a portfolio sweep. ``top=k`` keeps the
    k best combos; ``out=`` without ``top`` keeps none in memory (rows are read from ``path``).
    """

    bundle: object
    #: the ``symbol`` of each row of a combo: the Bundle's symbols, or ``("portfolio",)``
    symbols: tuple
    strategy: str
    fixed: dict
    names: tuple
    axes: tuple
    n_combos: int
    combos: np.ndarray
    param_columns: dict
    metrics: np.ndarray
    elapsed: float  # the run, compilation excluded
    bar_evaluations: int
    path: str = None
    compile_seconds: float = 0.0  # compiling kernels (first run only): not in elapsed
    sharpe_moments: tuple = field(default=None, repr=False)
    #: the sweep's sweepbt._plan.Plan (data, strategy, grid, options): re-runs equity
    plan: object = field(default=None, repr=False)
    _table: pa.Table = field(default=None, repr=False)

    @property
    def n_backtests(self) -> int:
        """Backtests run: combos that passed the constraint x assets (x 1 for portfolios)."""
        return self.n_combos * len(self.symbols)

    @property
    def throughput(self) -> float:
        """Bar-evaluations per second, signal stage included, compilation excluded."""
        return self.bar_evaluations / self.elapsed if self.elapsed > 0 else float("nan")

    @property
    def table(self) -> pa.Table:
        """One row per combo x asset: ``combo``, the parameters, ``symbol``, metrics."""
        if self._table is None:
            if self.metrics is None:
                self._table = pq.read_table(self.path)
            else:
                self._table = sweep_table(self.symbols, self.strategy, self.fixed,
                                          self.combos, self.param_columns, self.metrics,
                                          self.metric_names)
        return self._table

    @property
    def metric_names(self):
        """The metric columns of this sweep's tables (its engine's)."""
        return self.plan.engine.metric_names

    @property
    def options(self):
        """The sweep's options.RunOptions, checked (``fixed`` is their metadata)."""
        return self.plan.options

    def held(self):
        """(combo ids, params, metrics) of the combos this result holds, in grid order
        (read back from ``path`` for an ``out=`` sweep without ``top``)."""
        if self.metrics is not None:
            return self.combos, self.param_columns, self.metrics
        return rows_of_table(self.table, self.names, len(self.symbols))

    def aggregate(self, how="mean"):
        """(combo ids, per-combo metrics ``(n, N_METRICS)`` aggregated over assets).

        ``how`` is ``"mean"`` or ``"median"``. A combo whose metric is NaN on any asset
        gets NaN (it is undefined there), so ``best`` ranks it last; ``ruined`` is 1 when
        the combo was ruined on any asset.
        """
        combos, _, metrics = self.held()
        per_combo = metrics.reshape(combos.size, len(self.symbols), metrics.shape[-1])
        if how == "mean":
            return combos, mean_over_assets(per_combo)
        if how != "median":
            raise ValueError(f"unknown aggregation {how!r}; expected 'mean' or 'median'")
        out = np.median(per_combo, axis=1)
        ruined = metric_index("ruined")
        out[:, ruined] = per_combo[:, :, ruined].max(axis=1)  # ruined on any asset
        return combos, out

    def best(self, metric="sharpe", k=10, how="mean", *, min_trades=None,
             where=None) -> pa.Table:
        """The top ``k`` combos by ``metric`` aggregated over assets; NaN ranks last.

        Higher is better except for ``max_drawdown``, ``volatility`` and ``turnover``.
        Ties keep combo order. Returns ``rank, combo``, the parameters, then every
        aggregated metric.
        Filters, applied before ranking to the aggregated values: ``min_trades`` keeps
        combos with ``n_trades >= min_trades``; ``where`` is an expression over metric and
        parameter names, e.g. ``"max_drawdown < 0.2 and win_rate > 0.5"`` (the syntax of
        ``constraint``; NaN compares false, so an undefined metric fails its test).
        """
        metric_index(metric)
        k = check_count("k", k)
        combos, per_combo = self.aggregate(how)
        _, params, _ = self.held()
        keep = _filter(per_combo, params, min_trades, where)
        order = rank_order(per_combo, combos, metric)
        order = order[keep[order]][:k]
        cols = {"rank": pa.array(np.arange(1, order.size + 1, dtype=np.int64)),
                "combo": pa.array(combos[order])}
        cols.update(param_arrays({n: v[order] for n, v in params.items()}))
        cols.update(_metric_columns(per_combo[order], self.metric_names,
                                    counts_as_int=False))
        return pa.table(cols).replace_schema_metadata(table_metadata(self.strategy, self.fixed))

    def params(self, combo) -> dict:
        """The parameters of ``combo`` (an id, or a row of :meth:`best` or :attr:`table`
        with a ``combo`` entry) as ``sb.backtest`` takes them; None = rule off. (The held
        combos' parameters as columns: :attr:`param_columns`.)"""
        return self.plan.params_of(combo_id(combo))

    def backtest(self, combo, threads=None):
        """Re-run ``combo`` (an id, or a :meth:`best` / :attr:`table` row) with full
        recording: what ``sb.backtest`` returns (a :class:`BacktestResult`, or a
        :class:`PortfolioResult` for a portfolio sweep) with this sweep's data, strategy,
        options and :meth:`params`."""
        return record_backtest(self.plan.single(self.params(combo), threads))

    def __repr__(self):
        return display.sweep_repr(self)

    def __str__(self):
        return display.sweep_text(self)

    def _repr_html_(self):
        return display.sweep_html(self)

    def to_pandas(self):
        """:attr:`table` as a pandas DataFrame indexed by ``(parameters..., symbol)``."""
        return frames.table_pandas(self.table, [*self.names, "symbol"],
                                   "SweepResult.to_pandas()")

    def to_polars(self):
        """:attr:`table` as a Polars DataFrame."""
        return frames.table_polars(self.table, "SweepResult.to_polars()")

    def report(self, path=None, **options):
        """The HTML report (:func:`sweepbt.report`, same options): written to ``path``
        when given (the path is returned), else returned as text."""
        return html_report.report(self, path, **options)

    def equity(self, combos=None) -> np.ndarray:
        """Per-bar equity ``(len(combos), len(symbols), n_bars)`` of combos held in memory
        (one row per asset, or the portfolio's).

        ``combos`` are combo ids (default: all held); they are re-run with recording, in
        parallel. Bars outside a backtest's span are NaN.
        """
        if self.metrics is None:
            raise ValueError("this sweep kept no rows in memory (out= without top=); "
                             "re-run the combos of interest with sb.backtest")
        if combos is None:
            positions = np.arange(self.combos.size)
        else:
            combos = np.atleast_1d(np.asarray(combos, dtype=np.int64))
            positions = np.searchsorted(self.combos, combos)
            bad = (positions >= self.combos.size) | (
                self.combos[np.minimum(positions, self.combos.size - 1)] != combos)
            if bad.any():
                raise ValueError(f"combo {int(combos[bad][0])} is not held by this result")
        with notice(self.plan, ("equity",)):
            return self.plan.equity(self.combos[positions])

    def returns(self, combos=None) -> np.ndarray:
        """Per-bar returns ``r_i = equity_i / equity_(i-1) - 1`` of :meth:`equity`.

        The first bar of a span is measured against ``init_cash``; NaN outside spans; 0
        after ruin (docs/semantics.md).
        """
        return returns_from_equity(self.equity(combos), self.options.init_cash)

    def to_parquet(self, path, overwrite=False, **kwargs):
        """Write ``table`` to a new Parquet file, atomically, with page checksums unless
        ``write_page_checksum=False``; never over the data's own file, nor an existing one
        without ``overwrite=True`` (:func:`sweepbt._html_report.check_result_path`)."""
        return html_report.write_result_file(
            path, lambda tmp: write_parquet(self.table, tmp, **kwargs), overwrite,
            self.bundle)

    def probabilistic_sharpe(self, combo=None, sr_benchmark=0.0) -> float:
        """PSR of ``combo`` (default: the best by Sharpe); ``sr_benchmark`` annualized.

        See :func:`sweepbt._result_stats.sweep_probabilistic_sharpe` and docs/overfitting.md.
        """
        return result_stats.sweep_probabilistic_sharpe(self, combo, sr_benchmark)

    def deflated_sharpe(self, n_trials=None, var_sr=None):
        """Deflated Sharpe ratio of the best combo by Sharpe (``float()`` of it is the DSR).

        See :func:`sweepbt._result_stats.sweep_deflated_sharpe` and docs/overfitting.md.
        """
        return result_stats.sweep_deflated_sharpe(self, n_trials, var_sr)

    def pbo(self, k=1000, n_splits=16, metric="sharpe"):
        """Probability of backtest overfitting (CSCV) over the top ``k`` combos by Sharpe.

        See :func:`sweepbt._result_stats.sweep_pbo` and docs/overfitting.md.
        """
        return result_stats.sweep_pbo(self, k, n_splits, metric)


def _filter(per_combo, params, min_trades, where):
    """Mask of the combos that pass ``best()``'s filters."""
    keep = np.ones(per_combo.shape[0], dtype=bool)
    if min_trades is not None:
        keep &= per_combo[:, metric_index("n_trades")] >= check_count(
            "min_trades", min_trades, minimum=0)
    if where is not None and keep.size:
        columns = {name: per_combo[:, j] for j, name in enumerate(METRIC_NAMES)}
        columns.update({n: np.asarray(v, dtype=np.float64) for n, v in params.items()})
        keep &= evaluate_constraint(where, columns, "where= filter")  # errors name it so
    return keep


def _filled(name, column):
    """A parameter column back in kernel form: null -> NaN (floats) or 0 (integers); a
    word of CHOICE_PARAMS -> its code."""
    if name in CHOICE_PARAMS:
        return np.array([encode_choice(name, v) for v in column.to_pylist()], np.int64)
    if pa.types.is_integer(column.type):
        return column.fill_null(0).to_numpy()
    return column.to_numpy().astype(np.float64)
