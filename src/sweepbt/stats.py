"""Overfitting statistics: probabilistic and deflated Sharpe ratios, and PBO by CSCV.

Everything here is plain numpy/scipy on arrays the caller already has; nothing runs a
backtest. :mod:`sweepbt._result_stats` feeds these functions a sweep's numbers (the
``deflated_sharpe``, ``probabilistic_sharpe`` and ``pbo`` methods of a SweepResult). The
definitions, with worked numbers, are in docs/overfitting.md.

Units: every Sharpe ratio here is **per period** (per bar: mean / std of per-bar returns,
not annualized); divide an annualized Sharpe by ``sqrt(periods_per_year)`` and its
variance by ``periods_per_year`` first. ``kurtosis`` is the raw (not excess) kurtosis:
3 for normal returns.

References:

- D. H. Bailey, M. López de Prado (2012), "The Sharpe Ratio Efficient Frontier",
  Journal of Risk 15(2): the probabilistic Sharpe ratio (PSR).
- D. H. Bailey, M. López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for
  Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio
  Management 40(5): the expected maximum Sharpe ratio and the DSR.
- D. H. Bailey, J. M. Borwein, M. López de Prado, Q. J. Zhu (2017), "The Probability of
  Backtest Overfitting", Journal of Computational Finance 20(4): CSCV and PBO.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from sweepbt._validate import is_integer


def _normal_cdf(z):
    """Standard normal CDF (scipy is imported on first use, keeping ``import sweepbt`` fast)."""
    from scipy.special import ndtr

    return ndtr(z)


def _normal_ppf(p):
    """Standard normal quantile."""
    from scipy.special import ndtri

    return ndtri(p)

__all__ = [
    "EULER_GAMMA", "DeflatedSharpe", "PBOResult", "cscv", "deflated_sharpe",
    "expected_max_sharpe", "pbo", "probabilistic_sharpe",
]

#: the Euler-Mascheroni constant
EULER_GAMMA = 0.57721566490153286061

#: metrics :func:`pbo` computes from block sums (fast, exact); any callable works too
PBO_METRICS = ("sharpe", "sortino", "mean", "total_return")


def probabilistic_sharpe(sr, n, skew=0.0, kurtosis=3.0, sr_benchmark=0.0):
    """Probabilistic Sharpe ratio (Bailey & López de Prado 2012).

    The probability that the true Sharpe ratio exceeds ``sr_benchmark``, given an observed
    per-period Sharpe ``sr`` over ``n`` returns with skewness ``skew`` and raw kurtosis
    ``kurtosis``::

        PSR = Phi( (sr - sr_benchmark) * sqrt(n - 1)
                   / sqrt(1 - skew * sr + (kurtosis - 1) / 4 * sr**2) )

    All arguments broadcast (numpy arrays in, an array out; scalars in, a float out).
    NaN where undefined: ``n < 2``, a NaN input, or a non-positive term under the root.
    """
    sr, n, skew, kurtosis, sr_benchmark = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (sr, n, skew, kurtosis, sr_benchmark)))
    with np.errstate(invalid="ignore", divide="ignore"):
        var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
        z = (sr - sr_benchmark) * np.sqrt(n - 1.0) / np.sqrt(var)
        out = _normal_cdf(z)
    out = np.where((n >= 2) & (var > 0) & ~np.isnan(z), out, np.nan)
    return float(out) if out.ndim == 0 else out


def expected_max_sharpe(n_trials, var_sr):
    """Expected maximum Sharpe ratio of ``n_trials`` unskilled trials (Bailey & LdP 2014).

    ``var_sr`` is the variance of the trials' (per-period) Sharpe ratios across trials.
    With ``N = n_trials`` and ``gamma`` the Euler-Mascheroni constant::

        SR0 = sqrt(var_sr) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))

    One trial has nothing to select from: ``SR0 = 0`` (the formula's limit would be -inf).
    Broadcasts like :func:`probabilistic_sharpe`.
    """
    n_trials, var_sr = np.broadcast_arrays(np.asarray(n_trials, dtype=np.float64),
                                           np.asarray(var_sr, dtype=np.float64))
    if np.any(n_trials < 1):
        raise ValueError(f"n_trials must be >= 1, got {n_trials.min()!r}")
    if np.any(var_sr < 0):
        raise ValueError(f"var_sr must be >= 0, got {var_sr.min()!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = ((1.0 - EULER_GAMMA) * _normal_ppf(1.0 - 1.0 / n_trials)
             + EULER_GAMMA * _normal_ppf(1.0 - 1.0 / (n_trials * math.e)))
        out = np.where(n_trials > 1, np.sqrt(var_sr) * z, 0.0)
    return float(out) if out.ndim == 0 else out


def deflated_sharpe(sr, n, skew, kurtosis, n_trials, var_sr):
    """Deflated Sharpe ratio: :func:`probabilistic_sharpe` against
    ``sr_benchmark = expected_max_sharpe(n_trials, var_sr)``.

    The probability that the selected strategy's true Sharpe ratio is positive once the
    selection among ``n_trials`` trials (whose per-period Sharpe ratios have variance
    ``var_sr``), the track length ``n`` and non-normal returns are accounted for.
    """
    return probabilistic_sharpe(sr, n, skew, kurtosis,
                                expected_max_sharpe(n_trials, var_sr))


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of a sweep's best combo and every number that went in.

    ``float(x)`` is ``dsr``. Sharpe ratios are per period unless named ``*_annual``.
    """

    dsr: float
    psr: float
    sr: float
    sr_annual: float
    sr0: float
    sr0_annual: float
    n: float
    skew: float
    kurtosis: float
    n_trials: int
    var_sr: float
    combo: int

    def __float__(self):
        return float(self.dsr)

    def __str__(self):
        return (f"deflated Sharpe {self.dsr:.4f} (best combo {self.combo}: Sharpe "
                f"{self.sr_annual:.3f}/yr vs {self.sr0_annual:.3f}/yr expected from the best "
                f"of {self.n_trials:,} unskilled trials; PSR vs 0: {self.psr:.4f})")


# ---------------------------------------------------------------------------------------
# PBO by combinatorially symmetric cross-validation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PBOResult:
    """The outcome of :func:`cscv`.

    ``pbo`` is the fraction of the ``C(S, S/2)`` splits whose logit is ``<= 0``;
    ``logits`` (one per split) are ``ln(w / (1 - w))`` of the relative out-of-sample rank
    ``w`` of the in-sample best strategy; ``is_best`` its column in each split;
    ``is_metric`` / ``oos_metric`` its in-sample and out-of-sample metric per split.
    """

    pbo: float
    logits: np.ndarray
    is_best: np.ndarray
    is_metric: np.ndarray
    oos_metric: np.ndarray
    n_splits: int
    n_strategies: int
    n_rows: int

    def __float__(self):
        return float(self.pbo)

    @property
    def prob_oos_loss(self):
        """Fraction of splits where the in-sample best has a metric <= 0 out of sample."""
        return float(np.mean(~(self.oos_metric > 0)))


def _block_stats(returns, n_splits, metric):
    """Additive per-block statistics for the block-summable metrics."""
    bounds = np.linspace(0, returns.shape[0], n_splits + 1).round().astype(np.int64)
    counts = np.diff(bounds).astype(np.float64)
    starts = bounds[:-1]
    if metric == "total_return":
        with np.errstate(invalid="ignore", divide="ignore"):
            logs = np.log1p(returns)
        return counts, {"log": np.add.reduceat(logs, starts, axis=0)}
    # shift each column by its full-sample mean: the block sums of squares are then
    # sums of squared deviations (the two-pass method), so nothing cancels catastrophically
    shift = returns.mean(axis=0)
    centered = returns - shift
    stats = {"s1": np.add.reduceat(centered, starts, axis=0),
             "s2": np.add.reduceat(centered * centered, starts, axis=0),
             "shift": shift}
    if metric == "sortino":
        down = np.minimum(returns, 0.0)
        stats["d2"] = np.add.reduceat(down * down, starts, axis=0)
    return counts, stats


def _metric_from_sums(metric, n, s, shift):
    """The metric of each (split, strategy) from summed block statistics.

    ``n`` is ``(C, 1)`` rows per split; ``s`` maps the statistic names to ``(C, N)`` sums.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "total_return":
            return np.expm1(s["log"])
        mean_c = s["s1"] / n
        mean = shift + mean_c
        if metric == "mean":
            return mean
        if metric == "sortino":
            d2 = s["d2"]
            return np.where(d2 > 0, mean / np.sqrt(d2 / n), np.nan)
        var = (s["s2"] - n * mean_c * mean_c) / (n - 1.0)
        return np.where(var > 0, mean / np.sqrt(np.maximum(var, 0.0)), np.nan)


def _rank_key(metric, n, s, shift):
    """A key with the same order as the metric within each split (row), cheaper to get.

    ``n`` is constant along a row, so: Sharpe -> mean*|mean| / (sum of squared
    deviations); Sortino -> mean*|mean| / sum(min(r, 0)^2); total return -> sum of
    log(1 + r); mean -> mean. NaN where the metric is undefined.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "total_return":
            return s["log"]
        t = s["s1"] / n
        mean = t + shift
        if metric == "mean":
            return mean
        num = mean * np.abs(mean)
        if metric == "sortino":
            den = s["d2"]
        else:
            den = s["s2"] - s["s1"] * t
        key = num / den
        key[~(den > 0)] = np.nan
        return key


def _oos_rank(oos, chosen):
    """Average rank (1 = worst .. N = best) of column ``chosen`` in each row of ``oos``.

    NaN counts as worse than any number; ties share the average of their ranks.
    """
    rows = np.arange(oos.shape[0])
    value = oos[rows, chosen][:, None]
    nan = np.isnan(oos)
    value_nan = np.isnan(value)
    # strictly worse: NaN when the chosen value is a number, or a smaller number
    below = np.where(value_nan, False, nan | (oos < value)).sum(axis=1)
    equal = np.where(value_nan, nan, oos == value).sum(axis=1)
    return below + (equal + 1) / 2.0


def _best_column(metric_values):
    """Index of the largest value per row; NaN ranks last, ties go to the first column."""
    filled = np.where(np.isnan(metric_values), -np.inf, metric_values)
    return np.argmax(filled, axis=1)


def cscv(returns, n_splits=16, metric="sharpe", *, max_splits_in_memory=64):
    """Combinatorially symmetric cross-validation (Bailey, Borwein, López de Prado, Zhu).

    ``returns``: ``(T, N)`` per-period returns, one column per strategy (trial), rows in
    time order, no NaN. The rows are cut into ``n_splits`` (S, even) contiguous blocks of
    ``T/S`` rows (sizes differ by at most one when S does not divide T). For each of the
    ``C(S, S/2)`` ways to pick S/2 blocks as the in-sample set (the other half is out of
    sample):

    1. ``n*`` = the strategy with the best in-sample ``metric`` (NaN last, ties: first);
    2. its out-of-sample rank ``r`` among the N strategies: 1 = worst, N = best (ties
       share the average rank; NaN ranks below every number);
    3. relative rank ``w = r / (N + 1)`` and logit ``lambda = ln(w / (1 - w))``.

    ``PBO`` = the fraction of splits with ``lambda <= 0``: the in-sample best landed at or
    below the out-of-sample median. ~0.5 means the selection carries no information; near 0
    means the in-sample winner keeps winning.

    ``metric``: ``"sharpe"`` (mean / std, ddof=1; the default), ``"sortino"``
    (mean / sqrt(mean(min(r, 0)^2))), ``"mean"``, ``"total_return"`` (prod(1 + r) - 1):
    these are computed from per-block sums, vectorized over all splits; or a callable
    ``f(rows: (t, N) array) -> (N,) scores`` (higher is better), called twice per split.
    """
    x = _check_cscv(returns, n_splits, metric)
    T, N = x.shape
    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)),
                      dtype=np.int64)
    bounds = np.linspace(0, T, n_splits + 1).round().astype(np.int64)
    out = {k: np.empty(combos.shape[0]) for k in ("logits", "is_val", "oos_val")}
    out["chosen"] = np.empty(combos.shape[0], dtype=np.int64)
    if callable(metric):
        _cscv_callable(x, combos, bounds, metric, out)
    else:
        _cscv_sums(x, combos, metric, max_splits_in_memory, out)
    return PBOResult(pbo=float(np.mean(out["logits"] <= 0.0)), logits=out["logits"],
                     is_best=out["chosen"], is_metric=out["is_val"],
                     oos_metric=out["oos_val"], n_splits=int(n_splits), n_strategies=N,
                     n_rows=T)


def _check_cscv(returns, n_splits, metric):
    """``returns`` as a checked float64 ``(T, N)`` array."""
    x = np.asarray(returns, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"returns must be 2-D (T rows x N strategies), got shape {x.shape}")
    T, N = x.shape
    if not is_integer(n_splits) or n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even integer >= 2, got {n_splits!r}")
    if N < 2:
        raise ValueError(f"PBO needs at least 2 strategies (columns), got {N}")
    if T < 2 * n_splits:
        raise ValueError(f"{T} rows is too few for n_splits={n_splits} (need >= "
                         f"{2 * n_splits}: two rows per block)")
    if not np.isfinite(x).all():
        raise ValueError("returns must be finite (no NaN or inf); drop or fill those rows")
    if not callable(metric) and metric not in PBO_METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {PBO_METRICS} or a "
                         "callable")
    return x


def _cscv_callable(x, combos, bounds, metric, out):
    """CSCV with a callable metric: twice per split, on the in- and out-of-sample rows."""
    N = x.shape[1]
    n_splits = bounds.size - 1
    blocks = [np.arange(bounds[b], bounds[b + 1]) for b in range(n_splits)]
    for c, train in enumerate(combos):
        test = np.setdiff1d(np.arange(n_splits), train)
        rows_in = np.concatenate([blocks[b] for b in train])
        rows_out = np.concatenate([blocks[b] for b in test])
        m_in = np.asarray(metric(x[rows_in]), dtype=np.float64).reshape(N)
        m_out = np.asarray(metric(x[rows_out]), dtype=np.float64).reshape(N)
        best = _best_column(m_in[None, :])
        out["chosen"][c] = best[0]
        out["is_val"][c] = m_in[best[0]]
        out["oos_val"][c] = m_out[best[0]]
        rank = _oos_rank(m_out[None, :], best)[0]
        w = rank / (N + 1.0)
        out["logits"][c] = math.log(w / (1.0 - w))


def _cscv_sums(x, combos, metric, max_splits_in_memory, out):
    """CSCV with a named metric, from per-block sums, vectorized over splits."""
    N = x.shape[1]
    counts, sums = _block_stats(x, combos.shape[1] * 2, metric)
    shift = sums.pop("shift", np.zeros(N))
    total_n = counts.sum()
    totals = {k: v.sum(axis=0) for k, v in sums.items()}
    # the in-sample sums of a split: its S/2 blocks' sums added (a gather, no BLAS:
    # small, cache-sized steps of splits)
    for lo in range(0, combos.shape[0], max_splits_in_memory):
        blocks = combos[lo:lo + max_splits_in_memory]
        n_in = counts[blocks].sum(axis=1)[:, None]
        s_in = {k: v[blocks].sum(axis=1) for k, v in sums.items()}
        s_out = {k: totals[k][None, :] - v for k, v in s_in.items()}
        best = _best_column(_rank_key(metric, n_in, s_in, shift))
        rank = _oos_rank(_rank_key(metric, total_n - n_in, s_out, shift), best)
        rows = np.arange(best.size)
        w = rank / (N + 1.0)
        sl = slice(lo, lo + best.size)
        out["logits"][sl] = np.log(w / (1.0 - w))
        out["chosen"][sl] = best
        out["is_val"][sl] = _metric_from_sums(metric, n_in[:, 0], {
            k: v[rows, best] for k, v in s_in.items()}, shift[best])
        out["oos_val"][sl] = _metric_from_sums(metric, total_n - n_in[:, 0], {
            k: v[rows, best] for k, v in s_out.items()}, shift[best])


def pbo(returns, n_splits=16, metric="sharpe"):
    """Probability of backtest overfitting of ``returns`` (T x N strategies) by CSCV.

    A float in [0, 1]; see :func:`cscv` for the procedure, the rank convention and the
    metrics, and for the per-split details (logits, the chosen strategies).
    """
    return cscv(returns, n_splits, metric).pbo
