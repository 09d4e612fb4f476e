"""The declared protocols (runners, sinks, executors, signal sources), ``executor_for``,
``Strategy.origin`` and the exceptions that carry their data."""

import pickle

import pyarrow as pa
import pytest

import sweepbt as sb
from sweepbt import _plan as plan_module
from sweepbt._interrupt import interrupted_run
from sweepbt.cli.parsing import CliError
from sweepbt.data.errors import DataError
from sweepbt._executors import Dask, InProcess, executor_for
from sweepbt._plan import prepare
from sweepbt.protocols import (Executor, FileSink, Runner, ScoreSource, SignalSource, Sink,
                               SpawningSink, folder_of)
from sweepbt._sinks import KeepAll, KeepTop, ParquetParts, SharpeMoments
from sweepbt.strategies.builtin import STRATEGIES
from sweepbt._training import BestPerWindow, TrainWindows

GRID = dict(fast=[5, 10, 20], slow=[30, 60], stop_loss=[None, 0.05])


@pytest.fixture(scope="module")
def data():
    return sb.demo()


@pytest.fixture
def small_chunks(data, monkeypatch):
    """2 combos per chunk: several chunks."""
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 2 * data.n_bars * data.n_assets)


class Reversed:
    """A test-only executor: every chunk, here, in reverse order."""

    def __init__(self):
        self.done = 0
        self.order = []

    def run(self, runner, chunks, sinks, on_progress=None):
        self.done = 0
        for ids in reversed(list(chunks)):
            self.order.append(int(ids[0]))
            result = runner.run_chunk(ids)
            if result is None:
                continue
            for sink in sinks:
                sink.add(result)
            self.done += result.ids.size
        return self.done


def _plan(data, strategy="sma_cross", grid=GRID):
    return prepare(data, strategy, dict(grid), constraint=None, fill="next_open",
                   direction="long", init_cash=10_000.0, periods_per_year=None, threads=None)


def test_a_third_executor_gives_the_identical_table(data, small_chunks):
    here = sb.sweep(data, "sma_cross", **GRID)
    executor = Reversed()
    assert isinstance(executor, Executor)
    there = sb.sweep(data, "sma_cross", scheduler=executor, **GRID)
    assert len(executor.order) > 2 and executor.order == sorted(executor.order, reverse=True)
    assert there.table.equals(here.table)
    assert there.n_combos == here.n_combos == executor.done
    best = sb.walk_forward(data, "sma_cross", train=500, test=250, **GRID)
    assert sb.walk_forward(data, "sma_cross", train=500, test=250, scheduler=Reversed(),
                           **GRID).windows.equals(best.windows)


def test_executor_for():
    assert isinstance(executor_for(None), InProcess)
    mine = Reversed()
    assert executor_for(mine) is mine
    assert isinstance(executor_for("tcp://localhost:1"), Dask)  # connects only when run
    for executor in (InProcess(), Reversed()):
        assert isinstance(executor, Executor)


def test_runners_sinks_and_sources_satisfy_their_protocols(data, tmp_path):
    plan = _plan(data)
    windows = TrainWindows(plan, [(0, 500), (250, 750)])
    assert isinstance(plan, Runner) and isinstance(windows, Runner)
    names = plan.grid.names
    best = BestPerWindow("sharpe", names, windows.active, plan.n_rows)
    parts = ParquetParts(tmp_path, plan.row_symbols, "sma_cross", {})
    sinks = [KeepAll(names), KeepTop(3, "sharpe", plan.n_rows, names),
             SharpeMoments(plan.n_rows), parts, best]
    assert all(isinstance(s, Sink) for s in sinks)
    assert [isinstance(s, SpawningSink) for s in sinks] == [False, True, True, True, True]
    assert [isinstance(s, FileSink) for s in sinks] == [False, False, False, True, True]
    assert [folder_of(s) for s in sinks] == [None, None, None, str(tmp_path), None]
    source = plan.built()[0]
    assert isinstance(source, SignalSource) and not isinstance(source, ScoreSource)
    rank = _plan(data, "momentum_rank", dict(lookback=[20, 60], top_n=[2]))
    assert isinstance(rank.built()[0], ScoreSource)


def test_strategy_origin(tmp_path):
    assert STRATEGIES["sma_cross"].origin == "builtin"
    assert STRATEGIES["momentum_rank"].origin == "rank"
    assert not STRATEGIES["momentum_rank"].is_user
    path = tmp_path / "mine.py"
    path.write_text(
        "import numba, numpy as np\n"
        "import sweepbt as sb\n"
        "@numba.njit\n"
        "def ind(close, w):\n"
        "    return close.reshape(1, -1).copy()\n"
        "@numba.njit\n"
        "def sig(features, i):\n"
        "    return 0\n"
        "mine = sb.define_strategy('mine_origin', indicators=ind, signal=sig,\n"
        "                          indicator_params={'w': 3}, n_features=1, check=False)\n")
    loaded = sb.load_strategy(f"{path}:mine")
    assert loaded.origin == "user-file" and loaded.is_user


def test_sweep_too_large_carries_its_numbers(data):
    with pytest.raises(sb.SweepTooLarge) as caught:
        sb.sweep(data, "sma_cross", max_memory=1_000, **GRID)
    exc = caught.value
    assert isinstance(exc, sb.SweepbtError) and isinstance(exc, MemoryError)
    assert exc.n_rows == 12 * data.n_assets and exc.limit_bytes == 1_000
    assert exc.result_bytes > 1_000 and str(exc).startswith(exc.reason + "; pass top=K")
    again = pickle.loads(pickle.dumps(exc))
    assert (again.n_rows, again.result_bytes, again.limit_bytes, str(again)) == (
        exc.n_rows, exc.result_bytes, exc.limit_bytes, str(exc))


def test_an_interrupt_carries_how_far_it_got(data, small_chunks, monkeypatch):
    real, calls = plan_module.Plan.run_chunk, []

    def stop_on_third(self, ids):
        calls.append(ids)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, ids)

    monkeypatch.setattr(plan_module.Plan, "run_chunk", stop_on_third)
    with pytest.raises(KeyboardInterrupt) as caught:
        sb.sweep(data, "sma_cross", **GRID)
    run = interrupted_run(caught.value)
    assert (run.what, run.total, run.note) == ("sweep", 12 * data.n_assets,
                                               "nothing was written")
    assert run.done == sum(ids.size for ids in calls[:2]) * data.n_assets
    assert str(caught.value) == str(run)
    assert interrupted_run(KeyboardInterrupt()) is None


def test_sweepbt_error_is_the_base_of_its_errors(data):
    with pytest.raises(sb.StrategyError) as caught:
        sb.define_strategy("not an identifier", indicators=None, signal=None)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, sb.SweepbtError)
    with pytest.raises(sb.StrategyError, match="doc must be a string") as caught:
        sb.define_strategy("x", indicators=None, signal=None, doc=3)
    assert isinstance(caught.value, TypeError) and caught.value.strategy == "x"
    for error in (DataError, CliError, sb.StrategyError, sb.SweepTooLarge):
        assert issubclass(error, sb.SweepbtError)
    with pytest.raises(sb.SweepbtError, match="missing required column"):
        sb.load(pa.table({"x": [1.0]}))
