"""The HTML report, the plots, the notebook displays and the pandas/Polars frames."""

import html.parser
import math
import os
import re
import subprocess
import sys

import numpy as np
import pyarrow.compute as pc
import pytest

import sweepbt as sb
from sweepbt import plot
from sweepbt._backtest_stats import drawdown


@pytest.fixture(scope="module")
def data(demo):
    return demo.select(["ALPHA", "HOTEL"]).slice_bars(1000, 2600)


@pytest.fixture(scope="module")
def bt(data):
    return sb.backtest(data, "sma_cross", fast=10, slow=40, stop_loss=0.05,
                       direction="both")


@pytest.fixture(scope="module")
def res(data):
    return sb.sweep(data, "sma_cross", fast=[5, 10, 20], slow=[40, 80],
                    stop_loss=[0.05, None])


@pytest.fixture(scope="module")
def wf(data):
    return sb.walk_forward(data, "sma_cross", train=500, test=250, fast=[5, 10],
                           slow=[40, 80])


class Page(html.parser.HTMLParser):
    """The charts (data-chart -> list of SVG texts), tables and captions of a page."""

    def __init__(self, text):
        super().__init__()
        self.charts, self.tables, self.captions = {}, 0, []
        self._chart, self._caption = None, False
        self.feed(text)
        for m in re.finditer(r'data-chart="(\w+)">.*?(<svg.*?</svg>|<table.*?</table>)',
                             text, re.S):
            self.charts.setdefault(m.group(1), []).append(m.group(2))

    def handle_starttag(self, tag, attrs):
        self.tables += tag == "table"
        self._caption = tag in ("figcaption", "caption")

    def handle_data(self, data):
        if self._caption:
            self.captions.append(data)
            self._caption = False


def series(svg):
    return sorted(set(re.findall(r'id="series-(\w+)"', svg)))


def assert_self_contained(text):
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert re.findall(r'\bsrc="', text) == []
    for ref in re.findall(r'href="([^"]*)"', text):
        assert ref.startswith(("#", "data:image/png;base64,")), ref[:40]
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink",
                    "http://purl.org/dc/elements/1.1/", "http://creativecommons.org/ns#",
                    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
                    "http://purl.org/dc/dcmitype/StillImage",
                    "https://matplotlib.org/"}, urls


def test_backtest_report(bt, data, tmp_path):
    path = tmp_path / "bt.html"
    assert sb.report(bt, path) == str(path)
    text = path.read_text()
    assert text == bt.report()  # the method, as text
    assert_self_contained(text)
    page = Page(text)
    n = data.n_assets
    assert {k: len(v) for k, v in page.charts.items()} == {
        "equity": n, "drawdown": n, "trades": n, "monthly_returns": n}
    for svg in page.charts["equity"]:
        assert series(svg) == ["buy_and_hold", "strategy"]
    for svg in page.charts["drawdown"]:
        assert series(svg) == ["drawdown"]
    for svg in page.charts["trades"]:
        assert series(svg) == ["close", "exit", "long_entry", "short_entry"]
    assert "statistics" in page.captions
    for name in ("sharpe", "buy_and_hold_return", "max_drawdown_duration", "sqn"):
        assert f">{name}<" in text
    assert [f"Equity: {s}" for s in data.symbols] == [
        c for c in page.captions if c.startswith("Equity")]
    assert len(text) < 400_000  # decimated SVG: a small file
    assert "(log scale)" in bt.report(log=True) and "(log scale)" not in text


def test_sweep_report(res, data):
    text = res.report()
    assert_self_contained(text)
    page = Page(text)
    assert {k: len(v) for k, v in page.charts.items()} == {
        "heatmap": 1, "sensitivity": 3, "distribution": 1, "equity": 1}
    assert series(page.charts["distribution"][0]) == ["dsr_threshold", "histogram"]
    assert series(page.charts["equity"][0]) == sorted(data.symbols)
    assert series(page.charts["heatmap"][0]) == ["heatmap"]
    top = res.best("sharpe", 20)
    assert f"best {top.num_rows} combos by sharpe (mean over assets)" in page.captions
    assert text.count("<tr>") >= top.num_rows + 1
    other = Page(res.report(heatmap=("stop_loss", "fast")))
    assert "Heatmap: sharpe by stop_loss and fast" in other.captions


def test_walk_forward_report(wf, data):
    text = wf.report()
    assert_self_contained(text)
    page = Page(text)
    assert len(page.charts["walk_forward"]) == data.n_assets
    assert series(page.charts["walk_forward"][0]) == ["in_sample", "oos_equity",
                                                      "out_of_sample"]
    assert "windows" in page.captions
    window_table = re.split(r"<caption[^>]*>windows</caption>", text)[1].split("</table>")[0]
    assert window_table.count("<tr>") == wf.n_windows + 1


def test_report_refuses_other_objects():
    with pytest.raises(TypeError, match="BacktestResult, SweepResult or WalkForwardResult"):
        sb.report(object())


def test_heatmap_grid_is_the_mean_over_the_other_axes(res):
    xs, ys, cells = plot.heatmap_grid(res, "fast", "slow", "sharpe")
    assert xs.tolist() == [5, 10, 20] and ys.tolist() == [40, 80]
    rows = res.table.to_pylist()
    for i, fx in enumerate(xs):
        for j, sy in enumerate(ys):
            per_combo = {}
            for r in rows:
                if r["fast"] == fx and r["slow"] == sy:
                    per_combo.setdefault(r["combo"], []).append(r["sharpe"])
            means = [sum(v) / len(v) for v in per_combo.values()]
            assert cells[j, i] == pytest.approx(sum(means) / len(means), rel=1e-12)
    with pytest.raises(ValueError, match="'nope' is not a parameter"):
        plot.heatmap_grid(res, "fast", "nope")


def test_plot_functions_return_figures(bt, res):
    from matplotlib.figure import Figure

    for fig in (plot.equity(bt, "HOTEL", log=True), plot.drawdown(bt, 1), plot.trades(bt),
                plot.heatmap(res, "fast", "slow", metric="max_drawdown"),
                plot.sensitivity(res, "stop_loss"), plot.distribution(res, "cagr")):
        assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="unknown asset 'ZZZ'"):
        plot.equity(bt, "ZZZ")
    assert plot.decimate(np.arange(10_000.0)).size <= plot.MAX_POINTS + 2


@pytest.mark.slow
def test_matplotlib_is_imported_only_for_charts():
    """(pandas is left out: pyarrow itself imports it to build time-zoned time stamps.)"""
    code = ("import sys, sweepbt as sb; assert 'matplotlib' not in sys.modules; "
            "bt = sb.backtest(sb.demo().select(['ALPHA']), 'sma_cross', fast=5, slow=20); "
            "repr(bt); bt._repr_html_(); "
            "print(sorted(m for m in ('matplotlib', 'polars') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ})
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_missing_matplotlib_names_the_extra(tmp_path):
    block = "import sys; sys.modules['matplotlib'] = None; "
    code = block + ("import sweepbt as sb; bt = sb.backtest(sb.demo().select(['ALPHA']), "
                    "'sma_cross', fast=5, slow=20)\ntry:\n    sb.report(bt)\n"
                    "except ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "pip install matplotlib (from a sweepbt checkout: pip install '.[report]')" in \
        out.stdout
    report = tmp_path / "r.html"
    cli = block + "import sys; from sweepbt.cli import main; sys.exit(main())"
    run = subprocess.run([sys.executable, "-c", cli, "backtest", "--demo", "--symbols", "ALPHA",
                          "--report", str(report)], capture_output=True, text=True)
    assert run.returncode != 0 and "pip install matplotlib" in run.stderr
    assert not report.exists()


def test_reprs_are_short_and_html_is_a_table(bt, res, wf):
    for result, name in ((bt, "BacktestResult"), (res, "SweepResult"),
                         (wf, "WalkForwardResult")):
        text = repr(result)
        assert text.startswith(f"<{name} ") and len(text) < 300, text
        page = result._repr_html_()
        assert f"<b>{name}</b>" in page and '<table class="sweepbt">' in page
        assert len(page) < 20_000 and "array(" not in page
    assert "stop_loss=5.00%" in repr(bt) or "stop_loss=0.05" in repr(bt)


def test_result_tables_draw_as_html_in_ipython(bt, res, wf, monkeypatch):
    """Every result table (pyarrow) gets an HTML display from IPython's own formatter once
    sweepbt registers it; a pyarrow table sweepbt did not make keeps pyarrow's text."""
    pa = pytest.importorskip("pyarrow")
    ipython = pytest.importorskip("IPython")
    from IPython.core.formatters import DisplayFormatter

    formatter = DisplayFormatter()
    monkeypatch.setattr(ipython, "get_ipython",
                        lambda: type("Shell", (), {"display_formatter": formatter})())
    sb._display.show_tables_in_notebooks()
    best = res.best("sharpe", 3)
    tables = {"stats": bt.stats, "trades": bt.trades, "table": res.table, "best": best,
              "windows": wf.windows, "wf stats": wf.stats}
    for name, table in tables.items():
        page = formatter.format(table)[0]["text/html"]
        assert page.startswith(f"<div><small>pyarrow.Table: {table.num_rows:,} rows x "
                               f"{table.num_columns} columns"), name
        shown = min(table.num_rows, sb._display.TABLE_ROWS)
        assert page.count("<tr>") == shown + 1 and "<th>" + table.column_names[0] in page
        assert (f"{table.num_rows - shown:,} more rows not shown" in page) == (
            table.num_rows > shown), name
    n_trades = best["n_trades"][0].as_py()  # a mean over assets: not cut to an integer
    shown = f"{n_trades:,.0f}" if n_trades.is_integer() else f"{n_trades:,.1f}"
    assert f"<td>{shown}</td>" in formatter.format(best)[0]["text/html"]
    assert "text/html" not in formatter.format(pa.table({"x": [1, 2]}))[0]


def test_to_pandas_and_polars(bt, res, wf, data):
    df = bt.to_pandas()
    assert str(df.index.tz) == "UTC" and df.index.name == "timestamp"
    assert list(df.columns.levels[0]) == ["cash", "drawdown", "equity", "units"]
    np.testing.assert_array_equal(df["equity"]["HOTEL"].to_numpy(), bt.equity[1])
    np.testing.assert_array_equal(df["drawdown"]["ALPHA"].to_numpy(),
                                  drawdown(bt.equity[0], 10_000.0))
    frame = res.to_pandas()
    assert frame.index.names == ["fast", "slow", "stop_loss", "symbol"]
    assert len(frame) == res.table.num_rows
    pl_frame = bt.to_polars()
    assert pl_frame.columns == ["timestamp", "symbol", "equity", "cash", "units", "drawdown"]
    assert pl_frame.height == int(np.sum(~np.isnan(bt.equity)))
    arrow = bt.to_arrow()  # what Polars reads; no pandas, no polars
    assert arrow.column_names == pl_frame.columns and arrow.num_rows == pl_frame.height
    hotel = arrow.filter(pc.equal(arrow["symbol"], "HOTEL"))
    live = ~np.isnan(bt.equity[1])
    np.testing.assert_array_equal(hotel["equity"].to_numpy(), bt.equity[1][live])
    assert str(arrow.schema.field("timestamp").type) == "timestamp[ns, tz=UTC]"
    chained = wf.to_arrow()
    assert chained.column_names == ["timestamp", "symbol", "equity", "drawdown"]
    assert chained.num_rows == int(np.sum(~np.isnan(wf.equity)))
    assert wf.to_polars().height == chained.num_rows
    assert res.to_polars().height == res.table.num_rows
    assert wf.to_pandas()["equity"].shape == (data.n_bars, data.n_assets)


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["sweep", "--param", "fast=5,10", "--param", "slow=40,80"],
    ["backtest", "--param", "fast=5", "--param", "slow=40", "--trades", "0"],
    ["walk-forward", "--param", "fast=5,10", "--param", "slow=40", "--train", "750",
     "--test", "500"],
])
def test_cli_report(command, tmp_path):
    path = tmp_path / "report.html"
    args = [sys.executable, "-m", "sweepbt", command[0], "--demo", "--symbols", "ALPHA",
            *command[1:], "--report", str(path)]
    run = subprocess.run(args, capture_output=True, text=True, env=os.environ.copy())
    assert run.returncode == 0, run.stderr
    assert f"wrote the report to {path}" in run.stdout
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text
    again = subprocess.run(args, capture_output=True, text=True, env=os.environ.copy())
    assert again.returncode != 0 and "--report" in again.stderr and "--force" in again.stderr


def test_array_level_functions_take_one_curve(bt, data):
    """A portfolio's one equity curve (1-D) goes through the array-level functions."""
    from sweepbt import _frames as frames

    curve = np.nansum(bt.equity, axis=0)  # one curve over the assets, any 1-D series
    ts = data.timestamps
    for fig in (plot.equity_curve(ts, curve, log=True), plot.underwater(ts, curve, 20_000.0),
                plot.equity_curves(ts, bt.equity, data.symbols)):
        assert series(plot.to_svg(fig))
    frame = frames.series_pandas(data, {"equity": curve, "units": bt.units}, 20_000.0,
                                 "test")
    assert list(frame["equity"].columns) == ["portfolio"]
    assert list(frame["units"].columns) == list(data.symbols)
    np.testing.assert_array_equal(frame["drawdown"]["portfolio"].to_numpy(),
                                  drawdown(curve, 20_000.0))


def test_portfolio_result_shows_and_reports(data):
    pf = sb.backtest(data, "sma_cross", fast=10, slow=40, portfolio=True, size=0.5)
    assert repr(pf).startswith("<PortfolioResult ") and "<b>PortfolioResult</b>" in \
        pf._repr_html_()
    row = pf.stats.to_pylist()[0]
    assert row["symbol"] == "portfolio" and math.isnan(row["buy_and_hold_return"])
    live = pf.equity[~np.isnan(pf.equity)]
    assert row["exposure_adjusted_return"] == pytest.approx(
        (live[-1] / 10_000.0 - 1) / row["exposure"], rel=1e-12)
    page = Page(pf.report())
    traded = sorted(set(pf.trades["symbol"].to_pylist()))
    assert {k: len(v) for k, v in page.charts.items()} == {
        "equity": 1, "drawdown": 1, "monthly_returns": 1, "trades": len(traded)}
    assert series(page.charts["equity"][0]) == ["strategy"]  # no single price to hold
    frame = pf.to_pandas()
    assert list(frame["equity"].columns) == ["portfolio"]
    assert list(frame["units"].columns) == list(data.symbols)
    wide = pf.to_polars()
    assert wide.columns[:3] == ["timestamp", "equity", "cash"] and wide.height == live.size
    res = sb.sweep(data, "sma_cross", fast=[5, 10], slow=[40, 80], portfolio=True,
                   size=[0.5, 1.0])
    best = res.best("sharpe", 1).to_pylist()[0]
    again = res.backtest(best)
    assert type(again).__name__ == "PortfolioResult"
    assert again.stats["sharpe"][0].as_py() == pytest.approx(best["sharpe"], rel=1e-12)
    assert "4 portfolio backtests" not in repr(res) and "8 portfolio backtests" in repr(res)
