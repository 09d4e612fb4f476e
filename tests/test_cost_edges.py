"""Cost and ratio edge cases from the adversarial campaign (docs/semantics.md): a sale never
costs cash, a rebalance trade that cannot pay its fixed fee is skipped, rounding noise is no
spread, and every rebalance that takes place counts in ``turnover``."""

import math

import numpy as np
import pytest

import sweepbt as sb
from sweepbt._series import equity_metrics


def flat_bundle(closes, **kw):
    """Close-only bars (open = high = low = close) of the given assets."""
    return sb.Bundle.from_arrays(close=np.array(closes, dtype=float), **kw)


def test_a_sale_worth_less_than_its_fixed_fee_receives_nothing_and_cash_stays_positive():
    # both assets enter at bar 2's close with half the equity each; asset A then gaps
    # through its stop to 0.01: its sale is worth 0.49, less than the fixed fee of 10
    a = [100.0, 100.0, 101.0, 0.01, 0.01, 0.01]
    b = [100.0, 100.0, 101.0, 101.0, 101.0, 101.0]
    data = flat_bundle([a, b], symbols=["A", "B"])
    pf = sb.backtest(data, "sma_cross", fast=1, slow=2, portfolio=True, size=0.5,
                     fill="close", stop_loss=0.5, fixed_fees=10.0)
    trades = pf.trades.to_pylist()
    stopped = [t for t in trades if t["exit_reason"] == "stop"]
    assert len(stopped) == 1 and stopped[0]["symbol"] == "A"
    units = stopped[0]["units"]
    assert units * 0.01 < 10.0
    assert np.nanmin(pf.cash) >= 0.0
    # the sale received 0: its pnl is minus the cash committed at entry
    assert stopped[0]["pnl"] == pytest.approx(-5000.0, abs=1e-9)
    assert pf.cash[3] == pytest.approx(0.0, abs=1e-9)
    assert pf.equity[3] == pytest.approx(pf.cash[3] + pf.units[1, 3] * 101.0, abs=1e-9)


def test_a_rank_trim_below_the_fixed_fee_is_skipped_and_cash_never_goes_negative():
    # every bar rebalances two assets to half each; A drifts up a little each bar, so each
    # rebalance would trim A by a few dollars: less than the fixed fee of 5
    n = 80
    a = 100.0 * 1.0004 ** np.arange(n)
    b = np.full(n, 100.0)
    data = flat_bundle([a, b], symbols=["A", "B"])
    bt = sb.backtest(data, "momentum_rank", lookback=1, top_n=2, rebalance=1, fill="close",
                     fixed_fees=5.0)
    assert np.nanmin(bt.cash) >= 0.0
    fills = bt.trades.to_pylist()
    # each asset is bought once and held to the end: no trim paid a fee larger than itself
    assert sorted(t["symbol"] for t in fills) == ["A", "B"]
    assert all(t["exit_reason"] == "end" for t in fills)


def test_sqn_of_equal_losses_is_nan_not_rounding_noise():
    # every trade is bought for 1,000 and stopped 5 % lower, inside its bar: the same pnl,
    # up to rounding
    cycle_close = [100.0, 100.0, 101.0, 95.0]
    closes = cycle_close * 6
    opens, highs, lows = list(closes), list(closes), list(closes)
    for k in range(3, len(closes), 4):  # the bar after each entry: open at the entry price
        opens[k], highs[k], lows[k] = 101.0, 101.0, 90.0
    data = sb.Bundle.from_arrays(open=np.array([opens]), high=np.array([highs]),
                                 low=np.array([lows]), close=np.array([closes]))
    pf = sb.backtest(data, "sma_cross", fast=1, slow=2, portfolio=True, size_type="value",
                     size=1000.0, fill="close", stop_loss=0.05)
    pnl = np.array([t["pnl"] for t in pf.trades.to_pylist() if t["exit_reason"] == "stop"])
    assert pnl.size >= 4
    np.testing.assert_allclose(pnl, -50.0, rtol=1e-12)
    stats = pf.stats.to_pylist()[0]
    assert math.isnan(stats["sqn"])
    assert stats["expectancy"] == pytest.approx(-50.0)


def test_sharpe_and_sortino_of_constant_returns_are_nan():
    # equity growing by the same factor every bar: the spread of returns is rounding noise
    equity = 100.0 * 1.001 ** np.arange(1, 300)
    m = equity_metrics(equity, 100.0, 252.0)
    assert math.isnan(m["sharpe"]) and math.isnan(m["sortino"])
    assert m["total_return"] > 0.3


def test_a_rank_rebalance_at_a_ruined_close_counts_as_turnover_zero():
    # bottom_n=1 shorts A with the whole equity at bar 1's close; at the next rebalance
    # (bar 3, fill="close") A has more than doubled: E <= 0, nothing can trade, and the
    # book is ruined at that close
    a = [100.0, 99.0, 120.0, 250.0, 250.0, 250.0]
    b = [100.0, 101.0, 101.0, 101.0, 101.0, 101.0]
    data = flat_bundle([a, b], symbols=["A", "B"])
    bt = sb.backtest(data, "momentum_rank", lookback=1, top_n=0, bottom_n=1, rebalance=2,
                     fill="close", vol_window=2)
    stats = bt.stats.to_pylist()[0]
    assert stats["ruined"] == 1
    assert bt.rebalances.column("turnover").to_pylist() == pytest.approx([1.0, 0.0])
    assert stats["turnover"] == pytest.approx(0.5)
