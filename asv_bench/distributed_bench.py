"""Local threads against a Dask LocalCluster on the L workload (docs/distributed.md).

    python asv_bench/distributed_bench.py [--workers 2] [--repeat 3]

In one run, on the L data (asv_bench/benchmarks/common.py: ``sma_cross``, 4 assets x 2,520
bars) for the L grid and a 10x larger one (10x the take-profit values):

1. per task size (bar-evaluations per task: the chunk size times the chunks per task),
   the sweep with ``top=5`` run here on 1 and on ``--workers`` kernel threads, and on a
   LocalCluster of ``--workers`` single-threaded worker processes (one kernel thread each:
   the same cores). Reports the tasks, the wall times (best of ``--repeat``), the
   efficiency (local time on N threads / Dask time), the compute per task (time inside the
   task function on the worker, from Dask's task stream), the scheduling overhead per task
   ((Dask time x workers - compute) / tasks: every worker-second not spent computing,
   idle tails included) and its share of the compute, and the bytes sent and returned
   per task (the pickled task arguments; the pickled TaskResult);
2. the 1x and the 10x grid streamed to an ``out=`` folder on the cluster (every row
   written, by the workers): the client's and the workers' resident memory, sampled every
   20 ms, before and at peak.

Not a test: the figures depend on the machine and its load (run it on a quiet machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

import numpy as np
import psutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "benchmarks"))

import common  # noqa: E402

import sweepbt as sb  # noqa: E402
from sweepbt import _executors as executors  # noqa: E402
from sweepbt import _plan as plan_module  # noqa: E402
from sweepbt._plan import prepare  # noqa: E402
from sweepbt._sinks import KeepTop, SharpeMoments  # noqa: E402

#: (bar-evaluations per chunk, chunks per task)
TASK_SIZES = ((5_000_000, 1), (10_000_000, 1), (25_000_000, 1), (50_000_000, 1),
              (50_000_000, 2), (50_000_000, 4))


def grid(scale=1):
    """The L grid; ``scale=10`` has 10x the take-profit values (10x the combos)."""
    g = {k: v for k, v in common.GRIDS["L"].items()}
    if scale > 1:
        g["take_profit"] = [float(x) for x in np.round(np.linspace(0.02, 0.3, 9 * scale), 4)]
    return g


def options():
    return {k: v for k, v in common.FIXED.items() if k not in ("fill", "constraint")}


def make_plan(bundle, scale, threads):
    return prepare(bundle, "sma_cross", {**options(), **grid(scale)},
                   constraint=common.FIXED["constraint"], fill=common.FIXED["fill"],
                   direction="long", init_cash=10_000.0, periods_per_year=None,
                   threads=threads)


def top_sinks(plan):
    return [SharpeMoments(plan.n_rows), KeepTop(5, "sharpe", plan.n_rows, plan.grid.names)]


def run_local(bundle, scale, threads):
    """The top=5 sinks of the sweep run here (a new plan: its signals built, as a new
    sweep's are, and as each Dask run's are on the workers)."""
    plan = make_plan(bundle, scale, threads)
    sinks = top_sinks(plan)
    executors.InProcess().run(plan, plan.chunks(), sinks)
    return sinks


def best_of(repeat, fn):
    """(best wall time, last result) of ``repeat`` calls."""
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


class Rss:
    """Resident memory of some processes, sampled every 20 ms while the block runs:
    ``first`` and ``peak`` per pid."""

    def __init__(self, pids):
        self.procs = {pid: psutil.Process(pid) for pid in pids}
        self.first = {pid: p.memory_info().rss for pid, p in self.procs.items()}
        self.peak = dict(self.first)

    def __enter__(self):
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            for pid, proc in self.procs.items():
                self.peak[pid] = max(self.peak[pid], proc.memory_info().rss)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def mib(n):
    return f"{n / 2**20:.0f} MiB"


def overhead_table(client, bundle, scale, workers, repeat):
    from distributed import get_task_stream

    n_combos = make_plan(bundle, scale, 1).grid.count()
    print(f"\n{scale}x the L grid: {n_combos:,} combos x {bundle.n_assets} assets, top=5")
    print(f"{'bar-evals/task':>15} {'tasks':>5} {'1 thr s':>7} {f'{workers} thr s':>7} "
          f"{'Dask s':>7} {'eff.':>5} {'compute/task ms':>15} {'overhead/task ms':>16} "
          f"{'ovh %':>6} {'sent B/task':>11} {'back B/task':>11}")
    for chunk, per_task in TASK_SIZES:
        plan_module.CHUNK_BAR_EVALUATIONS = chunk
        executors.CHUNKS_PER_TASK = per_task
        t1, local = best_of(repeat, lambda: run_local(bundle, scale, 1))
        tn, _ = best_of(repeat, lambda: run_local(bundle, scale, workers))
        runs = []

        def on_dask():
            remote = make_plan(bundle, scale, 1)
            sinks = top_sinks(remote)
            with get_task_stream(client) as stream:
                t0 = time.perf_counter()
                ex = executors.Dask(client)
                ex.run(remote, remote.chunks(), sinks)
            runs.append((time.perf_counter() - t0, ex, stream.data))
            return sinks

        _, sinks = best_of(repeat, on_dask)
        td, ex, stream = min(runs, key=lambda r: r[0])
        assert np.array_equal(sinks[1].finish().ids, local[1].finish().ids)
        assert sinks[0].finish() == local[0].finish()
        compute = sum(s["stop"] - s["start"] for t in stream for s in t["startstops"]
                      if s["action"] == "compute")
        tasks = ex.n_tasks
        overhead = (td * workers - compute) / tasks
        print(f"{chunk * per_task:>15,} {tasks:>5} {t1:>7.3f} {tn:>7.3f} {td:>7.3f} "
              f"{tn / td:>5.2f} {compute / tasks * 1e3:>15.1f} {overhead * 1e3:>16.1f} "
              f"{100 * overhead / (compute / tasks):>5.1f}% {ex.bytes_sent / tasks:>11,.0f} "
              f"{ex.bytes_back / tasks:>11,.0f}")
    plan_module.CHUNK_BAR_EVALUATIONS = DEFAULT_CHUNK
    executors.CHUNKS_PER_TASK = DEFAULT_PER_TASK


def memory(client, bundle, scales=(1, 10)):
    worker_pids = list(client.run(os.getpid).values())
    print(f"\nout= on the cluster (default task size: {DEFAULT_CHUNK * DEFAULT_PER_TASK:,} "
          "bar-evaluations); resident memory, before -> peak")
    for scale in scales:
        folder = os.path.join(tempfile.mkdtemp(), "rows")
        with Rss([os.getpid(), *worker_pids]) as rss:
            t0 = time.perf_counter()
            res = sb.sweep(bundle, "sma_cross", threads=1, scheduler=client, out=folder,
                           constraint=common.FIXED["constraint"], fill=common.FIXED["fill"],
                           **options(), **grid(scale))
            wall = time.perf_counter() - t0
        n_parts = len(os.listdir(folder)) - 1
        line = ", ".join(f"{mib(rss.first[p])} -> {mib(rss.peak[p])}" for p in worker_pids)
        print(f"{scale:>2}x grid: {res.n_combos:,} combos ({res.n_combos * bundle.n_assets:,} "
              f"rows, {n_parts} parts) in {wall:.2f} s; client {mib(rss.first[os.getpid()])}"
              f" -> {mib(rss.peak[os.getpid()])}; workers {line}")


DEFAULT_CHUNK = plan_module.CHUNK_BAR_EVALUATIONS
DEFAULT_PER_TASK = executors.CHUNKS_PER_TASK


def main():
    from dask.distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bundle = common.gbm_bundle(*common.SHAPES["L"])
    print(f"load average before: {os.getloadavg()}")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        warm = make_plan(bundle, 1, 1)
        executors.InProcess().run(warm, warm.chunks(), top_sinks(warm))  # compile here
        executors.Dask(client).run(warm, warm.chunks(), top_sinks(warm))  # ... and there
        for scale in (1, 10):
            overhead_table(client, bundle, scale, args.workers, args.repeat)
        memory(client, bundle)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
