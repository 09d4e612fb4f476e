"""The compiled rank kernel (kernels.simulate_rank and its launches) against the
pure-Python reference (tests/rank_reference.py), bar by bar, on random universes with
ragged spans, NaN scores, both fill modes, both sides, every weighting, costs, tax and the
risk rules; and the score banks against the reference's score functions."""

import math

import numpy as np
import pytest

from helpers import assert_same, flat_bars, kernel_inputs, random_universe, run_kernel, scores_at
from rank_reference import (momentum_score, reference_rank_portfolio, reversal_score,
                            volatility)
from sweepbt import kernels
from sweepbt._schedule import rebalance_bars
from helpers import random_case

NAN = float("nan")


def both(bars, start, end, scores, schedule, **kw):
    ref = reference_rank_portfolio(*bars, start, end, scores, schedule, **kw)
    return run_kernel(bars, start, end, scores, schedule, **kw), ref


def test_worked_example_of_the_docs():
    ts = np.array(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-29", "2024-03-01",
                   "2024-03-04"], dtype="datetime64[ns]")
    bars = flat_bars([100, 100, 100, 120, 125, 130], [50, 50, 50, 40, 40, 42],
                     [20, 20, 20, 25, 25, 26])
    scores = scores_at(3, 6, {1: [3, 2, 1], 3: [3, 1, 2]})
    kernel, ref = both(bars, [0, 0, 0], [6, 6, 6], scores, rebalance_bars(ts, "M"),
                       top_n=2, fill="next_open", fixed_fees=10.0, tax=0.003)
    assert_same(kernel, ref)
    assert kernel["equity"][5] == pytest.approx(10596.19496, rel=1e-12)


@pytest.mark.parametrize("seed", range(60))
def test_kernel_equals_reference_on_random_universes(seed):
    bars, start, end, scores, schedule, kw = random_case(seed)
    kernel, ref = both(bars, start, end, scores, schedule, **kw)
    assert_same(kernel, ref)
    if kw["bottom_n"] == 0:  # a long-only book never has negative cash, fixed fees too
        assert np.nanmin(kernel["cash"]) >= -1e-9 * np.nanmax(kernel["equity"])


@pytest.mark.parametrize("seed", range(6))
def test_a_ruined_short_book_equals_the_reference(seed):
    rng = np.random.default_rng(100 + seed)
    n_bars = 40
    close = np.cumprod(1.0 + rng.normal(0.08, 0.05, (3, n_bars)), axis=1) * 10.0
    bars = [close.copy(), close * 1.02, close * 0.98, close]
    start, end = [0, 0, 0], [n_bars] * 3
    scores = -np.array(momentum_score(close, start, 1))
    kw = dict(top_n=1, bottom_n=2, fill=["close", "next_open"][seed % 2],
              fees=0.001 * (seed % 3), tax=0.002)
    kernel, ref = both(bars, start, end, scores, range(1, n_bars - 1, 2), **kw)
    assert_same(kernel, ref)
    assert kernel["metrics"]["ruined"] == ref["metrics"]["ruined"]


def test_no_look_ahead_in_the_kernel():
    for seed in range(6):
        full = run_kernel(*random_case(seed)[:5], **random_case(seed)[5])
        cut = 60
        part = run_kernel(*random_case(seed, cut)[:5], **random_case(seed, cut)[5])
        np.testing.assert_array_equal(part["equity"][:cut - 1], full["equity"][:cut - 1])
        early = [t for t in full["trades"] if t["exit_bar"] < cut - 1]
        assert [tuple(t) for t in part["trades"][:len(early)]] == [tuple(t) for t in early]


def test_score_banks_equal_the_reference_scores():
    rng, bars, start, end = random_universe(7, n_assets=6, n_bars=120)
    close = bars[3]
    at = np.arange(0, 120, 3, dtype=np.int64)
    s, e = np.asarray(start, np.int64), np.asarray(end, np.int64)
    lookbacks, skips = np.array([1, 5, 20], np.int64), np.array([0, 2, 0], np.int64)
    out = np.empty((3, at.size, 6))
    kernels.momentum_score_bank(close, s, e, lookbacks, skips, 1.0, at, out)
    for j in range(3):
        want = np.array(momentum_score(close, start, int(lookbacks[j]), int(skips[j])))
        np.testing.assert_allclose(out[j], want[:, at].T, rtol=1e-15, equal_nan=True)
    kernels.momentum_score_bank(close, s, e, lookbacks[:1], skips[:1], -1.0, at, out[:1])
    want = np.array(reversal_score(close, start, 1))
    np.testing.assert_allclose(out[0], want[:, at].T, rtol=1e-15, equal_nan=True)
    windows = np.array([2, 5, 30], np.int64)
    vol = np.empty((3, at.size, 6))
    kernels.volatility_bank(close, s, e, windows, at, vol)
    for j in range(3):
        want = np.array(volatility(close, start, int(windows[j])))
        np.testing.assert_allclose(vol[j], want[:, at].T, rtol=1e-12, equal_nan=True)


def test_many_combos_in_one_launch_equal_one_by_one():
    bars, start, end, scores, schedule, kw = random_case(3)
    market, sc, combos, settings = kernel_inputs(bars, start, end, scores, schedule, **kw)
    n = 7
    rank = np.repeat(combos.rank, n, axis=0)
    rank[:, kernels.RankRule.top_n] = [1, 2, 1, 2, 1, 2, 1]
    rules = np.repeat(combos.rules, n, axis=0)
    rules[:, kernels.Rule.stop_loss] = [NAN, 0.02, 0.05, NAN, 0.1, NAN, 0.01]
    rank[0], rules[0] = combos.rank[0], combos.rules[0]  # combo 0 is the case itself
    many = kernels.RankCombos(score_idx=np.zeros(n, np.int64),
                              vol_idx=np.repeat(combos.vol_idx, n),
                              schedule_idx=np.zeros(n, np.int64), rules=rules, rank=rank)
    for n_tasks in (1, 3):
        out = np.empty((n, kernels.N_METRICS))
        kernels.rank_metrics(market, sc, many, settings, n_tasks, out)
        for c in range(n):
            one = np.empty((1, kernels.N_METRICS))
            single = kernels.RankCombos(*(x[c:c + 1] for x in many))
            kernels.rank_metrics(market, sc, single, settings, 1, one)
            np.testing.assert_array_equal(out[c], one[0])
    paths = np.empty((n, close_bars := bars[3].shape[1]))
    kernels.rank_equity_paths(market, sc, many, settings, paths)
    assert paths.shape == (n, close_bars)
    first = run_kernel(bars, start, end, scores, schedule, **kw)
    np.testing.assert_array_equal(paths[0], first["equity"])
    assert not math.isnan(paths[0, max(end) - 1])
