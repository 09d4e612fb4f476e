#!/usr/bin/env python
"""Side-by-side: the same parameter sweep in sweepbt, vectorbt and backtesting.py.

Workload (asv_bench/benchmarks/common.py, size S): seeded GBM OHLC data, 4 assets x 2,520
daily bars; ``sma_cross`` with fast 5..50 step 5 and slow 20..200 step 20 (fast < slow),
stop-loss {2, 5, 8}% x take-profit {5, 10, 20}%, fees 0.1%, orders filled at the close of
the signal bar: 810 combos x 4 assets = 3,240 backtests. Size L (9 stop-loss x 9
take-profit values, 29,160 backtests) runs in sweepbt alone, on all threads and on one,
plus a "no stops" variant of the same size (81 fee levels instead of the stop pairs) whose
positions stay open from crossing to crossing.

Every engine runs in its own subprocess (this script re-invoking itself with ``--engine``)
so that its peak memory (``ru_maxrss``) is its own. Each first runs the sweep once (the
first call: numba compilation or cache loading, reported separately), then times warm runs.

Agreement check: every one of sweepbt's 3,240 backtests is matched with vectorbt's column
for the same (fast, slow, stop_loss, take_profit, asset); ``total_return`` must agree to
a relative 1e-9 and ``n_trades`` exactly (both count a final open trade).

Usage::

    python asv_bench/compare_peers.py                # sizes S, L and P (portfolios)
    python asv_bench/compare_peers.py --sizes R,RS   # rank portfolios vs vectorbt; scale case
    python asv_bench/compare_peers.py --quick        # fewer repeats, smaller backtesting.py slice
    python asv_bench/compare_peers.py --sizes S --json out.json
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from benchmarks import common  # noqa: E402
import peers_portfolio  # noqa: E402
import peers_rank  # noqa: E402
from peer_tools import (best_of as _best_of, maxrss_mib as _maxrss_mib,  # noqa: E402
                        run_and_table, tiled_crossings)

RTOL = 1e-9
TARGET_L = 600e6  # bar-evaluations per second, the issue's target for size L

# vectorbt options that make its from_signals follow sweepbt's semantics (see docs)
VBT_ALIGNMENT = {
    "stop_entry_price": "fillprice",  # stop/take levels measured from the fill price
    "stop_exit_price": "stoplimit",  # exit at the stop level, or the open when gapped
    "upon_stop_exit": "close",  # a stop closes the position (no reversal)
    "size": "inf (default): all cash, fees included",
    "open/high/low": "passed, so stops fire intrabar",
}


# ----------------------------------------------------------------------------------------
# measurement helpers (child side)
# ----------------------------------------------------------------------------------------

# ----------------------------------------------------------------------------------------
# engines (each runs in its own subprocess)
# ----------------------------------------------------------------------------------------

def _no_stops_grid(size):
    """The size's fast/slow pairs with no stop or take-profit, and as many fee levels
    (0 to 0.2 %) as the size has stop pairs: the same number of backtests, but positions
    stay open from one crossing to the next (far fewer flat bars to skip)."""
    grid = common.GRIDS[size]
    n = len(grid["stop_loss"]) * len(grid["take_profit"])
    return {"fast": grid["fast"], "slow": grid["slow"],
            "fees": [round(0.002 * k / (n - 1), 6) for k in range(n)]}


def engine_sweepbt(size, quick, threads=None, no_stops=False):
    import numba
    import numpy as np

    import sweepbt as sb

    n_assets, n_bars = common.SHAPES[size]
    bundle = common.gbm_bundle(n_assets, n_bars)
    baseline = _maxrss_mib()

    def run():
        if no_stops:
            fixed = {k: v for k, v in common.FIXED.items() if k != "fees"}
            return sb.sweep(bundle, "sma_cross", **_no_stops_grid(size), **fixed,
                            threads=threads)
        return common.run_sweep(bundle, size, threads=threads)

    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    repeats = 5 if quick else 15
    best, times, res = _best_of(run, repeats)
    table = res.table
    name = "sweepbt" + (" no stops" if no_stops else "")
    out = {
        "engine": name if threads is None else f"{name} threads={threads}",
        "threads": threads or numba.get_num_threads(),
        "first_call_s": first,
        "time_s": best,
        "times_s": times,
        "timing": f"best of {repeats} warm runs",
        "n_backtests": res.n_backtests,
        "bar_evaluations": res.bar_evaluations,
        "kernel_throughput": res.throughput,
        "exposure": float(np.mean(table.column("exposure").to_numpy())),
        "baseline_rss_mib": baseline,
        "peak_rss_mib": _maxrss_mib(),
    }
    if size == "S" and threads is None and not no_stops:
        out["rows"] = {
            "fast": table.column("fast").to_pylist(),
            "slow": table.column("slow").to_pylist(),
            "stop_loss": table.column("stop_loss").to_pylist(),
            "take_profit": table.column("take_profit").to_pylist(),
            "symbol": table.column("symbol").to_pylist(),
            "total_return": table.column("total_return").to_pylist(),
            "n_trades": table.column("n_trades").to_pylist(),
        }
    return out


def _vbt_sweep(vbt, pd, np, data, grid, n_assets, index, symbols):
    """vectorbt's usual way: one MA per (fast, slow) pair, crossovers, the stop grid tiled
    across columns, one Portfolio.from_signals over every column, then the metrics."""
    import itertools

    t0 = time.perf_counter()
    close = pd.DataFrame(data["close"].T, index=index, columns=pd.Index(symbols, name="symbol"))
    risk = list(itertools.product(grid["stop_loss"], grid["take_profit"]))
    entries, exits = tiled_crossings(vbt, pd, close, grid, risk, ["sl_stop", "tp_stop"])
    n_cols = entries.shape[1]
    per_risk = n_cols // len(risk)

    def tiled(name):
        return pd.DataFrame(np.tile(data[name].T, (1, n_cols // n_assets)), index=index,
                            columns=entries.columns)

    sl = np.repeat([r[0] for r in risk], per_risk)[None, :]
    tp = np.repeat([r[1] for r in risk], per_risk)[None, :]
    t1 = time.perf_counter()
    pf = vbt.Portfolio.from_signals(
        tiled("close"), entries, exits, open=tiled("open"), high=tiled("high"),
        low=tiled("low"), sl_stop=sl, tp_stop=tp, fees=common.FIXED["fees"],
        init_cash=10_000.0, freq="D", stop_entry_price="fillprice",
        stop_exit_price="stoplimit", upon_stop_exit="close")
    total_return = pf.total_return()
    n_trades = pf.trades.count()
    pf.sharpe_ratio()
    pf.max_drawdown()
    t2 = time.perf_counter()
    return entries.columns, total_return.to_numpy(), n_trades.to_numpy(), t1 - t0, t2 - t1


def engine_vectorbt(size, quick):
    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    n_assets, n_bars = common.SHAPES[size]
    data = common.gbm_ohlc(n_assets, n_bars)
    index = pd.DatetimeIndex(common.timestamps(n_bars))
    symbols = common.symbols(n_assets)
    grid = common.GRIDS[size]
    baseline = _maxrss_mib()

    def run():
        return _vbt_sweep(vbt, pd, np, data, grid, n_assets, index, symbols)

    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    repeats = 1 if quick else 2
    best, times, (columns, total_return, n_trades, t_sig, t_sim) = _best_of(run, repeats)
    return {
        "engine": "vectorbt",
        "threads": 1,
        "first_call_s": first,
        "time_s": best,
        "times_s": times,
        "timing": f"best of {repeats} warm run{'s' if repeats > 1 else ''}",
        "split": f"signals+tiling {t_sig:.2f} s, from_signals+metrics {t_sim:.2f} s",
        "n_backtests": int(len(columns)),
        "bar_evaluations": int(len(columns)) * n_bars,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": _maxrss_mib(),
        "rows": {
            "stop_loss": [float(c[0]) for c in columns],
            "take_profit": [float(c[1]) for c in columns],
            "fast": [int(c[2]) for c in columns],
            "slow": [int(c[3]) for c in columns],
            "symbol": [str(c[4]) for c in columns],
            "total_return": total_return.tolist(),
            "n_trades": [int(x) for x in n_trades],
        },
    }


def engine_backtesting(size, quick):
    """backtesting.py is single-asset and runs one Python loop per backtest: time
    ``Backtest.optimize`` over a slice of the grid on one asset, serially, and extrapolate
    the per-backtest time to the whole sweep."""
    import backtesting
    import backtesting.backtesting as bt_module
    import numpy as np
    import pandas as pd
    from backtesting import Backtest, Strategy

    class SerialPool:
        """Stands in for backtesting.Pool: optimize() runs every backtest in this process."""

        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def imap(self, fn, iterable):
            return map(fn, iterable)

    backtesting.Pool = SerialPool
    bt_module._tqdm = lambda seq, **_: seq  # no progress bars

    def sma(values, n):
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        fast = 10
        slow = 50
        sl = 0.05
        tp = 0.10

        def init(self):
            self.f = self.I(sma, self.data.Close, self.fast)
            self.s = self.I(sma, self.data.Close, self.slow)

        def next(self):
            f0, f1, s0, s1 = self.f[-1], self.f[-2], self.s[-1], self.s[-2]
            if f0 > s0 and f1 <= s1:
                if not self.position:
                    p = self.data.Close[-1]
                    self.buy(sl=p * (1 - self.sl), tp=p * (1 + self.tp))
            elif f0 < s0 and f1 >= s1 and self.position:
                self.position.close()

    n_assets, n_bars = common.SHAPES[size]
    d = common.gbm_ohlc(n_assets, n_bars)
    df = pd.DataFrame({"Open": d["open"][0], "High": d["high"][0], "Low": d["low"][0],
                       "Close": d["close"][0], "Volume": d["volume"][0]},
                      index=pd.DatetimeIndex(common.timestamps(n_bars)))
    bt = Backtest(df, SmaCross, cash=10_000, commission=common.FIXED["fees"],
                  trade_on_close=True)
    grid = common.GRIDS[size]
    mid = len(grid["stop_loss"]) // 2
    if quick:  # 5 fast x 5 slow values (fast < slow), one stop pair
        sub = {"fast": grid["fast"][::2], "slow": grid["slow"][::2]}
    else:  # every fast/slow pair, one stop pair
        sub = {"fast": grid["fast"], "slow": grid["slow"]}
    sub.update(sl=[grid["stop_loss"][mid]], tp=[grid["take_profit"][mid]])
    baseline = _maxrss_mib()
    t0 = time.perf_counter()
    bt.run(fast=10, slow=60, sl=0.05, tp=0.1)
    first = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        _, heatmap = bt.optimize(**sub, constraint=lambda p: p.fast < p.slow,
                                 maximize="Return [%]", max_tries=None, return_heatmap=True)
        elapsed = time.perf_counter() - t0
    n_run = int(np.isfinite(heatmap.to_numpy()).sum()) or len(heatmap)
    n_full = common.n_backtests(size)
    per = elapsed / len(heatmap)
    return {
        "engine": "backtesting.py",
        "threads": 1,
        "first_call_s": first,
        "time_s": per * n_full,
        "measured_s": elapsed,
        "measured_backtests": int(len(heatmap)),
        "extrapolated": True,
        "timing": (f"extrapolated: {len(heatmap)} backtests on 1 asset took {elapsed:.2f} s "
                   f"({per * 1e3:.1f} ms each) x {n_full:,}"),
        "n_backtests": n_full,
        "bar_evaluations": n_full * n_bars,
        "n_finite": n_run,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": _maxrss_mib(),
    }


ENGINES = {"sweepbt": engine_sweepbt, "sweepbt1": lambda s, q: engine_sweepbt(s, q, 1),
           "sweepbt_nostops": lambda s, q: engine_sweepbt(s, q, no_stops=True),
           "vectorbt": engine_vectorbt, "backtesting": engine_backtesting,
           "sweepbt_portfolio": peers_portfolio.engine_sweepbt,
           "vectorbt_portfolio": peers_portfolio.engine_vectorbt,
           "sweepbt_rank": peers_rank.engine_sweepbt, "vectorbt_rank": peers_rank.engine_vectorbt,
           "sweepbt_rank_scale": peers_rank.engine_sweepbt_scale}


# ----------------------------------------------------------------------------------------
# parent side
# ----------------------------------------------------------------------------------------

def machine_description():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        for line in info.splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        fam = [ln.split(":", 1)[1].strip() for ln in info.splitlines()
               if ln.startswith(("cpu family", "model\t"))][:2]
        if len(fam) == 2:
            cpu += f" (family {fam[0]}, model {fam[1]})"
    except OSError:
        pass
    ram = "unknown"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    ram = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {}
    from importlib import metadata

    for pkg in ("sweepbt", "numba", "numpy", "pyarrow", "vectorbt", "backtesting", "pandas"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "numba_threads": os.environ.get("NUMBA_NUM_THREADS", f"default ({usable})"),
        "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR", "(default: __pycache__)"),
        "loadavg_start": _loadavg(),
        "commit": _commit(),
    }


def _commit():
    """The checkout's commit, with ``+dirty`` when the working tree has changes."""
    root = os.path.dirname(HERE)
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "src",
                                "kernels"], capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _loadavg():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def run_child(engine, size, quick):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        cmd = [sys.executable, os.path.abspath(__file__), "--engine", engine, "--size", size,
               "--out", path] + (["--quick"] if quick else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            return {"engine": engine, "error": f"exit status {proc.returncode}: "
                    + (proc.stderr.strip().splitlines() or ["?"])[-1]}
        with open(path) as f:
            return json.load(f)
    finally:
        os.remove(path)


def check_agreement(sbt, vbt):
    """Match every sweepbt row with vectorbt's column for the same combo and asset."""
    def keyed(rows):
        out = {}
        for k in range(len(rows["symbol"])):
            key = (int(rows["fast"][k]), int(rows["slow"][k]), round(rows["stop_loss"][k], 9),
                   round(rows["take_profit"][k], 9), rows["symbol"][k])
            out[key] = (rows["total_return"][k], int(rows["n_trades"][k]))
        return out

    a, b = keyed(sbt["rows"]), keyed(vbt["rows"])
    missing = sorted(set(a) ^ set(b))
    bad = []
    worst = 0.0
    for key in a.keys() & b.keys():
        (ra, na), (rb, nb) = a[key], b[key]
        rel = abs(ra - rb) / max(1.0, abs(rb))
        worst = max(worst, rel)
        if rel > RTOL or na != nb:
            bad.append((key, ra, rb, na, nb))
    return {"compared": len(a.keys() & b.keys()), "missing": len(missing),
            "mismatches": bad, "worst_rel": worst}


def _fmt_rate(x):
    return f"{x / 1e6:,.1f} M/s"


def print_table(rows, ref_time):
    head = (f"{'engine':<22} {'threads':>7} {'backtests':>10} {'time':>11} {'bar-evals/s':>14} "
            f"{'x sweepbt':>10} {'first call':>11} {'peak RSS':>10} {'RSS increase':>13}")
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['engine']:<22} ERROR {r['error']}")
            continue
        t = r["time_s"]
        star = "*" if r.get("extrapolated") else " "
        print(f"{r['engine']:<22} {r['threads']:>7} {r['n_backtests']:>10,} {t:>10.3f}s{star}"
              f"{_fmt_rate(r['bar_evaluations'] / t):>14} {t / ref_time:>9.1f}x "
              f"{r['first_call_s']:>10.2f}s {r['peak_rss_mib']:>7.0f} MiB "
              f"{r['peak_rss_mib'] - r['baseline_rss_mib']:>9.0f} MiB")
    for r in rows:
        if "error" in r:
            continue
        notes = [r["timing"]] + ([r["split"]] if "split" in r else [])
        if "exposure" in r:
            notes.append(f"mean exposure {r['exposure']:.1%} of bars in the market")
        print(f"  {r['engine']}: " + "; ".join(notes))


def main_parent(args):
    sizes = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in ("S", "L", "P", "R", "RS"):
            sys.exit(f"--sizes takes S, L, P, R and/or RS, got {s!r}")
    t_start = time.perf_counter()
    machine = machine_description()
    report = {"machine": machine, "quick": args.quick, "sizes": {}}
    print("sweepbt peer comparison" + ("  (--quick)" if args.quick else ""))
    print(f"date     {machine['date']}")
    print(f"cpu      {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
          f"({machine['usable_cpus']} usable), RAM {machine['ram']}")
    print(f"system   {machine['os']}, Python {machine['python']}, numba threads "
          f"{machine['numba_threads']}")
    print("versions " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
          + f"; sweepbt commit {machine['commit']}")
    print(f"load avg {machine['loadavg_start']} (1/5/15 min) at the start: other processes "
          "on the machine skew timings")
    print()
    print("Workload: seeded GBM OHLC, sma_cross fast 5..50/5 x slow 20..200/20 (fast < slow),")
    print("fees 0.1%, fill at the signal bar's close, init cash 10,000. Warm times (the first")
    print("call, which compiles or loads numba caches, is listed apart). Peak RSS: ru_maxrss")
    print("of the engine's own subprocess; increase = peak minus RSS after imports + data.")

    for size in sizes:
        if size in SECTIONS:  # the portfolio workloads, each with its own section
            report["sizes"][size] = SECTIONS[size](args.quick)
            continue
        n_assets, n_bars = common.SHAPES[size]
        print()
        if size == "S":
            print(f"== S: {n_assets} assets x {n_bars:,} bars, 3 SL x 3 TP: "
                  f"{common.n_combos(size):,} combos, {common.n_backtests(size):,} backtests, "
                  f"{common.bar_evaluations(size) / 1e6:,.1f} M bar-evaluations")
            engines = ["sweepbt", "sweepbt1", "vectorbt", "backtesting"]
        else:
            print(f"== L: {n_assets} assets x {n_bars:,} bars, 9 SL x 9 TP: "
                  f"{common.n_combos(size):,} combos, {common.n_backtests(size):,} backtests, "
                  f"{common.bar_evaluations(size) / 1e6:,.1f} M bar-evaluations "
                  "(sweepbt only)")
            engines = ["sweepbt", "sweepbt1", "sweepbt_nostops"]
        rows = [run_child(e, size, args.quick) for e in engines]
        ref = rows[0]
        if "error" in ref:
            print_table(rows, 1.0)
            report["sizes"][size] = {"rows": rows}
            continue
        print_table(rows, ref["time_s"])
        if any(r.get("extrapolated") for r in rows):
            print("  * extrapolated from a measured slice (backtesting.py is single-asset; "
                  "see its note)")
        entry = {"rows": [{k: v for k, v in r.items() if k != "rows"} for r in rows]}
        if size == "L":
            rate = ref["bar_evaluations"] / ref["time_s"]
            verdict = "meets" if rate >= TARGET_L else "below"
            print(f"  L throughput: {_fmt_rate(rate)} end to end ({verdict} the "
                  f"{TARGET_L / 1e6:.0f} M/s target); SweepResult.throughput (from the "
                  f"indicator stage on) {_fmt_rate(ref['kernel_throughput'])}")
            print("  'no stops': the same 90 fast/slow pairs x 81 fee levels, no stop or "
                  "take-profit, so")
            print("  positions run from crossing to crossing: fewer flat bars for the "
                  "simulation to skip.")
            entry["throughput"] = rate
        vbt = next((r for r in rows if r.get("engine") == "vectorbt"), None)
        if size == "S" and vbt is not None and "error" not in vbt:
            chk = check_agreement(ref, vbt)
            ok = not chk["mismatches"] and not chk["missing"]
            print()
            print("Agreement sweepbt vs vectorbt (total_return rel 1e-9, n_trades exact, "
                  "every backtest):")
            print("  vectorbt options: " + ", ".join(f"{k}={v}"
                                                      for k, v in VBT_ALIGNMENT.items()))
            print(f"  {'PASS' if ok else 'FAIL'}: {chk['compared'] - len(chk['mismatches']):,}"
                  f"/{chk['compared']:,} backtests agree, {chk['missing']} unmatched, "
                  f"largest relative total_return difference {chk['worst_rel']:.1e}")
            for key, ra, rb, na, nb in chk["mismatches"][:10]:
                print(f"    (fast, slow, sl, tp, symbol)={key}: total_return {ra!r} vs "
                      f"{rb!r}, n_trades {na} vs {nb}")
            print("  Not aligned: a bar that opens beyond the take-profit and also trades "
                  "down through the stop")
            print("  exits at the open ('take') in sweepbt but at the stop level in vectorbt "
                  "(it checks the stop")
            print("  level first); any such bar in this data would show up as a mismatch "
                  "above.")
            entry["agreement"] = {"pass": ok, **{k: v for k, v in chk.items()
                                                 if k != "mismatches"},
                                  "n_mismatches": len(chk["mismatches"])}
        report["sizes"][size] = entry
    total = time.perf_counter() - t_start
    report["loadavg_end"] = _loadavg()
    print(f"\ntotal wall time {total:.0f} s; load average at the end {report['loadavg_end']}")
    report["wall_s"] = total
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    failed = any(not e.get("agreement", {"pass": True})["pass"] for e in report["sizes"].values())
    return 1 if failed else 0


def portfolio_section(quick):
    """Workload P (asv_bench/peers_portfolio.py): 1,080 cash-sharing portfolios."""
    n_assets, n_bars = common.PORTFOLIO_SHAPE
    n = len(common.portfolio_combos())
    print()
    print(f"== P: portfolios of {n_assets} assets x {n_bars:,} bars sharing one cash "
          f"balance: {n:,} combos (90 fast/slow x SL {{none, 5, 10}}% x size {{0.125, "
          f"0.25}} x max_positions {{none, 4}}), {common.portfolio_bar_evaluations() / 1e6:,.1f}"
          " M asset-bar evaluations; no fees")
    rows, entry = run_and_table(run_child, print_table,
                                ("sweepbt_portfolio", "vectorbt_portfolio"), "P", quick)
    if entry is None:
        return {"rows": rows}
    ref, vbt = rows
    print("  vectorbt: one cash-sharing group per combo (group_by, cash_sharing=True, "
          "call_seq='auto'),")
    print("  value sizing (size x init_cash); no position cap, so the max_positions=4 "
          "half repeats the other")
    if "error" not in vbt:
        chk = peers_portfolio.check_agreement(ref, vbt, RTOL)
        ok = not chk["mismatches"] and not chk["missing"]
        print(f"  agreement on the {chk['compared']:,} value-sized, uncapped portfolios "
              f"(sweepbt re-run with size_type='value'): {'PASS' if ok else 'FAIL'}, "
              f"{len(chk['mismatches'])} mismatches, {chk['missing']} unmatched, largest "
              f"relative total_return difference {chk['worst_rel']:.1e}")
        for key, ra, rb, na, nb in chk["mismatches"][:10]:
            print(f"    (fast, slow, sl, size)={key}: total_return {ra!r} vs {rb!r}, "
                  f"n_trades {na} vs {nb}")
        entry["agreement"] = {"pass": ok, **{k: v for k, v in chk.items()
                                             if k != "mismatches"},
                              "n_mismatches": len(chk["mismatches"])}
        entry["ratio"] = vbt["time_s"] / ref["time_s"]
    return entry


SECTIONS = {"P": portfolio_section,
            "R": lambda quick: peers_rank.rank_section(run_child, print_table, quick, RTOL),
            "RS": lambda quick: peers_rank.scale_section(run_child, print_table, quick)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer timing repeats and a smaller backtesting.py slice")
    p.add_argument("--sizes", default="S,L,P",
                   help="comma-separated sizes to run: S, L, P (portfolios), R (rank "
                   "portfolios), RS (the rank scale case, sweepbt only)")
    p.add_argument("--json", help="also write every figure to this JSON file")
    p.add_argument("--engine", choices=sorted(ENGINES), help=argparse.SUPPRESS)
    p.add_argument("--size", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.engine:  # child: one engine, one size, result to --out
        result = ENGINES[args.engine](args.size, args.quick)
        with open(args.out, "w") as f:
            json.dump(result, f)
        return 0
    return main_parent(args)


if __name__ == "__main__":
    sys.exit(main())
