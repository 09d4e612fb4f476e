"""Shared workloads for the asv suite, the pytest micro-benchmarks and compare_peers.py.

Everything here is deterministic (seeded): the same call gives the same arrays on every
machine, so figures from different commits and different engines measure the same work.

Data: geometric Brownian motion closes with consistent OHLC bars (the open gaps from the
previous close, the high/low extend past max/min(open, close)), so stops and take-profits
fire intrabar and at gapped opens, as on real daily data.

Grids (``sma_cross``, ``fill="close"``, ``fees=0.001``, ``constraint="fast < slow"``):

====  ======================  =====================================  ===========
size  data                    grid                                   backtests
====  ======================  =====================================  ===========
S     4 assets x 2,520 bars   fast 5..50/5, slow 20..200/20, 3 SL,   3,240
                              3 TP (810 combos)
L     4 assets x 2,520 bars   as S with 9 SL x 9 TP (7,290 combos)   29,160
XL    1 asset x 2,520 bars    fast 100 x slow 100 x 10 SL x 10 TP    1,000,000 before
                              (1,000,000 combos before fast < slow)  the constraint
P     8 assets x 6,300 bars   fast/slow as S, SL {none, 5, 10}% x    1,080
                              size {0.125, 0.25} x max_positions     portfolios
                              {none, 4}; portfolio=True, no fees
R     100 assets x 5040 bars  momentum_rank lookback 21..252/21 x    216
                              top_n {5, 10, 20} x rebalance {W, M,   portfolios
                              Q} x SL {none, 10}%; next-open fills
RS    500 assets x 5040 bars  momentum_rank lookback 10..250/10 x    1,000
                              top_n {5, 10, 20, 30, 50} x rebalance  portfolios
                              {W, M, Q, Y} x SL {none, 10}%
====  ======================  =====================================  ===========
"""

from __future__ import annotations

import itertools

import numpy as np

SEED = 20240601
DAILY_BARS = 2520  # ten years of trading days

FIXED = {"fees": 0.001, "fill": "close", "constraint": "fast < slow"}
#: a broker's commission on top of FIXED's fees: per share, with a minimum per order
BROKER_COSTS = {"fees_per_share": 0.005, "min_fees": 1.0}

FAST_S = list(range(5, 55, 5))  # 5, 10, ..., 50
SLOW_S = list(range(20, 220, 20))  # 20, 40, ..., 200
SL_S = [0.02, 0.05, 0.08]
TP_S = [0.05, 0.10, 0.20]
SL_L = [round(0.01 * k, 2) for k in range(1, 10)]  # 0.01 .. 0.09
TP_L = [round(0.025 * k, 3) for k in range(1, 10)]  # 0.025 .. 0.225
FAST_XL = list(range(2, 202, 2))  # 100 values: 2 .. 200
SLOW_XL = list(range(10, 510, 5))  # 100 values: 10 .. 505
SL_XL = [round(0.01 * k, 2) for k in range(1, 11)]  # 10 values: 0.01 .. 0.10
TP_XL = [round(0.02 * k, 2) for k in range(1, 11)]  # 10 values: 0.02 .. 0.20

GRIDS = {
    "S": {"fast": FAST_S, "slow": SLOW_S, "stop_loss": SL_S, "take_profit": TP_S},
    "L": {"fast": FAST_S, "slow": SLOW_S, "stop_loss": SL_L, "take_profit": TP_L},
    "XL": {"fast": FAST_XL, "slow": SLOW_XL, "stop_loss": SL_XL, "take_profit": TP_XL},
}
#: (n_assets, n_bars) of each size's data
SHAPES = {"S": (4, DAILY_BARS), "L": (4, DAILY_BARS), "XL": (1, DAILY_BARS)}

#: workload P: portfolio backtests (one cash balance per combo) on 8 assets x 6,300 daily
#: bars (25 years); 90 fast/slow pairs x 3 stop-losses x 2 sizes x 2 position caps
PORTFOLIO_SHAPE = (8, 6300)
PORTFOLIO_GRID = {"fast": FAST_S, "slow": SLOW_S, "stop_loss": [None, 0.05, 0.10],
                  "size": [0.125, 0.25], "max_positions": [None, 4]}
PORTFOLIO_FIXED = {"fill": "close", "constraint": "fast < slow", "portfolio": True}

#: workload R: rank-and-rebalance portfolios (``momentum_rank``, equal weights, one cash
#: balance per combo, orders at the next open, no fees) on 100 assets x 5,040 daily bars
#: (20 years): 12 lookbacks x 3 top_n x 3 schedules x 2 stop-losses = 216 portfolios
RANK_SHAPE = (100, 5040)
RANK_GRID = {"lookback": list(range(21, 253, 21)), "top_n": [5, 10, 20],
             "rebalance": ["W", "M", "Q"], "stop_loss": [None, 0.10]}
#: the rank scale case: 500 assets x 5,040 bars, 25 lookbacks x 5 top_n x 4 schedules x
#: 2 stop-losses = 1,000 portfolios
RANK_SCALE_SHAPE = (500, 5040)
RANK_SCALE_GRID = {"lookback": list(range(10, 251, 10)), "top_n": [5, 10, 20, 30, 50],
                   "rebalance": ["W", "M", "Q", "Y"], "stop_loss": [None, 0.10]}
#: the reduced workload R of asv: R's data, lookbacks {63, 126, 189, 252} (72 portfolios)
RANK_ASV_GRID = {**RANK_GRID, "lookback": [63, 126, 189, 252]}

#: a tiny sweep that compiles (or loads from the cache) every kernel a sweep uses
TINY_GRID = {"fast": [3, 5], "slow": [8, 12], "stop_loss": [0.05, None],
             "take_profit": [0.1, None]}


def gbm_ohlc(n_assets, n_bars, seed=SEED, sigma=0.018, mu=0.0003):
    """Seeded GBM OHLC arrays, each float64 ``(n_assets, n_bars)``.

    Daily log-return drift ``mu`` and volatility ``sigma``; the open is the previous close
    times an overnight gap (a quarter of the daily volatility); high and low reach past
    max/min(open, close) by a half-normal amount.
    """
    rng = np.random.default_rng(seed)
    log_ret = rng.normal(mu, sigma, size=(n_assets, n_bars))
    close = 100.0 * np.exp(np.cumsum(log_ret, axis=1))
    prev_close = np.empty_like(close)
    prev_close[:, 0] = 100.0
    prev_close[:, 1:] = close[:, :-1]
    open_ = prev_close * np.exp(rng.normal(0.0, sigma / 4, size=close.shape))
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * np.exp(np.abs(rng.normal(0.0, sigma / 2, size=close.shape)))
    low = bottom * np.exp(-np.abs(rng.normal(0.0, sigma / 2, size=close.shape)))
    volume = rng.integers(1_000, 100_000, size=close.shape).astype(np.float64)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def timestamps(n_bars, freq="D"):
    """``n_bars`` datetime64[ns] stamps: business days from 2000-01-03 (``"D"``) or minutes
    from 2000-01-03 (``"min"``, for series too long for daily stamps)."""
    if freq == "D":
        days = np.busday_offset(np.datetime64("2000-01-03", "D"), np.arange(n_bars),
                                roll="forward")
        return days.astype("datetime64[ns]")
    if freq == "min":
        return (np.datetime64("2000-01-03T00:00", "ns")
                + np.arange(n_bars, dtype=np.int64) * np.timedelta64(60, "s"))
    raise ValueError(f"unknown freq {freq!r}")


def symbols(n_assets):
    return [f"S{k:03d}" for k in range(n_assets)]


def gbm_bundle(n_assets, n_bars, seed=SEED, freq=None):
    """A validated :class:`sweepbt.Bundle` of :func:`gbm_ohlc` data.

    ``freq`` defaults to business days, or minutes beyond 100,000 bars (daily stamps would
    run past the year 2262, the end of datetime64[ns])."""
    import sweepbt as sb

    if freq is None:
        freq = "D" if n_bars <= 100_000 else "min"
    d = gbm_ohlc(n_assets, n_bars, seed)
    return sb.Bundle.from_arrays(d["open"], d["high"], d["low"], d["close"], d["volume"],
                                 timestamps=timestamps(n_bars, freq),
                                 symbols=symbols(n_assets))


def long_table(n_assets, n_bars, seed=SEED, freq="min"):
    """The same data as a long-format ``pyarrow.Table`` (one row per timestamp x symbol,
    sorted by timestamp then symbol), as a user's Parquet file would hold it."""
    import pyarrow as pa

    d = gbm_ohlc(n_assets, n_bars, seed)
    ts = timestamps(n_bars, freq)
    n = n_assets * n_bars
    # row r = bar r // n_assets, asset r % n_assets: transpose to bar-major order
    cols = {k: np.ascontiguousarray(d[k].T).reshape(n) for k in
            ("open", "high", "low", "close", "volume")}
    sym = pa.DictionaryArray.from_arrays(
        pa.array(np.tile(np.arange(n_assets, dtype=np.int32), n_bars)),
        pa.array(symbols(n_assets)))
    return pa.table({
        "timestamp": pa.array(np.repeat(ts, n_assets), pa.timestamp("ns", tz="UTC")),
        "symbol": sym,
        **{k: pa.array(v) for k, v in cols.items()},
    })


def grid_combos(grid):
    """The combos of ``grid`` in sweepbt's order (cartesian product, last axis fastest),
    with ``fast < slow``: a list of ``(fast, slow, stop_loss, take_profit)``."""
    return [c for c in itertools.product(grid["fast"], grid["slow"], grid["stop_loss"],
                                         grid["take_profit"]) if c[0] < c[1]]


def n_combos(size):
    return len(grid_combos(GRIDS[size]))


def n_backtests(size):
    return n_combos(size) * SHAPES[size][0]


def bar_evaluations(size):
    n_assets, n_bars = SHAPES[size]
    return n_combos(size) * n_assets * n_bars


def run_sweep(bundle, size, **kwargs):
    """``sb.sweep`` of grid ``size`` on ``bundle`` with the fixed options."""
    import sweepbt as sb

    return sb.sweep(bundle, "sma_cross", **GRIDS[size], **FIXED, **kwargs)


def portfolio_combos():
    """Workload P's combos in sweepbt's order: ``(fast, slow, stop_loss, size,
    max_positions)`` with fast < slow (1,080)."""
    g = PORTFOLIO_GRID
    return [c for c in itertools.product(g["fast"], g["slow"], g["stop_loss"], g["size"],
                                         g["max_positions"]) if c[0] < c[1]]


def portfolio_bar_evaluations():
    """Asset-bar evaluations of workload P: combos x assets x bars."""
    n_assets, n_bars = PORTFOLIO_SHAPE
    return len(portfolio_combos()) * n_assets * n_bars


def run_portfolio_sweep(bundle, **kwargs):
    """``sb.sweep`` of workload P on ``bundle``."""
    import sweepbt as sb

    return sb.sweep(bundle, "sma_cross", **{**PORTFOLIO_GRID, **PORTFOLIO_FIXED, **kwargs})


def n_rank_combos(grid=None):
    """The number of portfolios of a rank grid (every axis crossed, no constraint)."""
    g = RANK_GRID if grid is None else grid
    n = 1
    for values in g.values():
        n *= len(values)
    return n


def rank_bar_evaluations(shape=None, grid=None):
    """Asset-bar evaluations of a rank sweep: portfolios x assets x bars."""
    n_assets, n_bars = RANK_SHAPE if shape is None else shape
    return n_rank_combos(grid) * n_assets * n_bars


def run_rank_sweep(bundle, grid=None, **kwargs):
    """``sb.sweep`` of ``momentum_rank`` over ``grid`` (default :data:`RANK_GRID`)."""
    import sweepbt as sb

    return sb.sweep(bundle, "momentum_rank", **{**(RANK_GRID if grid is None else grid),
                                                **kwargs})


def warm_rank_kernels():
    """Compile (or load from numba's cache) the rank kernels on a tiny problem."""
    import sweepbt as sb

    bundle = gbm_bundle(6, 300, seed=1)
    for fill in ("next_open", "close"):
        sb.sweep(bundle, "momentum_rank", lookback=[5, 10], top_n=[2], rebalance=["W", "M"],
                 stop_loss=[None, 0.1], fill=fill)
    return bundle


def warm_kernels():
    """Compile (or load from numba's cache) every kernel a sweep and a backtest use, on a
    tiny problem, so that compile time never lands inside a timed benchmark."""
    import sweepbt as sb

    bundle = gbm_bundle(2, 300, seed=1)
    sb.sweep(bundle, "sma_cross", **TINY_GRID, **FIXED)
    sb.backtest(bundle, "sma_cross", fast=5, slow=20, stop_loss=0.05, take_profit=0.1,
                fees=0.001, fill="close")
    sb.sweep(bundle, "sma_cross", **TINY_GRID, **PORTFOLIO_FIXED)
    return bundle


#: the single backtest whose latency is measured
BACKTEST = {"fast": 10, "slow": 50, "stop_loss": 0.05, "take_profit": 0.10, "fees": 0.001,
            "fill": "close"}


def run_backtest(bundle):
    """``sb.backtest`` of :data:`BACKTEST` on ``bundle``."""
    import sweepbt as sb

    return sb.backtest(bundle, "sma_cross", **BACKTEST)


#: the workloads ``workload`` builds: the per-asset sweeps, P, R (asv's reduced grid), B
#: (one recorded backtest of one combo on S's data: the shell's overhead per call) and Lc
#: (L with BROKER_COSTS)
WORKLOADS = ("S", "L", "XL", "P", "R", "B", "Lc")


def workload(name):
    """``(data, run)`` of workload ``name`` (one of WORKLOADS): ``run(data)`` runs it
    once."""
    import sweepbt as sb

    if name == "P":
        return gbm_bundle(*PORTFOLIO_SHAPE), run_portfolio_sweep
    if name == "R":
        return gbm_bundle(*RANK_SHAPE), lambda b: run_rank_sweep(b, RANK_ASV_GRID)
    if name == "B":
        one = {k: v for k, v in FIXED.items() if k != "constraint"}
        return gbm_bundle(*SHAPES["S"]), lambda b: sb.backtest(b, "sma_cross", fast=10,
                                                               slow=30, **one)
    if name == "Lc":
        return gbm_bundle(*SHAPES["L"]), lambda b: run_sweep(b, "L", **BROKER_COSTS)
    return gbm_bundle(*SHAPES[name]), lambda b: run_sweep(b, name)
