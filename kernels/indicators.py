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


@njit(cache=True)
def ema_1d(values, start, end, window, out):
    """Exponential moving average of ``values[start:end]`` into ``out``, SMA-seeded.

    ``alpha = 2 / (window + 1)``. The series may begin later than ``start`` (a derived
    series such as MACD): let ``f`` be its first defined (non-NaN) bar in the span. The
    EMA is defined from ``f + window - 1``, where it equals the plain mean of
    ``values[f .. f+window-1]`` (summed left to right); then
    ``ema[i] = alpha * values[i] + (1 - alpha) * ema[i-1]``. NaN before. Values are
    expected to stay defined after ``f`` (a later NaN propagates).
    """
    out[:] = np.nan
    f = start
    while f < end and values[f] != values[f]:
        f += 1
    if end - f < window:
        return
    alpha = 2.0 / (window + 1.0)
    total = 0.0
    for i in range(f, f + window):
        total += values[i]
    ema = total / window
    out[f + window - 1] = ema
    for i in range(f + window, end):
        ema = alpha * values[i] + (1.0 - alpha) * ema
        out[i] = ema


@njit(parallel=True, cache=True)
def ema_bank(close, start, end, windows, out):
    """SMA-seeded EMA of ``close`` for every asset and every window: ``out[a, w, :]``."""
    n_assets = close.shape[0]
    n_windows = windows.shape[0]
    for task in prange(n_assets * n_windows):
        a = task // n_windows
        w = task - a * n_windows
        ema_1d(close[a], start[a], end[a], windows[w], out[a, w])


@njit(parallel=True, cache=True)
def ema_rows_bank(src, start, end, rows, windows, out):
    """EMA (``ema_1d``) of feature row ``src[a, rows[s]]`` with ``windows[s]``: ``out[a, s]``.

    For indicators of indicators (the MACD signal line): each output row is seeded from the
    first defined value of its source row.
    """
    n_assets = src.shape[0]
    n_rows = rows.shape[0]
    for task in prange(n_assets * n_rows):
        a = task // n_rows
        s = task - a * n_rows
        ema_1d(src[a, rows[s]], start[a], end[a], windows[s], out[a, s])


@njit(parallel=True, cache=True)
def diff_rows_bank(src, start, end, rows_a, rows_b, out):
    """``out[a, p] = src[a, rows_a[p]] - src[a, rows_b[p]]`` in the span (NaN if either is)."""
    n_assets = src.shape[0]
    n_rows = rows_a.shape[0]
    for task in prange(n_assets * n_rows):
        a = task // n_rows
        p = task - a * n_rows
        row = out[a, p]
        row[:] = np.nan
        xa = src[a, rows_a[p]]
        xb = src[a, rows_b[p]]
        for i in range(start[a], end[a]):
            row[i] = xa[i] - xb[i]  # NaN when either side is undefined


@njit(cache=True)
def wilder_rsi_1d(close, start, end, window, out):
    """Wilder's RSI of ``close[start:end]`` into ``out``.

    Changes ``d[i] = close[i] - close[i-1]`` for ``i > start``; gain ``max(d, 0)``, loss
    ``max(-d, 0)``. At ``start + window`` the average gain (loss) is the plain mean of the
    first ``window`` gains (losses), then ``avg = (avg * (window - 1) + x) / window``.
    ``rsi = 100 * avg_gain / (avg_gain + avg_loss)`` (= ``100 - 100 / (1 + RS)``), exactly
    100 when ``avg_loss == 0``, exactly 0 when ``avg_gain == 0``, NaN when both are 0 (no
    change at all). Defined from ``start + window``.
    """
    out[:] = np.nan
    if end - start <= window:
        return
    sum_gain = 0.0
    sum_loss = 0.0
    for i in range(start + 1, start + window + 1):
        d = close[i] - close[i - 1]
        if d > 0.0:
            sum_gain += d
        elif d < 0.0:
            sum_loss -= d
    avg_gain = sum_gain / window
    avg_loss = sum_loss / window
    i = start + window
    while True:
        if avg_loss == 0.0:
            if avg_gain > 0.0:
                out[i] = 100.0
        elif avg_gain == 0.0:
            out[i] = 0.0
        else:
            out[i] = 100.0 * avg_gain / (avg_gain + avg_loss)
        i += 1
        if i >= end:
            break
        d = close[i] - close[i - 1]
        gain = d if d > 0.0 else 0.0
        loss = -d if d < 0.0 else 0.0
        avg_gain = (avg_gain * (window - 1) + gain) / window
        avg_loss = (avg_loss * (window - 1) + loss) / window


@njit(parallel=True, cache=True)
def rsi_bank(close, start, end, windows, out):
    """Wilder RSI of ``close`` for every asset and every window: ``out[a, w, :]``."""
    n_assets = close.shape[0]
    n_windows = windows.shape[0]
    for task in prange(n_assets * n_windows):
        a = task // n_windows
        w = task - a * n_windows
        wilder_rsi_1d(close[a], start[a], end[a], windows[w], out[a, w])


@njit(cache=True)
def rolling_std_1d(values, start, end, window, mean, out):
    """Population (ddof=0) standard deviation of each window about its mean, into ``out``.

    ``mean`` is the window's SMA (``rolling_mean_1d``); ``out[i]`` is
    ``sqrt(sum((values[j] - mean[i])**2 for j in i-window+1..i) / window)``, two-pass per
    bar (O(window) each: no running sum of squares), defined from ``start + window - 1``.
    """
    out[:] = np.nan
    for i in range(start + window - 1, end):
        m = mean[i]
        ss = 0.0
        for j in range(i - window + 1, i + 1):
            d = values[j] - m
            ss += d * d
        out[i] = np.sqrt(ss / window)


@njit(parallel=True, cache=True)
def bollinger_bank(close, start, end, windows, mid_out, sd_out):
    """Bollinger middle band (SMA) and population std of ``close``: ``[a, w, :]`` each."""
    n_assets = close.shape[0]
    n_windows = windows.shape[0]
    for task in prange(n_assets * n_windows):
        a = task // n_windows
        w = task - a * n_windows
        rolling_mean_1d(close[a], start[a], end[a], windows[w], mid_out[a, w])
        rolling_std_1d(close[a], start[a], end[a], windows[w], mid_out[a, w], sd_out[a, w])


@njit(cache=True)
def channel_1d(values, start, end, window, sign, out):
    """Donchian channel edge that EXCLUDES the current bar, into ``out``.

    ``sign = 1``: ``out[i] = max(values[i-window .. i-1])`` (highest high);
    ``sign = -1``: the minimum (lowest low). Defined from ``start + window``. A monotonic
    deque keeps it O(n) whatever the window.
    """
    out[:] = np.nan
    if end - start <= window:
        return
    cap = window + 1
    dq = np.empty(cap, np.int64)  # bar indices, values monotone from head to tail
    head = 0
    tail = 0
    for j in range(start, end - 1):  # bar j is the newest bar of out[j + 1]'s channel
        x = sign * values[j]
        while tail > head and sign * values[dq[(tail - 1) % cap]] <= x:
            tail -= 1
        dq[tail % cap] = j
        tail += 1
        if dq[head % cap] <= j - window:
            head += 1
        if j + 1 >= start + window:
            out[j + 1] = values[dq[head % cap]]


@njit(parallel=True, cache=True)
def channel_bank(high, low, start, end, windows, hh_out, ll_out):
    """Donchian channels (current bar excluded): highest high and lowest low, ``[a, w, :]``."""
    n_assets = high.shape[0]
    n_windows = windows.shape[0]
    for task in prange(n_assets * n_windows):
        a = task // n_windows
        w = task - a * n_windows
        channel_1d(high[a], start[a], end[a], windows[w], 1.0, hh_out[a, w])
        channel_1d(low[a], start[a], end[a], windows[w], -1.0, ll_out[a, w])


@njit(cache=True)
def roc_1d(close, start, end, lookback, out):
    """Rate of change ``close[i] / close[i-lookback] - 1``, defined from ``start + lookback``."""
    out[:] = np.nan
    for i in range(start + lookback, end):
        out[i] = close[i] / close[i - lookback] - 1.0


@njit(parallel=True, cache=True)
def roc_bank(close, start, end, lookbacks, out):
    """Rate of change of ``close`` for every asset and every lookback: ``out[a, w, :]``."""
    n_assets = close.shape[0]
    n_windows = lookbacks.shape[0]
    for task in prange(n_assets * n_windows):
        a = task // n_windows
        w = task - a * n_windows
        roc_1d(close[a], start[a], end[a], lookbacks[w], out[a, w])


# ----------------------------------------------------------------------------------------
# rank scores: read only at a few bars (the rebalance bars), so they are written for the
# bars ``bars`` only, as ``(n_rows, n_keys, n_assets)``: row k holds bar bars[k], and one
# bar's scores for every asset lie side by side


@njit(parallel=True, cache=True)
def momentum_score_bank(close, start, end, lookbacks, skips, sign, bars, out):
    """``sign * (close[i-skip] / close[i-skip-lookback] - 1)`` at each bar ``i`` of
    ``bars`` into ``out[j, k, a]`` for the j-th (lookback, skip) pair; NaN when
    ``i-skip-lookback`` lies before the asset's span or ``i`` outside it. ``sign`` +1:
    momentum, -1: reversal (minus the return)."""
    n_assets = close.shape[0]
    n_rows = lookbacks.shape[0]
    for job in prange(n_rows * n_assets):
        j = job // n_assets
        a = job - j * n_assets
        lookback = lookbacks[j]
        skip = skips[j]
        for k in range(bars.shape[0]):
            i = bars[k]
            first = i - skip - lookback
            if first < start[a] or i < start[a] or i >= end[a]:
                out[j, k, a] = np.nan
            else:
                out[j, k, a] = sign * (close[a, i - skip] / close[a, first] - 1.0)


@njit(parallel=True, cache=True)
def volatility_bank(close, start, end, windows, bars, out):
    """Sample standard deviation (ddof 1) of the ``window`` simple returns
    ``close[m]/close[m-1] - 1``, ``m = i-window+1 .. i``, at each bar ``i`` of ``bars``
    into ``out[j, k, a]`` for the j-th window (>= 2); NaN when ``i - window`` lies before
    the asset's span or ``i`` outside it. Two passes (mean, then squared deviations)."""
    n_assets = close.shape[0]
    n_rows = windows.shape[0]
    for job in prange(n_rows * n_assets):
        j = job // n_assets
        a = job - j * n_assets
        w = windows[j]
        for k in range(bars.shape[0]):
            i = bars[k]
            if i - w < start[a] or i >= end[a]:
                out[j, k, a] = np.nan
                continue
            total = 0.0
            for m in range(i - w + 1, i + 1):
                total += close[a, m] / close[a, m - 1] - 1.0
            mean = total / w
            squares = 0.0
            for m in range(i - w + 1, i + 1):
                d = close[a, m] / close[a, m - 1] - 1.0 - mean
                squares += d * d
            out[j, k, a] = np.sqrt(squares / (w - 1))
