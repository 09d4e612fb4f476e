"""Results as people read them: text tables, notebook displays, reports of mixed sweeps, the
CLI's report and walk-forward table, and output files that are never written over."""

import os
import re
import socket
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
from sweepbt import _display as display
from sweepbt._format import format_value
from sweepbt._html_report import _percent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data(demo):
    return demo.select(["ALPHA", "HOTEL", "BRAVO"]).slice_bars(1000, 2000)


@pytest.fixture(scope="module")
def mixed(data):
    """A sweep of a per-asset strategy and a rank strategy, as portfolios."""
    return sb.sweep(data, ["sma_cross", "momentum_rank"], fast=[5, 10], slow=[40, 80],
                    lookback=[20, 60], top_n=1, rebalance=["M", 21], portfolio=True)


def sweepbt_cli(*args, cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "sweepbt", *args], capture_output=True,
                          text=True, timeout=600, env=env, cwd=cwd)


def charts(page):
    """``{caption: svg}`` of a report's charts."""
    return dict(re.findall(r"<figcaption>([^<]*)</figcaption>(<svg.*?</svg>)", page, re.S))


# -- (1) a report of a sweep that mixes a rank and a per-asset strategy ---------------------

def test_report_of_a_mixed_sweep_skips_the_combos_without_a_parameter(mixed):
    assert mixed.n_combos == 8 and mixed.table["rebalance"].null_count == 4
    page = sb.report(mixed)
    assert "best 8 combos by sharpe (one portfolio)" in page
    assert str(mixed).splitlines()[3] == "best 8 by sharpe (one portfolio):"
    found = charts(page)
    rebalance = found["Sensitivity: sharpe by rebalance"]
    assert "4 of 8 combos have it" in rebalance
    assert re.findall(r"<text[^>]*>([^<]*)</text>", rebalance)[:3] == ["M", "21", "rebalance"]
    for name in ("fast", "lookback"):
        chart = found[f"Sensitivity: sharpe by {name}"]
        assert "4 of 8 combos have it" in chart and ">nan<" not in chart
    assert "Heatmap: sharpe by fast and slow" in found


# -- (2) the CLI's report covers the whole grid ---------------------------------------------

@pytest.mark.slow
def test_cli_report_covers_every_combo_not_only_the_printed_top(tmp_path):
    report = tmp_path / "r.html"
    run = sweepbt_cli("sweep", "--demo", "--symbols", "ALPHA,BRAVO", "--param", "fast=5,10,15",
                      "--param", "slow=40,80,120", "--top", "3", "--report", str(report))
    assert run.returncode == 0, run.stderr
    assert "top 3 of 9 combos by sharpe" in run.stdout
    page = report.read_text()
    assert "best 9 combos by sharpe" in page and "sharpe over 9 combos" in page
    data = sb.demo().select(["ALPHA", "BRAVO"])
    res = sb.sweep(data, "sma_cross", fast=[5, 10, 15], slow=[40, 80, 120])
    python = charts(res.report())
    cli = charts(page)
    assert cli.keys() == python.keys()
    assert cli["Distribution of sharpe over combos"] == python[
        "Distribution of sharpe over combos"]


# -- (3) readable text ----------------------------------------------------------------------

def test_show_prints_an_aligned_table_of_rounded_numbers(capsys):
    table = pa.table({"symbol": ["AAA", "BBBB"], "n_trades": [590.0, 12.5],
                      "total_return": [-0.00001, 0.123456789],
                      "max_drawdown_duration": [377, 0], "sharpe": [1.23456789, None]})
    sb.show(table)
    assert capsys.readouterr().out.splitlines() == [
        "symbol  n_trades  total_return  max_drawdown_duration  sharpe",
        "------  --------  ------------  ---------------------  ------",
        "AAA          590         0.00%               377 bars    1.23",
        "BBBB        12.5        12.35%                 0 bars       -"]
    sb.show(table, columns=["symbol", "sharpe"], max_rows=1)
    assert capsys.readouterr().out.splitlines() == [
        "symbol  sharpe", "------  ------", "AAA       1.23", "(1 more rows; 2 in all)"]


def test_wide_tables_continue_below_led_by_the_first_column():
    table = pa.table({"rank": [1], **{f"metric_{i:02d}": [0.5] for i in range(20)}})
    text = display.table_text(table, width=60)
    blocks = text.split("\n\n")
    assert len(blocks) > 1 and all(b.startswith("rank  metric_") for b in blocks)
    assert all(len(line) <= 60 for line in text.splitlines())
    assert sum(b.splitlines()[0].count("metric_") for b in blocks) == 20


def table_cells(text):
    """``{column: [cells]}`` of a text table, its blocks of columns joined."""
    out = {}
    for block in text.split("\n\n"):
        lines = block.splitlines()
        header = re.split(r"\s{2,}", lines[0].strip())
        rows = [re.split(r"\s{2,}", line.strip()) for line in lines[2:]]
        for j, name in enumerate(header):
            out[name] = [row[j] for row in rows]
    return out


def test_results_print_a_summary_with_a_table(data):
    bt = sb.backtest(data, "sma_cross", fast=10, slow=40, stop_loss=0.05)
    title, span, blank, table = str(bt).split("\n", 3)
    assert title == "BacktestResult sma_cross(fast=10, slow=40, stop_loss=0.05)"
    assert span.startswith("3 assets x 1,000 bars, ") and blank == ""
    cells = table_cells(table)
    assert list(cells) == list(display.BACKTEST_COLUMNS)
    for name, values in cells.items():
        assert values == [format_value(name, v) for v in bt.stats[name].to_pylist()], name
    assert repr(bt).startswith("<BacktestResult ")  # repr stays one line
    res = sb.sweep(data, "sma_cross", fast=[5, 10, 20], slow=[40, 80])
    lines = str(res).split("\n", 4)
    assert lines[3] == "best 6 by sharpe (mean over assets):"
    cells = table_cells(lines[4])
    best = res.best("sharpe", 6)
    assert cells["rank"] == [str(r) for r in best["rank"].to_pylist()]
    assert cells["sharpe"] == [format_value("sharpe", v) for v in best["sharpe"].to_pylist()]
    assert cells["n_trades"] == [format_value("n_trades", v)
                                 for v in best["n_trades"].to_pylist()]
    assert not re.search(r"\d\.\d{5}", str(res))


def test_counts_are_whole_with_no_negative_zero_and_durations_have_units():
    assert format_value("n_trades", 590.0) == "590"
    assert format_value("n_trades", 12.25) == "12.2"
    assert format_value("n_stop", -0.01) == "0.0"
    assert format_value("avg_bars_held", 41.5) == "41.5 bars"
    assert format_value("max_drawdown_duration", 377) == "377 bars"
    assert format_value("weight", -0.5) == "-50.00%"
    assert _percent("Jan", -0.00001) == "0.0%" and _percent("Jan", -0.012) == "-1.2%"


def test_overfitting_statistics_and_rank_tables_draw_in_notebooks(data, monkeypatch):
    ipython = pytest.importorskip("IPython")
    from IPython.core.formatters import DisplayFormatter

    formatter = DisplayFormatter()
    monkeypatch.setattr(ipython, "get_ipython",
                        lambda: type("Shell", (), {"display_formatter": formatter})())
    display.show_tables_in_notebooks()
    res = sb.sweep(data, "sma_cross", fast=[5, 10, 20], slow=[40, 80])
    dsr = res.deflated_sharpe()
    page, text = (formatter.format(dsr)[0][kind] for kind in ("text/html", "text/plain"))
    assert page.startswith("<div><b>DeflatedSharpe</b>") and f">{dsr.dsr:.4f}</td>" in page
    assert text.splitlines()[1].split() == ["deflated", "Sharpe", "(DSR)", f"{dsr.dsr:.4f}"]
    pbo = res.pbo(k=6, n_splits=4)
    shown = formatter.format(pbo)[0]
    assert f">{pbo.pbo:.3f}</td>" in shown["text/html"]
    assert "array(" not in shown["text/plain"] and f"{pbo.pbo:.3f}" in shown["text/plain"]
    rank = sb.backtest(data, "momentum_rank", lookback=20, top_n=1, rebalance="M")
    for table in (rank.rebalances, rank.holdings):
        page = formatter.format(table)[0]["text/html"]
        assert page.startswith(f"<div><small>pyarrow.Table: {table.num_rows:,} rows")
    weight = rank.holdings["weight"][0].as_py()
    assert f"<td>{weight * 100:,.2f}%</td>" in formatter.format(rank.holdings)[0]["text/html"]


# -- (4) smaller items ----------------------------------------------------------------------

@pytest.mark.parametrize("expression", ["fast = 5", "fast @ 2 > 1", "'x' < fast", "fast <",
                                        "lambda: fast", "fast > 3 and"])
def test_a_where_filter_is_refused_in_the_words_of_a_constraint(expression, data):
    """Both are built from the same words, each naming itself (no message is rewritten)."""
    with pytest.raises(ValueError) as constraint:
        sb.sweep(data, "sma_cross", fast=[5, 10], slow=[40, 80], constraint=expression)
    res = sb.sweep(data, "sma_cross", fast=[5, 10], slow=[40, 80])
    with pytest.raises(ValueError) as where:
        res.best(where=expression)
    assert str(where.value) == str(constraint.value).replace("constraint", "where= filter")
    assert "constraint" not in str(where.value)


def test_where_errors_name_the_filter_and_rank_words_compare(data):
    res = sb.sweep(data, "sma_cross", fast=[5, 10], slow=[40, 80])
    with pytest.raises(ValueError, match=r"^where= filter 'foo > 1': unknown name 'foo'"):
        res.best(where="foo > 1")
    with pytest.raises(ValueError, match=r"^where= filter 'fast \+ 1' gives numbers"):
        res.best(where="fast + 1")
    rank = sb.sweep(data, "momentum_rank", lookback=[20, 60], top_n=1, rebalance=["M", 21])
    assert set(rank.best(where="rebalance == 'M'")["rebalance"].to_pylist()) == {"M"}
    assert set(rank.best(where="rebalance == 21")["rebalance"].to_pylist()) == {"21"}


def test_turnover_ranks_lowest_first(data):
    rank = sb.sweep(data, "momentum_rank", lookback=[10, 20, 60], top_n=[1, 2],
                    rebalance=[5, "M"])
    best = rank.best("turnover", k=12)["turnover"].to_numpy()
    assert best.size == 12 and np.all(np.diff(best) >= 0) and best[0] < best[-1]


def test_walk_forward_table_says_what_it_left_out(data):
    wf = sb.walk_forward(data, "sma_cross", train=300, test=200, fast=[5, 10],
                         slow=[30, 60])
    full = sb.walkforward.format_walk_forward(wf)
    assert "left out" not in full
    narrow = sb.walkforward.format_walk_forward(wf, width=100).splitlines()
    assert "IS sharpe" not in narrow[1]
    assert sb.walkforward._fmt(-0.00001, pct=True) == "0.0%"  # its cells: no -0.0%
    assert sb.walkforward._fmt(-0.001) == "0.00" and sb.walkforward._fmt(-0.5) == "-0.50"
    assert narrow[2 + wf.n_windows] == (
        "(IS sharpe left out to fit 100 characters; every column: wf.windows, or --out FILE)")


def test_docs_install_from_the_checkout():
    for name in ("README.md", "docs/report.md", "docs/getting-started.md"):
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            text = f.read()
        assert not re.search(r"pip install ['\"]?sweepbt\[", text), name
    assert 'pip install ".[report]"' in open(os.path.join(ROOT, "README.md")).read()


@pytest.mark.slow
def test_workers_start_no_dashboard(tmp_path):
    pytest.importorskip("distributed")
    taken = socket.socket()
    try:
        taken.bind(("", 8787))  # else another program has it: the case all the same
        taken.listen()
    except OSError:
        pass
    try:
        run = sweepbt_cli("sweep", "--demo", "--symbols", "ALPHA,BRAVO", "--param",
                          "fast=5,10", "--param", "slow=40", "--workers", "2",
                          "--no-progress")
    finally:
        taken.close()
    assert run.returncode == 0, run.stderr
    assert "top 2 of 2 combos" in run.stdout
    assert "8787" not in run.stderr and "dashboard" not in run.stderr.lower()


# -- (5) output files are never written over by surprise ------------------------------------

def test_to_parquet_and_report_refuse_an_existing_path(data, tmp_path):
    res = sb.sweep(data, "sma_cross", fast=[5, 10], slow=[40, 80])
    path = tmp_path / "sweep.parquet"
    res.to_parquet(path)
    first = path.read_bytes()
    for write in (res.to_parquet, lambda p: sb.report(res, p), res.report):
        with pytest.raises(FileExistsError, match=re.escape(f"{str(path)!r} exists; pass "
                                                            "overwrite=True")):
            write(path)
        assert path.read_bytes() == first
    assert res.report(path, overwrite=True) == str(path)
    assert path.read_text().startswith("<!DOCTYPE html>")
    res.to_parquet(path, overwrite=True)
    assert pq.read_table(path).num_rows == res.table.num_rows
    assert sorted(os.listdir(tmp_path)) == ["sweep.parquet"]


@pytest.mark.slow
def test_a_result_never_replaces_the_file_its_data_came_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = sweepbt_cli("demo", "--out", "prices.parquet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    before = (tmp_path / "prices.parquet").read_bytes()
    assert len(before) > 400_000
    data = sb.load("prices.parquet").select(["ALPHA", "BRAVO"])
    res = sb.sweep(data, "sma_cross", fast=[5, 10], slow=[40])
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="'prices.parquet' is the file this result's "
                                             "data was loaded from"):
            res.to_parquet("prices.parquet", overwrite=overwrite)
        with pytest.raises(ValueError, match="data was loaded from"):
            sb.report(res.backtest(0), str(tmp_path / "prices.parquet"), overwrite=overwrite)
    assert (tmp_path / "prices.parquet").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["prices.parquet"]
