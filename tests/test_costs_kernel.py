"""The engine's costs (docs/semantics.md, Costs: per share, minimum, cap, tax on every
sale, whole lots) against the pure-Python references, bar by bar and trade by trade, on
random configurations of every mode; and the properties costs must keep."""

import numpy as np
import pytest

import sweepbt as sb
from helpers import (assert_same, check_random_asset, check_random_portfolio, random_case,
                     random_cost_config, run_kernel)
from rank_reference import reference_rank_portfolio

COSTS = ("fees", "fixed_fees", "slippage", "fees_per_share", "min_fees", "max_fees", "tax",
         "lot_size")


@pytest.mark.parametrize("seed", range(120))
def test_per_asset_costs_match_the_reference(seed):
    check_random_asset(np.random.default_rng(70_000 + seed), 40, f"seed {seed}", costs=True)


@pytest.mark.parametrize("block", range(4))
def test_portfolio_costs_match_the_reference(block):
    for seed in range(block * 20, block * 20 + 20):
        rng = np.random.default_rng(80_000 + seed)
        check_random_portfolio(seed, rng, random_cost_config(rng))


@pytest.mark.parametrize("seed", range(60))
def test_rank_costs_match_the_reference(seed):
    bars, start, end, scores, schedule, kw = random_case(seed)
    kw.update(random_cost_config(np.random.default_rng(90_000 + seed)))
    ref = reference_rank_portfolio(*bars, start, end, scores, schedule, **kw)
    kernel = run_kernel(bars, start, end, scores, schedule, **kw)
    assert_same(kernel, ref)


def _demo():
    return sb.demo().select(["ALPHA", "BRAVO", "CHARLIE"]).slice_bars(0, 1500)


def _call(mode):
    """(strategy, keywords) of a small backtest in ``mode``: asset, portfolio or rank."""
    if mode == "rank":
        return "momentum_rank", dict(lookback=21, top_n=2, rebalance=10)
    return "sma_cross", dict(fast=10, slow=40, **({"portfolio": True, "size": 0.4}
                                                  if mode == "portfolio" else {}))


@pytest.mark.parametrize("mode", ["asset", "portfolio", "rank"])
def test_defaults_are_the_results_without_the_new_costs(mode):
    """Every new cost given at its default changes no bit."""
    data = _demo()
    strategy, kw = _call(mode)
    base = dict(kw, fees=0.001, fixed_fees=2.0, slippage=0.0005)
    plain = sb.backtest(data, strategy, **base)
    zeros = sb.backtest(data, strategy, **base, tax=0.0, fees_per_share=0.0, min_fees=0.0,
                        max_fees=0.0, lot_size=0.0)
    np.testing.assert_array_equal(plain.equity, zeros.equity)
    assert plain.trades.equals(zeros.trades)


@pytest.mark.parametrize("mode", ["asset", "portfolio", "rank"])
def test_costs_only_lower_equity_and_whole_shares_hold_whole_units(mode):
    data = _demo()
    strategy, kw = _call(mode)
    free = sb.backtest(data, strategy, **kw, fill="close")
    costly = sb.backtest(data, strategy, **kw, fill="close", fees_per_share=0.01,
                         min_fees=1.0, tax=0.001)
    final = [np.nanmax(np.where(np.isnan(e), -np.inf, e)) for e in (free.equity, costly.equity)]
    assert np.nansum(costly.equity) < np.nansum(free.equity) and final[1] <= final[0]
    lots = sb.backtest(data, strategy, **kw, lot_size=1.0)
    units = np.abs(lots.units[~np.isnan(lots.units)])
    np.testing.assert_array_equal(units, np.round(units))
    assert np.abs(lots.trades.column("units").to_numpy()).min() >= 1.0


@pytest.mark.parametrize("kw, words", [
    (dict(fees_per_share=-0.01), "fees_per_share"),
    (dict(min_fees=-1.0), "min_fees"),
    (dict(max_fees=-0.1), "max_fees"),
    (dict(lot_size=-1.0), "lot_size"),
    (dict(tax=-0.001), "tax"),
    (dict(min_fees=5.0, max_fees=0.0001), "min_fees=5 can never apply with max_fees=0.0001"),
    (dict(fees=0.6, tax=0.5), "fees + tax must be < 1"),
])
def test_bad_costs_are_clear_errors(kw, words):
    with pytest.raises(ValueError, match=words.replace("+", r"\+")):
        sb.backtest(_demo(), "sma_cross", fast=10, slow=40, **kw)
