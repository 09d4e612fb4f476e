"""Per-bar equity series in numpy: returns, and the kernel's equity metrics recomputed.

:func:`returns_from_equity` is shared by results, statistics and walk-forward.
:func:`equity_metrics` is the numpy twin of the compiled kernel's metrics that depend only
on the per-bar equity series (docs/semantics.md, "Metrics" and "Ruin"): used where the
equity does not come from one kernel pass (walk-forward's chained out-of-sample series) and
to check the kernel. Trade metrics and ``exposure`` need the trades or the positions and
are not here.
"""

from __future__ import annotations

import math

import numpy as np

from sweepbt.kernels import NOISE

__all__ = ["EQUITY_METRIC_NAMES", "equity_metrics", "returns_from_equity"]

#: what :func:`equity_metrics` returns, in the kernel's METRIC_NAMES order
EQUITY_METRIC_NAMES = ("total_return", "cagr", "volatility", "sharpe", "sortino",
                       "max_drawdown", "calmar", "skew", "kurtosis", "ruined")
#: the return-based ratios that are NaN for a ruined series (docs/semantics.md, Ruin)
_NAN_WHEN_RUINED = ("volatility", "sharpe", "sortino", "calmar", "skew", "kurtosis")


def returns_from_equity(equity, init_cash):
    """Per-bar returns ``r_i = equity_i / equity_(i-1) - 1`` along the last axis.

    ``equity`` is NaN outside a backtest's span; the first bar of a span is measured
    against ``init_cash``. After ruin (a previous equity ``<= 0``, docs/semantics.md) the
    account no longer moves and the return is 0, never a division by zero or a sign flip.
    """
    equity = np.asarray(equity, dtype=np.float64)
    previous = np.empty_like(equity)
    previous[..., 0] = np.nan
    previous[..., 1:] = equity[..., :-1]
    previous[np.isnan(previous) & ~np.isnan(equity)] = init_cash
    out = np.full(equity.shape, np.nan)
    live = previous > 0.0
    np.divide(equity, previous, out=out, where=live)
    out[live] -= 1.0
    out[~live & ~np.isnan(equity)] = 0.0
    return out


def equity_metrics(equity, init_cash, periods_per_year):
    """The equity-only metrics of one per-bar equity series, as the kernel defines them.

    ``equity`` is 1-D; its NaN bars are dropped and the rest read as one series chained
    bar to bar (``init_cash`` before the first): a backtest's equity row (NaN outside the
    span) or walk-forward's chained out-of-sample equity. Returns a dict keyed by
    :data:`EQUITY_METRIC_NAMES`, each a float equal to the kernel's metric of that name
    (up to rounding: the kernel merges blocks of moments, this is two-pass numpy).
    ``ruined`` is 1.0 when equity reached 0 or below, then ``cagr = -1`` and the
    return-based ratios are NaN. An empty series gives NaN everywhere and ``ruined = 0``,
    as the kernel does for an empty span.
    """
    e = np.asarray(equity, dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"equity must be 1-D, got shape {e.shape}")
    e = e[~np.isnan(e)]
    nan = math.nan
    out = dict.fromkeys(EQUITY_METRIC_NAMES, nan)
    out["ruined"] = 0.0
    n = e.size
    if n == 0:
        return out
    sqrt_ppy = math.sqrt(periods_per_year)
    r = returns_from_equity(e, init_cash)
    final = e[-1] / init_cash
    ruined = bool(np.any(e <= 0.0))
    out["ruined"] = 1.0 if ruined else 0.0
    out["total_return"] = final - 1.0
    if final > 0 and not ruined:
        with np.errstate(over="ignore"):  # a huge gain over few bars: NaN, as the kernel
            cagr = np.float64(final) ** (periods_per_year / n) - 1.0
        out["cagr"] = float(cagr) if np.isfinite(cagr) else nan
    else:
        out["cagr"] = -1.0
    mean = float(r.mean())
    dev = r - mean
    std = math.sqrt(float(dev @ dev) / (n - 1)) if n > 1 else nan
    out["volatility"] = std * sqrt_ppy
    noise = NOISE * abs(mean)  # a spread this small is rounding, not dispersion
    out["sharpe"] = mean / std * sqrt_ppy if std > noise else nan
    down = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    out["sortino"] = mean / down * sqrt_ppy if down > noise else nan
    peak = np.maximum.accumulate(np.concatenate(([init_cash], e)))[1:]
    dd = float(np.max(1.0 - e / peak))
    out["max_drawdown"] = dd
    out["calmar"] = out["cagr"] / dd if dd > 0 else nan
    m2 = float(np.mean(dev * dev))
    if m2 > 0:
        out["skew"] = float(np.mean(dev ** 3)) / m2 ** 1.5
        out["kurtosis"] = float(np.mean(dev ** 4)) / (m2 * m2)
    if ruined:  # as in the kernel: returns through a bust account mean nothing
        for name in _NAN_WHEN_RUINED:
            out[name] = nan
    return out
