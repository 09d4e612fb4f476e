"""Differential tests: the compiled engine against the pure-Python reference simulator.

Hundreds of random configurations cover both fill modes, all risk rules (percent and
ATR-scaled), all three cost kinds, ``size``, and long, short and both directions. Equity, cash and units are compared
bar by bar, trades field by field, and the metrics row by row.
"""

import math

import numpy as np
import pytest

import sweepbt as sb
from helpers import check_random_asset
from helpers import (CODES_IN_VOLUME, CONFLICTS, assert_close, compare_asset, random_config,
                     random_ohlc)
from reference import reference_backtest, sma_cross_signals, wilder_atr
from sweepbt._vocabulary import METRIC_NAMES
from helpers import run_reference


@pytest.mark.parametrize("seed", range(300))
def test_random_single_asset_matches_reference(seed):
    check_random_asset(np.random.default_rng(seed), 30, f"seed {seed}")


@pytest.mark.parametrize("seed", range(20))
def test_assets_with_different_spans_match_reference(seed):
    """Assets listed late / delisted early: each span is its own backtest."""
    rng = np.random.default_rng(1000 + seed)
    n = 120
    prices = random_ohlc(rng, n, n_assets=3)
    spans = [(0, n), (int(rng.integers(1, 40)), n), (0, int(rng.integers(70, n)))]
    padded = [p.copy() for p in prices]
    for a, (s, e) in enumerate(spans):
        for p in padded:
            p[a, :s] = np.nan
            p[a, e:] = np.nan
    cfg = random_config(rng)
    data = sb.Bundle.from_arrays(*padded)
    bt = sb.backtest(data, "sma_cross", periods_per_year=252, **cfg)
    for a, (s, e) in enumerate(spans):
        ref = run_reference(*(p[a, s:e] for p in prices), cfg)
        compare_asset(bt, a, ref, s, e, f"seed {seed} asset {a} {cfg}")


def test_sweep_rows_match_reference():
    """Every row of a sweep equals the reference run with that combo's parameters."""
    rng = np.random.default_rng(7)
    n = 150
    prices = random_ohlc(rng, n, n_assets=2)
    data = sb.Bundle.from_arrays(*prices)
    res = sb.sweep(data, "sma_cross", fast=[3, 5], slow=[8, 13], stop_loss=[None, 0.03],
                   take_profit=[None, 0.06], trailing_stop=[None, 0.04], max_bars=[None, 9],
                   stop_atr=[None, 2.0], trailing_atr=[None, 1.5], atr_window=[3, 14],
                   fees=0.001, fixed_fees=[0.0, 5.0], slippage=0.001, fill="next_open",
                   direction="both", periods_per_year=252)
    rows = res.table.to_pylist()
    assert len(rows) == 2 ** 11
    for row in rows:
        a = list(data.symbols).index(row["symbol"])
        cfg = {k: row[k] for k in ("fast", "slow", "stop_loss", "take_profit", "trailing_stop",
                                   "stop_atr", "trailing_atr", "atr_window", "max_bars", "fees",
                                   "fixed_fees", "slippage")}
        cfg.update(size=1.0, fill="next_open", direction="both")
        ref = run_reference(*(p[a] for p in prices), cfg)
        for name in METRIC_NAMES:
            assert_close(float(row[name]), float(ref["metrics"][name]), f"{cfg} {name}")


@pytest.mark.parametrize("seed", range(30))
def test_trade_window_matches_reference_on_warm_signals(seed):
    """window=(lo, hi): indicators warm up before lo, trades live only in [lo, hi)."""
    rng = np.random.default_rng(2000 + seed)
    n = 200
    open_, high, low, close = (p[0] for p in random_ohlc(rng, n))
    lo = int(rng.integers(20, 120))
    hi = int(rng.integers(lo + 10, n + 1))
    cfg = random_config(rng)
    data = sb.Bundle.from_arrays(open_, high, low, close)
    bt = sb.backtest(data, "sma_cross", periods_per_year=252, window=(lo, hi), **cfg)
    signals = sma_cross_signals(list(close[:hi]), cfg["fast"], cfg["slow"])[lo:hi]
    options = {k: v for k, v in cfg.items() if k not in ("fast", "slow")}
    # the engine's ATR warms up on the bars before the window, like the indicators
    atr = wilder_atr(list(high[:hi]), list(low[:hi]), list(close[:hi]), cfg["atr_window"])
    ref = reference_backtest(list(open_[lo:hi]), list(high[lo:hi]), list(low[lo:hi]),
                             list(close[lo:hi]), signals, periods_per_year=252.0,
                             atr=atr[lo:hi], **options)
    compare_asset(bt, 0, ref, lo, hi, f"seed {seed} window {(lo, hi)} {cfg}")


def ruin_prone_config(rng):
    """A random config that often ruins: shorts into rallies, costs near the cash."""
    cfg = random_config(rng)
    cfg.update(direction=str(rng.choice(["short", "both"])),
               fixed_fees=float(rng.choice([0.0, 30.0, 60.0])), init_cash=100.0)
    return cfg


@pytest.mark.parametrize("seed", range(80))
def test_ruin_matches_reference(seed):
    """Explosive up-moves against shorts and fixed fees near the cash: many runs are ruined
    (docs/semantics.md, Ruin); bar by bar, trade by trade, metric by metric they agree."""
    rng = np.random.default_rng(5000 + seed)
    n = int(rng.integers(40, 120))
    open_, high, low, close = (p[0] for p in random_ohlc(rng, n, vol=0.15))
    cfg = ruin_prone_config(rng)
    data = sb.Bundle.from_arrays(open_, high, low, close)
    bt = sb.backtest(data, "sma_cross", periods_per_year=252, **cfg)
    ref = run_reference(open_, high, low, close, cfg)
    compare_asset(bt, 0, ref, 0, n, f"seed {seed} {cfg}")


def test_ruin_seeds_cover_ruin():
    """The ruin-prone configurations above really do ruin (and not all of them)."""
    ruined = 0
    for seed in range(80):
        rng = np.random.default_rng(5000 + seed)
        n = int(rng.integers(40, 120))
        prices = [p[0] for p in random_ohlc(rng, n, vol=0.15)]
        ruined += run_reference(*prices, ruin_prone_config(rng))["metrics"]["ruined"] == 1.0
    assert 10 <= ruined <= 70


def test_equity_zero_does_not_abort_a_sweep():
    """The issue's reproduction: a short at 80 that the price doubles brings equity to
    exactly 0; the sweep around it runs, and the row is ruined with NaN ratios."""
    c = np.array([100., 80., 80., 160., 150., 150.])
    data = sb.Bundle.from_arrays(c, c, c, c)
    bt = sb.backtest(data, "momentum", lookback=1, direction="short", fill="close")
    stats = bt.stats.to_pylist()[0]
    assert stats["ruined"] == 1.0 and stats["total_return"] == -1.0 and stats["cagr"] == -1.0
    assert math.isnan(stats["sharpe"]) and math.isnan(stats["volatility"])
    np.testing.assert_array_equal(bt.equity[0], [1e4, 1e4, 1e4, 0.0, 0.0, 0.0])
    res = sb.sweep(data, "momentum", lookback=[1, 2], threshold=[0.0, 0.5],
                   direction="short", fill="close")
    rows = res.table.to_pylist()
    assert [r["ruined"] for r in rows] == [1.0, 0.0, 1.0, 0.0]  # threshold 0.5 never trades
    # ruined combos rank after every other combo (in grid order), whatever the metric
    for metric in ("total_return", "n_trades", "max_drawdown", "exposure"):
        assert res.best(metric, k=4)["combo"].to_pylist()[2:] == [0, 2], metric


@pytest.mark.parametrize("seed", range(40))
def test_conflicting_codes_match_reference(seed):
    """Random codes, many with both bits of one side (they cancel, docs/semantics.md)."""
    rng = np.random.default_rng(7000 + seed)
    n = 90
    open_, high, low, close = (p[0] for p in random_ohlc(rng, n))
    codes = rng.choice(CONFLICTS, size=n, p=[0.12, 0.12, 0.08, 0.08, 0.05, 0.1, 0.1, 0.35])
    cfg = random_config(rng)
    del cfg["fast"], cfg["slow"]
    data = sb.Bundle.from_arrays(open_, high, low, close,
                                 volume=codes.astype(np.float64))
    bt = sb.backtest(data, CODES_IN_VOLUME, periods_per_year=252, **cfg)
    ref = reference_backtest(list(open_), list(high), list(low), list(close),
                             [int(x) for x in codes], periods_per_year=252.0, codes=True,
                             **cfg)
    compare_asset(bt, 0, ref, 0, n, f"seed {seed} {cfg}")
