"""``to_arrow()``, ``to_pandas()`` and ``to_polars()`` of results: pandas and Polars are
imported only here, only when called, and neither is a dependency of sweepbt.

Per-bar series become an Arrow table with a ``timestamp`` column (Polars reads it as is)
or a pandas frame indexed by time (a UTC ``DatetimeIndex`` named ``timestamp``); sweep
rows get a parameter ``MultiIndex`` in pandas.
"""

from __future__ import annotations

import importlib

import numpy as np
import pyarrow as pa

from sweepbt._backtest_stats import drawdown


def _require(module, call):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{call} needs {module}, which is not installed: "
                          f"pip install {module}") from None


def per_bar_series(series, init_cash):
    """``{name: (rows, n_bars) array}`` of ``series`` plus ``drawdown`` (from
    ``series["equity"]``); a 1-D series (a portfolio's one curve) becomes one row."""
    out = {name: np.atleast_2d(values) for name, values in series.items()}
    out["drawdown"] = np.array([drawdown(row, init_cash) for row in out["equity"]])
    return out


def _labels(bundle, rows):
    """Column labels of a series' rows: the symbols, or ``portfolio`` for one curve over
    several assets."""
    return list(bundle.symbols) if rows == bundle.n_assets else ["portfolio"]


def series_pandas(bundle, series, init_cash, call):
    """A pandas frame of per-bar ``series``: UTC DatetimeIndex ``timestamp``, columns
    ``(series, symbol)``: e.g. ``df["equity"]["AAA"]`` (``"portfolio"`` for a 1-D
    series)."""
    pd = _require("pandas", call)
    full = per_bar_series(series, init_cash)
    index = pd.DatetimeIndex(bundle.timestamps, name="timestamp").tz_localize("UTC")
    columns = pd.MultiIndex.from_tuples(
        [(name, label) for name, rows in full.items()
         for label in _labels(bundle, rows.shape[0])], names=["series", "symbol"])
    values = np.concatenate(list(full.values()), axis=0).T
    return pd.DataFrame(values, index=index, columns=columns)


def series_arrow(bundle, series, init_cash):
    """Per-bar ``series`` as an Arrow table. Per asset, long: ``timestamp, symbol``, one
    column per series, the bars of each asset's span. A portfolio (1-D equity), wide:
    ``timestamp``, each 1-D series, ``units_SYMBOL`` per asset, the bars of its span."""
    full = per_bar_series(series, init_cash)
    live = ~np.isnan(full["equity"])
    ts_type = pa.timestamp("ns", tz="UTC")
    if live.shape[0] == 1 and bundle.n_assets > 1 or any(
            v.shape != live.shape for v in full.values()):
        bars = np.flatnonzero(live[0])
        cols = {"timestamp": pa.array(bundle.timestamps[bars].astype(np.int64)).cast(ts_type)}
        for name, rows in full.items():
            for label, row in zip(_labels(bundle, rows.shape[0]), rows):
                key = name if rows.shape[0] == 1 else f"{name}_{label}"
                cols[key] = pa.array(row[bars])
        return pa.table(cols)
    asset, bar = np.nonzero(live)
    ts = pa.array(bundle.timestamps[bar].astype(np.int64)).cast(ts_type)
    labels = pa.array(_labels(bundle, live.shape[0]), pa.string())
    cols = {"timestamp": ts, "symbol": labels.take(pa.array(asset))}
    cols.update({name: pa.array(values[live]) for name, values in full.items()})
    return pa.table(cols)


def table_pandas(table, index, call):
    """A pandas frame of an Arrow ``table`` indexed by the columns ``index``."""
    _require("pandas", call)
    return table.to_pandas().set_index(list(index))


def table_polars(table, call):
    """A Polars frame of an Arrow ``table``."""
    return _require("polars", call).from_arrow(table)
