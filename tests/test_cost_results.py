"""What trading cost, in the results: each trade's commission and tax, a backtest's
``costs``, ``cost_rate`` and ``turnover``, and the sweep table's columns of them
(docs/semantics.md, Trades and Metrics). Their values are checked against the reference
simulators in test_costs_kernel.py; here, that the pieces agree with each other."""

import math

import numpy as np
import pytest

import sweepbt as sb

CALLS = {
    "asset": ("sma_cross", dict(fast=[5, 10], slow=40)),
    "portfolio": ("sma_cross", dict(fast=[5, 10], slow=40, portfolio=True, size=0.4)),
    "rank": ("momentum_rank", dict(lookback=[21, 42], top_n=2, rebalance=10)),
}
COSTS = dict(fees=0.001, fixed_fees=1.0, tax=0.002, min_fees=2.0)


@pytest.mark.parametrize("mode", list(CALLS))
def test_the_sweep_table_has_the_backtests_costs_and_turnover(mode, demo_abc):
    strategy, grid = CALLS[mode]
    res = sb.sweep(demo_abc, strategy, **grid, **COSTS)
    table = res.table
    for name in ("costs", "cost_rate", "turnover"):
        assert name in table.column_names
    for row in table.to_pylist()[:2]:
        bt = res.backtest(row)
        stats = bt.stats.to_pylist()
        for name in ("costs", "cost_rate", "turnover"):
            mine = [s[name] for s in stats if s["symbol"] == row["symbol"]][0]
            assert mine == pytest.approx(row[name], rel=1e-12), name
        trades = [t for t in bt.trades.to_pylist()
                  if row["symbol"] in ("portfolio", t["symbol"])]
        paid = math.fsum(t["commission"] + t["tax"] for t in trades)
        assert row["costs"] == pytest.approx(paid, rel=1e-12)
        assert row["costs"] > 0 and 0 < row["cost_rate"] < 0.05 and row["turnover"] > 0


@pytest.mark.parametrize("mode", list(CALLS))
def test_without_costs_nothing_is_paid(mode, demo_abc):
    strategy, grid = CALLS[mode]
    table = sb.sweep(demo_abc, strategy, **grid).table
    assert (table["costs"].to_numpy() == 0.0).all()
    assert (table["cost_rate"].to_numpy() == 0.0).all()
    assert np.isfinite(table["turnover"].to_numpy()).all()


def test_a_sale_whose_costs_exceed_its_notional_reports_what_the_cash_paid():
    """10 units bought at 2 with 45 cash and a fixed fee of 25, sold at 1: the sale's
    costs (25 and the tax) exceed its notional of 10, so it pays the notional, reported
    as commission, and no tax."""
    close = [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    data = sb.Bundle.from_arrays(close, close, close, close)
    bt = sb.backtest(data, "sma_cross", fast=1, slow=2, fill="close", fixed_fees=25.0,
                     tax=0.01, init_cash=45.0)
    (trade,) = [t for t in bt.trades.to_pylist() if t["exit_reason"] == "signal"]
    notional = trade["units"] * trade["exit_price"]
    assert notional == 10.0
    assert trade["commission"] == pytest.approx(25.0 + notional)
    assert trade["tax"] == 0.0
