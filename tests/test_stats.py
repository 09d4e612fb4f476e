"""Overfitting statistics: PSR, expected maximum Sharpe, DSR (the paper's worked example),
PBO by CSCV (against a slow, independent reference), and the SweepResult wrappers."""

import itertools
import math
import time
import warnings

import numpy as np
import pytest
from scipy.stats import norm, rankdata

import sweepbt as sb
from sweepbt import stats
from sweepbt._result_stats import sweep_returns_matrix

# ---------------------------------------------------------------------------------------
# PSR, expected maximum Sharpe, DSR
# ---------------------------------------------------------------------------------------


def test_deflated_sharpe_paper_example():
    """Bailey & López de Prado (2014), the DSR paper's numerical example: 100 trials whose
    annualized Sharpe ratios have variance 1/2, a selected annualized Sharpe of 2.5 over
    five years of daily returns (1,250), skewness -3, kurtosis 10: SR0 = 0.1132 per day,
    DSR = 0.9004. The paper's figures use 250 days a year (1,250 = 5 x 250)."""
    ppy = 250
    sr = 2.5 / math.sqrt(ppy)
    var = 0.5 / ppy
    sr0 = stats.expected_max_sharpe(100, var)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = stats.deflated_sharpe(sr, 1250, -3.0, 10.0, 100, var)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # the same inputs converted with 252 days a year give slightly different numbers
    ppy = 252
    sr0 = stats.expected_max_sharpe(100, 0.5 / ppy)
    assert sr0 == pytest.approx(0.11272, abs=5e-5)
    assert sr0 * math.sqrt(ppy) == pytest.approx(1.7894, abs=5e-4)  # annualized
    dsr = stats.deflated_sharpe(2.5 / math.sqrt(ppy), 1250, -3.0, 10.0, 100, 0.5 / ppy)
    assert dsr == pytest.approx(0.8997, abs=5e-5)


def test_expected_max_sharpe_matches_simulation():
    """The formula approximates E[max of N standard normals] (times sqrt(V))."""
    rng = np.random.default_rng(0)
    for n in (10, 100, 1000):
        draws = rng.standard_normal((4000, n)).max(axis=1).mean()
        assert stats.expected_max_sharpe(n, 1.0) == pytest.approx(draws, rel=0.02)
    assert stats.expected_max_sharpe(100, 4.0) == pytest.approx(
        2 * stats.expected_max_sharpe(100, 1.0))
    assert stats.expected_max_sharpe(1, 1.0) == 0.0
    assert np.all(np.diff(stats.expected_max_sharpe(np.array([2, 10, 100, 1e4]), 1.0)) > 0)
    with pytest.raises(ValueError):
        stats.expected_max_sharpe(0, 1.0)
    with pytest.raises(ValueError):
        stats.expected_max_sharpe(10, -1.0)


def test_probabilistic_sharpe():
    # normal returns: PSR = Phi(SR sqrt(n-1) / sqrt(1 + SR^2 / 2))
    sr, n = 0.05, 500
    want = norm.cdf(sr * math.sqrt(n - 1) / math.sqrt(1 + sr * sr / 2))
    assert stats.probabilistic_sharpe(sr, n) == pytest.approx(want, rel=1e-12)
    assert stats.probabilistic_sharpe(sr, n, 0.0, 3.0) == pytest.approx(want, rel=1e-12)
    # n large: certainty either way; at the benchmark: one half
    assert stats.probabilistic_sharpe(0.02, 10**7) > 0.999999
    assert stats.probabilistic_sharpe(-0.02, 10**7) < 1e-6
    assert stats.probabilistic_sharpe(0.1, 100, -1, 6, sr_benchmark=0.1) == 0.5
    # negative skew and fat tails lower a positive Sharpe's PSR
    base = stats.probabilistic_sharpe(0.1, 250)
    assert stats.probabilistic_sharpe(0.1, 250, -2.0, 3.0) < base
    assert stats.probabilistic_sharpe(0.1, 250, 0.0, 10.0) < base
    # arrays broadcast; undefined cases are NaN
    out = stats.probabilistic_sharpe(np.array([0.1, 0.1, 0.1]), np.array([1, 100, 100]),
                                     np.array([0.0, 0.0, np.nan]), 3.0)
    assert np.isnan(out[0]) and out[1] > 0.5 and np.isnan(out[2])
    assert math.isnan(stats.probabilistic_sharpe(1.0, 100, 5.0, 3.0))  # 1 - 5 + 0.5 < 0


def test_psr_is_a_calibrated_probability():
    """Among many normal-return track records with true Sharpe 0, PSR > 0.95 about 5% of
    the time."""
    rng = np.random.default_rng(1)
    r = rng.normal(0.0, 0.01, (4000, 250))
    sr = r.mean(axis=1) / r.std(axis=1, ddof=1)
    psr = stats.probabilistic_sharpe(sr, 250)
    assert np.mean(psr > 0.95) == pytest.approx(0.05, abs=0.015)


# ---------------------------------------------------------------------------------------
# PBO by CSCV
# ---------------------------------------------------------------------------------------


def reference_pbo(returns, n_splits, metric):
    """Slow CSCV written from the paper: loops over every split, scipy's average ranks."""
    T, N = returns.shape
    edges = np.linspace(0, T, n_splits + 1).round().astype(int)
    blocks = [returns[edges[b]:edges[b + 1]] for b in range(n_splits)]
    logits = []
    for train in itertools.combinations(range(n_splits), n_splits // 2):
        test = [b for b in range(n_splits) if b not in train]
        m_in = metric(np.vstack([blocks[b] for b in train]))
        m_out = metric(np.vstack([blocks[b] for b in test]))
        best = int(np.nanargmax(m_in))
        ranks = rankdata(np.where(np.isnan(m_out), -np.inf, m_out))  # 1 = worst
        w = ranks[best] / (N + 1)
        logits.append(math.log(w / (1 - w)))
    logits = np.array(logits)
    return float(np.mean(logits <= 0)), logits


def sharpe(x):
    return x.mean(axis=0) / x.std(axis=0, ddof=1)


METRICS = {
    "sharpe": sharpe,
    "sortino": lambda x: x.mean(axis=0) / np.sqrt(np.mean(np.minimum(x, 0) ** 2, axis=0)),
    "mean": lambda x: x.mean(axis=0),
    "total_return": lambda x: np.prod(1 + x, axis=0) - 1,
}


@pytest.mark.parametrize("metric", sorted(METRICS))
@pytest.mark.parametrize("shape,n_splits", [((403, 25), 8), ((240, 7), 6), ((100, 12), 10)])
def test_cscv_matches_reference(metric, shape, n_splits):
    rng = np.random.default_rng(shape[0] + n_splits)
    x = rng.normal(0.0003, 0.01, shape) + rng.normal(0, 0.0004, shape[1])
    want_pbo, want_logits = reference_pbo(x, n_splits, METRICS[metric])
    got = stats.cscv(x, n_splits, metric)
    assert got.pbo == want_pbo
    np.testing.assert_allclose(got.logits, want_logits, rtol=0, atol=1e-12)
    # a callable metric goes through the same procedure
    np.testing.assert_allclose(stats.cscv(x, n_splits, METRICS[metric]).logits, want_logits,
                               atol=1e-12)
    assert stats.pbo(x, n_splits, metric) == want_pbo


def test_cscv_details_and_ties():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 0.01, (320, 6))
    x[:, 5] = x[:, 0]  # two identical strategies: they share the average of two ranks
    res = stats.cscv(x, 8)
    want_pbo, want_logits = reference_pbo(x, 8, sharpe)
    assert res.pbo == want_pbo
    np.testing.assert_allclose(res.logits, want_logits, atol=1e-12)
    assert res.logits.size == math.comb(8, 4) and res.n_strategies == 6 and res.n_rows == 320
    assert not np.any(res.is_best == 5)  # ties go to the first column
    # is_metric / oos_metric: the chosen strategy's Sharpe in and out of sample
    edges = np.linspace(0, 320, 9).round().astype(int)
    first = list(itertools.combinations(range(8), 4))[0]
    rows_in = np.concatenate([np.arange(edges[b], edges[b + 1]) for b in first])
    rows_out = np.setdiff1d(np.arange(320), rows_in)
    assert res.is_metric[0] == pytest.approx(sharpe(x[rows_in])[res.is_best[0]], rel=1e-12)
    assert res.oos_metric[0] == pytest.approx(sharpe(x[rows_out])[res.is_best[0]], rel=1e-12)
    assert 0.0 <= res.prob_oos_loss <= 1.0
    assert float(res) == res.pbo


def test_pbo_pure_noise_is_about_one_half():
    """200 random-walk strategies (iid returns, no edge): the in-sample best is a coin flip
    out of sample."""
    rng = np.random.default_rng(2024)
    x = rng.normal(0.0, 0.01, (1000, 200))
    p = stats.pbo(x, 16)
    assert 0.3 < p < 0.7
    # averaged over many noise sets it centres on 1/2
    ps = [stats.pbo(np.random.default_rng(s).normal(0, 0.01, (500, 50)), 8)
          for s in range(30)]
    assert 0.4 < np.mean(ps) < 0.6


def test_pbo_with_a_real_edge_is_low():
    rng = np.random.default_rng(2024)
    x = rng.normal(0.0, 0.01, (1000, 200))
    x[:, 37] += 0.002  # one strategy with drift: Sharpe ~0.2 per period
    res = stats.cscv(x, 16)
    assert res.pbo < 0.1
    assert np.mean(res.is_best == 37) > 0.9


def test_cscv_bad_input():
    x = np.random.default_rng(0).normal(size=(100, 5))
    for bad in (7, 0, 1, 2.0, True):
        with pytest.raises(ValueError, match="n_splits"):
            stats.cscv(x, bad)
    with pytest.raises(ValueError, match="2-D"):
        stats.cscv(x[:, 0], 4)
    with pytest.raises(ValueError, match="at least 2 strategies"):
        stats.cscv(x[:, :1], 4)
    with pytest.raises(ValueError, match="too few"):
        stats.cscv(x[:10], 8)
    y = x.copy()
    y[3, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        stats.cscv(y, 4)
    with pytest.raises(ValueError, match="unknown metric"):
        stats.cscv(x, 4, "calmar")


# ---------------------------------------------------------------------------------------
# SweepResult.deflated_sharpe / probabilistic_sharpe / pbo
# ---------------------------------------------------------------------------------------

GRID = {"fast": list(range(5, 55, 5)), "slow": list(range(20, 220, 20)),
        "stop_loss": [None, 0.05]}


@pytest.fixture(scope="module")
def demo_sweep(demo_abc):
    return sb.sweep(demo_abc, "sma_cross",
                    constraint="fast < slow", fees=0.001, **GRID)


def test_sweep_deflated_sharpe(demo_sweep):
    res = demo_sweep
    ppy = res.fixed["periods_per_year"]
    best = res.best("sharpe", k=1).to_pylist()[0]
    d = res.deflated_sharpe()
    assert d.combo == best["combo"]
    assert d.sr_annual == pytest.approx(best["sharpe"], rel=1e-12)
    assert d.sr == pytest.approx(best["sharpe"] / math.sqrt(ppy), rel=1e-12)
    assert (d.skew, d.kurtosis) == (pytest.approx(best["skew"]), pytest.approx(best["kurtosis"]))
    assert d.n_trials == res.n_combos
    _, per_combo = res.aggregate()
    sr_all = per_combo[:, sb.kernels.METRIC_NAMES.index("sharpe")] / math.sqrt(ppy)
    assert d.var_sr == pytest.approx(np.var(sr_all[~np.isnan(sr_all)], ddof=1), rel=1e-12)
    n = float(np.mean(res.bundle.end - res.bundle.start))
    assert d.n == n
    assert d.dsr == pytest.approx(stats.deflated_sharpe(d.sr, n, d.skew, d.kurtosis,
                                                        d.n_trials, d.var_sr), rel=1e-12)
    assert d.psr == pytest.approx(res.probabilistic_sharpe(), rel=1e-12)
    assert 0 <= d.dsr <= d.psr <= 1  # deflating can only lower it (SR0 >= 0)
    assert float(d) == d.dsr and "deflated Sharpe" in str(d)
    # explicit trials and variance
    assert res.deflated_sharpe(n_trials=1, var_sr=0.0).dsr == pytest.approx(d.psr)
    # PSR of a given combo against an annualized benchmark
    other = int(res.combos[3])
    row = res.best("sharpe", k=res.n_combos).to_pylist()
    row = next(r for r in row if r["combo"] == other)
    want = stats.probabilistic_sharpe(row["sharpe"] / math.sqrt(ppy), n, row["skew"],
                                      row["kurtosis"], 0.5 / math.sqrt(ppy))
    assert res.probabilistic_sharpe(other, sr_benchmark=0.5) == pytest.approx(want)
    with pytest.raises(ValueError, match="not held"):
        res.probabilistic_sharpe(10**9)


def test_sweep_deflated_sharpe_top_k_uses_every_combo(demo_ab):
    """A top= sweep accumulates every combo's Sharpe moments: its DSR equals the full one."""
    data = demo_ab
    res = sb.sweep(data, "sma_cross", constraint="fast < slow", top=5, **GRID)
    full = sb.sweep(data, "sma_cross", constraint="fast < slow", **GRID)
    _, per_combo = full.aggregate()
    sharpes = per_combo[:, sb.kernels.METRIC_NAMES.index("sharpe")]
    sharpes = sharpes[~np.isnan(sharpes)]
    count, mean, m2 = res.sharpe_moments
    assert count == sharpes.size
    assert mean == pytest.approx(sharpes.mean(), rel=1e-12)
    assert m2 == pytest.approx(np.sum((sharpes - sharpes.mean()) ** 2), rel=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = res.deflated_sharpe()
    want = full.deflated_sharpe()
    assert d.n_trials == res.n_combos > 5
    assert d.var_sr == pytest.approx(want.var_sr, rel=1e-9)
    assert d.dsr == pytest.approx(want.dsr, rel=1e-9)
    # without the moments (a result built elsewhere), the held-combos estimate warns
    res.sharpe_moments = None
    with pytest.warns(UserWarning, match="var_sr"):
        res.deflated_sharpe()


def test_sweep_pbo(demo_sweep):
    res = demo_sweep
    top, matrix = sweep_returns_matrix(res, k=40)
    assert top.size == 40 and matrix.shape == (res.bundle.n_bars, 40)
    # each column: the equal-weight mean of the per-asset returns of that combo
    r = res.returns(top[:3])
    np.testing.assert_allclose(matrix[:, :3], np.nanmean(r, axis=1).T, rtol=1e-12)
    # the 40 held combos with the best Sharpe
    want = np.sort(res.best("sharpe", k=40)["combo"].to_numpy())
    np.testing.assert_array_equal(top, want)
    p = res.pbo(k=40, n_splits=8)
    assert p.pbo == stats.pbo(matrix, 8)
    assert 0.0 <= float(p) <= 1.0 and p.n_strategies == 40


def test_sweep_pbo_l_size_runs_quickly():
    """PBO over the top 1,000 combos of a size-L sweep (4 assets x 2,520 bars, 7,290 combos)
    runs without materializing bars x all combos; the target is < 2 s (a loose bound here,
    for loaded test machines)."""
    rng = np.random.default_rng(20240601)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.018, (4, 2520)), axis=1))
    open_ = np.concatenate([np.full((4, 1), 100.0), close[:, :-1]], axis=1)
    high = np.maximum(open_, close) * 1.005
    low = np.minimum(open_, close) * 0.995
    data = sb.Bundle.from_arrays(open_, high, low, close)
    res = sb.sweep(data, "sma_cross", fast=list(range(5, 55, 5)),
                   slow=list(range(20, 220, 20)),
                   stop_loss=[round(0.01 * k, 2) for k in range(1, 10)],
                   take_profit=[round(0.025 * k, 3) for k in range(1, 10)],
                   constraint="fast < slow", fees=0.001, fill="close")
    assert res.n_combos == 7290
    res.pbo(k=20, n_splits=4)  # warm-up (compilation of the recording kernel)
    t0 = time.perf_counter()
    p = res.pbo(k=1000, n_splits=16)
    elapsed = time.perf_counter() - t0
    assert p.n_strategies == 1000 and p.logits.size == 12870
    assert elapsed < 10.0
