"""The ``sweepbt`` command line, run as a user would: ``python -m sweepbt ...`` in a subprocess.

The parsing helpers are also tested in-process. Subprocesses inherit the environment, so
NUMBA_CACHE_DIR (when set) keeps compiled kernels cached across them.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
from sweepbt import cli
from sweepbt._interrupt import CommandGuard, Terminated, checkpoint
from sweepbt.cli.outputs import write_output
from helpers import finished_parts, stop_when

SMALL = ["--symbols", "ALPHA,BRAVO,CHARLIE"]


def run_cli(*args, timeout=300, columns=None):
    """``sweepbt ARGS`` in a subprocess; ``columns``: the terminal width it is told
    (``COLUMNS``; none by default, whatever this test's terminal is)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "sweepbt", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _cells(line):
    """The cells of an aligned table's line: two spaces or more apart (a header such as
    ``mean n_trades`` has one)."""
    return re.split(r"\s{2,}", line.strip())


def table_rows(stdout, first_header):
    """Parse the aligned table whose header row starts with ``first_header``."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [first_header])
    header = _cells(lines[start])
    assert set(lines[start + 1].replace(" ", "")) == {"-"}
    rows = []
    for line in lines[start + 2:]:
        if not line.strip() or line.startswith(("(left out", "Metrics are")):
            break  # the table's notes
        cells = _cells(line)
        assert len(cells) == len(header), line
        rows.append(dict(zip(header, cells)))
    return header, rows


def pct(cell):
    return float(cell.rstrip("%").replace(",", "")) / 100


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("sweepbt: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ----------------------------------------------------------------------------------------
# parsing helpers, in-process


def test_parse_number():
    assert cli.parse_number("10") == 10 and isinstance(cli.parse_number("10"), int)
    assert cli.parse_number("-3") == -3
    assert cli.parse_number("0.05") == 0.05
    assert cli.parse_number("1e-3") == 0.001
    assert isinstance(cli.parse_number("1e3"), float)
    for bad in ("x", "", "inf", "nan", "1..2"):
        with pytest.raises(cli.CliError):
            cli.parse_number(bad)


def test_parse_range_integers_include_stop_on_grid():
    assert cli.parse_range("5:50:5") == list(range(5, 55, 5))
    assert cli.parse_range("5:52:5") == list(range(5, 55, 5))  # 52 is off the grid
    assert cli.parse_range("1:4") == [1, 2, 3, 4]
    assert cli.parse_range("7:7:3") == [7]
    assert all(isinstance(v, int) for v in cli.parse_range("20:200:20"))


def test_parse_range_floats():
    assert cli.parse_range("0.01:0.05:0.01") == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert cli.parse_range("0.1:0.3:0.1") == [0.1, 0.2, 0.3]  # 0.3 despite rounding
    assert cli.parse_range("0.1:0.35:0.1") == [0.1, 0.2, 0.3]
    assert cli.parse_range("1:2:0.5") == [1.0, 1.5, 2.0]


@pytest.mark.parametrize("text", ["5:", ":5", "5:50:0", "5:50:-5", "50:5", "a:b",
                                  "1:2:3:4", "0:1:1e-9"])
def test_parse_range_rejects(text):
    with pytest.raises(cli.CliError):
        cli.parse_range(text, "fast")


def test_parse_values():
    assert cli.parse_values("10") == 10
    assert cli.parse_values("none") is None
    assert cli.parse_values("None") is None
    assert cli.parse_values("0.02,none,0.05") == [0.02, None, 0.05]
    assert cli.parse_values("5,10:20:5") == [5, 10, 15, 20]
    assert cli.parse_values("3:5") == [3, 4, 5]
    assert cli.parse_values(" 7 ") == 7
    for bad in ("", " ", "1,,2", "1,", "x", "1,x"):
        with pytest.raises(cli.CliError):
            cli.parse_values(bad)


def test_parse_param():
    assert cli.parse_param("fast=5:50:5") == ("fast", list(range(5, 55, 5)))
    assert cli.parse_param("slow=50") == ("slow", 50)
    assert cli.parse_param("fast=5,10,20") == ("fast", [5, 10, 20])
    assert cli.parse_param("stop_loss=0.05,none") == ("stop_loss", [0.05, None])
    for bad in ("fast", "=5", "1x=5", "fast=", "fast=a"):
        with pytest.raises(cli.CliError):
            cli.parse_param(bad)


def test_collect_params():
    params = cli.collect_params(["fast=5,10", "slow=50"],
                                {"stop_loss": "0.02,none", "fees": "0.001", "size": None})
    assert params == {"fast": [5, 10], "slow": 50, "stop_loss": [0.02, None], "fees": 0.001}
    with pytest.raises(cli.CliError, match="twice"):
        cli.collect_params(["fast=5", "fast=10"], {})
    with pytest.raises(cli.CliError, match="twice"):
        cli.collect_params(["stop_loss=0.1"], {"stop_loss": "0.2"})


def test_format_value():
    assert cli.format_value("total_return", 0.1234) == "12.34%"
    assert cli.format_value("max_drawdown", 0.5) == "50.00%"
    assert cli.format_value("total_return", 12.5) == "1,250.00%"
    assert cli.format_value("sharpe", 1.23456) == "1.23"
    assert cli.format_value("sharpe", float("nan")) == "nan"
    assert cli.format_value("stop_loss", None) == "-"
    assert cli.format_value("stop_loss", 0.05) == "0.05"
    assert cli.format_value("fast", 10) == "10"
    assert cli.format_value("n_trades", 12) == "12"
    assert cli.format_value("n_trades", 12.34) == "12.3"  # a mean over assets
    assert cli.format_value("n_trades", 590.0) == "590"


def test_render_table_aligns():
    text = cli.render_table(["name", "x"], [["a", "1.00"], ["long-name", "-"]], left={"name"})
    lines = text.splitlines()
    assert lines[0].startswith("name") and lines[2].startswith("a ")
    assert lines[2].endswith("1.00") and lines[3].endswith("-")
    assert len(lines[2]) == len(lines[3])


def test_main_in_process_error_returns_2(capsys):
    assert cli.main(["sweep", "--demo", "--param", "fast"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sweepbt: error: --param 'fast'") and err.count("\n") == 1


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", "--demo", "--top", "x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("sweepbt: error: argument --top") and err.count("\n") == 1


def test_swallowed_interrupt_is_raised_at_checkpoint():
    class Bomb:  # a Ctrl-C landing in code that swallows exceptions (e.g. a C callback)
        def __del__(self):
            raise KeyboardInterrupt

    checkpoint()  # no guard: nothing to do
    with CommandGuard() as guard:
        checkpoint()
        Bomb()
        assert guard.seen
        with pytest.raises(KeyboardInterrupt):
            checkpoint()
    checkpoint()


# ----------------------------------------------------------------------------------------
# sweep


@pytest.mark.slow
def test_default_demo_sweep():
    proc = run_cli("sweep", "--demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "(default grid)" in out
    assert "constraint: fast < slow" in out
    header, rows = table_rows(out, "rank")
    assert header == ["rank", "combo", "fast", "slow", "stop_loss", "take_profit",
                      "total_return", "cagr", "sharpe/yr", "max_drawdown"]  # 100 columns
    assert "(left out to fit 100 characters: exposure, calmar, sortino, win_rate, " \
           "n_trades; --columns picks them)" in " ".join(out.split())
    assert all(len(line) <= 100 for line in out[out.index("top 10"):].splitlines()[:16])
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, 11)]
    assert all(int(r["fast"]) < int(r["slow"]) for r in rows)
    assert all(r["stop_loss"] in ("0.02", "0.05", "0.08", "-") for r in rows)
    assert all(r["total_return"].endswith("%") and r["max_drawdown"].endswith("%")
               for r in rows)
    assert all(re.fullmatch(r"-?\d+\.\d\d", r["sharpe/yr"]) for r in rows)
    sharpes = [float(r["sharpe/yr"]) for r in rows]
    assert sharpes == sorted(sharpes, reverse=True)
    # 90 (fast, slow) pairs with fast < slow, x 4 stops x 4 take-profits, x 10 demo assets
    lines = out.strip().splitlines()
    summary = next(line for line in lines if line.startswith("14,400 backtests"))
    assert re.fullmatch(r"overfitting check, best by sharpe: deflated Sharpe 0\.\d{4} .*"
                        r"best of 1,440 unskilled trials; PSR vs 0: 0\.\d{4}\)", lines[-1])
    m = re.fullmatch(r"14,400 backtests \(1,440 combos x 10 assets\), ([\d,]+) "
                     r"bar-evaluations in ([\d.]+) s( \(\+ \d+ s compiling, first run only\))?: "
                     r"[\d.,]+[kMG]? bar-evaluations/s",
                     summary)
    assert m, summary
    data = sb.demo()
    assert int(m.group(1).replace(",", "")) == 1440 * int((data.end - data.start).sum())


@pytest.mark.slow
def test_sweep_out_parquet_matches_library(tmp_path):
    out_file = tmp_path / "res.parquet"
    proc = run_cli("sweep", "--demo", *SMALL, "--param", "fast=5,10", "--param",
                   "slow=20:60:20", "--stop-loss", "0.05,none", "--fees", "0.001",
                   "--out", str(out_file))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote 36 rows to {out_file}" in proc.stdout
    assert "12 combos x 3 assets" in proc.stdout
    table = pq.read_table(out_file)
    assert table.num_rows == 2 * 3 * 2 * 3
    for col in ("fast", "slow", "stop_loss", "fees", "symbol", "sharpe", "total_return"):
        assert col in table.column_names
    assert table.column("stop_loss").null_count == 18
    assert set(table.column("symbol").to_pylist()) == {"ALPHA", "BRAVO", "CHARLIE"}
    assert sorted(set(table.column("fast").to_pylist())) == [5, 10]
    assert sorted(set(table.column("slow").to_pylist())) == [20, 40, 60]

    data = sb.load(sb.demo(), symbol=["ALPHA", "BRAVO", "CHARLIE"])
    ref = sb.sweep(data, "sma_cross", fast=[5, 10], slow=[20, 40, 60],
                   stop_loss=[0.05, None], fees=0.001)
    for col in ("fast", "slow", "stop_loss", "symbol", "n_trades"):
        assert table.column(col).to_pylist() == ref.table.column(col).to_pylist()
    for col in ("total_return", "sharpe", "max_drawdown"):
        np.testing.assert_array_equal(table.column(col).to_numpy(),
                                      ref.table.column(col).to_numpy())
    assert not [p for p in os.listdir(tmp_path) if p != "res.parquet"]  # no temp files


@pytest.mark.slow
def test_sweep_constraint_metric_top_and_columns():
    proc = run_cli("sweep", "--demo", *SMALL, "--param", "fast=10,30", "--param",
                   "slow=20,40", "--constraint", "fast < slow", "--metric", "max_drawdown",
                   "--top", "2", "--columns", "total_return,sharpe")
    assert proc.returncode == 0, proc.stderr
    assert "constraint keeps 3 of 4 combos" in proc.stdout
    header, rows = table_rows(proc.stdout, "rank")
    assert header == ["rank", "combo", "fast", "slow", "max_drawdown", "total_return",
                      "sharpe/yr"]  # --columns: every column asked for, none left out
    assert len(rows) == 2
    dd = [pct(r["max_drawdown"]) for r in rows]
    assert dd == sorted(dd)  # lower drawdown is better
    assert "top 2 of 3 combos by max_drawdown" in proc.stdout


@pytest.mark.slow
def test_sweep_table_fits_the_terminal_and_says_what_it_shows():
    """100 columns by default, fewer on a narrow terminal (the least important metrics go,
    and a note says which); sharpe/yr and mean n_trades headers; the combo ids of the
    overfitting line; a footnote on means over assets."""
    args = ("sweep", "--demo", *SMALL, "--param", "fast=5,10,20", "--param", "slow=40,80",
            "--stop-loss", "0.05,none")
    wide = run_cli(*args)
    assert wide.returncode == 0, wide.stderr
    header, rows = table_rows(wide.stdout, "rank")
    assert header == ["rank", "combo", "fast", "slow", "stop_loss", "total_return", "cagr",
                      "sharpe/yr", "max_drawdown", "mean n_trades"]
    assert "(left out to fit 100 characters: exposure, calmar, sortino, win_rate; " \
           "--columns picks them)" in wide.stdout
    table = wide.stdout[wide.stdout.index("top 10"):].split("\n\n")[0].splitlines()
    assert max(len(line) for line in table) <= 100
    res = sb.sweep(sb.demo().select(["ALPHA", "BRAVO", "CHARLIE"]), "sma_cross",
                   fast=[5, 10, 20], slow=[40, 80], stop_loss=[0.05, None])
    best = res.best("sharpe", 10).to_pylist()
    assert [int(r["combo"]) for r in rows] == [r["combo"] for r in best]
    assert f"(best combo {rows[0]['combo']}: Sharpe" in wide.stdout
    assert [r["mean n_trades"] for r in rows] == [  # whole means as integers
        f"{r['n_trades']:.0f}" if r["n_trades"].is_integer() else f"{r['n_trades']:.1f}"
        for r in best]
    notes = " ".join(wide.stdout[wide.stdout.index("Metrics are"):].split())
    assert notes.startswith("Metrics are means over the 3 assets, each backtested alone; "
                            "combo is the id the overfitting check names. Mean total_return "
                            "and mean cagr can rank combos differently")

    narrow = run_cli(*args, columns=60)
    assert narrow.returncode == 0, narrow.stderr
    header, narrow_rows = table_rows(narrow.stdout, "rank")
    assert header == ["rank", "combo", "fast", "slow", "stop_loss", "total_return",
                      "sharpe/yr"]
    assert [r["combo"] for r in narrow_rows] == [r["combo"] for r in rows]
    shown = narrow.stdout[narrow.stdout.index("top 10"):].split("\n\n")[0].splitlines()
    assert max(len(line) for line in shown) <= 60 and "sortino, win_rate, cagr, n_trades, " \
        "max_drawdown; --columns picks them)" in " ".join(shown)
    asked = run_cli(*args, "--columns", "exposure,calmar,sortino,n_trades", columns=60)
    assert table_rows(asked.stdout, "rank")[0][-5:] == [
        "sharpe/yr", "exposure", "calmar", "sortino/yr", "mean n_trades"]  # as asked
    assert "left out" not in asked.stdout

    portfolio = run_cli(*args, "--portfolio", "--size", "0.3")
    assert portfolio.returncode == 0, portfolio.stderr
    assert "n_trades" in table_rows(portfolio.stdout, "rank")[0]  # one portfolio: no mean
    assert "Metrics are means" not in portfolio.stdout


def test_fit_columns_leaves_out_the_least_important_and_puts_back_what_fits():
    from sweepbt._table import fit_columns
    from sweepbt.cli.formatting import metric_header

    header, rows = ["a", "bbbbbbbbbb", "c", "dd"], [["1", "2", "3", "4"]]  # 20 characters
    assert fit_columns(header, rows, 20, [1, 3]) == ([0, 1, 2, 3], [])
    assert fit_columns(header, rows, 12, [1, 3, 2]) == ([0, 2, 3], [1])
    # dd went first, then bbbbbbbbbb had to go too: dd fits again, so it comes back
    assert fit_columns(header, rows, 12, [3, 1]) == ([0, 2, 3], [1])
    assert fit_columns(header, rows, 3, [3]) == ([0, 1, 2], [3])  # the others always stay
    assert [metric_header(n, mean=True) for n in ("sharpe", "n_trades", "cagr")] == [
        "sharpe/yr", "mean n_trades", "cagr"]
    assert metric_header("n_trades") == "n_trades"


@pytest.mark.slow
def test_sweep_single_values_and_risk_lists():
    proc = run_cli("sweep", "--demo", "--symbols", "GOLF", "--param", "fast=10",
                   "--param", "slow=50", "--take-profit", "0.1,none", "--max-bars",
                   "5,none", "--slippage", "0.001", "--size", "0.5", "--fill", "close",
                   "--direction", "both", "--threads", "1", "--periods-per-year", "365")
    assert proc.returncode == 0, proc.stderr
    assert "axes: take_profit (2), max_bars (2)" in proc.stdout
    assert "fixed: fast=10, slow=50, slippage=0.001, size=0.5" in proc.stdout
    assert "fill=close, direction=both" in proc.stdout and "periods_per_year=365" in proc.stdout
    header, rows = table_rows(proc.stdout, "rank")
    assert header[:4] == ["rank", "combo", "take_profit", "max_bars"]
    assert "n_trades" in header and "Metrics are means" not in proc.stdout  # one asset
    assert {(r["take_profit"], r["max_bars"]) for r in rows} == {
        ("0.1", "5"), ("0.1", "-"), ("-", "5"), ("-", "-")}
    assert "4 backtests (4 combos x 1 assets)" in proc.stdout


@pytest.mark.slow
def test_sweep_random_sample_is_reproducible():
    args = ["sweep", "--demo", *SMALL, "--param", "fast=2:40", "--param", "slow=10:200:5",
            "--constraint", "fast < slow", "--sample", "7", "--seed", "42", "--top", "7"]
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "random sample: 7 combos, seed 42, from a grid of 1,521 before the constraint" \
        in first.stdout
    assert "21 backtests (7 combos x 3 assets)" in first.stdout
    rows = table_rows(first.stdout, "rank")[1]
    assert len(rows) == 7 and all(int(r["fast"]) < int(r["slow"]) for r in rows)
    assert rows == table_rows(second.stdout, "rank")[1]
    other = run_cli(*args[:-4], "--seed", "7", "--top", "7")
    assert other.returncode == 0, other.stderr
    assert table_rows(other.stdout, "rank")[1] != rows


def _write_prices(path, drop_row=None):
    data = sb.load(sb.demo(), symbol=["ALPHA", "BRAVO"]).slice_bars(0, 300)
    table = data.to_table()
    if drop_row is not None:
        keep = np.ones(table.num_rows, dtype=bool)
        keep[drop_row] = False
        table = table.filter(pa.array(keep))
    if str(path).endswith(".csv"):
        pcsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return table


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_sweep_on_data_file(tmp_path, suffix):
    path = tmp_path / f"prices{suffix}"
    _write_prices(path)
    proc = run_cli("sweep", "--data", str(path), "--param", "fast=5:15:5", "--param",
                   "slow=30,60")
    assert proc.returncode == 0, proc.stderr
    assert "2 asset(s) x 300 bars" in proc.stdout
    assert "12 backtests (6 combos x 2 assets)" in proc.stdout


@pytest.mark.slow
def test_gaps_error_and_ffill(tmp_path):
    path = tmp_path / "gappy.csv"
    table = _write_prices(path)
    # drop a bar of the second symbol in the middle of its span
    sym = table.column("symbol").to_pylist()
    row = [i for i, s in enumerate(sym) if s == sym[-1]][150]
    _write_prices(path, drop_row=row)
    proc = run_cli("sweep", "--data", str(path), "--param", "fast=5", "--param", "slow=20")
    assert_one_line_error(proc, "gap")
    proc = run_cli("sweep", "--data", str(path), "--gaps", "ffill", "--param", "fast=5",
                   "--param", "slow=20")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_sweep_out_dir_streams_dataset(tmp_path):
    out_dir = tmp_path / "results"
    args = ["sweep", "--demo", *SMALL, "--param", "fast=5:15:5", "--param", "slow=30,60",
            "--top", "3", "--out-dir", str(out_dir)]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote 18 rows to {out_dir} (Parquet dataset)" in proc.stdout
    assert len(table_rows(proc.stdout, "rank")[1]) == 3
    table = pq.read_table(out_dir)
    assert table.num_rows == 18
    assert {"combo", "fast", "slow", "symbol", "sharpe"} <= set(table.column_names)
    assert os.listdir(tmp_path) == ["results"]
    assert_one_line_error(run_cli(*args), "already exists")  # never written over


def test_sweep_too_large_is_one_line(monkeypatch, capsys):
    def too_large(*args, **kwargs):
        raise sb.SweepTooLarge(9, 2 ** 40, 2 ** 30)  # 9 rows, about 1 TB, more than 1 GB

    monkeypatch.setattr(sb, "sweep", too_large)
    assert cli.main(["sweep", "--demo", "--param", "fast=5,10", "--out", "x.parquet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "more than the 1 GB allowed" in err[0]
    assert "--out-dir" in err[0] and "top=K" not in err[0]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("flag", ["--out", "--out-dir"])
@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_keyboard_interrupt_exits_130_without_output(tmp_path, flag, delay):
    out_file = tmp_path / "big.parquet"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweepbt", "sweep", "--demo", "--param", "fast=1:100",
         "--param", "slow=2:101", "--stop-loss", "0.01:0.1:0.01", flag, str(out_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        first = proc.stdout.readline()  # printed just before the sweep starts
        assert first.startswith("data: demo")
        time.sleep(delay)  # 0: while kernels load; 0.3: while the sweep runs
        if proc.poll() is not None:
            _, err = proc.communicate()
            assert proc.returncode == 0, err
            pytest.skip("the sweep finished before it could be interrupted")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "sweepbt: interrupted"
    assert "Traceback" not in err
    if flag == "--out-dir" and os.path.exists(out_file):  # a chunk finished: kept to resume
        assert sorted(os.listdir(out_file)) == ["_manifest.json", "_partial"]
        assert os.listdir(out_file / "_partial")
        assert f"kept in {out_file}; run the same command with --resume" in err
    else:  # no output, no empty folder
        assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------
# backtest, strategies, version


@pytest.mark.slow
def test_backtest_prints_stats_and_trades(tmp_path):
    trades_file = tmp_path / "trades.parquet"
    proc = run_cli("backtest", "--demo", "--symbols", "ALPHA,BRAVO", "--param", "fast=10",
                   "--param", "slow=50", "--stop-loss", "0.05", "--fees", "0.001",
                   "--trades", "5", "--trades-out", str(trades_file))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "strategy: sma_cross(fast=10, slow=50, stop_loss=0.05, fees=0.001)" in out

    bt = sb.backtest(sb.load(sb.demo(), symbol=["ALPHA", "BRAVO"]), "sma_cross", fast=10,
                     slow=50, stop_loss=0.05, fees=0.001)
    header, rows = table_rows(out, "symbol")
    assert header[:3] == ["symbol", "total_return", "cagr"]
    assert [r["symbol"] for r in rows] == ["ALPHA", "BRAVO"]
    stats = bt.stats.to_pydict()
    for i, r in enumerate(rows):
        assert int(r["n_trades"]) == stats["n_trades"][i]
        assert math.isclose(pct(r["total_return"]), stats["total_return"][i], abs_tol=5e-5)
        assert r["sharpe/yr"] == f"{stats['sharpe'][i]:.2f}"

    n = bt.trades.num_rows
    assert f"trades: first 5 of {n}:" in out
    lines = out.splitlines()
    t_header = next(i for i, line in enumerate(lines) if line.startswith("symbol  direction"))
    t_names = _cells(lines[t_header])
    t_rows = [dict(zip(t_names, _cells(line))) for line in lines[t_header + 2:t_header + 7]]
    assert len(t_rows) == 5
    first = bt.trades.slice(0, 5).to_pydict()
    for i, cells in enumerate(t_rows):
        assert cells["symbol"] == first["symbol"][i] and cells["direction"] == "long"
        assert cells["entry_time"] == str(first["entry_time"][i])[:10]
        assert cells["exit_reason"] == first["exit_reason"][i]
    written = pq.read_table(trades_file)
    assert written.num_rows == n
    assert written.column("pnl").to_pylist() == bt.trades.column("pnl").to_pylist()
    assert pc.sum(pc.equal(written.column("exit_reason"), "stop")).as_py() > 0


@pytest.mark.slow
def test_backtest_defaults_and_no_trades():
    proc = run_cli("backtest", "--demo", "--symbols", "HOTEL", "--trades", "0")
    assert proc.returncode == 0, proc.stderr
    assert "strategy: sma_cross(fast=10, slow=50)" in proc.stdout
    assert "HOTEL" in proc.stdout and "trades:" not in proc.stdout


@pytest.mark.slow
def test_strategies_lists_registry():
    proc = run_cli("strategies")
    assert proc.returncode == 0, proc.stderr
    for name, strat in sb.STRATEGIES.items():
        assert f"{name}: {strat.doc}" in proc.stdout
        for p in strat.params:
            default = re.escape(cli.format_value(p.name, p.default))
            assert re.search(rf"^\s+{p.name}\s+{p.kind}\s+{default}\s+", proc.stdout, re.M)
    assert "stop_loss" in proc.stdout and "trailing_stop" in proc.stdout


@pytest.mark.slow
def test_version_and_help():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"sweepbt {sb.__version__}"
    proc = run_cli("--help")
    assert proc.returncode == 0
    for word in ("sweep", "backtest", "strategies"):
        assert word in proc.stdout
    proc = run_cli("sweep", "--help")
    assert proc.returncode == 0 and "--stop-loss" in proc.stdout and "--constraint" in proc.stdout


# ----------------------------------------------------------------------------------------
# bad input: exit status 2, one line, no traceback


@pytest.mark.slow
@pytest.mark.parametrize("args, fragment", [
    (["sweep", "--data", "/no/such/prices.parquet"], "no such file"),
    (["sweep", "--demo", "--param", "fast"], "expected NAME=VALUE"),
    (["sweep", "--demo", "--param", "fast=5:x"], "not a number"),
    (["sweep", "--demo", "--param", "fast=50:5:5"], "stop < start"),
    (["sweep", "--demo", "--param", "fast=5:50:0"], "step > 0"),
    (["sweep", "--demo", "--param", "nope=5"], "unknown parameter"),
    (["sweep", "--demo", "--stop-loss", "-0.05"], "stop_loss"),
    (["sweep", "--demo", "--stop-loss", "0.05,-0.1"], "stop_loss"),
    (["sweep", "--demo", "--strategy", "nope"], "unknown strategy 'nope'"),
    (["sweep", "--demo", "--fill", "nope"], "--fill"),
    (["sweep", "--demo", "--direction", "sideways"], "--direction"),
    (["sweep", "--demo", "--metric", "nope"], "unknown metric"),
    (["sweep", "--demo", "--top", "0"], "--top"),
    (["sweep", "--demo", "--sample", "0"], "sample"),
    (["sweep", "--demo", "--seed", "3"], "--sample"),
    (["sweep", "--demo", "--bogus"], "unrecognized arguments: --bogus"),
    (["sweep"], "--demo"),
    (["sweep", "--demo", "--data", "x.csv"], "not allowed"),
    (["sweep", "--demo", "--symbols", "NOPE"], "NOPE"),
    (["sweep", "--demo", "--param", "slow=999999"], "longer than the data"),
    (["sweep", "--demo", "--param", "fast=5,10", "--constraint", "fast <"],
     "constraint 'fast <' is not a valid expression: it ends with '<', which needs a value"),
    (["sweep", "--demo", "--constraint", "fast = slow"], "to compare, write '=='"),
    (["sweep", "--demo", "--constraint", "fast < slow && slow < 99"], "write 'and'"),
    (["sweep", "--demo", "--constraint", "fast << slow"], "'<<' is not an operator"),
    (["sweep", "--demo", "--out", "/no/such/dir/out.parquet"], "does not exist"),
    (["sweep", "--demo", "--out", "a.parquet", "--out-dir", "b"], "not allowed"),
    (["backtest", "--demo", "--param", "fast=5,10"], "one combination"),
    (["backtest", "--demo", "--max-bars", "2.5"], "max_bars"),
    (["backtest", "--demo", "--trades", "-1"], "--trades"),
    ([], "required"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    assert_one_line_error(run_cli(*args), fragment)


HUGE = str(10 ** 30)


@pytest.mark.parametrize("args, fragment", [
    (["sweep", "--demo", "--sample", "3", "--seed", "-1"], "--seed must be >= 0, got -1"),
    (["walk-forward", "--demo", "--train", "3Y", "--test", "1Y", "--sample", "3", "--seed",
      "-1"], "--seed must be >= 0, got -1"),
    (["walk-forward", "--demo", "--train", "3Y", "--test", "1Y", "--seed", "1"],
     "--seed applies to --sample only"),
    (["sweep", "--demo", "--sample", "0"], "--sample must be >= 1, got 0"),
    (["sweep", "--demo", "--sample", "-5"], "--sample must be >= 1, got -5"),
    (["walk-forward", "--demo", "--train", "3Y", "--test", "1Y", "--sample", "0"],
     "--sample must be >= 1, got 0"),
    (["sweep", "--demo", "--top", "-3"], "--top must be >= 1, got -3"),
    (["sweep", "--demo", "--threads", "0"], "--threads must be between 1 and"),
    (["sweep", "--demo", "--threads", "-2"], "--threads must be between 1 and"),
    (["sweep", "--demo", "--threads", HUGE], "--threads must be between 1 and"),
    (["backtest", "--demo", "--threads", HUGE], "--threads must be between 1 and"),
    (["walk-forward", "--demo", "--train", "3Y", "--test", "1Y", "--threads", HUGE],
     "--threads must be between 1 and"),
    (["backtest", "--demo", "--trades", "-1"], "--trades must be >= 0, got -1"),
    (["sweep", "--demo", "--out", ""], "--out: empty path"),
    (["sweep", "--demo", "--out-dir", ""], "--out-dir: empty path"),
])
def test_integer_flag_errors_name_the_flag(capsys, args, fragment):
    assert cli.main(args) == 2  # checked before any data is loaded
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sweepbt: error: "), err
    assert fragment in err, err


def test_data_directory_is_one_line_naming_the_flag(tmp_path, capsys):
    assert cli.main(["sweep", "--data", str(tmp_path), "--param", "fast=5"]) == 2
    err = capsys.readouterr().err
    assert err == (f"sweepbt: error: --data: {str(tmp_path)!r} is a directory; give one "
                   ".parquet, .feather/.arrow or .csv file\n")


def test_large_trades_count_prints_every_trade(capsys):
    status = cli.main(["backtest", "--demo", "--symbols", "ALPHA", "--param", "fast=10",
                       "--param", "slow=50", "--trades", HUGE])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    n = sb.backtest(sb.load(sb.demo(), symbol="ALPHA"), "sma_cross", fast=10,
                    slow=50).trades.num_rows
    assert f"trades ({n}):" in captured.out


def test_sys_exit_in_the_command_is_an_error_not_success(monkeypatch, capsys):
    def exits(*args, **kwargs):
        raise SystemExit(0)  # e.g. user strategy code calling sys.exit(0)

    monkeypatch.setattr(sb, "sweep", exits)
    assert cli.main(["sweep", "--demo", "--param", "fast=5,10"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "called sys.exit(0) during 'sweep'" in err[0], err


@pytest.mark.slow
@pytest.mark.parametrize("body", ["import sys\nsys.exit(0)\n", "raise SystemExit\n",
                                  "import sys\nsys.exit(3)\n"])
def test_strategy_file_that_exits_is_one_line_exit_2(tmp_path, body):
    path = tmp_path / "exits_strategy.py"
    path.write_text(body)
    proc = run_cli("sweep", "--demo", "--strategy", f"{path}:strat", "--param", "x=1")
    assert_one_line_error(proc, "exits_strategy.py")


@pytest.mark.slow
def test_walk_forward_command(tmp_path):
    out_file = tmp_path / "windows.parquet"
    proc = run_cli("walk-forward", "--demo", "--symbols", "ALPHA,BRAVO", "--train", "3Y",
                   "--test", "1Y", "--param", "fast=10,20", "--param", "slow=50,100",
                   "--stop-loss", "0.05,none", "--out", str(out_file))
    assert proc.returncode == 0, proc.stderr
    assert "chained out-of-sample equity" in proc.stdout
    assert "walk-forward efficiency" in proc.stdout
    windows = pq.read_table(out_file)
    wf = sb.walk_forward(sb.demo().select(["ALPHA", "BRAVO"]), train="3Y", test="1Y",
                         fast=[10, 20], slow=[50, 100], stop_loss=[0.05, None])
    assert windows.num_rows == wf.windows.num_rows == 18
    assert windows["fast"].to_pylist() == wf.windows["fast"].to_pylist()
    assert windows["oos_total_return"].to_pylist() == wf.windows["oos_total_return"].to_pylist()


@pytest.mark.slow
def test_walk_forward_bad_span_is_one_line():
    proc = run_cli("walk-forward", "--demo", "--train", "3X", "--test", "1Y")
    assert proc.returncode == 2
    assert proc.stderr.startswith("sweepbt: error:") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------------------
# output files: never written over without --force, never the input, written atomically

WRITERS = {  # command line writing FILE (placeholder OUT), and the flag that names it
    "sweep --out": (["sweep", "--demo", "--symbols", "ALPHA", "--param", "fast=5,10",
                     "--param", "slow=50", "--out", "OUT"], "--out"),
    "walk-forward --out": (["walk-forward", "--demo", "--symbols", "ALPHA", "--train", "5Y",
                            "--test", "5Y", "--param", "fast=10", "--param", "slow=50",
                            "--out", "OUT"], "--out"),
    "backtest --trades-out": (["backtest", "--demo", "--symbols", "ALPHA", "--trades", "0",
                               "--trades-out", "OUT"], "--trades-out"),
}


def _with_out(args, path):
    return [str(path) if a == "OUT" else a for a in args]


@pytest.mark.parametrize("writer", list(WRITERS))
def test_existing_output_file_is_refused_unless_force(tmp_path, capsys, writer):
    args, flag = WRITERS[writer]
    target = tmp_path / "existing.parquet"
    target.write_bytes(b"precious")
    assert cli.main(_with_out(args, target)) == 2
    err = capsys.readouterr().err
    assert err == (f"sweepbt: error: {flag}: {str(target)!r} already exists; pass --force to "
                   "replace it, or pick a new path\n")
    assert target.read_bytes() == b"precious"

    assert cli.main(_with_out(args, target) + ["--force"]) == 0, capsys.readouterr().err
    assert pq.read_table(target).num_rows > 0  # replaced by the complete new file
    assert os.listdir(tmp_path) == ["existing.parquet"]  # no temporary file left


@pytest.mark.parametrize("writer", list(WRITERS))
def test_output_is_never_the_input_even_with_force(tmp_path, capsys, writer):
    args, flag = WRITERS[writer]
    data = tmp_path / "prices.parquet"
    _write_prices(data)
    before = data.read_bytes()
    link = tmp_path / "link.parquet"
    link.symlink_to(data)
    args = [a for a in args if a not in ("--demo", "--symbols", "ALPHA")]
    for out, inp in ((data, data), (link, data), (data, link),
                     (tmp_path / "." / "prices.parquet", data)):
        for force in ([], ["--force"]):
            assert cli.main([args[0], "--data", str(inp)] + _with_out(args[1:], out)
                            + force) == 2
            err = capsys.readouterr().err
            assert err == (f"sweepbt: error: {flag}: {str(out)!r} is the --data input file; "
                           "an input is never written over, --force or not\n"), err
    assert data.read_bytes() == before and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["link.parquet", "prices.parquet"]


def test_strategy_file_is_never_an_output(tmp_path, capsys):
    strategy = tmp_path / "zscore.py"
    strategy.write_text(open(os.path.join(os.path.dirname(__file__), "..", "examples",
                                          "zscore.py")).read())
    before = strategy.read_bytes()
    for spec in (f"{strategy}:zscore", str(strategy)):
        assert cli.main(["sweep", "--demo", "--strategy", spec, "--out", str(strategy),
                         "--force"]) == 2
        assert "is the --strategy input file" in capsys.readouterr().err
    assert strategy.read_bytes() == before


def test_out_dir_refuses_any_existing_path_even_with_force(tmp_path, capsys):
    existing_dir, existing_file = tmp_path / "dir", tmp_path / "file"
    existing_dir.mkdir()
    existing_file.write_bytes(b"x")
    for path in (existing_dir, existing_file):
        assert cli.main(["sweep", "--demo", "--out-dir", str(path)]) == 2
        err = capsys.readouterr().err
        assert err == (f"sweepbt: error: --out-dir: {str(path)!r} already exists; results "
                       "are never written over\n")
        assert cli.main(["sweep", "--demo", "--out-dir", str(path), "--force"]) == 2
        err = capsys.readouterr().err
        assert "--force replaces files only, never a directory" in err
    assert existing_file.read_bytes() == b"x" and os.listdir(existing_dir) == []
    assert cli.main(["sweep", "--demo", "--out", str(existing_dir), "--force"]) == 2
    assert f"--out: {str(existing_dir)!r} is a directory" in capsys.readouterr().err


def test_write_atomic_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.parquet"
    target.write_bytes(b"old")

    def fails(exc):
        def write(tmp):
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise exc
        return write

    for exc in (OSError("disk full"), KeyboardInterrupt(), Terminated()):
        with pytest.raises(type(exc)):
            write_output(target, "--out", True, fails(exc))
        assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.parquet"]

    def write_new(tmp):
        with open(tmp, "wb") as f:
            f.write(b"new")

    write_output(target, "--out", True, write_new)  # --force: replaced
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["x.parquet"]
    fresh = tmp_path / "fresh.parquet"
    write_output(fresh, "--out", False, write_new)
    assert fresh.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["fresh.parquet", "x.parquet"]


@pytest.mark.parametrize("hard_links", [True, False])
def test_write_atomic_without_force_never_replaces_a_file_that_appeared(
        tmp_path, monkeypatch, hard_links):
    if not hard_links:
        def no_links(src, dst):
            raise PermissionError(1, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "late.parquet"

    def racing(tmp):  # another program creates the output while the command runs
        with open(tmp, "wb") as f:
            f.write(b"ours")
        target.write_bytes(b"theirs")

    with pytest.raises(cli.CliError, match="--out: .* was created while this command ran"):
        write_output(target, "--out", False, racing)
    assert target.read_bytes() == b"theirs" and os.listdir(tmp_path) == ["late.parquet"]
    other = tmp_path / "other.parquet"
    write_output(other, "--out", False, lambda tmp: open(tmp, "wb").close())
    assert sorted(os.listdir(tmp_path)) == ["late.parquet", "other.parquet"]


# ----------------------------------------------------------------------------------------
# signals: SIGTERM like Ctrl-C (nothing left behind), Ctrl-C during start-up

BIG_GRID = ["--param", "fast=1:100", "--param", "slow=2:101", "--stop-loss", "0.01:0.1:0.01"]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("flag", ["--out-dir", "--out"])
def test_sigterm_exits_143_and_leaves_no_output(tmp_path, flag):
    """--out leaves nothing; --out-dir keeps its finished chunks (tested with --resume in
    test_out_dir_resumes_after_sigterm) and never reads as a complete dataset."""
    out_path = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweepbt", "sweep", "--demo", *BIG_GRID, "--no-progress",
         flag, str(out_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        if flag == "--out-dir":  # wait for the sweep's folder
            while not (out_path / "_partial").is_dir():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.01)
        else:  # the rows are held in memory: terminate while the sweep runs
            assert proc.stdout.readline().startswith("data: demo")
            time.sleep(0.5)
        if proc.poll() is not None:
            _, err = proc.communicate()
            assert proc.returncode == 0, err
            pytest.skip("the sweep finished before it could be terminated")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "sweepbt: terminated"
    assert "Traceback" not in err
    if flag == "--out" or not os.path.exists(out_path):  # no part was finished yet
        assert os.listdir(tmp_path) == []  # no output, no .partial directory or file
    else:
        assert sorted(os.listdir(out_path)) == ["_manifest.json", "_partial"]
        assert f"kept in {out_path}; run the same command with --resume" in err


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_out_dir_resumes_after_sigterm(tmp_path):
    """9,000 combos on 2 assets: two chunks; SIGTERM once the first is written, then
    --resume runs the other, and the dataset equals an uninterrupted run's."""
    out_path = tmp_path / "results"
    grid = ["--symbols", "ALPHA,BRAVO", "--param", "fast=2:91", "--param", "slow=10:109",
            "--no-progress"]
    command = [sys.executable, "-m", "sweepbt", "sweep", "--demo", *grid, "--out-dir",
               str(out_path)]
    status, err = stop_when(command, lambda: finished_parts(out_path / "_partial"),
                            signal.SIGTERM)
    assert status == 143, err
    assert "run the same command with --resume to continue" in err
    first = run_cli("sweep", "--demo", *grid, "--out-dir", str(out_path))
    assert first.returncode == 2
    assert "--resume continues the sweep it holds" in first.stderr
    resumed = run_cli("sweep", "--demo", *grid, "--out-dir", str(out_path), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"wrote 18,000 rows to {out_path} (Parquet dataset)" in resumed.stdout
    table = pq.read_table(out_path)
    whole = sb.sweep(sb.load(sb.demo(), symbol=["ALPHA", "BRAVO"]), "sma_cross",
                     fast=list(range(2, 92)), slow=list(range(10, 110)))
    assert table.num_rows == 18_000
    for name in table.column_names:
        np.testing.assert_array_equal(table[name].to_numpy(zero_copy_only=False),
                                      whole.table[name].to_numpy(zero_copy_only=False))
    other = run_cli("sweep", "--demo", "--symbols", "ALPHA,BRAVO", "--param", "fast=2:90",
                    "--param", "slow=10:109", "--out-dir", str(out_path), "--resume")
    assert other.returncode == 2 and "the grid differs (values.fast:" in other.stderr
    assert "--resume continues an --out-dir folder" in run_cli(
        "sweep", "--demo", "--resume").stderr


def test_sigterm_handler_is_installed_and_restored():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with CommandGuard() as guard:
        assert signal.getsignal(signal.SIGTERM) == guard._on_sigterm
        with pytest.raises(Terminated):
            guard._on_sigterm(signal.SIGTERM, None)
        guard._on_sigterm(signal.SIGTERM, None)  # a second SIGTERM does not cut cleanup short
        assert guard.terminated and guard.seen
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_sigterm_waits_where_ctrl_c_is_held():
    held = []
    with CommandGuard() as guard:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
        try:  # e.g. sweep() holding Ctrl-C until its running chunk is done
            guard._on_sigterm(signal.SIGTERM, None)  # no exception here: held like Ctrl-C
        finally:
            signal.signal(signal.SIGINT, previous)
        assert held == [signal.SIGINT] and guard.terminated


def test_terminated_in_process_returns_143(monkeypatch, capsys):
    def terminated(*args, **kwargs):
        CommandGuard.active._on_sigterm(signal.SIGTERM, None)

    monkeypatch.setattr(sb, "sweep", terminated)
    assert cli.main(["sweep", "--demo", "--param", "fast=5,10"]) == 143
    assert capsys.readouterr().err.splitlines()[-1] == "sweepbt: terminated"


def test_interrupt_turned_into_another_exception_is_still_an_interrupt(monkeypatch, capsys):
    def import_fails(*args, **kwargs):  # Ctrl-C inside numpy's C import: an ImportError
        CommandGuard.active.seen = True
        raise ImportError('PyCapsule_Import could not import module "datetime"')

    monkeypatch.setattr(sb, "sweep", import_fails)
    assert cli.main(["sweep", "--demo", "--param", "fast=5,10"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "sweepbt: interrupted"


def _landed_before_sweepbt(err):
    """Whether the signal hit the interpreter's own start-up (site, runpy), before any of
    sweepbt's code ran: no program can catch that one."""
    return not re.search(r'File "[^"]*[/\\]sweepbt[/\\]', err)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("delay", [0.05, 0.1, 0.15, 0.2, 0.3])
def test_ctrl_c_during_start_up_exits_130_without_traceback(delay):
    for attempt in range(4):  # later, if the signal landed before any sweepbt code ran
        proc = subprocess.Popen([sys.executable, "-m", "sweepbt", "sweep", "--demo"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=os.environ.copy())
        try:
            time.sleep(delay + 0.05 * attempt)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode == 130 and "Traceback" not in err:
            break
        if not _landed_before_sweepbt(err):
            break
    else:
        pytest.skip("every signal landed in the interpreter's own start-up")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "sweepbt: interrupted"


@pytest.mark.parametrize("argv, flag", [
    (["backtest", "--demo", "--strategy", "sma_cross", "--strategy", "ema_cross"],
     "--strategy"),
    (["walk-forward", "--demo", "--strategy", "sma_cross", "--strategy", "ema_cross"],
     "--strategy"),
    (["backtest", "--demo", "--stop-loss", "0.05", "--stop-loss", "0.1"], "--stop-loss"),
    (["sweep", "--data", "a.csv", "--tz", "UTC", "--tz", "Asia/Tokyo"], "--tz"),
])
def test_flag_given_twice_is_an_error(argv, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"sweepbt: error: {flag} given twice (" in err and "give it once" in err


def test_negative_zero_is_printed_without_a_sign():
    assert cli.format_value("sharpe", -0.001) == "0.00"
    assert cli.format_value("total_return", -1e-7) == "0.00%"
    assert cli.format_value("n_trades", -0.01) == "0.0"
    assert cli.format_value("sharpe", -0.5) == "-0.50"
    assert cli.format_value("sharpe", None) == "-"
    assert cli.format_value("sharpe", float("-inf")) == "-inf"
