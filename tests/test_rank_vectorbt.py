"""The rank-and-rebalance reference against vectorbt's target-percent orders.

``vbt.Portfolio.from_orders(size_type="targetpercent", group_by=True, cash_sharing=True,
call_seq="auto")`` with the reference's target weights at each rebalance bar (NaN, no
order, elsewhere) is the rebalance of docs/semantics.md at ``fill="close"`` with no risk
rules: sells first, targets ``weight * E / price`` with ``E`` valued before the first
trade, a buy cut to the cash left. The two agree on every bar to 1e-9 wherever no buy is
cut: no costs (long-only and long-short books), one long at a time with every cost, and
long-short books with costs (the short sales leave cash to spare). **Where buys are cut**
(a fully invested long-only book with costs and several buys) they differ by design:
vectorbt's ``call_seq="auto"`` orders buys by value, the contract by asset.
"""

import numpy as np
import pytest

from helpers import random_ohlc
from rank_reference import momentum_score, reference_rank_portfolio

vbt = pytest.importorskip("vectorbt")
import pandas as pd  # noqa: E402  (a vectorbt dependency)
from vectorbt.portfolio.enums import SizeType  # noqa: E402

NAN = float("nan")
CASES = [  # (top_n, bottom_n, costs)
    (3, 0, {}),
    (1, 0, dict(fees=0.001, fixed_fees=2.0, slippage=0.0005)),
    (2, 1, {}),
    (2, 2, {}),
    (2, 1, dict(fees=0.001, slippage=0.0005)),
]


def target_percent(close, size, days, bottom_n, costs):
    """vectorbt's rebalance to the target weights ``size`` (NaN: no order), one group."""
    return vbt.Portfolio.from_orders(
        pd.DataFrame(close.T, index=days), size=pd.DataFrame(size, index=days),
        size_type=SizeType.TargetPercent, direction="both" if bottom_n else "longonly",
        init_cash=10_000.0, group_by=True, cash_sharing=True, call_seq="auto",
        fees=costs.get("fees", 0.0), fixed_fees=costs.get("fixed_fees", 0.0),
        slippage=costs.get("slippage", 0.0), freq="1D")


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("top_n, bottom_n, costs", CASES)
def test_reference_matches_vectorbt_target_percent(seed, top_n, bottom_n, costs):
    rng = np.random.default_rng(90_000 + seed)
    n_assets, n = 5, 120
    o, h, lo, c = random_ohlc(rng, n, n_assets)
    start, end = [0] * n_assets, [n] * n_assets
    scores = np.array(momentum_score(c, start, int(rng.integers(2, 20))))
    schedule = list(range(int(rng.integers(5, 12)) - 1, n - 1, 10))
    ref = reference_rank_portfolio(o, h, lo, c, start, end, scores, schedule, top_n=top_n,
                                   bottom_n=bottom_n, fill="close", **costs)
    size = np.full((n, n_assets), NAN)
    for rec in ref["rebalances"]:
        size[rec["bar"]] = rec["weights"]
    days = pd.date_range("2000-01-03", periods=n)
    pf = target_percent(c, size, days, bottom_n, costs)
    np.testing.assert_allclose(ref["equity"], pf.value().values, rtol=1e-9)
    np.testing.assert_allclose(np.array(ref["units"]).T, pf.assets().values, rtol=1e-9,
                               atol=1e-9)
    assert len(ref["rebalances"]) >= 10


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("top_n, bottom_n, costs", CASES)
def test_sweepbt_matches_vectorbt_target_percent(seed, top_n, bottom_n, costs):
    """sb.backtest of momentum_rank at fill="close" against vectorbt given its targets."""
    import sweepbt as sb

    rng = np.random.default_rng(91_000 + seed)
    n_assets, n = 5, 150
    o, h, lo, c = random_ohlc(rng, n, n_assets)
    days = pd.date_range("2000-01-03", periods=n)
    data = sb.Bundle.from_arrays(o, h, lo, c, timestamps=days.values)
    bt = sb.backtest(data, "momentum_rank", lookback=int(rng.integers(2, 20)), top_n=top_n,
                     bottom_n=bottom_n, rebalance=10, fill="close", **costs)
    size = np.full((n, n_assets), NAN)
    rebalance_bars = np.arange(9, n - 1, 10)
    size[rebalance_bars] = 0.0
    holdings = bt.holdings
    bar_of = {t: i for i, t in enumerate(days.values.astype("datetime64[ns]").astype(np.int64))}
    for t, symbol, w in zip(holdings["rebalance"].cast("int64").to_pylist(),
                            holdings["symbol"].to_pylist(), holdings["weight"].to_pylist()):
        size[bar_of[t], data.symbols.index(symbol)] = w
    pf = target_percent(c, size, days, bottom_n, costs)
    np.testing.assert_allclose(bt.equity, pf.value().values, rtol=1e-9)
    np.testing.assert_allclose(bt.units.T, pf.assets().values, rtol=1e-9, atol=1e-9)
    assert bt.stats["total_return"][0].as_py() == pytest.approx(
        pf.total_return(), rel=1e-9)
