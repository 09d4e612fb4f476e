"""Trend quality: a complete custom rank strategy (docs/custom-strategies.md, "Rank
strategies").

The score of an asset at a rebalance bar ``r`` is its return over ``lookback`` bars divided
by the square root of the sum of its squared daily returns over the same bars:

    score = (close[r] / close[r-lookback] - 1) / sqrt(sum(ret[k]**2, k = r-lookback+1 .. r))

a momentum that prefers steady climbs to jumpy ones. NaN (not eligible) when the window
reaches before the asset's first bar, or when the asset did not move at all.

``score`` gets each asset's closes up to bar ``r`` only (``close`` is ``(n_assets, r+1)``,
its last column bar ``r``, NaN before an asset's first bar): it cannot look ahead.

Run it:

    sweepbt sweep --demo --strategy examples/trend_quality.py:trend_quality \\
        --param lookback=21,63,126 --param top_n=2,3 --param rebalance=M,Q

or from Python:

    import sweepbt as sb
    tq = sb.load_strategy("examples/trend_quality.py:trend_quality")
    sb.sweep(sb.demo(), tq, lookback=[21, 63, 126], top_n=[2, 3], rebalance=["M", "Q"])
"""

import numba
import numpy as np

import sweepbt as sb


@numba.njit(cache=True)
def trend_quality_score(close, lookback):
    n_assets, n_seen = close.shape
    out = np.full(n_assets, np.nan)
    if n_seen <= lookback:
        return out
    last = n_seen - 1
    for a in range(n_assets):
        first = close[a, last - lookback]
        if first != first:  # the window reaches before the asset's first bar
            continue
        squares = 0.0
        for k in range(last - lookback + 1, last + 1):
            r = close[a, k] / close[a, k - 1] - 1.0
            squares += r * r
        if squares > 0.0:
            out[a] = (close[a, last] / first - 1.0) / np.sqrt(squares)
    return out


trend_quality = sb.define_rank_strategy(
    "trend_quality", score=trend_quality_score, params={"lookback": 63},
    param_docs={"lookback": "bars of the return and of its volatility"},
    doc="Holds the top_n assets by return over lookback bars per unit of its realised "
        "volatility (steady climbs first).")
