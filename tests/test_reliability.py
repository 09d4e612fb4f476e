"""Reliability fixes from the adversarial campaign (engine and parameters): grid ids under
``sample=``, trade windows, counting huge grids, bounded constraints, clear errors for
numpy scalars, oversized grids and durations."""

import time

import numpy as np
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
from sweepbt._params import EXACT_COUNT_LIMIT


@pytest.fixture(scope="module")
def data(demo_ab):
    return demo_ab.slice_bars(0, 400)


@pytest.fixture(scope="module")
def tiny(demo):
    return demo.select(["ALPHA"]).slice_bars(0, 60)


def _by_combo(table):
    return {(r["combo"], r["symbol"]): r for r in table.to_pylist()}


# -- combo ids are grid ids --------------------------------------------------------------

def test_sampled_combo_ids_are_grid_ids(data):
    grid = dict(fast=[3, 5, 8, 13], slow=[10, 20, 40], stop_loss=[None, 0.02, 0.05])
    full = _by_combo(sb.sweep(data, "sma_cross", constraint="fast < slow", **grid).table)
    sample = sb.sweep(data, "sma_cross", constraint="fast < slow", sample=7, seed=3, **grid)
    assert sample.n_combos == 7
    for row in sample.table.to_pylist():
        assert row == full[row["combo"], row["symbol"]]  # same id: same params, same results
    # the ids do not depend on the constraint either: grid index in C order
    everything = _by_combo(sb.sweep(data, "sma_cross", **grid).table)
    assert len(everything) == 36 * 2
    for key, row in full.items():
        assert everything[key] == row


def test_sampled_equity_and_top_use_grid_ids(data):
    grid = dict(fast=[3, 5, 8], slow=[10, 20, 40], stop_loss=[None, 0.03])
    res = sb.sweep(data, "sma_cross", sample=5, seed=1, top=2, **grid)
    best = res.best("sharpe", k=1).to_pylist()[0]
    bt = sb.backtest(data, "sma_cross", fast=best["fast"], slow=best["slow"],
                     stop_loss=best["stop_loss"])
    np.testing.assert_array_equal(res.equity([best["combo"]])[0], bt.equity)


# -- trade windows ------------------------------------------------------------------------

@pytest.mark.parametrize("window, exc, words", [
    ((10.5, 200), TypeError, ["window[0]", "10.5"]),
    ((10, 200.5), TypeError, ["window[1]", "200.5"]),
    ((True, 100), TypeError, ["window[0]", "True"]),
    ((10,), TypeError, ["pair"]),
    ("10:20", TypeError, ["pair"]),
    ((-1, 100), ValueError, ["window[0]", ">= 0"]),
    ((50, 50), ValueError, ["start_bar < stop_bar"]),
    ((0, 10**6), ValueError, ["n_bars=400"]),
])
def test_bad_window_is_refused(data, window, exc, words):
    for call in (sb.backtest, sb.sweep):
        with pytest.raises(exc) as info:
            call(data, "sma_cross", window=window)
        for word in words:
            assert word in str(info.value)


def test_window_records_what_was_asked(tmp_path, demo_ab):
    data = demo_ab
    prices = [getattr(data, f).copy() for f in ("open", "high", "low", "close")]
    for p in prices:
        p[1, :300] = np.nan  # BRAVO is listed at bar 300
    late = sb.Bundle.from_arrays(*prices, timestamps=data.timestamps)
    assert late.start.tolist() == [0, 300]
    res = sb.sweep(late, "sma_cross", window=(np.int64(10), 200), fast=[5], slow=[20])
    assert res.fixed["window"] == [10, 200]
    bt = sb.backtest(late, "sma_cross", window=(10, 200))
    assert bt.fixed["window"] == [10, 200]


# -- huge grids are never counted one by one ---------------------------------------------

def _huge_grid():
    """10^12 combos of options (each axis validated once), half kept by the constraint."""
    axis = np.linspace(0.001, 0.5, 10**4)
    return dict(stop_loss=axis, take_profit=axis, trailing_stop=axis)


def test_estimate_of_a_huge_constrained_grid_is_sampled(tiny):
    t0 = time.perf_counter()
    est = sb.estimate(tiny, "sma_cross", constraint="stop_loss < take_profit", **_huge_grid())
    assert time.perf_counter() - t0 < 60  # counting one by one took hours
    assert not est.exact and est.n_combos_error > 0
    assert abs(est.n_combos - 0.49995e12) < 5 * est.n_combos_error
    assert "about" in str(est) and "estimated" in str(est)
    small = sb.estimate(tiny, "sma_cross", fast=[2, 3], slow=[5, 8], constraint="fast < 3")
    assert small.exact and small.n_combos == 2 and "estimated" not in str(small)


def test_sample_of_a_huge_constrained_grid_runs_without_counting(tiny):
    res = sb.sweep(tiny, "sma_cross", constraint="stop_loss < take_profit", sample=5,
                   seed=0, **_huge_grid())
    assert res.n_combos == 5
    rows = res.table.to_pylist()
    assert all(r["stop_loss"] < r["take_profit"] for r in rows)
    assert all(0 <= r["combo"] < 10**12 for r in rows)


def test_sample_from_a_constraint_keeping_nothing_is_refused(tiny):
    with pytest.raises(ValueError, match="sample=3: the constraint .* kept only 0"):
        sb.sweep(tiny, "sma_cross", constraint="stop_loss > 2", sample=3, **_huge_grid())


def test_exact_count_limit_is_large_enough_for_ordinary_grids():
    assert EXACT_COUNT_LIMIT >= 1 << 20


# -- constraints are bounded ---------------------------------------------------------------

@pytest.mark.parametrize("expression, words", [
    ("fast / 0 > 1", ["division by zero", "fast / 0"]),
    ("slow % (fast - fast) < 1", ["division by zero"]),
    ("fast - slow", ["gives numbers", "comparison"]),
    ("fast", ["gives numbers"]),
    ("fast and slow > 3", ["'fast' must be true/false"]),
    ("not fast", ["must be true/false"]),
    ("(fast < slow) + 1 > 0", ["must be a number"]),
    (" + ".join(["fast"] * 5000) + " > 0", ["characters"]),
    ("+".join(["fast"] * 250) + " > 0", ["terms"]),
    ("(" * 3000 + "fast" + ")" * 3000 + " > 0", ["characters"]),
    ("(" * 600 + "fast" + ")" * 600 + " > 0", ["not a valid expression"]),
])
def test_bad_constraint_is_a_clear_error(tiny, expression, words):
    with pytest.raises(ValueError) as info:
        sb.sweep(tiny, "sma_cross", fast=[2, 5], slow=[10, 20], constraint=expression)
    for word in words:
        assert word in str(info.value)


def test_constraint_arithmetic_is_float_and_bounded(tiny):
    t0 = time.perf_counter()
    res = sb.sweep(tiny, "sma_cross", fast=[2, 5], slow=[10, 20], constraint="9**9**9 > 0")
    assert time.perf_counter() - t0 < 30 and res.n_combos == 4  # inf > 0
    # int64 would wrap 5**40 to a negative number; float64 gives a huge positive one
    res = sb.sweep(tiny, "sma_cross", fast=[2, 5], slow=[10, 20], constraint="fast ** 40 > 0")
    assert res.n_combos == 4


# -- numpy scalars and out-of-range values get sentences -----------------------------------

def test_numpy_seed_and_threads(tiny, tmp_path):
    res = sb.sweep(tiny, "sma_cross", fast=[2, 3, 5], slow=[10, 20], sample=3,
                   seed=np.int64(1), threads=np.int64(1))
    assert res.table.num_rows == 3 and res.fixed["seed"] == 1
    res.to_parquet(tmp_path / "a.parquet")
    out = sb.sweep(tiny, "sma_cross", fast=[2, 3, 5], slow=[10, 20], sample=3,
                   seed=np.int64(1), out=tmp_path / "b")
    assert pq.read_table(tmp_path / "b").num_rows == 3 and out.n_combos == 3
    bt = sb.backtest(tiny, "sma_cross", fast=np.int64(3), slow=np.int32(10),
                     threads=np.int64(1))
    assert bt.stats.num_rows == 1


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"seed": -1, "sample": 2}, ValueError, ["seed", ">= 0"]),
    ({"seed": 1.5, "sample": 2}, ValueError, ["seed", "integer"]),
    ({"sample": np.int64(0)}, ValueError, ["sample", ">= 1"]),
    ({"max_bars": 2**63}, ValueError, ["max_bars", "9.0072e+15"]),
    ({"max_bars": [5, 2**70]}, ValueError, ["max_bars[1]"]),
    ({"stop_loss": np.linspace(0.01, 0.5, 10**5), "take_profit": np.linspace(0.01, 1, 10**5),
      "trailing_stop": np.linspace(0.01, 0.5, 10**5), "fees": np.linspace(0, 0.1, 10**5)},
     ValueError, ["combinations", "2**62"]),
])
def test_out_of_range_values_name_the_parameter(tiny, kwargs, exc, words):
    with pytest.raises(exc) as info:
        sb.sweep(tiny, "sma_cross", **kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("train, words", [
    ("99999999999999Y", ["longer than 250 years"]),
    ("9999999999999999999999D", ["longer than"]),
    (2**70, ["train (bars)"]),
])
def test_huge_walk_forward_spans_are_refused(tiny, train, words):
    with pytest.raises((ValueError, TypeError)) as info:
        sb.walk_forward(tiny, "sma_cross", train=train, test=10)
    for word in words:
        assert word in str(info.value)
