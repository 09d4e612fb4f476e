"""One self-contained HTML report of a result: ``sb.report(result, "report.html")``.

The page has no script, no stylesheet link, no font or image fetched from anywhere: charts
are inline SVG drawn by matplotlib (:mod:`sweepbt.plot`, the optional extra
``.[report]``), tables are plain HTML. What each report holds is in
docs/report.md. Results are read duck-typed (this module imports none of them): a
walk-forward has ``windows``, a sweep has ``best``, a backtest has ``trades``; a backtest
whose ``equity`` is 1-D is a portfolio (one curve, no single price to mark trades on).
"""

from __future__ import annotations

import os

import numpy as np

from sweepbt import plot
from sweepbt._files import write_atomic, write_text
from sweepbt._format import format_value, unsigned_zero
from sweepbt._html import arrow_html, column_values, escape, html_table
from sweepbt._backtest_stats import monthly_returns
from sweepbt._display import params_text, per_combo_text, span_text, sweep_size

__all__ = ["check_result_path", "report", "report_html", "write_result_file"]

#: assets that get their own charts in a backtest report (the stats table has them all)
MAX_ASSETS = 5
#: rows of a sweep report's top-k table
TOP_K = 20
#: parameters that get a sensitivity chart
MAX_SENSITIVITY = 6
_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:24px auto;"
          "color:#222}h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px "
          "solid #ccc}figure{margin:12px 0}figcaption{font-weight:bold;margin-bottom:4px}"
          "svg{max-width:100%;height:auto}")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")


def report(result, path=None, *, metric="sharpe", log=False, heatmap=None, overwrite=False):
    """The HTML report of a backtest, sweep or walk-forward result.

    With ``path`` the page is written there (atomically; an existing file only with
    ``overwrite=True``, see :func:`write_result_file`) and the path returned; without,
    the HTML text is returned. ``metric`` ranks a sweep's combos and colours its heatmap;
    ``log`` draws equity curves on a log scale; ``heatmap=("x", "y")`` picks a sweep's
    heatmap parameters (default: its first two axes). Needs matplotlib.
    """
    if path is not None:
        check_result_path(path, overwrite, result.bundle)
    html = report_html(result, metric=metric, log=log, heatmap=heatmap)
    if path is None:
        return html
    return write_result_file(path, lambda tmp: write_text(tmp, html), overwrite,
                             result.bundle)


def check_result_path(path, overwrite, bundle):
    """Refuse, before any work, a path a result must not be written to: the file its
    data was loaded from (``bundle.source``; ValueError, ``overwrite`` or not), a
    directory (IsADirectoryError), or an existing file without ``overwrite``
    (FileExistsError)."""
    target = os.fspath(path)
    source = getattr(bundle, "source", None)
    if source is not None and _same_file(target, source):
        raise ValueError(f"{target!r} is the file this result's data was loaded from "
                         "(Bundle.source); it is never overwritten, overwrite=True or not; "
                         "write to another path")
    if os.path.isdir(target):
        raise IsADirectoryError(f"{target!r} is a directory; give a file path")
    if not overwrite and os.path.lexists(target):
        raise FileExistsError(f"{target!r} exists; pass overwrite=True to replace it")


def write_result_file(path, write, overwrite, bundle):
    """``write(tmp)``, then the file moved to ``path`` atomically, after
    :func:`check_result_path`; without ``overwrite`` a file that appeared meanwhile is not
    replaced either (FileExistsError). Returns ``path``."""
    check_result_path(path, overwrite, bundle)
    try:
        return write_atomic(path, write, replace=overwrite)
    except FileExistsError:
        raise FileExistsError(f"{os.fspath(path)!r} exists; pass overwrite=True to replace "
                              "it") from None


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (links and relative paths resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return os.path.realpath(a) == os.path.realpath(b)


def report_html(result, *, metric="sharpe", log=False, heatmap=None):
    """The text of :func:`report`'s page."""
    if hasattr(result, "windows"):
        title, body = "walk-forward", _walk_forward_body(result)
    elif hasattr(result, "best"):
        title, body = "sweep", _sweep_body(result, metric, log, heatmap)
    elif hasattr(result, "trades"):
        title, body = "backtest", _backtest_body(result, log)
    else:
        raise TypeError(f"report() takes a BacktestResult, SweepResult or WalkForwardResult, "
                        f"got {type(result).__name__}")
    head = f"sweepbt {title} report: {result.strategy}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(head)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{escape(head)}</h1><p>{escape(span_text(result.bundle))}</p>"
            + body + "</body></html>\n")


def _chart(name, caption, fig):
    """A ``<figure data-chart=NAME>`` holding ``fig`` as inline SVG."""
    return (f'<figure class="chart" data-chart="{escape(name)}"><figcaption>'
            f"{escape(caption)}</figcaption>{plot.to_svg(fig)}</figure>")


def _section(title, *parts):
    return f"<section><h2>{escape(title)}</h2>{''.join(parts)}</section>"


# -- backtest ------------------------------------------------------------------------------

def _backtest_body(bt, log):
    parts = [f"<p>{escape(bt.strategy)}({escape(params_text(bt.params))}), "
             f"{bt.trades.num_rows:,} trades</p>",
             _section("Statistics", _stats_table(bt.stats))]
    if np.ndim(bt.equity) == 1:  # a portfolio: one curve
        labels = ["portfolio"]
    else:
        labels = list(bt.bundle.symbols)[:MAX_ASSETS]
        if bt.bundle.n_assets > MAX_ASSETS:
            parts.append(f"<p>charts for the first {MAX_ASSETS} of {bt.bundle.n_assets} "
                         "assets</p>")
    for label in labels:
        asset = 0 if label == "portfolio" else label
        charts = [_chart("equity", f"Equity: {label}", plot.equity(bt, asset, log=log)),
                  _chart("drawdown", f"Drawdown: {label}", plot.drawdown(bt, asset))]
        if label != "portfolio":
            charts.append(_chart("trades", f"Trades: {label}", plot.trades(bt, asset)))
        row = bt.equity if label == "portfolio" else bt.equity[bt.bundle.symbols.index(label)]
        charts.append(_monthly_table(bt.bundle.timestamps, row, bt.options.init_cash, label))
        parts.append(_section(label, *charts))
    if labels == ["portfolio"]:  # each asset's trades on its price
        traded = [s for s in bt.bundle.symbols if s in set(bt.trades["symbol"].to_pylist())]
        parts.append(_section("Trades per asset", *(
            _chart("trades", f"Trades: {s}", plot.trades(bt, s)) for s in traded[:MAX_ASSETS])))
    return "".join(parts)


def _stats_table(stats):
    """The stats table turned on its side: one row per statistic, one column per asset."""
    symbols = stats.column("symbol").to_pylist()
    rows = [[name] + [v if isinstance(v, str) else format_value(name, v)
                      for v in column_values(stats.column(name))]
            for name in stats.column_names if name != "symbol"]
    return html_table(["statistic", *symbols], rows, caption="statistics")


def _monthly_table(timestamps, equity, init_cash, label):
    """The calendar-month returns as a table coloured as a heat map (green up, red down)."""
    years, table = monthly_returns(timestamps, equity, init_cash)
    scale = float(np.nanmax(np.abs(table))) if np.any(~np.isnan(table)) else 1.0
    scale = scale if scale > 0 else 1.0

    def colour(column, value):
        if column == "year" or value is None or value != value or value == 0:
            return ""
        strength = min(1.0, abs(value) / scale)
        rgb = (46, 160, 67) if value >= 0 else (214, 39, 40)
        return f"background:rgba({rgb[0]},{rgb[1]},{rgb[2]},{0.12 + 0.6 * strength:.2f})"

    yearly = np.nanprod(1.0 + table, axis=1) - 1.0
    rows = [[str(y), *(None if np.isnan(v) else float(v) for v in table[i]), float(yearly[i])]
            for i, y in enumerate(years)]
    columns = ["year", *_MONTHS, "year_return"]
    return (f'<figure class="table" data-chart="monthly_returns"><figcaption>Monthly returns: '
            f"{escape(label)}</figcaption>"
            + html_table(columns, rows, cell_style=colour, cell_text=_percent)
            + "</figure>")


def _percent(column, value):
    """A monthly table cell: one decimal percent, blank for a month without bars."""
    return "" if value is None else unsigned_zero(f"{value * 100:.1f}%")


# -- sweep ---------------------------------------------------------------------------------

def _sweep_body(res, metric, log, heatmap):
    axes = list(res.axes)
    parts = [f"<p>{escape(sweep_size(res))}; axes: {escape(', '.join(axes) or 'none')}</p>"]
    best = res.best(metric, TOP_K)
    shown = ["rank", "combo", "strategy", *axes, *dict.fromkeys((
        metric, "total_return", "cagr", "sharpe", "max_drawdown", "n_trades", "win_rate"))]
    parts.append(_section(f"Top {best.num_rows} by {metric}", arrow_html(
        best, columns=[c for c in shown if c in best.column_names], max_rows=None,
        caption=f"best {best.num_rows} combos by {metric} ({per_combo_text(res)})")))
    charts = []
    x, y = heatmap if heatmap is not None else (axes + [None, None])[:2]
    if y is not None:
        charts.append(_chart("heatmap", f"Heatmap: {metric} by {x} and {y}",
                             plot.heatmap(res, x, y, metric)))
    for name in axes[:MAX_SENSITIVITY]:
        charts.append(_chart("sensitivity", f"Sensitivity: {metric} by {name}",
                             plot.sensitivity(res, name, metric)))
    charts.append(_chart("distribution", f"Distribution of {metric} over combos",
                         plot.distribution(res, metric)))
    parts.append(_section("Parameters", *charts))
    if best.num_rows:
        combo = best.column("combo")[0].as_py()
        bt = res.backtest(combo)
        rows = np.atleast_2d(bt.equity)[:MAX_ASSETS]
        shown = list(res.symbols)[:MAX_ASSETS]
        parts.append(_section(f"Best combo: {combo} ({params_text(bt.params)})", _chart(
            "equity", f"Equity of the best combo ({', '.join(shown)})",
            plot.equity_curves(res.bundle.timestamps, rows, shown, log=log))))
    return "".join(parts)


# -- walk-forward --------------------------------------------------------------------------

def _walk_forward_body(wf):
    params = list(wf.axes)
    columns = ["window", "train_first", "train_last", "test_first", "test_last", *params,
               "is_sharpe", "oos_sharpe", "oos_total_return", "oos_max_drawdown",
               "efficiency"]
    charts = [_chart("walk_forward", f"Out-of-sample equity: {s}", plot.walk_forward(wf, s))
              for s in wf.stats.column("symbol").to_pylist()[:MAX_ASSETS]]
    return (f"<p>{wf.n_windows} windows, {wf.n_combos:,} combos per training sweep, "
            f"objective {escape(wf.options.objective)}, walk-forward efficiency "
            f"{escape(format_value('efficiency', wf.efficiency))}</p>"
            + _section("Out-of-sample statistics", arrow_html(
                wf.stats, caption="chained out-of-sample, per asset", max_rows=None))
            + _section("Windows", arrow_html(
                wf.windows, columns=[c for c in columns if c in wf.windows.column_names],
                caption="windows", max_rows=None))
            + _section("Equity", *charts))
