"""Measurement and vectorbt helpers shared by compare_peers.py and peers_portfolio.py."""

from __future__ import annotations

import resource
import time


def maxrss_mib():
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def best_of(fn, repeats):
    """(best seconds, every run's seconds, the last result) of ``repeats`` calls of ``fn``."""
    times = []
    out = None
    for _ in range(repeats):
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
