"""Short text and HTML summaries of results, for ``repr`` and Jupyter's ``_repr_html_``.

Duck-typed over the result objects (this module imports none of them): a backtest has
``stats``, ``trades``, ``equity`` and ``bundle``; a sweep has ``best`` and ``n_combos``; a
walk-forward has ``windows``. Every summary is a few lines or one compact table, never the
arrays inside.
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa

from sweepbt._format import COUNT_METRICS, format_value
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
#: rows of a result table (``bt.stats``, ``res.best()`` ...) drawn in a notebook
TABLE_ROWS = 20
#: the schema-metadata key that marks a pyarrow table as one of sweepbt's results (its
#: value: JSON of the strategy and settings, ``{}`` where there are none)
TABLE_KEY = b"sweepbt"


def mark_table(table):
    """``table`` marked as a sweepbt result (:data:`TABLE_KEY`), so a notebook draws it as
    an HTML table (:func:`show_tables_in_notebooks`); a mark it has is kept."""
    meta = dict(table.schema.metadata or {})
    meta.setdefault(TABLE_KEY, b"{}")
    return table.replace_schema_metadata(meta)


def table_html(table):
    """The HTML of a marked pyarrow table: its first :data:`TABLE_ROWS` rows, every column;
    None for a table sweepbt did not make (IPython then shows pyarrow's own text)."""
    if TABLE_KEY not in (table.schema.metadata or {}):
        return None
    means = any(pa.types.is_floating(table.schema.field(n).type)
                for n in COUNT_METRICS if n in table.column_names)  # best(): means
    return (f"<div><small>pyarrow.Table: {table.num_rows:,} rows x {table.num_columns} "
            "columns</small>" + arrow_html(table, counts_are_means=means,
                                           max_rows=TABLE_ROWS) + "</div>")


def show_tables_in_notebooks():
    """In IPython and Jupyter, draw sweepbt's result tables (pyarrow Tables marked by
    :func:`mark_table`) as HTML tables rather than pyarrow's column-wise text; other
    tables are left as they were. Does nothing, and imports nothing, elsewhere."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", {})
    if "text/html" in formatters:
        formatters["text/html"].for_type(pa.Table, table_html)


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
            + f"; {res.elapsed:.2f} s" + (f" (+ {res.compile_seconds:.0f} s compiling)"
                                            if getattr(res, "compile_seconds", 0) >= 0.5
                                            else ""))


def sweep_repr(res):
    return f"<SweepResult {_sweep_line(res)}>"


def sweep_html(res, metric="sharpe"):
    best = res.best(metric, SUMMARY_ROWS)
    shown = ["rank", "strategy"] + list(res.axes) + list(
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
