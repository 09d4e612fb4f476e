"""A single backtest's descriptive statistics beyond the kernel's metrics (numpy; the
stats columns as Arrow arrays).

:func:`span_stats` computes, for one asset's recorded backtest, the columns of
:data:`EXTRA_STAT_NAMES` (docs/semantics.md, "Single-backtest statistics"): the span's
start, end and duration, buy-and-hold return, drawdown durations and exposure-adjusted
return (the trade statistics, best and worst trade, expectancy and SQN, are the kernel's
metrics: a sweep's rows carry them). :func:`drawdown` and :func:`drawdown_runs` are shared
with the plots; :func:`trades_table` is a backtest's trades.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from sweepbt import kernels
from sweepbt._vocabulary import metric_index

__all__ = ["EXTRA_STAT_NAMES", "buy_and_hold", "drawdown", "drawdown_runs", "monthly_returns",
           "extra_columns", "span_stats", "trades_table"]

#: the kernel's ``exposure`` metric column
EXPOSURE = metric_index("exposure")
#: the columns :func:`span_stats` adds to a backtest's stats, in order
EXTRA_STAT_NAMES = ("start", "end", "duration", "buy_and_hold_return",
                    "max_drawdown_duration", "avg_drawdown_duration",
                    "exposure_adjusted_return")


def drawdown(equity, init_cash):
    """Underwater curve ``1 - equity_i / max(init_cash, equity_start..equity_i)`` of a 1-D
    equity row (a positive fraction, 0 at a new high); NaN where ``equity`` is NaN."""
    e = np.asarray(equity, dtype=np.float64)
    out = np.full(e.shape, np.nan)
    live = ~np.isnan(e)
    values = e[live]
    if values.size:
        peak = np.maximum.accumulate(np.concatenate(([init_cash], values)))[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[live] = np.where(peak > 0, 1.0 - values / peak, 0.0)
    return out


def drawdown_runs(equity, init_cash):
    """Lengths in bars of the drawdown periods of a 1-D equity row: each a maximal run of
    consecutive bars (of the span, NaN bars dropped) whose equity is below the running peak
    (``init_cash`` included); a run still open at the last bar counts to there."""
    dd = drawdown(equity, init_cash)
    under = dd[~np.isnan(dd)] > 0
    if not under.any():
        return np.zeros(0, np.int64)
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return (stops - starts).astype(np.int64)


def buy_and_hold(close, equity, init_cash):
    """Equity of holding the asset over the backtest's span: ``init_cash * close_i /
    close_first`` on the bars where ``equity`` is not NaN, NaN elsewhere (no costs)."""
    close = np.asarray(close, dtype=np.float64)
    live = ~np.isnan(np.asarray(equity, dtype=np.float64))
    out = np.full(close.shape, np.nan)
    if live.any():
        first = close[np.flatnonzero(live)[0]]
        out[live] = init_cash * close[live] / first
    return out


def span_stats(equity, close, timestamps, init_cash, exposure):
    """The :data:`EXTRA_STAT_NAMES` of one asset's backtest, as a dict.

    ``equity``, ``close``: the asset's 1-D rows on the bar axis (equity NaN outside the
    span; ``close`` None for a portfolio: no buy-and-hold return, NaN); ``timestamps``
    datetime64[ns]; ``exposure``: the kernel's metric. ``start``/``end`` are None and the
    rest NaN for an empty span; ``exposure_adjusted_return`` is NaN at zero exposure.
    """
    nan = math.nan
    out = dict.fromkeys(EXTRA_STAT_NAMES, nan)
    live = np.flatnonzero(~np.isnan(np.asarray(equity, dtype=np.float64)))
    if live.size == 0:
        out.update(start=None, end=None, duration=None, max_drawdown_duration=0)
        return out
    first, last = int(live[0]), int(live[-1])
    out["start"], out["end"] = timestamps[first], timestamps[last]
    out["duration"] = timestamps[last] - timestamps[first]
    if close is not None:
        out["buy_and_hold_return"] = float(close[last] / close[first] - 1.0)
    runs = drawdown_runs(equity, init_cash)
    out["max_drawdown_duration"] = int(runs.max()) if runs.size else 0
    out["avg_drawdown_duration"] = float(runs.mean()) if runs.size else nan
    total_return = float(equity[last] / init_cash - 1.0)
    if exposure > 0:
        out["exposure_adjusted_return"] = total_return / exposure
    return out


def monthly_returns(timestamps, equity, init_cash):
    """Calendar-month returns of a 1-D equity row: ``(years, table)``, ``table`` float
    ``(n_years, 12)``; a month's return is its last equity / the previous month's last
    equity (``init_cash`` before the first) - 1, months by UTC date; NaN for a month
    without a bar of the span."""
    e = np.asarray(equity, dtype=np.float64)
    live = np.flatnonzero(~np.isnan(e))
    if live.size == 0:
        return np.zeros(0, np.int64), np.zeros((0, 12))
    month = np.asarray(timestamps)[live].astype("datetime64[M]").astype(np.int64)
    last = np.flatnonzero(np.append(month[1:] != month[:-1], True))  # last bar of each month
    closes = e[live][last]
    previous = np.concatenate(([init_cash], closes[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.where(previous > 0, closes / previous - 1.0, np.nan)
    months = month[last]
    years = np.arange(months[0] // 12, months[-1] // 12 + 1)
    table = np.full((years.size, 12), np.nan)
    table[months // 12 - years[0], months % 12] = rets
    return years + 1970, table


def extra_columns(bundle, init_cash, metrics, equity_rows, close_rows):
    """The :data:`EXTRA_STAT_NAMES` columns of a backtest's stats: one row per equity row
    (an asset with its close; a portfolio with no close)."""
    exposure = metrics[:, EXPOSURE]
    rows = [span_stats(e, c, bundle.timestamps, init_cash, exposure[i])
            for i, (e, c) in enumerate(zip(equity_rows, close_rows))]
    ns = pa.timestamp("ns", tz="UTC")
    cols = {}
    for name in EXTRA_STAT_NAMES:
        values = [r[name] for r in rows]
        if name in ("start", "end"):
            cols[name] = pa.array([None if v is None else int(v.astype(np.int64))
                                   for v in values], pa.int64()).cast(ns)
        elif name == "duration":
            cols[name] = pa.array([None if v is None else int(v.astype(np.int64))
                                   for v in values], pa.int64()).cast(pa.duration("ns"))
        elif name == "max_drawdown_duration":
            cols[name] = pa.array(values, pa.int64())
        else:
            cols[name] = pa.array(values, pa.float64())
    return cols


def trades_table(bundle, trade_rows):
    """The trades table of kernels.TRADE_DTYPE record arrays (a list, concatenated):
    one row per round trip."""
    rows = np.concatenate(trade_rows) if trade_rows else np.empty(0, kernels.TRADE_DTYPE)

    def column(name):
        return np.ascontiguousarray(rows[name])

    owner = column("asset")
    entry_bar = column("entry_bar")
    exit_bar = column("exit_bar")
    ts = pa.timestamp("ns", tz="UTC")
    symbols = pa.array(list(bundle.symbols), pa.string())
    reasons = pa.array(list(kernels.EXIT_REASONS), pa.string())

    def when(bars):
        return pa.array(bundle.timestamps[bars].astype(np.int64)).cast(ts)

    table = {
        "symbol": symbols.take(pa.array(owner, pa.int64())),
        "direction": pa.array(np.where(column("direction") > 0, "long", "short")
                              .astype(object), pa.string()),
        "entry_bar": pa.array(entry_bar),
        "exit_bar": pa.array(exit_bar),
        "entry_time": when(entry_bar),
        "exit_time": when(exit_bar),
    }
    for name in ("entry_price", "exit_price", "entry_quote", "exit_quote", "units", "pnl",
                 "return"):
        table[name] = pa.array(column(name))
    table["exit_reason"] = reasons.take(pa.array(column("exit_reason")))
    table["mfe"] = pa.array(column("mfe"))
    table["mae"] = pa.array(column("mae"))
    table["commission"] = pa.array(column("commission"))  # fixed fees included
    table["tax"] = pa.array(column("tax"))
    return pa.table(table)
