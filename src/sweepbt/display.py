"""Short text and HTML summaries of results, for ``repr`` and Jupyter's ``_repr_html_``.

Duck-typed over the result objects (this module imports none of them): a backtest has
``stats``, ``trades``, ``equity`` and ``bundle``; a sweep has ``best`` and ``n_combos``; a
walk-forward has ``windows``. Every summary is a few lines or one compact table, never the
arrays inside.
"""

from __future__ import annotations

import numpy as np

from sweepbt._format import format_value
from sweepbt._html import arrow_html, escape

#: the stats columns a backtest's summary shows (``bt.stats`` has them all)
BACKTEST_COLUMNS = ("symbol", "total_return", "buy_and_hold_return", "cagr", "sharpe",
                    "max_drawdown", "n_trades", "win_rate", "exposure")
#: the metric columns a sweep's summary shows beside the parameters
SWEEP_COLUMNS = ("total_return", "cagr", "sharpe", "max_drawdown", "n_trades", "win_rate")
#: the windows-table columns a walk-forward's summary shows beside the parameters
WINDOW_COLUMNS = ("window", "train_first", "test_first", "test_last", "is_sharpe",
                  "oos_sharpe", "oos_total_return", "oos_max_drawdown")
#: rows shown in an HTML summary table
SUMMARY_ROWS = 10


def params_text(params):
    """``fast=10, slow=50, stop_loss=off``: a parameter dict as one line (None = off)."""
    return ", ".join(f"{k}={'off' if v is None else format_value(k, v)}"
                     for k, v in params.items())


def span_text(bundle):
    """``5 assets x 2,520 bars, 2015-01-01..2024-12-31``."""
    days = np.datetime_as_string(bundle.timestamps[[0, -1]], unit="D")
    noun = "asset" if bundle.n_assets == 1 else "assets"
    return f"{bundle.n_assets} {noun} x {bundle.n_bars:,} bars, {days[0]}..{days[1]}"


def _mean(table, name):
    values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    return float(np.mean(values)) if values.size else float("nan")


def _mean_text(stats, name):
    label = f"mean {name}" if stats.num_rows > 1 else name
    return f"{label} {format_value(name, _mean(stats, name))}"


def backtest_repr(bt):
    stats = bt.stats
    return (f"<{type(bt).__name__} {bt.strategy}({params_text(bt.params)}) on "
            f"{span_text(bt.bundle)}: {bt.trades.num_rows:,} trades, "
            f"{_mean_text(stats, 'total_return')}, {_mean_text(stats, 'sharpe')}>")


def backtest_html(bt):
    stats = bt.stats
    columns = [c for c in BACKTEST_COLUMNS if c in stats.column_names]
    return (f"<div><b>{type(bt).__name__}</b> {escape(bt.strategy)}"
            f"({escape(params_text(bt.params))})"
            f"<br>{escape(span_text(bt.bundle))}, {bt.trades.num_rows:,} trades"
            + arrow_html(stats, columns=columns, max_rows=SUMMARY_ROWS)
            + "<small>all columns: <code>.stats</code>; trades: <code>.trades</code>; "
              "per-bar frames: <code>.to_pandas()</code>; charts: <code>.report(path)</code>"
              "</small></div>")


def sweep_size(res):
    """``120 combos x 5 assets = 600 backtests`` (``120 portfolio backtests``)."""
    if tuple(res.symbols) == ("portfolio",):
        return f"{res.n_combos:,} portfolio backtests"
    return (f"{res.n_combos:,} combos x {len(res.symbols)} assets = "
            f"{res.n_backtests:,} backtests")


def _sweep_line(res):
    axes = ", ".join(res.axes)
    return (f"{res.strategy}: {sweep_size(res)}" + (f"; axes {axes}" if axes else "")
            + f"; {res.elapsed:.2f} s")


def sweep_repr(res):
    return f"<SweepResult {_sweep_line(res)}>"


def sweep_html(res, metric="sharpe"):
    best = res.best(metric, SUMMARY_ROWS)
    shown = ["rank"] + list(res.axes) + list(
        dict.fromkeys((metric, *SWEEP_COLUMNS)))
    return (f"<div><b>SweepResult</b> {escape(_sweep_line(res))}<br>"
            f"{escape(span_text(res.bundle))}"
            + arrow_html(best, columns=[c for c in shown if c in best.column_names],
                         caption=f"best {best.num_rows} by {metric} (mean over assets)",
                         counts_are_means=True, max_rows=None)
            + "<small>every row: <code>.table</code>; a combo's backtest: "
              "<code>.backtest(combo)</code>; charts: <code>.report(path)</code></small></div>")


def _walk_forward_line(wf):
    return (f"{wf.strategy}: {wf.n_windows} windows, {wf.n_combos:,} combos per training "
            f"sweep, objective {wf.fixed.get('objective')}, efficiency "
            f"{format_value('efficiency', wf.efficiency)}")


def walk_forward_repr(wf):
    return f"<WalkForwardResult {_walk_forward_line(wf)}>"


def walk_forward_html(wf):
    windows = wf.windows
    params = list(wf.axes)
    columns = [c for c in (*WINDOW_COLUMNS[:4], *params, *WINDOW_COLUMNS[4:])
               if c in windows.column_names]
    stats = [c for c in ("symbol", "total_return", "cagr", "sharpe", "max_drawdown",
                         "n_trades") if c in wf.stats.column_names]
    return (f"<div><b>WalkForwardResult</b> {escape(_walk_forward_line(wf))}<br>"
            f"{escape(span_text(wf.bundle))}"
            + arrow_html(wf.stats, columns=stats, caption="chained out-of-sample, per asset",
                         max_rows=SUMMARY_ROWS)
            + arrow_html(windows, columns=columns, caption="windows", max_rows=SUMMARY_ROWS)
            + "</div>")
