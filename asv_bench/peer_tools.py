"""Measurement, vectorbt and reporting helpers shared by compare_peers.py, peers_portfolio.py
and peers_rank.py."""

from __future__ import annotations

import resource
import time


def maxrss_mib():
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def best_of(fn, repeats, before=None):
    """(best seconds, every run's seconds, the last result) of ``repeats`` calls of ``fn``;
    ``before()``, when given, runs ahead of each call, outside the timing."""
    times = []
    out = None
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, out


def tiled_crossings(vbt, pd, close, grid, risk, names):
    """vectorbt's usual way to sweep ``sma_cross``: one MA per (fast, slow) pair of
    ``grid`` with fast < slow, their crossings, then the entries and exits tiled once per
    ``risk`` tuple (a MultiIndex level per name in ``names``, outermost)."""
    pairs = [(f, s) for f in grid["fast"] for s in grid["slow"] if f < s]
    fast_ma = vbt.MA.run(close, window=[p[0] for p in pairs], short_name="fast")
    slow_ma = vbt.MA.run(close, window=[p[1] for p in pairs], short_name="slow")
    keys = pd.MultiIndex.from_tuples(risk, names=names)
    return (fast_ma.ma_crossed_above(slow_ma).vbt.tile(len(risk), keys=keys),
            fast_ma.ma_crossed_below(slow_ma).vbt.tile(len(risk), keys=keys))


def run_and_table(run_child, print_table, engines, size, quick):
    """Run each engine's subprocess on ``size`` and print their table against the first.
    Returns ``(rows, entry)``: ``entry`` (the rows without their per-combo results, and the
    first engine's throughput) is None when the first engine failed."""
    rows = [run_child(e, size, quick) for e in engines]
    ref = rows[0]
    if "error" in ref:
        print_table(rows, 1.0)
        return rows, None
    print_table(rows, ref["time_s"])
    return rows, {"rows": [{k: v for k, v in r.items() if k != "rows"} for r in rows],
                  "throughput": ref["bar_evaluations"] / ref["time_s"]}
