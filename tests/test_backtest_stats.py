"""The single-backtest statistics of ``bt.stats`` (docs/semantics.md, "Single-backtest
statistics") against a plain-Python computation from the reference simulator's run."""

import math

import numpy as np
import pytest

import reference as ref
from helpers import padded, random_ohlc
import sweepbt as sb
from sweepbt._backtest_stats import EXTRA_STAT_NAMES, drawdown_runs, monthly_returns

REL = 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_extra_stats_match_a_plain_python_computation(seed):
    rng = np.random.default_rng(7_000 + seed)
    n = int(rng.integers(120, 260))
    prices = random_ohlc(rng, n, n_assets=2, vol=0.02)
    spans = [(0, n), (int(rng.integers(5, 40)), n - int(rng.integers(0, 30)))]
    fast, slow = int(rng.integers(2, 6)), int(rng.integers(8, 25))
    cfg = {"stop_loss": [None, 0.03][seed % 2], "fees": 0.001, "direction": "both"}
    data = sb.Bundle.from_arrays(*padded(prices, spans))
    bt = sb.backtest(data, "sma_cross", fast=fast, slow=slow, periods_per_year=252, **cfg)
    stats = bt.stats.to_pylist()
    for a, (s, e) in enumerate(spans):
        o, h, l, c = (list(p[a, s:e]) for p in prices)
        codes = ref.sma_cross_signals(c, fast, slow, direction="both")
        run = ref.reference_backtest(o, h, l, c, codes, periods_per_year=252.0, **cfg)
        want = ref.reference_extra_stats(run["equity"], c, run["trades"], 10_000.0,
                                         run["metrics"]["exposure"])
        got = stats[a]
        for name, value in want.items():
            assert (math.isnan(value) and math.isnan(got[name])) or got[name] == \
                pytest.approx(value, rel=REL, abs=1e-12), (seed, a, name)
        ts = data.timestamps
        assert got["start"].value == ts[s].astype(np.int64)
        assert got["end"].value == ts[e - 1].astype(np.int64)
        assert got["duration"].value == (ts[e - 1] - ts[s]).astype(np.int64)


def test_stats_columns_and_no_trades():
    """The extra columns follow the metrics; with no trade the trade statistics are NaN."""
    o, h, l, c = (p[0] for p in random_ohlc(np.random.default_rng(3), 60))
    data = sb.Bundle.from_arrays(o, h, l, c)
    bt = sb.backtest(data, "sma_cross", fast=50, slow=59)
    row = bt.stats.to_pylist()[0]
    assert bt.stats.column_names[-len(EXTRA_STAT_NAMES):] == list(EXTRA_STAT_NAMES)
    assert row["n_trades"] == 0
    for name in ("best_trade", "worst_trade", "expectancy", "sqn",
                 "exposure_adjusted_return", "avg_drawdown_duration"):
        assert math.isnan(row[name]), name
    assert row["max_drawdown_duration"] == 0
    assert row["buy_and_hold_return"] == pytest.approx(c[-1] / c[0] - 1)


def test_drawdown_runs_and_monthly_returns_by_hand():
    equity = np.array([np.nan, 100.0, 90.0, 95.0, 101.0, 99.0, 98.0, np.nan])
    assert drawdown_runs(equity, 100.0).tolist() == [2, 2]
    assert drawdown_runs(np.array([100.0, 101.0]), 100.0).tolist() == []
    ts = np.array(["2020-01-30", "2020-01-31", "2020-02-03", "2020-04-01"],
                  dtype="datetime64[ns]")
    years, table = monthly_returns(ts, np.array([101.0, 102.0, 99.0, 110.0]), 100.0)
    assert years.tolist() == [2020]
    assert table[0, 0] == pytest.approx(0.02)
    assert table[0, 1] == pytest.approx(99 / 102 - 1)
    assert math.isnan(table[0, 2])
    assert table[0, 3] == pytest.approx(110 / 99 - 1)
