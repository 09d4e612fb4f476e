"""A sweep's overfitting statistics: PSR, deflated Sharpe and PBO of a SweepResult.

The formulas are in :mod:`sweepbt.stats` (pure functions of numbers); this module picks
the numbers out of a sweep's result (docs/overfitting.md). ``SweepResult``'s
``probabilistic_sharpe``, ``deflated_sharpe`` and ``pbo`` methods call these.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from sweepbt._validate import check_count
from sweepbt._series import returns_from_equity
from sweepbt.stats import DeflatedSharpe, cscv, expected_max_sharpe, probabilistic_sharpe
from sweepbt._vocabulary import N_METRICS, metric_index, rank_order


def per_combo_means(result):
    """(combo ids, per-combo metrics: mean over the rows (assets, or the portfolio) with
    bars in the sweep's span, mean bars per backtest) of the combos a SweepResult holds."""
    combos, _, metrics = result.held()
    start, end = result.plan.settings.row_spans()
    active = end > start
    per_combo = metrics.reshape(combos.size, len(result.symbols), N_METRICS)
    return combos, per_combo[:, active].mean(axis=1), float(np.mean((end - start)[active]))


def _best_position(combos, per_combo, metric="sharpe"):
    if combos.size == 0:
        raise ValueError("this sweep holds no combo")
    return int(rank_order(per_combo, combos, metric)[0])


def _position_of(combos, combo):
    pos = np.flatnonzero(combos == combo)
    if pos.size == 0:
        raise ValueError(f"combo {combo} is not held by this result")
    return int(pos[0])


def sweep_probabilistic_sharpe(result, combo=None, sr_benchmark=0.0):
    """PSR of one combo of a sweep (default: the best by mean Sharpe over assets).

    ``sr`` = the combo's annualized Sharpe (mean over the assets with bars in the span)
    / sqrt(periods_per_year); skew and kurtosis: means over those assets; ``n`` = mean
    bars per backtest. ``sr_benchmark`` is **annualized**, like the table's ``sharpe``.
    """
    combos, per_combo, n = per_combo_means(result)
    pos = _best_position(combos, per_combo) if combo is None else _position_of(combos, combo)
    root = math.sqrt(result.options.periods_per_year)
    row = per_combo[pos]
    return probabilistic_sharpe(row[metric_index("sharpe")] / root, n,
                                row[metric_index("skew")], row[metric_index("kurtosis")],
                                sr_benchmark / root)


def sweep_deflated_sharpe(result, n_trials=None, var_sr=None):
    """The deflated Sharpe ratio of a sweep's best combo by Sharpe: a :class:`DeflatedSharpe`.

    - ``sr``: the best combo's Sharpe (mean over the assets with bars in the sweep's span)
      per period (annualized / sqrt(periods_per_year)); ``skew``, ``kurtosis``: that
      combo's means over the same assets; ``n``: mean bars per backtest.
    - ``n_trials``: combos tried (``result.n_combos``, the whole grid or sample, even for a
      ``top=`` sweep), unless given.
    - ``var_sr``: variance (ddof=1) across the combos held in memory of their per-period
      Sharpe (mean over assets), NaN excluded, unless given (per period). A ``top=k``
      sweep holds only its k best combos, whose variance understates the grid's, which
      inflates the DSR: a warning says so; pass ``var_sr`` or sweep without ``top``. If
      the result carries ``sharpe_moments`` (count, mean, M2 of every combo's annualized
      Sharpe, mean over assets, accumulated over the whole sweep), those are used.
    """
    combos, per_combo, n = per_combo_means(result)
    pos = _best_position(combos, per_combo)
    ppy = result.options.periods_per_year
    root = math.sqrt(ppy)
    sr_all = per_combo[:, metric_index("sharpe")] / root
    if n_trials is None:
        n_trials = int(result.n_combos)
    moments = getattr(result, "sharpe_moments", None)
    if var_sr is None and moments is not None:
        # (count, mean, M2) of every combo's annualized Sharpe (mean over assets), NaN
        # excluded, accumulated by the sweep over all combos (even with top=)
        count, _, m2 = moments
        var_sr = float(m2 / (count - 1)) / ppy if count > 1 else 0.0
    elif var_sr is None:
        finite = sr_all[~np.isnan(sr_all)]
        var_sr = float(np.var(finite, ddof=1)) if finite.size > 1 else 0.0
        if combos.size < result.n_combos:
            warnings.warn(
                f"deflated_sharpe: var_sr is estimated from the {combos.size:,} combos held, "
                f"not all {result.n_combos:,} tried (a top= sweep keeps only the best): it "
                "understates the spread of Sharpe ratios and overstates the DSR; pass "
                "var_sr= or sweep without top=", stacklevel=3)
    row = per_combo[pos]
    sr = float(sr_all[pos])
    skew, kurt = float(row[metric_index("skew")]), float(row[metric_index("kurtosis")])
    sr0 = expected_max_sharpe(n_trials, var_sr)
    return DeflatedSharpe(
        dsr=probabilistic_sharpe(sr, n, skew, kurt, sr0),
        psr=probabilistic_sharpe(sr, n, skew, kurt, 0.0),
        sr=sr, sr_annual=sr * root, sr0=sr0, sr0_annual=sr0 * root, n=n, skew=skew,
        kurtosis=kurt, n_trials=int(n_trials), var_sr=float(var_sr), combo=int(combos[pos]))


def sweep_returns_matrix(result, k=1000, rank_metric="sharpe", max_bytes=64 << 20):
    """(combo ids, ``(T, k)`` returns) of the top ``k`` held combos by ``rank_metric``.

    Each column is a combo's equal-weight portfolio over assets: at every bar, the mean of
    the per-asset returns of the assets trading on that bar; bars where none trades are
    dropped. The equity paths are re-run in blocks of combos (``max_bytes`` of per-bar
    equity at a time), never bars x all combos.
    """
    k = check_count("k", k, minimum=2)
    combos, per_combo, _ = per_combo_means(result)
    top = np.sort(combos[rank_order(per_combo, combos, rank_metric)[:k]])
    bundle = result.bundle
    init_cash = result.options.init_cash
    block = max(1, int(max_bytes // (8 * len(result.symbols) * bundle.n_bars)))
    matrix = np.empty((top.size, bundle.n_bars))
    sub = 32  # combos per step of the arithmetic below (keeps temporaries in cache)
    for lo in range(0, top.size, block):
        equity = result.equity(top[lo:lo + block])
        for s in range(0, equity.shape[0], sub):
            r = returns_from_equity(equity[s:s + sub], init_cash)
            with np.errstate(invalid="ignore"):
                traded = (~np.isnan(r)).sum(axis=1)
                matrix[lo + s:lo + s + r.shape[0]] = np.where(
                    traded > 0, np.nansum(r, axis=1) / np.maximum(traded, 1), np.nan)
    keep = ~np.isnan(matrix).any(axis=0)
    return top, np.ascontiguousarray(matrix[:, keep].T)


def sweep_pbo(result, k=1000, n_splits=16, metric="sharpe"):
    """PBO by CSCV over the top ``k`` combos (by mean Sharpe) a sweep holds.

    The returns matrix is :func:`sweep_returns_matrix`; the result is a :class:`PBOResult`
    (``float()`` of it is the PBO). ``metric`` is the CSCV selection metric (see
    :func:`cscv`).
    """
    _, matrix = sweep_returns_matrix(result, k)
    return cscv(matrix, n_splits, metric)
