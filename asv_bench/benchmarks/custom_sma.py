"""A user-written ``sma_cross`` (two ``@njit`` functions) for ``bench_strategies``: the same
arithmetic as the built-in, through the custom-strategy path (docs/custom-strategies.md)."""

import numpy as np
from numba import njit

from sweepbt import BUY, SELL, define_strategy


@njit(cache=True)
def _sma_row(x, w, out):
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i]
        if i >= w:
            total -= x[i - w]
        if i >= w - 1:
            out[i] = total / w


@njit(cache=True)
def sma_features(close, fast, slow):
    out = np.full((2, close.shape[0]), np.nan)
    _sma_row(close, fast, out[0])
    _sma_row(close, slow, out[1])
    return out


@njit(cache=True)
def cross_signal(features, i):
    if i < 1:
        return 0
    d = features[0, i] - features[1, i]
    pd = features[0, i - 1] - features[1, i - 1]
    if d != d or pd != pd:
        return 0
    if d > 0.0 and pd <= 0.0:
        return BUY
    if d < 0.0 and pd >= 0.0:
        return SELL
    return 0


CUSTOM_SMA_CROSS = define_strategy(
    "custom_sma_cross", indicators=sma_features, signal=cross_signal,
    indicator_params={"fast": 10, "slow": 50})
