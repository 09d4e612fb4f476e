"""Micro-benchmarks of the compiled kernels (pytest-benchmark).

In a plain ``pytest`` run (the project's default ``--benchmark-disable``) each runs once as
an ordinary test and checks its output. Timed only on request::

    pytest tests/benchmarks --benchmark-only --benchmark-enable

Data and grid are asv_bench's workload S, from asv_bench/benchmarks/common.py (one
definition for the asv suite and these tests): 4 assets x 2,520 bars of seeded GBM OHLC;
sma_cross fast 5..50/5, slow 20..200/20 with fast < slow, 3 stop-loss x 3 take-profit
values, fees 0.1%, fill at the close: 810 combos, 3,240 backtests.
"""

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

import sweepbt as sb
from sweepbt import kernels
from sweepbt.kernels.codes import BUY, SELL


def _load_common():
    """asv_bench/benchmarks/common.py, imported by its path (asv_bench is no package)."""
    name = "asv_bench_common"
    if name not in sys.modules:
        path = pathlib.Path(__file__).resolve().parents[2] / "asv_bench" / "benchmarks" / \
            "common.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


common = _load_common()

N_ASSETS, N_BARS = common.SHAPES["S"]
GRID = common.GRIDS["S"]
FAST, SLOW = GRID["fast"], GRID["slow"]
STOP_LOSS, TAKE_PROFIT = GRID["stop_loss"], GRID["take_profit"]
FEES = common.FIXED["fees"]
INIT_CASH = 10_000.0
PPY = 252.0


@pytest.fixture(scope="module")
def data():
    ohlc = common.gbm_ohlc(N_ASSETS, N_BARS)
    open_, high, low, close = (ohlc[k] for k in ("open", "high", "low", "close"))
    start = np.zeros(N_ASSETS, np.int64)
    end = np.full(N_ASSETS, N_BARS, np.int64)
    windows = np.unique(np.array(FAST + SLOW, np.int64))
    bank = np.empty((N_ASSETS, windows.size, N_BARS))
    kernels.sma_bank(close, start, end, windows, bank)
    pairs = [(f, s) for f in FAST for s in SLOW if f < s]
    pair_a = np.searchsorted(windows, [p[0] for p in pairs]).astype(np.int64)
    pair_b = np.searchsorted(windows, [p[1] for p in pairs]).astype(np.int64)
    ptr, event_bar, event_code = kernels.cross_events(bank, start, end, pair_a, pair_b)
    atr = np.full((N_ASSETS, 1, N_BARS), np.nan)  # no ATR-scaled rule in these backtests
    return {"open": open_, "high": high, "low": low, "close": close, "start": start,
            "end": end, "windows": windows, "bank": bank, "pairs": pairs,
            "pair_a": pair_a, "pair_b": pair_b, "ptr": ptr, "event_bar": event_bar,
            "event_code": event_code, "atr": atr}


def _inputs(data, signal_idx, sl, tp):
    """The grid kernels' inputs for combos (signal pair ``signal_idx[c]``, stop-loss
    ``sl[c]``, take-profit ``tp[c]``, fees FEES, every other rule off) on every asset."""
    n = len(signal_idx)
    rules = np.full((n, kernels.N_RULES), np.nan)
    rules[:, kernels.Rule.stop_loss] = sl
    rules[:, kernels.Rule.take_profit] = tp
    rules[:, kernels.Rule.max_bars] = 0.0
    rules[:, kernels.Rule.fees] = FEES
    for cost in ("fixed_fees", "slippage", "tax", "fees_per_share", "min_fees", "max_fees",
                 "lot_size"):
        rules[:, getattr(kernels.Rule, cost)] = 0.0
    rules[:, kernels.Rule.size] = 1.0
    return {
        "market": kernels.Market(open=data["open"], high=data["high"], low=data["low"],
                                 close=data["close"], start=data["start"], end=data["end"]),
        "events": kernels.Events(ptr=data["ptr"], bar=data["event_bar"],
                                 code=data["event_code"]),
        "atr_bank": data["atr"],
        "combos": kernels.Combos(signal_idx=np.asarray(signal_idx, np.int64),
                                 atr_idx=np.zeros(n, np.int64), rules=rules),
        "settings": kernels.SimSettings.of(kernels.FillMode.close, kernels.Direction.long,
                                           INIT_CASH, PPY),
    }


def _numpy_sma(x, w):
    out = np.full(x.size, np.nan)
    out[w - 1:] = np.convolve(x, np.ones(w) / w, mode="valid")
    return out


def _numpy_crosses(a, b):
    """Bars of A crossing B (BUY when bullish, SELL when bearish), both defined at i and
    i-1."""
    d = a - b
    prev, cur = d[:-1], d[1:]
    ok = ~np.isnan(prev) & ~np.isnan(cur)
    up = ok & (cur > 0) & (prev <= 0)
    down = ok & (cur < 0) & (prev >= 0)
    bars = np.flatnonzero(up | down) + 1
    return bars, np.where(up[bars - 1], BUY, SELL)


def test_sma_bank(benchmark, data):
    """Every SMA window of the grid on every asset (24 windows x 4 assets x 2,520 bars)."""
    out = np.empty_like(data["bank"])
    benchmark(kernels.sma_bank, data["close"], data["start"], data["end"], data["windows"],
              out)
    for a in range(N_ASSETS):
        for k, w in enumerate(data["windows"]):
            np.testing.assert_allclose(out[a, k], _numpy_sma(data["close"][a], w),
                                       rtol=1e-12, atol=0)
            assert np.isnan(out[a, k, :w - 1]).all()


def test_cross_events(benchmark, data):
    """Crossing events of the 90 (fast, slow) pairs on every asset, CSR output."""
    ptr, event_bar, event_code = benchmark(
        kernels.cross_events, data["bank"], data["start"], data["end"], data["pair_a"],
        data["pair_b"])
    assert ptr.shape == (len(data["pairs"]) * N_ASSETS + 1,)
    assert ptr[-1] > len(data["pairs"]) * N_ASSETS  # several crossings per row
    for s in range(len(data["pairs"])):
        for a in range(N_ASSETS):
            row = s * N_ASSETS + a
            bars, codes = _numpy_crosses(data["bank"][a, data["pair_a"][s]],
                                         data["bank"][a, data["pair_b"][s]])
            np.testing.assert_array_equal(event_bar[ptr[row]:ptr[row + 1]], bars)
            np.testing.assert_array_equal(event_code[ptr[row]:ptr[row + 1]], codes)


def _record(data, signal, asset, sl, tp):
    """``backtest_record`` keyword arguments of signal pair ``signal`` on ``asset``."""
    out = kernels.Outputs(metrics=np.empty(kernels.N_METRICS),
                          equity=np.full(N_BARS, np.nan), cash=np.full(N_BARS, np.nan),
                          units=np.full(N_BARS, np.nan),
                          trades=np.empty(N_BARS, kernels.TRADE_DTYPE))  # room for any count
    return {**_inputs(data, [signal], [sl], [tp]), "pair": asset, "out": out}


def test_backtest_record(benchmark, data):
    """One fused backtest (signals + stop/take + accounting + metrics), everything
    recorded: the (fast=10, slow=60) pair on asset 0 with a 5% stop and a 10% take."""
    pair = data["pairs"].index((10, 60))
    kwargs = _record(data, pair, 0, 0.05, 0.10)
    metrics, equity, cash, units, trades = kwargs["out"]
    n_trades = benchmark(kernels.backtest_record, **kwargs)
    m = dict(zip(kernels.METRIC_NAMES, metrics))
    assert n_trades > 5 and m["n_trades"] == n_trades
    # accounting identity on every bar, and the metrics agree with the recorded path
    np.testing.assert_allclose(equity, cash + units * data["close"][0], rtol=1e-12)
    assert m["total_return"] == pytest.approx(equity[-1] / INIT_CASH - 1, rel=1e-12)
    reasons = trades[:n_trades]["exit_reason"]
    assert (reasons == kernels.EXIT_REASONS.index("stop")).any()
    assert m["n_stop"] == (reasons == kernels.EXIT_REASONS.index("stop")).sum()


def test_sweep_chunk(benchmark, data):
    """The metric reduction over a whole sweep chunk: all 3,240 backtests of the S grid
    in one ``sweep_metrics`` launch; checked row by row against ``sb.sweep``."""
    combos = common.grid_combos(GRID)  # (fast, slow, stop_loss, take_profit), fast < slow
    n = len(combos)
    signal_idx = np.array([data["pairs"].index((f, s)) for f, s, _, _ in combos], np.int64)
    sl = np.array([c[2] for c in combos])
    tp = np.array([c[3] for c in combos])
    out = np.empty((n * N_ASSETS, kernels.N_METRICS))
    benchmark(kernels.sweep_metrics, **_inputs(data, signal_idx, sl, tp), n_tasks=16, out=out)

    bundle = sb.Bundle.from_arrays(data["open"], data["high"], data["low"], data["close"])
    table = sb.sweep(bundle, "sma_cross", fast=FAST, slow=SLOW, stop_loss=STOP_LOSS,
                     take_profit=TAKE_PROFIT, fees=FEES, fill="close",
                     constraint="fast < slow", periods_per_year=PPY).table
    assert table.num_rows == n * N_ASSETS
    for j, name in enumerate(sb._vocabulary.METRIC_NAMES):
        np.testing.assert_allclose(out[:, j], table.column(name).to_numpy(), rtol=1e-12,
                                   equal_nan=True, err_msg=name)
    # one row of the chunk equals the fully recorded backtest of the same pair
    p = 123
    c, a = divmod(p, N_ASSETS)
    kwargs = _record(data, signal_idx[c], a, sl[c], tp[c])
    kernels.backtest_record(**kwargs)
    np.testing.assert_array_equal(out[p], kwargs["out"].metrics)
    assert (out[:, kernels.METRIC_NAMES.index("n_trades")] > 0).all()
