"""``commission=``: a user's @njit commission function, in every mode (DESIGN.md, Costs).

The engine runs it through a compiled callback; the references call the same Python
function. Both size entries as the largest order the budget pays for (bisection)."""

import json
import textwrap

import numpy as np
import pytest
from numba import njit

import sweepbt as sb
from sweepbt import kernels
from helpers import (assert_same, check_random_asset, check_random_portfolio, random_case,
                     run_kernel)
from rank_reference import reference_rank_portfolio


@njit
def ib_tiered(units, price, is_buy):
    """IB-style marginal tiers: 0.005 per share up to 500, 0.003 above; at least 1, at
    most 1 % of the value."""
    c = 0.005 * min(units, 500.0) + 0.003 * max(units - 500.0, 0.0)
    return min(max(c, 1.0), 0.01 * units * price)


@njit
def sell_heavier(units, price, is_buy):
    """A proportional commission that charges sales three times buys, plus 2 a fill."""
    return (0.001 if is_buy else 0.003) * units * price + 2.0


@njit
def flat_ticket(units, price, is_buy):
    return 7.5


COMMISSIONS = [ib_tiered, sell_heavier, flat_ticket]


def _cost_options(rng, commission):
    """The options besides a commission function: the rest of the cost line."""
    return {"commission": commission, "fees": 0.0,
            "fixed_fees": float(rng.choice([0.0, 0.0, 1.0])),
            "slippage": float(rng.choice([0.0, 0.001])),
            "tax": float(rng.choice([0.0, 0.002])),
            "lot_size": float(rng.choice([0.0, 0.0, 1.0]))}


@pytest.mark.parametrize("seed", range(30))
def test_per_asset_commission_function_matches_the_reference(seed):
    rng = np.random.default_rng(11_000 + seed)
    costs = _cost_options(rng, COMMISSIONS[seed % len(COMMISSIONS)])
    check_random_asset(rng, 40, f"seed {seed}", costs=costs)


@pytest.mark.parametrize("seed", range(20))
def test_portfolio_commission_function_matches_the_reference(seed):
    rng = np.random.default_rng(12_000 + seed)
    check_random_portfolio(seed, rng, _cost_options(rng, COMMISSIONS[seed % 3]))


@pytest.mark.parametrize("seed", range(20))
def test_rank_commission_function_matches_the_reference(seed):
    bars, start, end, scores, schedule, kw = random_case(seed)
    kw.update(_cost_options(np.random.default_rng(13_000 + seed), COMMISSIONS[seed % 3]))
    ref = reference_rank_portfolio(*bars, start, end, scores, schedule, **kw)
    kernel = run_kernel(bars, start, end, scores, schedule, **kw)
    assert_same(kernel, ref)


@njit
def same_as_options(units, price, is_buy):
    """fees_per_share=0.005, min_fees=1, max_fees=0.01, fees=0.0005 as a function."""
    c = max(0.005 * units + 0.0005 * units * price, 1.0)
    return min(c, 0.01 * units * price)


@pytest.mark.parametrize("call", [
    dict(strategy="sma_cross", fast=10, slow=40),
    dict(strategy="sma_cross", fast=10, slow=40, portfolio=True, size=0.4),
    dict(strategy="momentum_rank", lookback=21, top_n=2, rebalance=10)])
def test_a_function_equal_to_the_options_gives_their_results(call, demo_abc):
    """The function form of a built-in schedule sizes by bisection, the options by closed
    form: the same orders, to rounding."""
    built_in = sb.backtest(demo_abc, **call, fees_per_share=0.005, min_fees=1.0,
                           max_fees=0.01, fees=0.0005)
    user = sb.backtest(demo_abc, **call, commission=same_as_options)
    np.testing.assert_allclose(user.equity, built_in.equity, rtol=1e-9)
    assert user.trades.num_rows == built_in.trades.num_rows > 0


def test_every_function_runs_in_the_same_compiled_kernels(demo_abc):
    sb.backtest(demo_abc, "sma_cross", fast=10, slow=40, commission=ib_tiered)
    before = len(kernels.backtest_record.signatures)
    for fn in COMMISSIONS:
        sb.sweep(demo_abc, "sma_cross", fast=[5, 10], slow=40, commission=fn)
        sb.backtest(demo_abc, "sma_cross", fast=10, slow=40, commission=fn)
    assert len(kernels.backtest_record.signatures) == before


def test_costs_only_lower_equity(demo_abc):
    free = sb.backtest(demo_abc, "sma_cross", fast=10, slow=40)
    charged = sb.backtest(demo_abc, "sma_cross", fast=10, slow=40, commission=ib_tiered)
    assert (charged.equity[:, -1] <= free.equity[:, -1]).all()


def test_the_metadata_names_the_function_and_its_source(demo_abc):
    res = sb.sweep(demo_abc, "sma_cross", fast=[5, 10], slow=40, commission=ib_tiered)
    record = res.fixed["commission"]
    assert record.startswith(f"{__name__}:ib_tiered sha256:"), record
    json.dumps(res.fixed)
    again = res.backtest(res.table.to_pylist()[0])
    np.testing.assert_array_equal(
        again.equity, sb.backtest(demo_abc, "sma_cross", fast=5, slow=40,
                                  commission=ib_tiered).equity)


def test_a_file_spec_loads_the_function(tmp_path, demo_abc):
    path = tmp_path / "broker.py"
    path.write_text(textwrap.dedent("""
        from numba import njit

        @njit
        def per_share(units, price, is_buy):
            return max(0.01 * units, 1.0)
    """))
    by_file = sb.backtest(demo_abc, "sma_cross", fast=10, slow=40,
                          commission=f"{path}:per_share")
    by_options = sb.backtest(demo_abc, "sma_cross", fast=10, slow=40, fees_per_share=0.01,
                             min_fees=1.0)
    np.testing.assert_allclose(by_file.equity, by_options.equity, rtol=1e-9)
    with pytest.raises(sb.StrategyError, match="has no 'missing'"):
        sb.backtest(demo_abc, "sma_cross", fast=10, slow=40, commission=f"{path}:missing")


def not_jitted(units, price, is_buy):
    return 1.0


@njit
def drops_at_a_tier(units, price, is_buy):
    return 0.01 * units if units < 500.0 else 0.005 * units


@njit
def rebate(units, price, is_buy):
    return -0.001 * units * price


@njit
def undefined_for_small_orders(units, price, is_buy):
    return np.nan if units < 1.0 else 1.0


@njit
def two_arguments(units, price):
    return 1.0


@pytest.mark.parametrize("commission, error, words", [
    (not_jitted, TypeError, "commission= must be an @njit function"),
    (lambda u, p, b: 1.0, TypeError, "commission= must be an @njit function"),
    (0.001, TypeError, "commission= must be an @njit function"),
    (drops_at_a_tier, sb.StrategyError,
     r"commission=drops_at_a_tier must not decrease as units grow .*drops_at_a_tier\(500, "),
    (rebate, sb.StrategyError, "must return a finite commission >= 0, but rebate"),
    (undefined_for_small_orders, sb.StrategyError, "must return a finite commission"),
    (two_arguments, sb.StrategyError, "commission=two_arguments does not compile as "
                                      r"f\(units: float, price: float, is_buy: bool\)"),
])
def test_bad_commission_functions_are_clear_errors(commission, error, words, demo_abc):
    with pytest.raises(error, match=words):
        sb.backtest(demo_abc, "sma_cross", fast=10, slow=40, commission=commission)


@pytest.mark.parametrize("option", ["fees", "fees_per_share", "min_fees", "max_fees"])
def test_the_options_it_replaces_must_stay_off(option, demo_abc):
    with pytest.raises(ValueError, match=f"commission=ib_tiered replaces .*leave {option} "
                                         "at 0"):
        sb.sweep(demo_abc, "sma_cross", fast=10, slow=40, commission=ib_tiered,
                 **{option: [0.0, 0.01]})
