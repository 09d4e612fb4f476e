"""Resumable walk-forwards (``out=``, docs/walk-forward.md): a stopped walk-forward keeps
each finished chunk's best combo per training window in <out>/_training/, a resume runs
only the chunks it lacks, and the result equals an uninterrupted run's exactly; a folder of
another walk-forward, or of a sweep, is refused."""

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
from sweepbt import _plan as plan_module
from sweepbt._training import TrainWindows
from helpers import assert_same_rows, assert_same_walk_forward, finished_parts, stop_when

GRID = dict(fast=[3, 5, 8], slow=[10, 20, 30], stop_loss=[None, 0.05])
WINDOWS = dict(train=504, test=252)


@pytest.fixture(scope="module")
def data(demo):
    return demo


@pytest.fixture
def small_chunks(data, monkeypatch):
    """2 combos per chunk: the 18 combos of GRID are cut into 9 chunks."""
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 2 * data.n_assets * 504)


@pytest.fixture
def chunk_calls(monkeypatch):
    """Counts TrainWindows.run_chunk calls; ``calls.stop_after = k`` makes the call after
    the k-th raise KeyboardInterrupt (a Ctrl-C between chunks)."""
    calls = type("Calls", (), {"n": 0, "stop_after": None})()
    run_chunk = TrainWindows.run_chunk

    def counted(self, ids):
        if calls.stop_after is not None and calls.n == calls.stop_after:
            raise KeyboardInterrupt
        calls.n += 1
        return run_chunk(self, ids)

    monkeypatch.setattr(TrainWindows, "run_chunk", counted)
    return calls


def test_stopped_walk_forward_keeps_its_chunks_and_resumes_to_the_same_result(
        data, tmp_path, small_chunks, chunk_calls):
    whole = sb.walk_forward(data, "sma_cross", **WINDOWS, **GRID)
    assert chunk_calls.n == 9 and whole.path is None
    path = tmp_path / "wf"
    chunk_calls.n, chunk_calls.stop_after = 0, 4
    with pytest.raises(KeyboardInterrupt) as stopped:
        sb.walk_forward(data, "sma_cross", out=path, **WINDOWS, **GRID)
    message = str(stopped.value)
    assert message.startswith("walk-forward interrupted after ")
    assert f"4 finished chunks are kept in {str(path)!r}: run the same walk-forward with " \
           "resume=True (CLI: --resume)" in message
    assert sorted(os.listdir(path)) == ["_manifest.json", "_training"]
    assert len(finished_parts(path / "_training")) == 4

    with pytest.raises(FileExistsError, match="continue the walk-forward it holds"):
        sb.walk_forward(data, "sma_cross", out=path, **WINDOWS, **GRID)
    chunk_calls.n, chunk_calls.stop_after = 0, None
    res = sb.walk_forward(data, "sma_cross", out=path, resume=True, **WINDOWS, **GRID)
    assert chunk_calls.n == 5  # only the chunks without a part
    assert res.path == os.fspath(path)
    assert_same_walk_forward(res, whole)
    assert sorted(os.listdir(path)) == ["_manifest.json", "_training", "equity.parquet",
                                        "stats.parquet", "windows.parquet"]
    assert_same_rows(pq.read_table(path / "windows.parquet"), whole.windows)
    assert_same_rows(pq.read_table(path / "stats.parquet"), whole.stats)
    equity = pq.read_table(path / "equity.parquet")
    assert equity.column_names == ["timestamp", "symbol", "equity", "drawdown"]
    assert equity.num_rows == int(np.sum(~np.isnan(whole.equity)))
    manifest = json.loads((path / "_manifest.json").read_text())
    assert manifest["kind"] == "walk-forward" and manifest["complete"]
    assert manifest["windows"]["objective"] is None  # a metric: named in the options
    assert manifest["options"]["objective"] == "sharpe"
    assert len(manifest["windows"]["train_spans"]) == whole.n_windows

    chunk_calls.n = 0  # a finished folder: nothing runs, the same result again
    again = sb.walk_forward(data, "sma_cross", out=path, resume=True, **WINDOWS, **GRID)
    assert chunk_calls.n == 0
    assert_same_walk_forward(again, whole)


def test_a_sampled_portfolio_walk_forward_resumes_to_the_same_result(
        data, tmp_path, small_chunks, chunk_calls):
    options = dict(portfolio=True, sample=10, seed=3, objective="sortino", **WINDOWS)
    whole = sb.walk_forward(data, "sma_cross", **options, **GRID)
    path = tmp_path / "wf"
    chunk_calls.n, chunk_calls.stop_after = 0, 2
    with pytest.raises(KeyboardInterrupt):
        sb.walk_forward(data, "sma_cross", out=path, **options, **GRID)
    chunk_calls.n, chunk_calls.stop_after = 0, None
    res = sb.walk_forward(data, "sma_cross", out=path, resume=True, **options, **GRID)
    assert chunk_calls.n == 3
    assert_same_walk_forward(res, whole)
    assert pq.read_table(path / "equity.parquet").column_names == [
        "timestamp", "equity", "drawdown"]


def by_return(m):
    """A callable objective: mean total return."""
    return m["total_return"]


def penalized(k):
    """A callable objective with a closure: Sharpe less ``k`` x max drawdown."""
    def objective(m):
        return m["sharpe"] - k * m["max_drawdown"]
    return objective


class Penalty:
    """A callable objective object."""

    def __init__(self, k):
        self.k = k

    def __call__(self, m):
        return m["sharpe"] - self.k * m["max_drawdown"]


SAME_NAME = r"it holds another walk-forward: the windows or the objective differ \("


@pytest.mark.parametrize("made, edited, differs", [
    (by_return, lambda m: m["total_return"],
     r"the fixed options differ \(objective: \"by_return\" in the folder, \"<lambda>\" "
     r"now\); the windows or the objective differ \("),
    (penalized(0.0), penalized(5.0), SAME_NAME),
    (functools.partial(lambda m, k: m["sharpe"] - k, k=0.0),
     functools.partial(lambda m, k: m["sharpe"] - k, k=1.0), SAME_NAME),
    (Penalty(0.0), Penalty(5.0), SAME_NAME),
], ids=["another function", "closure", "partial", "object"])
def test_a_callable_objective_resumes_and_an_edited_one_is_refused(
        data, tmp_path, small_chunks, chunk_calls, made, edited, differs):
    path = tmp_path / "wf"
    chunk_calls.stop_after = 2
    with pytest.raises(KeyboardInterrupt):
        sb.walk_forward(data, "sma_cross", out=path, objective=made, **WINDOWS, **GRID)
    chunk_calls.stop_after = None
    with pytest.raises(ValueError, match=differs + r"objective\.sha256: "):
        sb.walk_forward(data, "sma_cross", out=path, resume=True, objective=edited,
                        **WINDOWS, **GRID)
    res = sb.walk_forward(data, "sma_cross", out=path, resume=True, objective=made,
                          **WINDOWS, **GRID)
    assert_same_walk_forward(res, sb.walk_forward(data, "sma_cross", objective=made,
                                                  **WINDOWS, **GRID))


def test_an_objective_without_readable_source_cannot_use_out(data, tmp_path):
    typed = eval("lambda m: m['sharpe']")  # as at an interactive prompt: no source file
    with pytest.raises(ValueError, match=r"out= needs an objective it can identify on "
                                         r"resume, and <function <lambda> at .*> cannot be: "
                                         r".*Define it in a file, or use a metric name"):
        sb.walk_forward(data, "sma_cross", out=tmp_path / "wf", objective=typed,
                        **WINDOWS, **GRID)
    assert not (tmp_path / "wf").exists()
    sb.walk_forward(data, "sma_cross", objective=typed, **WINDOWS, **GRID)  # no out=: fine


def test_a_folder_of_another_run_is_refused_saying_what_differs(
        data, tmp_path, small_chunks, chunk_calls):
    path = tmp_path / "wf"
    chunk_calls.stop_after = 1
    with pytest.raises(KeyboardInterrupt):
        sb.walk_forward(data, "sma_cross", out=path, **WINDOWS, **GRID)
    chunk_calls.stop_after = None
    with pytest.raises(ValueError, match=r"it holds another walk-forward: the fixed options "
                                         r"differ \(step: 252 in the folder, 126 now; test: "
                                         r"252 in the folder, 126 now\); the windows"):
        sb.walk_forward(data, "sma_cross", out=path, resume=True, train=504, test=126,
                        **GRID)
    with pytest.raises(ValueError, match=r"objective: \"sharpe\" in the folder, \"calmar\""):
        sb.walk_forward(data, "sma_cross", out=path, resume=True, objective="calmar",
                        **WINDOWS, **GRID)
    with pytest.raises(ValueError, match="the grid differs"):
        sb.walk_forward(data, "sma_cross", out=path, resume=True, **WINDOWS,
                        **{**GRID, "fast": [3, 5]})
    with pytest.raises(ValueError, match=f"cannot resume out={str(path)!r} as a sweep: it "
                                         "holds a walk-forward"):
        sb.sweep(data, "sma_cross", out=path, resume=True, **GRID)
    swept = tmp_path / "sweep"
    sb.sweep(data, "sma_cross", out=swept, **GRID)
    with pytest.raises(ValueError, match="as a walk-forward: it holds a sweep"):
        sb.walk_forward(data, "sma_cross", out=swept, resume=True, **WINDOWS, **GRID)
    with pytest.raises(ValueError, match="resume=True continues an out= folder"):
        sb.walk_forward(data, "sma_cross", resume=True, **WINDOWS, **GRID)
    with pytest.raises(ValueError, match=r"fixed options differ \(partial: false in the "
                                         r"folder, true now\)"):
        sb.walk_forward(data, "sma_cross", out=path, resume=True, partial=True, **WINDOWS,
                        **GRID)
    with pytest.raises(ValueError, match=r"resume=True with sample= needs seed= \(the same "
                                         r"combos must be drawn again\)"):
        sb.walk_forward(data, "sma_cross", out=path, resume=True, sample=5, **WINDOWS,
                        **GRID)


WALK_FORWARD_SCRIPT = """
import sys
from sweepbt import _plan as plan
from sweepbt.cli import main
plan.CHUNK_BAR_EVALUATIONS = 1  # one combo per chunk: many chunks
sys.exit(main(["walk-forward", "--demo", "--train", "504", "--test", "252",
               "--param", "fast=2:41", "--param", "slow=50,100,150",
               "--stop-loss", "none,0.05", "--out-dir", sys.argv[1]] + sys.argv[2:]))
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_of_the_command_then_resume_equals_an_uninterrupted_run(data, tmp_path):
    path = tmp_path / "wf"
    command = [sys.executable, "-c", textwrap.dedent(WALK_FORWARD_SCRIPT), str(path)]
    status, err = stop_when(command, lambda: len(finished_parts(path / "_training")) >= 3,
                            signal.SIGINT)
    assert status == 130, err
    assert f"the finished chunks are kept in {path}; run the same command with --resume" \
        in err
    kept = finished_parts(path / "_training")
    assert 3 <= len(kept) < 240
    again = subprocess.run(command + ["--resume"], capture_output=True, text=True,
                           env=os.environ.copy())
    assert again.returncode == 0, again.stderr
    assert f"wrote the training parts and the result's tables to {path}" in again.stdout
    whole = sb.walk_forward(data, "sma_cross", fast=list(range(2, 42)), slow=[50, 100, 150],
                            stop_loss=[None, 0.05], **WINDOWS)
    assert_same_rows(pq.read_table(path / "windows.parquet"), whole.windows)
    assert_same_rows(pq.read_table(path / "stats.parquet"), whole.stats)
    assert len(finished_parts(path / "_training")) == 240


def test_cli_resume_needs_out_dir_and_out_dir_must_be_new(tmp_path, capsys):
    from sweepbt import cli

    base = ["walk-forward", "--demo", "--train", "504", "--test", "252"]
    assert cli.main(base + ["--resume"]) == 2
    assert "--resume continues an --out-dir folder; give --out-dir DIR" in \
        capsys.readouterr().err
    path = tmp_path / "wf"
    path.mkdir()
    (path / "_manifest.json").write_text(json.dumps({"kind": "walk-forward"}))
    assert cli.main(base + ["--out-dir", str(path)]) == 2
    assert "--resume continues the walk-forward it holds" in capsys.readouterr().err


def test_progress_counts_the_training_backtests_of_every_window(data, small_chunks,
                                                                 monkeypatch):
    from sweepbt import _executors as executors

    bars = []

    class Recorder:
        def __init__(self, total):
            self.total, self.seen, self.closed = total, [], False
            bars.append(self)

        def update(self, done):
            self.seen.append(done)

        def close(self):
            self.closed = True

    monkeypatch.setattr(executors, "ProgressBar", Recorder)
    wf = sb.walk_forward(data, "sma_cross", **WINDOWS, **GRID)  # small: no bar
    assert bars == []
    wf = sb.walk_forward(data, "sma_cross", progress=True, **WINDOWS, **GRID)
    (bar,) = bars
    per_combo = data.n_assets * wf.n_windows
    assert bar.total == 18 * per_combo and bar.closed
    assert bar.seen == [2 * k * per_combo for k in range(1, 10)]
