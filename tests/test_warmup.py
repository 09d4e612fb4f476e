"""A first run that explains itself: the "compiling kernels" line, the compile time reported
apart from the run, and ``sb.warmup()`` / ``sweepbt warmup`` compiling everything ahead.

One test compiles on a cold cache (a fresh ``NUMBA_CACHE_DIR`` in a subprocess: about a
minute of CPU); the others use the session's cache, so after ``sb.warmup()`` nothing
compiles.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import numba
import numpy as np
import pytest

import sweepbt as sb
from sweepbt import _compiling
from sweepbt.cli import main
from sweepbt._engines import engine_for


def test_warmup_then_no_run_compiles(capsys):
    done = sb.warmup()
    assert isinstance(done, sb.Warmup) and done.seconds > 0
    assert done.compile_seconds <= done.seconds
    assert len(done.runs) == 20  # 8 signal strategies x (per asset, portfolio) + 4 rank
    assert {"sma_cross", "sma_cross (portfolio)", "momentum_rank", "factor_rank"} <= set(
        done.runs)
    again = sb.warmup()
    assert (again.compiled, again.compile_seconds) == ((), 0.0)
    assert str(again).startswith("every kernel was already compiled or cached: 20 warm-up")
    for name in ("sweep_metrics", "portfolio_metrics", "rank_metrics", "rank_record",
                 "equity_paths", "portfolio_equity_paths", "rank_equity_paths"):
        assert _compiling.ready(name), name
    data = sb.demo()
    capsys.readouterr()  # a warm-up that compiled said so
    runs = [sb.sweep(data, "ema_cross", fast=[5, 10], slow=[30, 60], progress=True),
            sb.sweep(data, "sma_cross", fast=[5, 10], slow=50, portfolio=True, size=0.1,
                     progress=True),
            sb.sweep(data, "momentum_rank", lookback=[63, 126], top_n=3, progress=True)]
    for res in runs:
        assert res.compile_seconds == 0.0
        assert res.elapsed > 0 and res.throughput == res.bar_evaluations / res.elapsed
    assert "compiling" not in capsys.readouterr().err  # nothing compiled: no line


def test_cli_warmup(capsys):
    assert main(["warmup"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("warming up: every built-in strategy, per asset, portfolio "
                               "and rank; numba cache: ")
    assert lines[1:-1] == [f"  {label}" for label in sb.warmup().runs]
    assert re.fullmatch(r"every kernel was already compiled or cached: 20 warm-up runs in "
                        r"[\d.]+ s", lines[-1]), lines[-1]


def test_watch_measures_and_announces_once():
    """A fresh jitted function compiles in any process: the watch sees it."""
    told = []

    @numba.njit
    def twice(x):
        return 2 * x

    with _compiling.watch(("sweep_metrics",), told.append) as outer:
        with _compiling.watch((), lambda s: told.append(("inner", s))) as inner:
            assert twice(np.int64(3)) == 6
        assert twice(np.int64(4)) == 8  # compiled already: no event
    # sweep_metrics is cached: the estimate is the small kernels' scaled to this machine
    assert len(told) == 1 and told[0] >= 0.5 * _compiling.SMALL_SECONDS
    assert outer.compiled == inner.compiled == [
        f"{__name__}.test_watch_measures_and_announces_once.<locals>.twice"]
    assert outer.seconds == inner.seconds > 0
    assert _compiling.message(41.4) == "compiling kernels (first run only, about 41 s)"
    assert engine_for(True, False).kernel_names(("metrics", "record")) == (
        "rank_metrics", "rank_record")
    assert engine_for(False, True).kernel_names() == ("portfolio_metrics",)


@pytest.mark.slow
def test_first_run_on_a_cold_cache_says_it_compiles(tmp_path):
    """The one cold compile of the suite: a fresh NUMBA_CACHE_DIR, a small CLI sweep."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    proc = subprocess.run(
        [sys.executable, "-m", "sweepbt", "sweep", "--demo", "--symbols", "ALPHA,BRAVO",
         "--param", "fast=5,10", "--param", "slow=50", "--fees", "0.001"],
        capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("compiling"))
    estimate = re.fullmatch(r"compiling kernels \(first run only, about (\d+) s\)", line)
    quiet = _compiling.COLD_SECONDS["sweep_metrics"] + _compiling.SMALL_SECONDS
    assert estimate and int(estimate.group(1)) >= 0.5 * quiet - 1  # scaled to this machine
    summary = next(x for x in proc.stdout.splitlines() if "bar-evaluations in" in x)
    m = re.search(r"in ([\d.]+) s \(\+ (\d+) s compiling, first run only\): ", summary)
    assert m, summary
    assert int(m.group(2)) >= 1


def test_sweep_with_progress_says_it_compiles(tmp_path, capsys, monkeypatch):
    """A user strategy from a new file compiles (its functions and drivers, a few seconds):
    a sweep drawing progress says so on stderr and reports the time apart."""
    monkeypatch.setenv("SWEEPBT_CACHE_DIR", str(tmp_path / "generated"))
    source = (pathlib.Path(__file__).parent.parent / "examples" / "zscore.py").read_text()
    path = tmp_path / "zscore_fresh.py"
    path.write_text(source + f"\n# {tmp_path.name}: a new file, a new compile\n")
    zscore = sb.load_strategy(f"{path}:zscore")
    capsys.readouterr()
    data = sb.demo()
    res = sb.sweep(data, zscore, lookback=[10, 20], entry_z=1.0, progress=True)
    err = capsys.readouterr().err
    assert re.search(r"^compiling kernels \(first run only, about \d+ s\)$", err, re.M), err
    assert res.compile_seconds > 0 and res.elapsed > 0
    quiet = sb.sweep(data, zscore, lookback=[10, 20], entry_z=1.0, progress=False)
    assert quiet.compile_seconds == 0.0  # compiled in this process now
    np.testing.assert_array_equal(quiet.metrics, res.metrics)


def test_the_estimate_scales_with_the_machine(monkeypatch):
    assert _compiling.machine_factor() >= 0.5
    cold = ("rank_metrics", "not_a_kernel")  # a name that is never ready counts as small
    monkeypatch.setattr(_compiling, "ready", lambda name: False)
    monkeypatch.setattr(_compiling, "machine_factor", lambda: 3.0)
    assert _compiling.estimate(cold) == 3.0 * (_compiling.COLD_SECONDS["rank_metrics"]
                                               + 2 * _compiling.SMALL_SECONDS)


def _fresh_strategy(tmp_path, monkeypatch, tag):
    monkeypatch.setenv("SWEEPBT_CACHE_DIR", str(tmp_path / "generated"))
    source = (pathlib.Path(__file__).parent.parent / "examples" / "zscore.py").read_text()
    path = tmp_path / f"zscore_{tag}.py"
    path.write_text(source + f"\n# {tmp_path.name}: a new file, a new compile\n")
    return sb.load_strategy(f"{path}:zscore")


def test_every_first_call_from_python_says_it_compiles(tmp_path, capsys, monkeypatch):
    """sb.sweep without a progress bar and sb.backtest say so too, once per call."""
    line = re.compile(r"^compiling kernels \(first run only, about \d+ s\)$", re.M)
    data = sb.demo().select(["ALPHA", "BRAVO"])
    capsys.readouterr()
    res = sb.sweep(data, _fresh_strategy(tmp_path, monkeypatch, "sweep"), lookback=[10, 20],
                   entry_z=1.0, progress=False)
    assert len(line.findall(capsys.readouterr().err)) == 1 and res.compile_seconds > 0
    bt = sb.backtest(data, _fresh_strategy(tmp_path, monkeypatch, "backtest"), lookback=10,
                     entry_z=1.0)
    assert len(line.findall(capsys.readouterr().err)) == 1 and bt.stats.num_rows == 2
    sb.backtest(data, _fresh_strategy(tmp_path, monkeypatch, "backtest"), lookback=10,
                entry_z=1.0)
    assert "compiling" not in capsys.readouterr().err  # compiled in this process now


def test_warmup_of_one_mode(capsys):
    rank = sb.warmup(mode="rank")
    assert rank.runs == ("momentum_rank", "reversal_rank", "factor_rank",
                         "low_volatility_rank")
    both = sb.warmup(mode=["portfolio", "asset"])
    assert len(both.runs) == 16 and both.runs[:2] == ("sma_cross", "sma_cross (portfolio)")
    for bad in ("assets", [], ["rank", "gpu"]):
        with pytest.raises(ValueError, match="mode must be one or more of asset, portfolio, "
                                             "rank"):
            sb.warmup(mode=bad)
    assert main(["warmup", "--mode", "rank"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("warming up: every built-in strategy, rank; numba cache: ")
    assert lines[1:-1] == [f"  {label}" for label in rank.runs]
