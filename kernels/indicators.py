"""Indicator kernels: per-asset feature arrays, computed once per distinct parameter.

Conventions: inputs are ``(n_assets, n_bars)`` float64 arrays with per-asset spans
``start[a] <= i < end[a]``; outputs have shape ``(n_assets, n_params, n_bars)`` and are NaN
wherever the indicator is undefined (outside the span and during warm-up). No kernel here
reads a bar after the one it writes.
"""

import numpy as np
from numba import njit, prange


@njit(cache=True)
def rolling_mean_1d(values, start, end, window, out):
    """Simple moving average of ``values[start:end]`` into ``out`` (same length as values).

    ``out[i]`` is the mean of ``values[i-window+1 .. i]``, defined from ``start + window - 1``;
    NaN before. A Neumaier-compensated running sum keeps the rounding error at the level of a
    direct sum, however long the series.
    """
    out[:] = np.nan
    if end - start < window:
        return
    total = 0.0
    comp = 0.0
    for i in range(start, end):
        x = values[i]
        t = total + x
        if abs(total) >= abs(x):
            comp += (total - t) + x
        else:
            comp += (x - t) + total
        total = t
        if i - window >= start:
            y = -values[i - window]
            t = total + y
            if abs(total) >= abs(y):
                comp += (total - t) + y
            else:
                comp += (y - t) + total
            total = t
        if i >= start + window - 1:
            out[i] = (total + comp) / window


@njit(parallel=True, cache=True)
def sma_bank(close, start, end, windows, out):
    """SMA of ``close`` for every asset and every window: ``out[a, w, :]``.

    One task per (asset, window) pair, in parallel; each output row has one writer.
    """
    n_assets = close.shape[0]
    n_windows = windows.shape[0]
    for task in prange(n_assets * n_windows):
        a = task // n_windows
        w = task - a * n_windows
        rolling_mean_1d(close[a], start[a], end[a], windows[w], out[a, w])


@njit(cache=True)
def wilder_atr_1d(high, low, close, start, end, window, out):
    """Wilder's average true range over ``[start, end)`` into ``out``.

    True range: ``high - low`` on the first bar, then
    ``max(high - low, |high - close[i-1]|, |low - close[i-1]|)``. ATR is defined from
    ``start + window - 1``, seeded with the mean of the first ``window`` true ranges, then
    ``atr[i] = (atr[i-1] * (window - 1) + tr[i]) / window``. NaN before.
    """
    out[:] = np.nan
    if end - start < window:
        return
    total = 0.0
    atr = 0.0
    for i in range(start, end):
        tr = high[i] - low[i]
        if i > start:
            tr = max(tr, abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        if i < start + window:
            total += tr
            if i == start + window - 1:
                atr = total / window
                out[i] = atr
        else:
            atr = (atr * (window - 1) + tr) / window
            out[i] = atr


@njit(parallel=True, cache=True)
def atr_bank(high, low, close, start, end, windows, out):
    """Wilder ATR for every asset and every window: ``out[a, w, :]``."""
    n_assets = close.shape[0]
    n_windows = windows.shape[0]
    for task in prange(n_assets * n_windows):
        a = task // n_windows
        w = task - a * n_windows
        wilder_atr_1d(high[a], low[a], close[a], start[a], end[a], windows[w], out[a, w])
