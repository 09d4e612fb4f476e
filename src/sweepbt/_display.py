"""Summaries of results: the one-line ``repr``, ``str`` (text tables), Jupyter's
``_repr_html_``, and ``sb.show(table)``, any result table as aligned text.

Duck-typed over the result objects (this module imports none of them): a backtest has
``stats``, ``trades``, ``equity`` and ``bundle``; a sweep has ``best`` and ``n_combos``; a
walk-forward has ``windows``. Every summary is a few lines or compact tables, never the
arrays inside.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pyarrow as pa

from sweepbt._format import format_value
from sweepbt._html import arrow_html, column_values, escape, html_table
from sweepbt._table import TABLE_WIDTH, render_table
from sweepbt.stats import DeflatedSharpe, PBOResult

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


def table_metadata(strategy, fixed):
    """The schema metadata of a result table: :data:`TABLE_KEY`, JSON of the strategy and
    its settings (numpy values as lists and numbers)."""
    return {TABLE_KEY: json.dumps({"strategy": strategy, **fixed}, default=_plain).encode()}


def _plain(value):
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


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
    return (f"<div><small>pyarrow.Table: {table.num_rows:,} rows x {table.num_columns} "
            "columns</small>" + arrow_html(table, max_rows=TABLE_ROWS) + "</div>")


def show_tables_in_notebooks():
    """In IPython and Jupyter, draw sweepbt's result tables (pyarrow Tables marked by
    :func:`mark_table`) as HTML tables rather than pyarrow's column-wise text (other
    tables are left as they were), and a :class:`DeflatedSharpe` or :class:`PBOResult` as
    a small table (aligned text in an IPython terminal). Does nothing, and imports
    nothing, elsewhere."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", {})
    if "text/html" in formatters:
        formatters["text/html"].for_type(pa.Table, table_html)
        formatters["text/html"].for_type(DeflatedSharpe, overfitting_html)
        formatters["text/html"].for_type(PBOResult, overfitting_html)
    if "text/plain" in formatters:
        for kind in (DeflatedSharpe, PBOResult):
            formatters["text/plain"].for_type(
                kind, lambda value, printer, cycle: printer.text(overfitting_text(value)))


def table_text(table, columns=None, max_rows=TABLE_ROWS, width=None):
    """A pyarrow table as aligned text, each cell formatted as in the CLI (percentages,
    2-decimal ratios, whole counts, ISO times): its first ``max_rows`` rows (None: all),
    ``columns`` (default all). Columns that do not fit ``width`` characters (default: the
    terminal's, at most :data:`TABLE_WIDTH`) go on below, each block led by the first
    column."""
    names = list(columns) if columns is not None else list(table.column_names)
    head = table.slice(0, max_rows) if max_rows is not None else table
    cells = {n: [format_value(n, v) for v in column_values(head.column(n))] for n in names}
    left = {n for n in names if pa.types.is_string(table.schema.field(n).type)
            or pa.types.is_timestamp(table.schema.field(n).type)}
    if width is None:
        width = min(TABLE_WIDTH, shutil.get_terminal_size((TABLE_WIDTH, 24)).columns)
    blocks = [render_table(block, [[cells[n][i] for n in block] for i in range(head.num_rows)],
                           left=left) for block in _column_blocks(names, cells, width)]
    more = table.num_rows - head.num_rows
    return "\n\n".join(blocks) + (f"\n({more:,} more rows; {table.num_rows:,} in all)"
                                   if more > 0 else "")


def _column_blocks(names, cells, width):
    """``names`` cut into blocks of columns that fit ``width``, each led by the first."""
    size = {n: max([len(n)] + [len(c) for c in cells[n]]) for n in names}
    blocks, block = [], names[:1]
    for name in names[1:]:
        if len(block) > 1 and sum(size[m] + 2 for m in block) + size[name] > width:
            blocks.append(block)
            block = names[:1]
        block.append(name)
    return blocks + [block]


def show(value, columns=None, max_rows=TABLE_ROWS, *, file=None):
    """Print ``value`` readably: a pyarrow Table as :func:`table_text` (``columns``: a
    subset; its first ``max_rows`` rows), a result as its summary (``str``)."""
    if isinstance(value, pa.Table):
        text = table_text(value, columns, max_rows)
    elif isinstance(value, (DeflatedSharpe, PBOResult)):
        text = overfitting_text(value)
    else:
        text = str(value)
    print(text, file=file)


def _overfitting_rows(value):
    """(name, text) rows of a DeflatedSharpe or a PBOResult."""
    if isinstance(value, DeflatedSharpe):
        return [("deflated Sharpe (DSR)", f"{value.dsr:.4f}"), ("PSR vs 0", f"{value.psr:.4f}"),
                ("best combo", f"{value.combo}"), ("its Sharpe/yr", f"{value.sr_annual:.3f}"),
                ("expected best Sharpe/yr by chance", f"{value.sr0_annual:.3f}"),
                ("trials", f"{value.n_trials:,}"), ("bars per backtest", f"{value.n:,.0f}"),
                ("skew", f"{value.skew:.3f}"), ("kurtosis", f"{value.kurtosis:.3f}"),
                ("variance of Sharpe per period", f"{value.var_sr:.3g}")]
    return [("probability of backtest overfitting (PBO)", f"{value.pbo:.3f}"),
            ("probability of an out-of-sample loss", f"{value.prob_oos_loss:.3f}"),
            ("median logit", f"{float(np.median(value.logits)):.3f}"),
            ("blocks of bars", f"{value.n_splits}"),
            ("splits (half the blocks in sample)", f"{value.logits.size:,}"),
            ("combos compared", f"{value.n_strategies:,}"), ("bars", f"{value.n_rows:,}")]


def overfitting_text(value):
    """A DeflatedSharpe or a PBOResult as aligned text, one line per number."""
    rows = _overfitting_rows(value)
    name_width = max(len(name) for name, _ in rows)
    value_width = max(len(text) for _, text in rows)
    return "\n".join([f"{type(value).__name__}:"] + [
        f"  {name:<{name_width}}  {text:>{value_width}}" for name, text in rows])


def overfitting_html(value):
    """A DeflatedSharpe or a PBOResult as a small HTML table."""
    return (f"<div><b>{type(value).__name__}</b>"
            + html_table(["statistic", "value"], _overfitting_rows(value)) + "</div>")


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


def _backtest_tables(bt):
    """The (caption, table, columns) a backtest's summary shows."""
    stats = bt.stats
    return [(None, stats, [c for c in BACKTEST_COLUMNS if c in stats.column_names])]


def backtest_text(bt):
    """``str(bt)``: what it ran, then its stats as an aligned table."""
    return summary_text(f"{type(bt).__name__} {bt.strategy}({params_text(bt.params)})",
                        f"{span_text(bt.bundle)}, {bt.trades.num_rows:,} trades",
                        _backtest_tables(bt))


def backtest_html(bt):
    return (f"<div><b>{type(bt).__name__}</b> {escape(bt.strategy)}"
            f"({escape(params_text(bt.params))})"
            f"<br>{escape(span_text(bt.bundle))}, {bt.trades.num_rows:,} trades"
            + _tables_html(_backtest_tables(bt))
            + "<small>all columns: <code>.stats</code>; trades: <code>.trades</code>; "
              "per-bar frames: <code>.to_pandas()</code>; charts: <code>.report(path)</code>"
              "</small></div>")


def summary_text(title, line, tables):
    """A result's ``str``: a title, a line, then each (caption, table, columns) as text."""
    parts = [title, line]
    for caption, table, columns in tables:
        parts += ["", *([caption + ":"] if caption else []),
                  table_text(table, columns, SUMMARY_ROWS)]
    return "\n".join(parts)


def _tables_html(tables):
    return "".join(arrow_html(table, columns=columns, caption=caption, max_rows=SUMMARY_ROWS)
                   for caption, table, columns in tables)


def sweep_size(res):
    """``120 combos x 5 assets = 600 backtests`` (``120 portfolio backtests``)."""
    if tuple(res.symbols) == ("portfolio",):
        return f"{res.n_combos:,} portfolio backtests"
    return (f"{res.n_combos:,} combos x {len(res.symbols)} assets = "
            f"{res.n_backtests:,} backtests")


def per_combo_text(res):
    """What a sweep's per-combo metric is: ``mean over assets``, or one backtest's."""
    if len(res.symbols) > 1:
        return "mean over assets"
    return "one portfolio" if tuple(res.symbols) == ("portfolio",) else "one asset"


def _sweep_line(res):
    axes = ", ".join(res.axes)
    return (f"{res.strategy}: {sweep_size(res)}" + (f"; axes {axes}" if axes else "")
            + f"; {res.elapsed:.2f} s" + (f" (+ {res.compile_seconds:.0f} s compiling)"
                                            if getattr(res, "compile_seconds", 0) >= 0.5
                                            else ""))


def sweep_repr(res):
    return f"<SweepResult {_sweep_line(res)}>"


def _sweep_tables(res, metric="sharpe"):
    best = res.best(metric, SUMMARY_ROWS)
    shown = ["rank", "strategy"] + list(res.axes) + list(
        dict.fromkeys((metric, *SWEEP_COLUMNS)))
    return [(f"best {best.num_rows} by {metric} ({per_combo_text(res)})", best,
             [c for c in shown if c in best.column_names])]


def sweep_text(res):
    """``str(res)``: the sweep's size, then its best combos as an aligned table."""
    return summary_text(f"SweepResult {_sweep_line(res)}", span_text(res.bundle),
                        _sweep_tables(res))


def sweep_html(res, metric="sharpe"):
    return (f"<div><b>SweepResult</b> {escape(_sweep_line(res))}<br>"
            f"{escape(span_text(res.bundle))}" + _tables_html(_sweep_tables(res, metric))
            + "<small>every row: <code>.table</code>; a combo's backtest: "
              "<code>.backtest(combo)</code>; charts: <code>.report(path)</code></small></div>")


def _walk_forward_line(wf):
    return (f"{wf.strategy}: {wf.n_windows} windows, {wf.n_combos:,} combos per training "
            f"sweep, objective {wf.options.objective}, efficiency "
            f"{format_value('efficiency', wf.efficiency)}")


def walk_forward_repr(wf):
    return f"<WalkForwardResult {_walk_forward_line(wf)}>"


def _walk_forward_tables(wf):
    windows = wf.windows
    params = list(wf.axes)
    columns = [c for c in (*WINDOW_COLUMNS[:4], *params, *WINDOW_COLUMNS[4:])
               if c in windows.column_names]
    stats = [c for c in ("symbol", "total_return", "cagr", "sharpe", "max_drawdown",
                         "n_trades") if c in wf.stats.column_names]
    return [("chained out-of-sample, per asset", wf.stats, stats),
            ("windows", windows, columns)]


def walk_forward_html(wf):
    return (f"<div><b>WalkForwardResult</b> {escape(_walk_forward_line(wf))}<br>"
            f"{escape(span_text(wf.bundle))}" + _tables_html(_walk_forward_tables(wf))
            + "</div>")
