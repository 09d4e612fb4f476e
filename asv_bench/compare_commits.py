"""Sweep throughput of two commits, measured side by side in one run.

    python asv_bench/compare_commits.py BASE HEAD [--threads 1,2] [--sizes S,L,XL,P,R,B]
                                                  [--n 100]

Each commit is installed (``pip install --no-deps --target``, from a ``git worktree``) into
its own folder under ``--work`` (default ``.compare_commits/`` in the repository, reused by
later runs), with its own numba cache. Then one warm worker process per commit takes turns
with the other, one run of a ``common.workload`` at a time (the sweeps S, L, XL, the
portfolio sweep P, the rank sweep R, the one-combo backtest B), alternating
which goes first, so drifts in the speed of a shared machine hit both alike. For each size
it prints both engines' minimum and median times and the median of the per-pair time
ratios HEAD/BASE with a bootstrap 95% interval: below 1 means HEAD is faster.

Unlike ``asv continuous``, it times both commits with the same benchmark code (this file
and ``benchmarks/common.py``), so a commit from before an option the asv suite uses (such
as ``portfolio=``) can still be compared, on the workloads both commits can run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORKER = r"""
import sys, time
sys.path.insert(0, {bench!r})
from benchmarks import common
import sweepbt as sb
warm = common.gbm_bundle(2, 300)
sb.sweep(warm, "sma_cross", fast=[5, 10], slow=[20, 30], stop_loss=[None, 0.05],
         take_profit=[None, 0.1], **common.FIXED)
loads = {{s: common.workload(s) for s in {sizes!r}}}
for data, run in loads.values():
    run(data)
print("ready", flush=True)
for line in sys.stdin:
    data, run = loads[line.strip()]
    t0 = time.perf_counter()
    run(data)
    print(time.perf_counter() - t0, flush=True)
"""


def install(rev, work):
    """The folder holding commit ``rev``'s installed package (made once)."""
    sha = subprocess.run(["git", "-C", ROOT, "rev-parse", rev], capture_output=True,
                         text=True, check=True).stdout.strip()
    target = os.path.join(work, f"pkg-{sha[:12]}")
    if not os.path.isdir(os.path.join(target, "sweepbt")):
        tree = os.path.join(work, f"src-{sha[:12]}")
        if not os.path.isdir(tree):
            subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-f", tree, sha],
                           check=True, capture_output=True)
        built = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                                "--no-deps", "--target", target, tree],
                               capture_output=True, text=True)
        if built.returncode:
            raise RuntimeError(f"pip could not install {rev}:\n{built.stderr}")
    return sha[:12], target


class Worker:
    """A warm process timing sweeps of one installed package."""

    def __init__(self, target, threads, sizes):
        env = dict(os.environ, PYTHONPATH=target, NUMBA_NUM_THREADS=str(threads),
                   NUMBA_CACHE_DIR=os.path.join(target, ".numba_cache"))
        code = WORKER.format(bench=HERE, sizes=list(sizes))
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the worker for {target} did not start")

    def time(self, size):
        self.proc.stdin.write(size + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def compare(workers, size, n):
    """Timings ``{name: [seconds]}`` of ``n`` alternating pairs of ``size`` sweeps."""
    times = {name: [] for name in workers}
    names = list(workers)
    for i in range(n):
        for name in names if i % 2 == 0 else names[::-1]:
            times[name].append(workers[name].time(size))
    return times


def summary(times, base, head, seed=1):
    ratios = [h / b for b, h in zip(times[base], times[head])]
    rng = random.Random(seed)
    boot = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
    return {"base_min": min(times[base]), "base_median": statistics.median(times[base]),
            "head_min": min(times[head]), "head_median": statistics.median(times[head]),
            "ratio_median": statistics.median(ratios), "ratio_ci95": (boot[50], boot[1949])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("head")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--sizes", default="S,L,XL", help="workloads (default S,L,XL)")
    parser.add_argument("--n", type=int, default=100,
                        help="pairs per size (XL: a quarter, at least 5; default 100)")
    parser.add_argument("--work", default=os.path.join(ROOT, ".compare_commits"))
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    base, base_dir = install(args.base, args.work)
    head, head_dir = install(args.head, args.work)
    sizes = args.sizes.split(",")
    figures = []
    for threads in [int(t) for t in args.threads.split(",")]:
        workers = {base: Worker(base_dir, threads, sizes),
                   head: Worker(head_dir, threads, sizes)}
        try:
            for size in sizes:
                n = max(5, args.n // 4) if size == "XL" else args.n
                row = {"threads": threads, "size": size, "pairs": n,
                       **summary(compare(workers, size, n), base, head)}
                figures.append(row)
                lo, hi = row["ratio_ci95"]
                print(f"{threads} thread(s) {size:>2}: {base} min {row['base_min'] * 1e3:.1f} "
                      f"median {row['base_median'] * 1e3:.1f} ms | {head} min "
                      f"{row['head_min'] * 1e3:.1f} median {row['head_median'] * 1e3:.1f} ms"
                      f" | {head}/{base} per-pair median {row['ratio_median']:.3f} "
                      f"[{lo:.3f}, {hi:.3f}] ({n} pairs)", flush=True)
        finally:
            for worker in workers.values():
                worker.close()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"base": base, "head": head, "figures": figures}, f, indent=1)


if __name__ == "__main__":
    main()
