"""Result objects: Arrow tables out, numpy arrays for per-bar series. No pandas needed."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sweepbt import kernels
from sweepbt.params import OPTIONS

#: metrics where a lower value is better (``best`` sorts these ascending)
LOWER_IS_BETTER = frozenset({"max_drawdown", "volatility"})
COUNT_METRICS = frozenset({"n_trades", "n_stop", "n_take", "n_trail", "n_time", "n_signal"})
_TRADE = {name: i for i, name in enumerate(kernels.TRADE_FIELDS)}


def _metric_columns(metrics):
    """Arrow arrays for a (rows, N_METRICS) float block; counts as int64."""
    cols = {}
    for j, name in enumerate(kernels.METRIC_NAMES):
        col = metrics[:, j]
        cols[name] = pa.array(col.astype(np.int64) if name in COUNT_METRICS else col)
    return cols


def _param_columns(grid, rows=None):
    """Arrow arrays for the parameters the user gave; 'rule off' is null."""
    cols = {}
    for name in grid.given:
        values = grid.columns[name] if rows is None else grid.columns[name][rows]
        mask = None
        if name in OPTIONS and OPTIONS[name].allow_none:
            mask = grid.option_is_null(name) if rows is None else grid.option_is_null(name)[rows]
        cols[name] = pa.array(values, mask=mask)
    return cols


def _metadata(strategy, fixed):
    return {b"sweepbt": json.dumps({"strategy": strategy, **fixed}).encode()}


@dataclass
class BacktestResult:
    """One backtest per asset: ``stats`` and ``trades`` tables and per-bar arrays.

    ``equity``, ``cash`` and ``units`` (signed: + long, - short) are float64
    ``(n_assets, n_bars)`` on the Bundle's bar axis, NaN outside each asset's span;
    ``equity == cash + units * close`` on every bar.
    """

    bundle: object
    strategy: str
    grid: object
    metrics: np.ndarray
    equity: np.ndarray
    cash: np.ndarray
    units: np.ndarray
    trade_rows: list
    fixed: dict
    _stats: pa.Table = field(default=None, repr=False)
    _trades: pa.Table = field(default=None, repr=False)

    @property
    def params(self):
        """The combination that was run: name -> value (None = rule off)."""
        return pa.table(_param_columns(self.grid)).to_pylist()[0]

    @property
    def stats(self) -> pa.Table:
        """One row per asset: ``symbol`` and the metrics of docs/semantics.md."""
        if self._stats is None:
            cols = {"symbol": pa.array(list(self.bundle.symbols), pa.string())}
            cols.update(_metric_columns(self.metrics))
            self._stats = pa.table(cols).replace_schema_metadata(
                _metadata(self.strategy, self.fixed))
        return self._stats

    @property
    def trades(self) -> pa.Table:
        """One row per round trip, all assets, in order of asset then entry."""
        if self._trades is None:
            self._trades = _trades_table(self.bundle, self.trade_rows)
        return self._trades


def _trades_table(bundle, trade_rows):
    rows = np.concatenate(trade_rows) if trade_rows else np.empty((0, kernels.N_TRADE_FIELDS))
    owner = np.repeat(np.arange(len(trade_rows)), [len(t) for t in trade_rows])
    entry_bar = rows[:, _TRADE["entry_bar"]].astype(np.int64)
    exit_bar = rows[:, _TRADE["exit_bar"]].astype(np.int64)
    ts = pa.timestamp("ns", tz="UTC")
    symbols = np.array(bundle.symbols, dtype=object)
    return pa.table({
        "symbol": pa.array(symbols[owner].tolist(), pa.string()),
        "direction": pa.array(np.where(rows[:, _TRADE["direction"]] > 0, "long", "short")
                              .tolist(), pa.string()),
        "entry_bar": pa.array(entry_bar),
        "exit_bar": pa.array(exit_bar),
        "entry_time": pa.array(bundle.timestamps[entry_bar].astype(np.int64), pa.int64()).cast(ts),
        "exit_time": pa.array(bundle.timestamps[exit_bar].astype(np.int64), pa.int64()).cast(ts),
        "entry_price": pa.array(rows[:, _TRADE["entry_price"]]),
        "exit_price": pa.array(rows[:, _TRADE["exit_price"]]),
        "entry_quote": pa.array(rows[:, _TRADE["entry_quote"]]),
        "exit_quote": pa.array(rows[:, _TRADE["exit_quote"]]),
        "units": pa.array(rows[:, _TRADE["units"]]),
        "pnl": pa.array(rows[:, _TRADE["pnl"]]),
        "return": pa.array(rows[:, _TRADE["return"]]),
        "exit_reason": pa.array(
            [kernels.EXIT_REASONS[int(r)] for r in rows[:, _TRADE["exit_reason"]]], pa.string()),
        "mfe": pa.array(rows[:, _TRADE["mfe"]]),
        "mae": pa.array(rows[:, _TRADE["mae"]]),
    })


@dataclass
class SweepResult:
    """Metrics of every (combo, asset) backtest of a sweep.

    ``metrics`` is float64 ``(n_combos * n_assets, N_METRICS)``, combo-major: row
    ``combo * n_assets + asset``.
    """

    bundle: object
    strategy: str
    grid: object
    metrics: np.ndarray
    elapsed: float
    bar_evaluations: int
    fixed: dict
    _table: pa.Table = field(default=None, repr=False)

    @property
    def n_combos(self) -> int:
        return self.grid.n_combos

    @property
    def n_backtests(self) -> int:
        return self.metrics.shape[0]

    @property
    def throughput(self) -> float:
        """Bar-evaluations (one bar of one backtest) per second, features included."""
        return self.bar_evaluations / self.elapsed if self.elapsed > 0 else float("nan")

    @property
    def table(self) -> pa.Table:
        """One row per combo x asset: ``combo``, the parameters given, ``symbol``, metrics."""
        if self._table is None:
            n_assets = self.bundle.n_assets
            combo_of_row = np.repeat(np.arange(self.n_combos, dtype=np.int64), n_assets)
            cols = {"combo": pa.array(combo_of_row)}
            cols.update(_param_columns(self.grid, combo_of_row))
            symbols = pa.array(list(self.bundle.symbols), pa.string())
            cols["symbol"] = pa.DictionaryArray.from_arrays(
                pa.array(np.tile(np.arange(n_assets, dtype=np.int32), self.n_combos)),
                symbols).cast(pa.string())
            cols.update(_metric_columns(self.metrics))
            self._table = pa.table(cols).replace_schema_metadata(
                _metadata(self.strategy, self.fixed))
        return self._table

    def aggregate(self, how="mean") -> np.ndarray:
        """Per-combo metrics ``(n_combos, N_METRICS)`` aggregated over assets.

        ``how`` is ``"mean"`` or ``"median"``. A combo whose metric is NaN on any asset
        gets NaN (it is undefined there), so ``best`` ranks it last.
        """
        per_combo = self.metrics.reshape(self.n_combos, self.bundle.n_assets, -1)
        if how == "mean":
            return per_combo.mean(axis=1)
        if how == "median":
            return np.median(per_combo, axis=1)
        raise ValueError(f"unknown aggregation {how!r}; expected 'mean' or 'median'")

    def best(self, metric="sharpe", k=10, how="mean") -> pa.Table:
        """The top ``k`` combos by ``metric`` aggregated over assets; NaN ranks last.

        Higher is better except for ``max_drawdown`` and ``volatility``. Ties keep combo
        order. Returns ``rank, combo``, the parameters, then every aggregated metric.
        """
        if metric not in kernels.METRIC_NAMES:
            raise ValueError(
                f"unknown metric {metric!r}; metrics: {', '.join(kernels.METRIC_NAMES)}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        agg = self.aggregate(how)
        key = agg[:, kernels.METRIC_NAMES.index(metric)]
        signed = key if metric in LOWER_IS_BETTER else -key
        order = np.lexsort((np.arange(key.size), signed, np.isnan(key)))[:k]
        cols = {"rank": pa.array(np.arange(1, order.size + 1, dtype=np.int64)),
                "combo": pa.array(order.astype(np.int64))}
        cols.update(_param_columns(self.grid, order))
        for j, name in enumerate(kernels.METRIC_NAMES):
            cols[name] = pa.array(agg[order, j])
        return pa.table(cols)

    def to_parquet(self, path, **kwargs):
        """Write ``table`` to a Parquet file atomically (a temporary file, then rename)."""
        path = os.fspath(path)
        tmp = f"{path}.partial-{os.getpid()}"
        try:
            pq.write_table(self.table, tmp, **kwargs)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path
