"""Workload R of compare_peers.py: 216 rank-and-rebalance portfolios (one cash balance
each) in sweepbt and in vectorbt (``from_orders`` with target-percent orders, one
cash-sharing group per combo), and the sweepbt-only scale case RS.

Data: ``common.RANK_SHAPE`` (100 assets x 5,040 daily bars, seeded GBM). Grid:
``common.RANK_GRID``: ``momentum_rank`` (score ``close[i] / close[i-lookback] - 1``) with
lookback {21, 42, ..., 252} x top_n {5, 10, 20} x rebalance {W, M, Q} x stop_loss {none,
10 %}, equal weights ``1/top_n``, no fees.

Timing: sweepbt runs workload R as specified (one ``sb.sweep`` call, orders at the next
open, the 10 % stop checked on every bar between rebalances). vectorbt has no rebalancing
strategy: the user ranks the universe at each rebalance bar and hands it a target-weight
frame (``size_type="targetpercent"``, NaN = no order), which this script builds with numpy
(inside the timing: it is part of vectorbt's way). ``from_orders`` has no per-position
stop-loss and its target-percent orders fill at the given price, so vectorbt runs the
orders at the close, and its stop_loss=0.10 half is a second copy of the no-stop half:
the same 216 groups (21,600 columns), the same amount of work.

Agreement (where the semantics coincide): sweepbt re-runs the no-stop half with
``fill="close"``; each of the 108 portfolios' final total_return must agree with
vectorbt's group to 1e-9 (``|a - b| / max(1, |b|)``, as the other workloads). With no
costs a buy is never cut by the cash, so vectorbt's buy order (by value) and sweepbt's
(by asset) give the same book (docs/semantics.md).

Scale case RS (sweepbt only): ``common.RANK_SCALE_SHAPE`` (500 assets x 5,040 bars) and
``common.RANK_SCALE_GRID`` (25 lookbacks x 5 top_n x {W, M, Q, Y} x 2 stop-losses = 1,000
portfolios); targets: under 5 s warm on 2 cores, peak RSS under 2 GB.
"""

from __future__ import annotations

import gc
import time

import numpy as np

from benchmarks import common
from peer_tools import best_of as _best_of, maxrss_mib as _maxrss_mib, run_and_table

INIT_CASH = 10_000.0
TARGET_RATIO = 100.0  # the target: vectorbt time / sweepbt time
TARGET_SCALE_S = 5.0
TARGET_SCALE_MIB = 2048.0


def _sweepbt_timed(shape, grid, quick):
    """First call, best-of warm time and peak RSS of one ``sb.sweep`` of ``grid``."""
    import numba

    bundle = common.gbm_bundle(*shape)
    baseline = _maxrss_mib()
    t0 = time.perf_counter()
    common.run_rank_sweep(bundle, grid)
    first = time.perf_counter() - t0
    repeats = 3 if quick else 7
    best, times, res = _best_of(lambda: common.run_rank_sweep(bundle, grid), repeats)
    return bundle, res, {
        "engine": "sweepbt", "threads": numba.get_num_threads(), "first_call_s": first,
        "time_s": best, "times_s": times, "timing": f"best of {repeats} warm runs",
        "n_backtests": res.n_backtests, "bar_evaluations": res.bar_evaluations,
        "kernel_throughput": res.throughput, "baseline_rss_mib": baseline,
        "peak_rss_mib": _maxrss_mib(),
    }


def engine_sweepbt(_size, quick):
    bundle, _, out = _sweepbt_timed(common.RANK_SHAPE, common.RANK_GRID, quick)
    g = common.RANK_GRID
    agree = common.run_rank_sweep(bundle, {**g, "stop_loss": [None]}, fill="close").table
    out["rows"] = {k: agree.column(k).to_pylist()
                   for k in ("lookback", "top_n", "rebalance", "total_return")}
    return out


def engine_sweepbt_scale(_size, quick):
    return _sweepbt_timed(common.RANK_SCALE_SHAPE, common.RANK_SCALE_GRID, quick)[2]


def rebalance_bars(stamps, rule):
    """Bars ``i < n-1`` whose next bar lies in a later ISO week / month / quarter (the
    schedule of docs/semantics.md, on naive stamps read as UTC)."""
    import pandas as pd

    idx = pd.DatetimeIndex(stamps)
    if rule == "W":
        iso = idx.isocalendar()
        key = iso["year"].to_numpy().astype(np.int64) * 100 + iso["week"].to_numpy()
    elif rule == "M":
        key = idx.year.to_numpy() * 12 + idx.month.to_numpy()
    elif rule == "Q":
        key = idx.year.to_numpy() * 4 + idx.quarter.to_numpy()
    else:
        raise ValueError(f"unknown rebalance rule {rule!r}")
    return np.flatnonzero(key[1:] != key[:-1])


def target_weights(close, lookback, top_n, bars):
    """A ``(n_bars, n_assets)`` target-percent frame: at each rebalance bar ``1/top_n`` for
    the ``top_n`` best momentum scores among the assets that have one (ties by asset
    order), 0 for every other asset; NaN (no order) on every other bar."""
    n_assets, n_bars = close.shape
    out = np.full((n_bars, n_assets), np.nan)
    bars = bars[bars >= lookback]
    score = close[:, bars] / close[:, bars - lookback] - 1.0  # (n_assets, n_rebalances)
    order = np.argsort(-score, axis=0, kind="stable")[:top_n]  # best first, ties by asset
    w = np.zeros((len(bars), n_assets))
    np.put_along_axis(w, order.T, 1.0 / top_n, axis=1)
    out[bars] = w
    return out


def engine_vectorbt(_size, quick):
    import itertools

    import pandas as pd
    import vectorbt as vbt

    n_assets, n_bars = common.RANK_SHAPE
    close = common.gbm_ohlc(n_assets, n_bars)["close"]
    stamps = common.timestamps(n_bars)
    index = pd.DatetimeIndex(stamps)
    g = common.RANK_GRID
    combos = list(itertools.product(g["lookback"], g["top_n"], g["rebalance"]))
    copies = len(g["stop_loss"])  # the stop half repeats the no-stop half (no stops here)
    baseline = _maxrss_mib()
    split = {}

    def run():
        t0 = time.perf_counter()
        schedule = {r: rebalance_bars(stamps, r) for r in g["rebalance"]}
        half = np.empty((n_bars, len(combos) * n_assets))
        for k, (lookback, top_n, rule) in enumerate(combos):
            half[:, k * n_assets:(k + 1) * n_assets] = target_weights(
                close, lookback, top_n, schedule[rule])
        n_cols = half.shape[1] * copies
        size = pd.DataFrame(np.tile(half, (1, copies)), index=index)
        del half
        prices = pd.DataFrame(np.tile(close.T, (1, n_cols // n_assets)), index=index)
        t1 = time.perf_counter()
        pf = vbt.Portfolio.from_orders(
            prices, size, size_type="targetpercent", direction="longonly",
            group_by=np.arange(n_cols) // n_assets, cash_sharing=True, call_seq="auto",
            init_cash=INIT_CASH, freq="D")
        total_return = pf.total_return().to_numpy()
        pf.sharpe_ratio()
        pf.max_drawdown()
        split["weights"], split["simulation"] = t1 - t0, time.perf_counter() - t1
        return total_return

    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    repeats = 1 if quick else 2
    # the previous run's Portfolio sits in reference cycles: collect it first, or the peak
    # RSS would hold two runs (22,354 MiB in a run without this collection)
    best, times, total_return = _best_of(run, repeats, before=gc.collect)
    n_groups = len(combos) * copies
    return {
        "engine": "vectorbt", "threads": 1, "first_call_s": first, "time_s": best,
        "times_s": times, "timing": f"best of {repeats} warm run{'s' * (repeats > 1)}",
        "split": (f"last run: target-weight frames {split['weights']:.2f} s, from_orders"
                  f"+metrics {split['simulation']:.2f} s"),
        "n_backtests": n_groups, "bar_evaluations": n_groups * n_assets * n_bars,
        "baseline_rss_mib": baseline, "peak_rss_mib": _maxrss_mib(),
        "rows": {"lookback": [c[0] for c in combos], "top_n": [c[1] for c in combos],
                 "rebalance": [c[2] for c in combos],
                 "total_return": [float(x) for x in total_return[:len(combos)]]},
    }


def check_agreement(sbt, vbt, rtol):
    """Match each of sweepbt's fill="close" no-stop portfolios with vectorbt's group."""
    def keyed(rows):
        return {(int(rows["lookback"][k]), int(rows["top_n"][k]), rows["rebalance"][k]):
                rows["total_return"][k] for k in range(len(rows["lookback"]))}

    a, b = keyed(sbt["rows"]), keyed(vbt["rows"])
    bad, worst = [], 0.0
    for key in sorted(a.keys() & b.keys()):
        rel = abs(a[key] - b[key]) / max(1.0, abs(b[key]))
        worst = max(worst, rel)
        if not rel <= rtol:
            bad.append((key, a[key], b[key]))
    return {"compared": len(a.keys() & b.keys()), "missing": len(set(a) ^ set(b)),
            "mismatches": bad, "worst_rel": worst}


def rank_section(run_child, print_table, quick, rtol):
    """Workload R: sweepbt and vectorbt, the agreement check and the ratio."""
    n_assets, n_bars = common.RANK_SHAPE
    n = common.n_rank_combos()
    print()
    print(f"== R: rank-and-rebalance portfolios of {n_assets} assets x {n_bars:,} bars: "
          f"momentum_rank lookback 21..252/21 x top_n {{5, 10, 20}} x rebalance {{W, M, Q}}"
          f" x stop_loss {{none, 10%}} = {n} portfolios, "
          f"{common.rank_bar_evaluations() / 1e6:,.1f} M asset-bar evaluations; no fees")
    rows, entry = run_and_table(run_child, print_table, ("sweepbt_rank", "vectorbt_rank"),
                                "R", quick)
    if entry is None:
        return {"rows": rows}
    ref, vbt = rows
    print("  sweepbt: orders at the next open, the 10% stop on every bar; vectorbt: "
          "target-percent orders at the close,")
    print("  one cash-sharing group per combo (call_seq='auto'); no per-position stop in "
          "from_orders, so its")
    print("  stop_loss=0.10 half repeats the no-stop half (same work)")
    if "error" not in vbt:
        chk = check_agreement(ref, vbt, rtol)
        ok = not chk["mismatches"] and not chk["missing"] and chk["compared"] > 0
        print(f"  agreement on the {chk['compared']} no-stop portfolios (sweepbt re-run with "
              f"fill='close'): {'PASS' if ok else 'FAIL'}, {len(chk['mismatches'])} "
              f"mismatches, {chk['missing']} unmatched, largest relative total_return "
              f"difference {chk['worst_rel']:.1e}")
        for key, ra, rb in chk["mismatches"][:10]:
            print(f"    (lookback, top_n, rebalance)={key}: total_return {ra!r} vs {rb!r}")
        ratio = vbt["time_s"] / ref["time_s"]
        verdict = "meets" if ratio >= TARGET_RATIO else "below"
        print(f"  vectorbt / sweepbt: {ratio:,.0f}x ({verdict} the {TARGET_RATIO:.0f}x target)")
        entry["agreement"] = {"pass": ok, **{k: v for k, v in chk.items()
                                             if k != "mismatches"},
                              "n_mismatches": len(chk["mismatches"])}
        entry["ratio"] = ratio
    return entry


def scale_section(run_child, print_table, quick):
    """The scale case RS: one sweepbt sweep of 1,000 portfolios on 500 assets."""
    n_assets, n_bars = common.RANK_SCALE_SHAPE
    n = common.n_rank_combos(common.RANK_SCALE_GRID)
    evals = common.rank_bar_evaluations(common.RANK_SCALE_SHAPE, common.RANK_SCALE_GRID)
    print()
    print(f"== RS: rank scale case, {n_assets} assets x {n_bars:,} bars: momentum_rank "
          f"lookback 10..250/10 x top_n {{5, 10, 20, 30, 50}} x rebalance {{W, M, Q, Y}} x "
          f"stop_loss {{none, 10%}} = {n:,} portfolios, {evals / 1e9:,.2f} G asset-bar "
          "evaluations (sweepbt only)")
    rows, entry = run_and_table(run_child, print_table, ("sweepbt_rank_scale",), "RS", quick)
    if entry is None:
        return {"rows": rows}
    ref = rows[0]
    fast = ref["time_s"] < TARGET_SCALE_S
    small = ref["peak_rss_mib"] < TARGET_SCALE_MIB
    print(f"  targets: warm time under {TARGET_SCALE_S:.0f} s: {'met' if fast else 'MISSED'}"
          f" ({ref['time_s']:.2f} s); peak RSS under 2 GB: {'met' if small else 'MISSED'} "
          f"({ref['peak_rss_mib']:,.0f} MiB)")
    return {**entry, "targets_met": fast and small}
