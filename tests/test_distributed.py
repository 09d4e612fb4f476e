"""Sweeps on Dask (sweepbt.distributed, docs/distributed.md), on a real LocalCluster of two
single-threaded worker processes: the same rows as a local run, exactly; out= parts written
by the workers; top= reduced on the workers; a worker killed mid-sweep; a client killed
mid-sweep, then resumed; Dask never imported by ``import sweepbt``."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
from sweepbt import distributed as sb_distributed
from sweepbt import _executors as executors
from sweepbt import _plan as plan_module
from sweepbt.distributed import ClusterLost
from sweepbt._executors import Dask, InProcess
from sweepbt._plan import prepare
from sweepbt._sinks import KeepAll, KeepTop, ParquetParts, SharpeMoments
from sweepbt._training import BestPerWindow, TrainWindows

from helpers import STRATEGY_FILE, assert_same_rows, finished_parts, stop_when

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow  # a real LocalCluster, and subprocesses

GRID = dict(fast=[3, 5, 8, 13], slow=[10, 20, 30], stop_loss=[None, 0.03, 0.06],
            fees=[0.0, 0.001])


@pytest.fixture(scope="module")
def data(demo):
    return demo


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def small_chunks(data, monkeypatch):
    """3 combos per chunk (10 assets): many tasks."""
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 4 * data.n_bars * 7)


def test_import_sweepbt_does_not_import_dask():
    code = ("import sys, sweepbt as sb; sb.sweep(sb.demo(), 'sma_cross', fast=[5, 10], "
            "slow=[20]); print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_scheduler_without_dask_names_the_extra():
    code = ("import sys; sys.modules['distributed'] = None\n"
            "import sweepbt as sb\n"
            "try:\n"
            "    sb.sweep(sb.demo(), 'sma_cross', fast=[5, 10], scheduler='tcp://x:8786')\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert 'pip install "sweepbt[distributed]"' in out


def test_a_bad_scheduler_is_refused(data):
    with pytest.raises(TypeError, match="scheduler must be a dask.distributed.Client or a "
                                        "scheduler address"):
        sb.sweep(data, "sma_cross", fast=[5, 10], scheduler=8786)


def test_distributed_sweep_equals_the_local_sweep(data, client, small_chunks, tmp_path):
    for kwargs in (dict(), dict(constraint="fast * 3 < slow", direction="both"),
                   dict(portfolio=True, max_positions=[2, 5])):
        local = sb.sweep(data, "sma_cross", **kwargs, **GRID)
        remote = sb.sweep(data, "sma_cross", scheduler=client, **kwargs, **GRID)
        assert_same_rows(remote.table, local.table)
        assert remote.table.schema.metadata == local.table.schema.metadata
        assert remote.sharpe_moments == local.sharpe_moments
        assert remote.n_combos == local.n_combos
    top = sb.sweep(data, "sma_cross", scheduler=client.scheduler.address, top=4,
                   out=tmp_path / "rows", **GRID)
    local = sb.sweep(data, "sma_cross", top=4, **GRID)
    assert_same_rows(top.best(), local.best())
    assert_same_rows(pq.read_table(top.path), sb.sweep(data, "sma_cross", **GRID).table)


def test_distributed_sweep_of_a_user_strategy_file(data, client, tmp_path):
    path = tmp_path / "mom_dask.py"
    path.write_text(STRATEGY_FILE.format(threshold=0.02))
    spec = f"{path}:momentum"
    local = sb.sweep(data, spec, w=[5, 10, 20], stop_loss=[None, 0.05])
    remote = sb.sweep(data, spec, w=[5, 10, 20], stop_loss=[None, 0.05], scheduler=client)
    assert_same_rows(remote.table, local.table)
    # the workers loaded the file's text from their own folder, not from tmp_path
    where = client.run(lambda: sorted(m.__file__ for m in list(sys.modules.values())
                                      if getattr(m, "__name__", "") == "mom_dask"))
    files = [f for found in where.values() for f in found]
    assert files and all(os.path.join("strategy_files", "") in f for f in files)
    assert all(not f.startswith(str(tmp_path)) for f in files)


@pytest.mark.parametrize("portfolio", [False, True])
def test_distributed_walk_forward_equals_the_local_one(data, client, small_chunks,
                                                       portfolio):
    kwargs = dict(train=750, test=250, constraint="fast < slow", portfolio=portfolio,
                  **GRID)
    local = sb.walk_forward(data, "sma_cross", **kwargs)
    remote = sb.walk_forward(data, "sma_cross", scheduler=client, **kwargs)
    assert_same_rows(remote.windows, local.windows)
    assert_same_rows(remote.stats, local.stats)
    np.testing.assert_array_equal(remote.equity, local.equity)
    assert remote.chosen == local.chosen and remote.n_combos == local.n_combos


def test_distributed_walk_forward_writes_its_parts_on_the_workers_and_resumes(
        data, client, small_chunks, tmp_path):
    kwargs = dict(train=750, test=250, constraint="fast < slow", **GRID)
    local = sb.walk_forward(data, "sma_cross", **kwargs)
    path = tmp_path / "wf"
    remote = sb.walk_forward(data, "sma_cross", scheduler=client, out=path, **kwargs)
    assert_same_rows(remote.windows, local.windows)
    # 72 combos, 20 a chunk (sized by the 750-bar training span); each keeps some combo
    assert len(finished_parts(path / "_training")) == 4
    assert not [p for p in os.listdir(path / "_training") if p.startswith(".")]  # no probe
    again = sb.walk_forward(data, "sma_cross", out=path, resume=True, **kwargs)
    assert_same_rows(again.windows, local.windows)
    np.testing.assert_array_equal(again.equity, local.equity)


def test_distributed_walk_forward_with_a_lambda_objective(data, client, small_chunks):
    kwargs = dict(train=750, test=250, constraint="fast < slow",
                  objective=lambda m: m["total_return"] - m["max_drawdown"], **GRID)
    local = sb.walk_forward(data, "sma_cross", **kwargs)
    remote = sb.walk_forward(data, "sma_cross", scheduler=client, **kwargs)
    assert_same_rows(remote.windows, local.windows)
    assert remote.chosen == local.chosen


class RowsBack(BestPerWindow):
    """BestPerWindow without ``spawn``: the workers send every row back to the client."""

    spawn = None


def test_walk_forward_tasks_send_back_each_windows_best_not_the_rows(data, client,
                                                                      small_chunks):
    windows = TrainWindows(_plan(data), [(0, 750), (250, 1000), (500, 1250)])
    by_workers, by_client = Dask(client), Dask(client)
    sinks = [kind("sharpe", windows.grid.names, windows.active, windows.plan.n_rows)
             for kind in (BestPerWindow, RowsBack, BestPerWindow)]
    by_workers.run(windows, windows.chunks(), [sinks[0]])
    by_client.run(windows, windows.chunks(), [sinks[1]])
    InProcess().run(windows, windows.chunks(), [sinks[2]])
    for got in sinks[:2]:
        for (tier, score, combo, metrics), want in zip(got.finish(), sinks[2].finish()):
            assert (tier, score, combo) == want[:3]
            assert np.array_equal(metrics, want[3], equal_nan=True)
    assert by_workers.n_tasks == by_client.n_tasks == len(list(windows.chunks())) == 4
    assert by_workers.bytes_back * 4 < by_client.bytes_back


def _plan(data):
    return prepare(data, "sma_cross", dict(GRID), constraint=None, fill="next_open",
                   direction="long", init_cash=10_000.0, periods_per_year=None,
                   threads=None)


def _parts(executor, plan, folder):
    """(Sharpe moments, the Parquet dataset) of ``plan`` run by ``executor`` into
    ``folder``."""
    folder.mkdir()
    sinks = [SharpeMoments(plan.n_rows),
             ParquetParts(folder, plan.row_symbols, plan.strategy.name, plan.fixed)]
    executor.run(plan, plan.chunks(), sinks)
    return sinks[0].finish(), pq.read_table(folder)


def test_workers_write_the_out_parts_when_they_see_the_folder(data, client, small_chunks,
                                                              tmp_path, monkeypatch):
    plan = _plan(data)
    moments, table = _parts(InProcess(), plan, tmp_path / "local")
    by_workers = Dask(client)
    assert _parts(by_workers, plan, tmp_path / "workers") == (moments, table)
    monkeypatch.setattr(sb_distributed, "WORKERS_WRITE", False)  # the client writes
    by_client = Dask(client)
    assert _parts(by_client, plan, tmp_path / "client") == (moments, table)
    for name in ("workers", "client"):  # the same parts, and no probe file left
        assert sorted(os.listdir(tmp_path / name)) == sorted(os.listdir(tmp_path / "local"))
    # the workers saw the folder (the probe with this run's token), so no row travelled
    seen = client.run(lambda: list(sb_distributed._seen.items()))
    assert any(folder == str(tmp_path / "workers") and ok
               for found in seen.values() for (_, folder), ok in found)
    assert by_workers.n_tasks == by_client.n_tasks == 24
    assert by_workers.bytes_back * 4 < by_client.bytes_back


def test_top_on_dask_equals_the_local_top_with_the_deflated_sharpe(data, client,
                                                                   small_chunks):
    for kwargs in (dict(), dict(sample=40, seed=3, constraint="fast < slow")):
        local = sb.sweep(data, "sma_cross", top=5, **kwargs, **GRID)
        remote = sb.sweep(data, "sma_cross", top=5, scheduler=client, **kwargs, **GRID)
        assert_same_rows(remote.table, local.table)
        assert remote.sharpe_moments == local.sharpe_moments
        assert float(remote.deflated_sharpe()) == float(local.deflated_sharpe())


def test_with_top_a_task_returns_the_same_bytes_whatever_its_chunk_size(data, client,
                                                                        monkeypatch):
    plan = _plan(data)
    local = KeepTop(3, "sharpe", plan.n_rows, plan.grid.names)
    for ids in plan.chunks():
        local.add(plan.run_chunk(ids))

    def per_task(combos):
        """(bytes back per task with top=3, with every row; bytes sent per task)."""
        monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS",
                            combos * data.n_assets * data.n_bars)
        top, rows = Dask(client), Dask(client)
        sinks = [SharpeMoments(plan.n_rows), KeepTop(3, "sharpe", plan.n_rows,
                                                     plan.grid.names)]
        top.run(plan, plan.chunks(), sinks)
        assert top.n_tasks == -(-plan.grid.n_total // plan.chunk_size())
        best = sinks[1].finish()
        np.testing.assert_array_equal(best.ids, local.finish().ids)
        np.testing.assert_array_equal(best.metrics, local.finish().metrics)
        rows.run(plan, plan.chunks(), [KeepAll(plan.grid.names)])
        return (top.bytes_back / top.n_tasks, rows.bytes_back / rows.n_tasks,
                top.bytes_sent / top.n_tasks)

    small, big = per_task(4), per_task(24)
    assert big[1] > 4 * small[1]  # every row: grows with the chunk
    assert big[0] < 1.05 * small[0] < 1.1 * big[0]  # the top 3: does not
    assert big[2] < 1.05 * small[2] < 1.1 * big[2]  # the chunk's ids: a range


def _worker_pids(client):
    return client.run(os.getpid)


def test_a_worker_killed_mid_sweep_still_gives_every_row_once(data, client, small_chunks):
    plan = _plan(data)
    local = [KeepAll(plan.grid.names), SharpeMoments(plan.n_assets)]
    for ids in plan.chunks():
        for sink in local:
            sink.add(plan.run_chunk(ids))
    before = _worker_pids(client)
    victim = sorted(before)[0]
    killed = []

    def kill_one(done):  # after the first rows arrive: SIGKILL one worker process
        if not killed:
            os.kill(before[victim], signal.SIGKILL)
            killed.append(done)

    remote = [KeepAll(plan.grid.names), SharpeMoments(plan.n_assets)]
    n = Dask(client).run(plan, plan.chunks(), remote, on_progress=kill_one)
    assert killed and n == plan.grid.n_total
    got, want = remote[0].finish(), local[0].finish()
    np.testing.assert_array_equal(got.ids, np.arange(plan.grid.n_total))  # no duplicate
    np.testing.assert_array_equal(got.metrics, want.metrics)
    assert remote[1].finish() == local[1].finish()
    client.wait_for_workers(2, timeout=120)  # the nanny restarts the worker
    assert before[victim] not in _worker_pids(client).values()


CLIENT_SCRIPT = """
import sys
import sweepbt as sb
from sweepbt import _plan as plan
plan.CHUNK_BAR_EVALUATIONS = 1  # one combo per chunk: many tasks
sb.sweep(sb.demo(), "sma_cross", out=sys.argv[1], scheduler=sys.argv[2],
         fast=list(range(2, 22)), slow=[50, 100, 150], stop_loss=[None, 0.05])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_a_client_stopped_mid_sweep_then_resumed_gives_the_same_rows(
        data, client, tmp_path, monkeypatch, signum):
    """Ctrl-C cancels the client's tasks and says how to resume; SIGKILL: no cleanup."""
    path = tmp_path / "rows"
    _, err = stop_when([sys.executable, "-c", textwrap.dedent(CLIENT_SCRIPT), str(path),
                        client.scheduler.address],
                       lambda: len(finished_parts(path / "_partial")) >= 3, signum)
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt: sweep interrupted after" in err
        assert "finished chunks are kept in" in err and "resume=True" in err
    assert 3 <= len(finished_parts(path / "_partial")) < 120
    grid = dict(fast=list(range(2, 22)), slow=[50, 100, 150], stop_loss=[None, 0.05])
    res = sb.sweep(data, "sma_cross", out=path, resume=True, scheduler=client, **grid)
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 1)  # chunked alike
    whole = sb.sweep(data, "sma_cross", **grid)
    assert_same_rows(pq.read_table(path), whole.table)
    assert res.sharpe_moments == whole.sharpe_moments


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "sweepbt", *args], capture_output=True,
                          text=True, timeout=600, env=os.environ.copy())


def _table_lines(stdout):
    """The printed lines that do not depend on timing."""
    return [line for line in stdout.splitlines() if "bar-evaluations/s" not in line]


def test_cli_scheduler_and_workers_print_what_a_local_run_prints(client):
    sweep = ["sweep", "--demo", "--symbols", "ALPHA,BRAVO", "--param", "fast=5,10,20",
             "--param", "slow=30,60", "--stop-loss", "none,0.05", "--no-progress"]
    local = _cli(*sweep)
    remote = _cli(*sweep, "--scheduler", client.scheduler.address)
    assert local.returncode == remote.returncode == 0, remote.stderr
    assert _table_lines(remote.stdout) == _table_lines(local.stdout)
    walk = ["walk-forward", "--demo", "--symbols", "ALPHA,BRAVO", "--param", "fast=5,10",
            "--param", "slow=30,60", "--train", "1000", "--test", "500"]
    local = _cli(*walk)
    remote = _cli(*walk, "--workers", "2")
    assert local.returncode == remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout
    both = _cli(*walk, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    assert both.returncode == 2 and "give one of them" in both.stderr


def test_a_user_strategy_no_file_defines_is_refused_clearly(data, client):
    from helpers import ind_bad_shape_at_7, sig_bad_code_above_5

    local_only = sb.define_strategy(  # a local name: no module attribute holds it
        "local_only", indicators=ind_bad_shape_at_7, signal=sig_bad_code_above_5,
        indicator_params={"w": 5}, signal_params={"t": 1.0})
    with pytest.raises(ValueError, match="strategy 'local_only': scheduler= sends a user "
                                         "strategy to the workers as its file"):
        sb.sweep(data, local_only, w=[5, 6], scheduler=client)


def test_distributed_rank_sweeps_equal_the_local_ones(data, client, small_chunks):
    """Built-in and file rank strategies (and a factor column) run on the workers."""
    grid = dict(lookback=[21, 63, 126], top_n=[2, 3], rebalance=["M", "Q", 21],
                stop_loss=[None, 0.1])
    local = sb.sweep(data, "momentum_rank", **grid)
    remote = sb.sweep(data, "momentum_rank", scheduler=client, **grid)
    assert_same_rows(remote.table, local.table)
    spec = os.path.join(os.path.dirname(__file__), "..", "examples",
                        "trend_quality.py:trend_quality")
    local = sb.sweep(data, spec, lookback=[21, 63], top_n=[2, 3], rebalance=["M", "Q"])
    remote = sb.sweep(data, spec, lookback=[21, 63], top_n=[2, 3], rebalance=["M", "Q"],
                      scheduler=client)
    assert_same_rows(remote.table, local.table)
    pe = np.random.default_rng(0).normal(15.0, 4.0, data.close.shape)
    with_pe = sb.Bundle.from_arrays(data.open, data.high, data.low, data.close,
                                    timestamps=data.timestamps, symbols=data.symbols,
                                    factors={"pe": pe})
    local = sb.sweep(with_pe, "factor_rank", factor="pe", top_n=[2, 3], rebalance=["M", 21])
    remote = sb.sweep(with_pe, "factor_rank", factor="pe", top_n=[2, 3], rebalance=["M", 21],
                      scheduler=client)
    assert_same_rows(remote.table, local.table)


def _scattered(client):
    """Futures of the Bundle and job a run scattered (keys named by their types)."""
    return [distributed.Future(key, client) for key in client.who_has()
            if str(key).startswith(("Bundle-", "Job-"))]


@pytest.mark.parametrize("portfolio", [False, True])
def test_a_lost_scattered_bundle_is_scattered_again(data, client, small_chunks, portfolio):
    """The cluster once forgot the scattered Bundle while a worker was alive (its tasks
    came back cancelled, "already forgotten"): the run scatters again and reruns them."""
    plan = prepare(data, "sma_cross", dict(GRID), constraint=None, fill="next_open",
                   direction="long", init_cash=10_000.0, periods_per_year=None,
                   threads=None, portfolio=portfolio)
    local = [KeepAll(plan.grid.names), SharpeMoments(plan.n_rows)]
    InProcess().run(plan, plan.chunks(), local)
    lost = []

    def forget(done):  # after the first rows arrive: the cluster loses both keys
        if not lost:
            lost.extend(_scattered(client))
            client.cancel(lost, reason="lost for the test")

    remote = [KeepAll(plan.grid.names), SharpeMoments(plan.n_rows)]
    executor = Dask(client)
    n = executor.run(plan, plan.chunks(), remote, on_progress=forget)
    assert len(lost) == 2 and executor.rescatters == 1
    assert n == plan.grid.n_total
    got, want = remote[0].finish(), local[0].finish()
    np.testing.assert_array_equal(got.ids, want.ids)  # every combo once
    np.testing.assert_array_equal(got.metrics, want.metrics)
    assert remote[1].finish() == local[1].finish()


def test_a_cluster_with_no_worker_left_says_what_is_kept(data, small_chunks, tmp_path,
                                                         monkeypatch):
    monkeypatch.setattr(executors, "NO_WORKERS_TIMEOUT_S", 2.0)
    plan = _plan(data)
    folder = tmp_path / "parts"
    folder.mkdir()
    parts = ParquetParts(folder, plan.row_symbols, plan.strategy.name, plan.fixed)
    sinks = [KeepAll(plan.grid.names), parts]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as own:
        gone = []

        def scale_down(done):  # after the first rows arrive: every worker closes
            if not gone:
                gone.append(done)
                cluster.scale(0)

        executor = Dask(own, chunks_per_task=1)
        with pytest.raises(ClusterLost, match=r"the Dask cluster has had no worker for 2 s: "
                                              r"[\d,]+ combos had finished; the finished "
                                              r"chunks' parts are kept in .*parts "
                                              r"\(resume=True runs only the rest\)"):
            executor.run(plan, plan.chunks(), sinks, on_progress=scale_down)
    assert gone and 0 < executor.done < plan.grid.n_total
    kept = pq.read_table(folder)  # the worker may have written a part it never returned
    assert executor.done * plan.n_rows <= kept.num_rows < plan.grid.n_total * plan.n_rows
    pairs = set(zip(kept["combo"].to_pylist(), kept["symbol"].to_pylist()))
    assert len(pairs) == kept.num_rows  # every part whole, none twice
    with pytest.raises(ClusterLost, match="nothing is kept"):
        with distributed.LocalCluster(n_workers=0, dashboard_address=":0") as empty, \
                distributed.Client(empty) as none:
            Dask(none).run(plan, plan.chunks(), [KeepAll(plan.grid.names)])
