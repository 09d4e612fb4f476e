"""Workload P of compare_peers.py: 1,080 portfolio backtests (one cash balance each) in
sweepbt and in vectorbt (``from_signals`` with one cash-sharing group per combo).

Data: ``common.PORTFOLIO_SHAPE`` (8 assets x 6,300 daily bars, seeded GBM). Grid:
``common.PORTFOLIO_GRID`` (90 fast/slow pairs x stop-loss {none, 5, 10}% x size {0.125,
0.25} x max_positions {none, 4}), orders at the signal bar's close, no fees.

Timing: sweepbt runs workload P as specified (``size`` a fraction of equity). vectorbt has
neither equity-fraction sizing capped by free cash nor a position cap, so it runs the same
1,080 groups (8,640 columns) with ``size_type="value"`` (size x init_cash per entry) and
the ``max_positions=4`` half identical to the uncapped half: the same amount of work.

Agreement (where the semantics coincide): sweepbt re-runs the uncapped half with
``size_type="value"`` (1,250 and 2,500 of cash per entry), which is vectorbt's value
sizing with partial fills when cash runs short, sells before buys (``call_seq="auto"``);
each of the 540 portfolios' final total_return must agree to 1e-9 and its trade count
exactly.
"""

from __future__ import annotations

import time

from benchmarks import common
from peer_tools import best_of as _best_of, maxrss_mib as _maxrss_mib, tiled_crossings

INIT_CASH = 10_000.0


def _value_grid():
    """The uncapped half of workload P with value sizing (the agreement run)."""
    g = common.PORTFOLIO_GRID
    return {"fast": g["fast"], "slow": g["slow"], "stop_loss": g["stop_loss"],
            "size": [s * INIT_CASH for s in g["size"]]}


def engine_sweepbt(_size, quick):
    import numba

    import sweepbt as sb

    bundle = common.gbm_bundle(*common.PORTFOLIO_SHAPE)
    baseline = _maxrss_mib()
    t0 = time.perf_counter()
    common.run_portfolio_sweep(bundle)
    first = time.perf_counter() - t0
    repeats = 3 if quick else 7
    best, times, res = _best_of(lambda: common.run_portfolio_sweep(bundle), repeats)
    peak = _maxrss_mib()
    agree = sb.sweep(bundle, "sma_cross", **_value_grid(), fill="close",
                     constraint="fast < slow", portfolio=True, size_type="value",
                     init_cash=INIT_CASH)
    t = agree.table
    return {
        "engine": "sweepbt", "threads": numba.get_num_threads(), "first_call_s": first,
        "time_s": best, "times_s": times, "timing": f"best of {repeats} warm runs",
        "n_backtests": res.n_backtests, "bar_evaluations": res.bar_evaluations,
        "kernel_throughput": res.throughput, "baseline_rss_mib": baseline,
        "peak_rss_mib": peak,
        "rows": {k: t.column(k).to_pylist()
                 for k in ("fast", "slow", "stop_loss", "size", "total_return", "n_trades")},
    }


def engine_vectorbt(_size, quick):
    import itertools

    import numpy as np
    import pandas as pd
    import vectorbt as vbt

    n_assets, n_bars = common.PORTFOLIO_SHAPE
    data = common.gbm_ohlc(n_assets, n_bars)
    index = pd.DatetimeIndex(common.timestamps(n_bars))
    symbols = common.symbols(n_assets)
    g = common.PORTFOLIO_GRID
    baseline = _maxrss_mib()

    def run():
        close = pd.DataFrame(data["close"].T, index=index, columns=pd.Index(symbols))
        risk = list(itertools.product(g["stop_loss"], g["size"], g["max_positions"]))
        entries, exits = tiled_crossings(vbt, pd, close, g, risk,
                                         ["sl", "size", "max_positions"])
        n_cols = entries.shape[1]
        per_risk = n_cols // len(risk)

        def tiled(name):
            return pd.DataFrame(np.tile(data[name].T, (1, n_cols // n_assets)), index=index,
                                columns=entries.columns)

        sl = np.repeat([np.nan if r[0] is None else r[0] for r in risk], per_risk)[None, :]
        size = np.repeat([r[1] * INIT_CASH for r in risk], per_risk)[None, :]
        groups = np.arange(n_cols) // n_assets  # one group per (risk, fast, slow) combo
        pf = vbt.Portfolio.from_signals(
            tiled("close"), entries, exits, open=tiled("open"), high=tiled("high"),
            low=tiled("low"), sl_stop=sl, size=size, size_type="value",
            group_by=groups, cash_sharing=True, call_seq="auto", init_cash=INIT_CASH,
            freq="D", stop_entry_price="fillprice", stop_exit_price="stoplimit",
            upon_stop_exit="close")
        total_return = pf.total_return().to_numpy()
        n_trades = pf.trades.count().to_numpy()
        pf.sharpe_ratio()
        pf.max_drawdown()
        first_cols = entries.columns[::n_assets]
        return first_cols, total_return, n_trades

    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    repeats = 1 if quick else 2
    best, times, (cols, total_return, n_trades) = _best_of(run, repeats)
    # column keys: (sl, size, max_positions, fast, slow, symbol)
    keep = [k for k, c in enumerate(cols) if c[2] is None or c[2] != c[2]]
    return {
        "engine": "vectorbt", "threads": 1, "first_call_s": first, "time_s": best,
        "times_s": times, "timing": f"best of {repeats} warm run{'s' * (repeats > 1)}",
        "n_backtests": int(len(cols)),
        "bar_evaluations": int(len(cols)) * n_assets * n_bars,
        "baseline_rss_mib": baseline, "peak_rss_mib": _maxrss_mib(),
        "rows": {"stop_loss": [None if cols[k][0] != cols[k][0] else float(cols[k][0])
                               for k in keep],
                 "size": [float(cols[k][1]) * INIT_CASH for k in keep],
                 "fast": [int(cols[k][3]) for k in keep],
                 "slow": [int(cols[k][4]) for k in keep],
                 "total_return": [float(total_return[k]) for k in keep],
                 "n_trades": [int(n_trades[k]) for k in keep]},
    }


def check_agreement(sbt, vbt, rtol):
    """Match each of sweepbt's value-sized portfolios with vectorbt's group."""
    def keyed(rows):
        return {(int(rows["fast"][k]), int(rows["slow"][k]),
                 None if rows["stop_loss"][k] is None else round(rows["stop_loss"][k], 9),
                 round(rows["size"][k], 6)): (rows["total_return"][k], int(rows["n_trades"][k]))
                for k in range(len(rows["fast"]))}

    a, b = keyed(sbt["rows"]), keyed(vbt["rows"])
    bad, worst = [], 0.0
    for key in a.keys() & b.keys():
        (ra, na), (rb, nb) = a[key], b[key]
        rel = abs(ra - rb) / max(1.0, abs(rb))
        worst = max(worst, rel)
        if rel > rtol or na != nb:
            bad.append((key, ra, rb, na, nb))
    return {"compared": len(a.keys() & b.keys()), "missing": len(set(a) ^ set(b)),
            "mismatches": bad, "worst_rel": worst}
