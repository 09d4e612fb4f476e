"""Resumable out= sweeps (sweepbt._outdir, docs/distributed.md): a stopped sweep keeps its
finished chunks in <out>/_partial/, a resume runs only the missing chunks, and the result
equals an uninterrupted run's exactly; a folder of another sweep is refused."""

import json
import os
import signal
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
from sweepbt import _plan as plan_module
from sweepbt._sinks import SharpeMoments
from helpers import STRATEGY_FILE, StopAfter, assert_same_rows, finished_parts, stop_when

GRID = dict(fast=[3, 5, 8], slow=[10, 20, 30], stop_loss=[None, 0.03, 0.06],
            fees=[0.0, 0.001])


@pytest.fixture(scope="module")
def data(demo):
    return demo


@pytest.fixture
def small_chunks(data, monkeypatch):
    """3 combos per chunk (10 assets): the grid above is cut into 18 chunks."""
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 4 * data.n_bars * 7)


def _interrupted(monkeypatch, data, path, k, **kwargs):
    """Run a sweep into ``path`` stopped by Ctrl-C after ``k`` chunks; the message."""
    from sweepbt import _engine as engine

    monkeypatch.setattr(engine, "SharpeMoments", lambda n: StopAfter(n, k))
    with pytest.raises(KeyboardInterrupt) as stopped:
        sb.sweep(data, "sma_cross", out=path, **kwargs, **GRID)
    monkeypatch.setattr(engine, "SharpeMoments", SharpeMoments)
    return str(stopped.value)


def _parts(path):
    return finished_parts(os.path.join(path, "_partial"))


def test_stopped_sweep_keeps_its_chunks_and_resumes_to_the_same_result(
        data, tmp_path, small_chunks, monkeypatch):
    whole = sb.sweep(data, "sma_cross", out=tmp_path / "whole", top=5, **GRID)
    path = tmp_path / "stopped"
    message = _interrupted(monkeypatch, data, path, 4, top=5)
    assert f"4 finished chunks are kept in {str(path)!r}" in message
    assert "resume=True" in message and "--resume" in message
    assert sorted(os.listdir(path)) == ["_manifest.json", "_partial"]
    assert len(_parts(path)) == 4
    assert pq.read_table(path).num_rows == 0  # an unfinished folder never reads as a result

    with pytest.raises(FileExistsError, match="pass resume=True"):
        sb.sweep(data, "sma_cross", out=path, top=5, **GRID)
    res = sb.sweep(data, "sma_cross", out=path, top=5, resume=True, **GRID)
    assert res.path == os.fspath(path) and not os.path.exists(path / "_partial")
    assert_same_rows(pq.read_table(path), pq.read_table(whole.path))
    assert res.n_combos == whole.n_combos == 54
    assert_same_rows(res.best(), whole.best())
    assert res.sharpe_moments == whole.sharpe_moments
    assert res.deflated_sharpe().dsr == whole.deflated_sharpe().dsr
    manifest = json.loads((path / "_manifest.json").read_text())
    assert manifest["complete"] and manifest["chunking"]["chunk_size"] == 3


def test_resume_twice_and_a_finished_folder_returns_at_once(data, tmp_path, small_chunks,
                                                            monkeypatch):
    path = tmp_path / "rows"
    _interrupted(monkeypatch, data, path, 2, constraint="fast * 3 < slow")
    # the sink sees the 2 kept chunks again (read back), then 2 new ones
    _interrupted(monkeypatch, data, path, 4, resume=True, constraint="fast * 3 < slow")
    assert len(_parts(path)) == 4
    res = sb.sweep(data, "sma_cross", out=path, resume=True, constraint="fast * 3 < slow",
                   **GRID)
    whole = sb.sweep(data, "sma_cross", constraint="fast * 3 < slow", **GRID)
    assert_same_rows(res.table, whole.table)
    assert res.sharpe_moments == whole.sharpe_moments
    stamps = {p: os.stat(path / p).st_mtime_ns for p in os.listdir(path)}
    again = sb.sweep(data, "sma_cross", out=path, resume=True, constraint="fast * 3 < slow",
                     top=3, **GRID)
    assert {p: os.stat(path / p).st_mtime_ns for p in os.listdir(path)} == stamps
    assert again.n_combos == whole.n_combos
    assert_same_rows(again.best(k=3), whole.best(k=3))


def test_a_portfolio_sweep_resumes_to_the_same_rows(data, tmp_path, small_chunks,
                                                    monkeypatch):
    path = tmp_path / "rows"
    _interrupted(monkeypatch, data, path, 2, portfolio=True, top=3)
    with pytest.raises(ValueError, match="the fixed options differ"):
        sb.sweep(data, "sma_cross", out=path, resume=True, **GRID)  # portfolio=False
    res = sb.sweep(data, "sma_cross", out=path, resume=True, portfolio=True, top=3, **GRID)
    whole = sb.sweep(data, "sma_cross", portfolio=True, **GRID)
    assert_same_rows(pq.read_table(path), whole.table)
    assert_same_rows(res.best(k=3), whole.best(k=3))
    assert res.sharpe_moments == whole.sharpe_moments


def test_resume_of_a_sample_needs_its_seed_and_draws_the_same_combos(
        data, tmp_path, small_chunks, monkeypatch):
    with pytest.raises(ValueError, match="needs seed="):
        sb.sweep(data, "sma_cross", out=tmp_path / "a", resume=True, sample=20, **GRID)
    path = tmp_path / "sample"
    _interrupted(monkeypatch, data, path, 1, sample=20, seed=3)
    res = sb.sweep(data, "sma_cross", out=path, resume=True, sample=20, seed=3, **GRID)
    whole = sb.sweep(data, "sma_cross", sample=20, seed=3, **GRID)
    assert_same_rows(res.table, whole.table)


def test_a_folder_of_another_sweep_is_refused_saying_what_differs(
        data, tmp_path, small_chunks, monkeypatch):
    path = tmp_path / "rows"
    _interrupted(monkeypatch, data, path, 0, fill="close")  # the folder, no part yet
    assert not os.path.exists(path)  # a folder this call made, with no part: removed
    _interrupted(monkeypatch, data, path, 1, fill="close")
    cases = [
        (dict(fill="close", data=sb.load(data, symbol=list(data.symbols[:3]))),
         r"the data differ \(fingerprint: .*n_assets: 10 in the folder, 3 now"),
        (dict(fill="close", fees=[0.0, 0.002]),
         r"the grid differs \(values.fees: \[0.0, 0.001\] in the folder, \[0.0, 0.002\] now"),
        (dict(fill="next_open"), r"the fixed options differ \(fill: \"close\" in the folder, "
                                 r"\"next_open\" now\)"),
    ]
    for change, message in cases:
        kwargs = {**GRID, **change}
        with pytest.raises(ValueError, match=f"cannot resume out=.*another sweep: {message}"):
            sb.sweep(kwargs.pop("data", data), "sma_cross", out=path, resume=True, **kwargs)
    with pytest.raises(ValueError, match="resume=True continues an out= folder"):
        sb.sweep(data, "sma_cross", resume=True, **GRID)
    (tmp_path / "other").mkdir()
    with pytest.raises(FileExistsError, match="not a sweepbt sweep folder"):
        sb.sweep(data, "sma_cross", out=tmp_path / "other", resume=True, **GRID)


def test_an_edited_strategy_file_is_refused(data, tmp_path, monkeypatch):
    strategy = tmp_path / "mom_resume.py"
    strategy.write_text(STRATEGY_FILE.format(threshold=0.02))
    path = tmp_path / "rows"
    spec = f"{strategy}:momentum"
    from sweepbt import _engine as engine

    monkeypatch.setattr(engine, "SharpeMoments", lambda n: StopAfter(n, 1))
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 4 * data.n_bars)
    with pytest.raises(KeyboardInterrupt):
        sb.sweep(data, spec, out=path, w=[5, 10, 20])
    monkeypatch.setattr(engine, "SharpeMoments", SharpeMoments)
    strategy.write_text(STRATEGY_FILE.format(threshold=0.03))
    with pytest.raises(ValueError, match=r"the strategy differs \(source_sha256: "):
        sb.sweep(data, spec, out=path, resume=True, w=[5, 10, 20])
    strategy.write_text(STRATEGY_FILE.format(threshold=0.02))  # as it was: resumes
    res = sb.sweep(data, spec, out=path, resume=True, w=[5, 10, 20])
    whole = sb.sweep(data, spec, w=[5, 10, 20])
    assert_same_rows(res.table, whole.table)


SWEEP_SCRIPT = """
import sys
import sweepbt as sb
from sweepbt import _plan as plan
plan.CHUNK_BAR_EVALUATIONS = 1  # one combo per chunk: many chunks
sb.sweep(sb.demo(), "sma_cross", out=sys.argv[1], fast=list(range(2, 42)),
         slow=[50, 100, 150], stop_loss=[None, 0.05])
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_another_process_then_resume_equals_an_uninterrupted_run(data, tmp_path,
                                                                         monkeypatch):
    path = tmp_path / "rows"
    status, err = stop_when([sys.executable, "-c", textwrap.dedent(SWEEP_SCRIPT), str(path)],
                            lambda: len(finished_parts(path / "_partial")) >= 3,
                            signal.SIGINT)
    assert status != 0 and "KeyboardInterrupt: sweep interrupted after" in err
    assert "resume=True" in err
    kept = _parts(path)
    assert 3 <= len(kept) < 240
    res = sb.sweep(data, "sma_cross", out=path, resume=True, fast=list(range(2, 42)),
                   slow=[50, 100, 150], stop_loss=[None, 0.05])
    # chunked alike (the deflated Sharpe's moments are merged chunk by chunk)
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 1)
    whole = sb.sweep(data, "sma_cross", fast=list(range(2, 42)), slow=[50, 100, 150],
                     stop_loss=[None, 0.05])
    table = pq.read_table(path)
    assert_same_rows(table, whole.table)
    assert np.array_equal(np.unique(table["combo"].to_numpy()), np.arange(240))
    assert res.sharpe_moments == whole.sharpe_moments


def test_throughput_counts_only_the_backtests_computed_now(data, tmp_path, small_chunks,
                                                           capsys):
    """A resume reads finished chunks back: they are rows, not work done by this call, so
    they count in n_backtests and never in bar_evaluations or throughput."""
    from sweepbt.cli import main

    out = tmp_path / "sweep"
    first = sb.sweep(data, "sma_cross", out=out, **GRID)
    assert first.bar_evaluations > 0
    again = sb.sweep(data, "sma_cross", out=out, resume=True, **GRID)
    assert again.n_backtests == first.n_backtests and again.bar_evaluations == 0
    folder = tmp_path / "cli"
    args = ["sweep", "--demo", "--param", "fast=3,5,8", "--param", "slow=10,20,30",
            "--out-dir", str(folder)]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    summary = next(x for x in capsys.readouterr().out.splitlines() if "backtests (" in x)
    assert " 0 bar-evaluations in " in summary, summary
    assert summary.endswith(": every row was read back from the folder"), summary
