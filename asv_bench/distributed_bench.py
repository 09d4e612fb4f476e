"""Local threads against a Dask LocalCluster on the L workload (docs/distributed.md).

    python asv_bench/distributed_bench.py [--workers 2]

In one run: the L sweep (asv_bench/benchmarks/common.py) on this process with 2 kernel
threads, then on a LocalCluster of 2 single-threaded worker processes (1 kernel thread
each: the same cores), for several task sizes (bar-evaluations per chunk). Reports, per
task size: tasks, wall time, the efficiency (local time / distributed time), the
scheduling overhead per task ((distributed - local) x workers / tasks), and the bytes sent
per task (its arguments) and returned (its rows). Then a 10x larger grid streamed to an
out= folder: the client's and the workers' peak resident memory, against the 1x grid's.
Not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import threading
import time

import numpy as np
import psutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "benchmarks"))

import common  # noqa: E402

import sweepbt as sb  # noqa: E402
from sweepbt import plan as plan_module  # noqa: E402
from sweepbt.plan import prepare  # noqa: E402

TASK_SIZES = (2_000_000, 5_000_000, 10_000_000, 25_000_000)


def grid(scale=1):
    """The L grid; ``scale=10`` has 10x the take-profit values (10x the combos)."""
    g = dict(common.GRIDS["L"])
    if scale > 1:
        g["take_profit"] = list(np.round(np.linspace(0.02, 0.3, 9 * scale), 4))
    return g


def fixed():
    return {k: v for k, v in common.FIXED.items()}


class PeakRss:
    """Peak resident memory of this process while the block runs (sampled every 10 ms)."""

    def __enter__(self):
        self.peak, self.running = 0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        me = psutil.Process()
        while self.running:
            self.peak = max(self.peak, me.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def task_bytes(bundle, size):
    """(bytes of one task's arguments, bytes of its result) at ``size`` per chunk."""
    plan_module.CHUNK_BAR_EVALUATIONS = size
    p = prepare(bundle, "sma_cross", grid(), constraint=common.FIXED["constraint"],
                fill="close", direction="long", init_cash=10_000.0, periods_per_year=None,
                threads=1)
    ids = next(iter(p.chunks()))
    sent = len(pickle.dumps(("0" * 32, "bundle-key", "plan-key", ids)))
    return sent, len(pickle.dumps(p.run_chunk(ids)))


def main():
    from dask.distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    bundle = common.gbm_bundle(*common.SHAPES["L"])
    options = dict(fixed(), **grid())
    sb.sweep(bundle, "sma_cross", top=1, threads=args.workers, **options)  # compile
    local, res = timed(lambda: sb.sweep(bundle, "sma_cross", top=5, threads=args.workers,
                                        **options))
    print(f"L workload: {res.n_combos:,} combos x {bundle.n_assets} assets, "
          f"{res.bar_evaluations:,} bar-evaluations")
    print(f"local, {args.workers} threads: {local:.2f} s")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        sb.sweep(bundle, "sma_cross", top=1, threads=1, scheduler=client, **options)  # warm
        print(f"{'bar-evals/task':>15} {'tasks':>6} {'wall s':>7} {'efficiency':>10} "
              f"{'overhead/task ms':>17} {'bytes sent/task':>16} {'bytes back/task':>16}")
        for size in TASK_SIZES:
            sent, back = task_bytes(bundle, size)
            plan_module.CHUNK_BAR_EVALUATIONS = size
            n_tasks = len(list(prepare(bundle, "sma_cross", grid(), constraint="fast < slow",
                                       fill="close", direction="long", init_cash=1e4,
                                       periods_per_year=None, threads=1).chunks()))
            wall, remote = timed(lambda: sb.sweep(bundle, "sma_cross", top=5, threads=1,
                                                  scheduler=client, **options))
            assert remote.best().equals(res.best())
            overhead = (wall - local) * args.workers / n_tasks
            print(f"{size:>15,} {n_tasks:>6} {wall:>7.2f} {local / wall:>10.2f} "
                  f"{overhead * 1e3:>17.1f} {sent:>16,} {back:>16,}")
        plan_module.CHUNK_BAR_EVALUATIONS = 10_000_000
        for scale in (1, 10):
            folder = os.path.join(tempfile.mkdtemp(), "rows")
            client.run(lambda: psutil.Process().memory_info().rss)
            with PeakRss() as peak:
                wall, out = timed(lambda: sb.sweep(
                    bundle, "sma_cross", threads=1, scheduler=client, out=folder,
                    **dict(fixed(), **grid(scale))))
            workers = client.run(lambda: psutil.Process().memory_info().rss)
            print(f"{scale:>2}x grid to out=: {out.n_combos:,} combos in {wall:.1f} s; client "
                  f"peak RSS {peak.peak / 2**20:.0f} MiB; workers' RSS after "
                  + ", ".join(f"{v / 2**20:.0f} MiB" for v in workers.values()))


if __name__ == "__main__":
    main()
