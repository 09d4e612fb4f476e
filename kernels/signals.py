"""Signal kernels: turn feature rows into sparse signal events, once per distinct signal.

A strategy's signal depends on the data and its own parameters only, never on the position,
so it is computed once per (distinct signal parameters, asset) and shared by every risk/cost
combination of a sweep. Events are stored sparse (CSR): row ``r`` holds the bars
``event_bar[ptr[r]:ptr[r+1]]`` (increasing) and their codes ``event_code`` (bit sets of
:mod:`sweepbt.kernels.codes`). Memory grows with the number of signals, never with bars x combos.
"""

import numpy as np
from numba import njit, prange

from sweepbt.kernels.codes import BUY, SELL


@njit(cache=True)
def _cross_scan(feat_a, feat_b, start, end, event_bar, event_code, out_at):
    """Crossings of A over/under B in ``[start, end)``; writes from ``out_at`` when given.

    Bullish at i when ``A[i] > B[i]`` and ``A[i-1] <= B[i-1]``; bearish when ``A[i] < B[i]``
    and ``A[i-1] >= B[i-1]``; both features must be defined (not NaN) at i and i-1, and
    i-1 >= start (no read before the span). Codes: BUY when bullish, SELL when bearish.
    Returns the number of events.
    """
    n = 0
    have_prev = False
    prev_diff = 0.0
    for i in range(start, end):
        a = feat_a[i]
        b = feat_b[i]
        if a != a or b != b:
            have_prev = False
            continue
        diff = a - b
        if have_prev:
            code = 0
            if diff > 0.0 and prev_diff <= 0.0:
                code = BUY
            elif diff < 0.0 and prev_diff >= 0.0:
                code = SELL
            if code != 0:
                if out_at >= 0:
                    event_bar[out_at + n] = i
                    event_code[out_at + n] = code
                n += 1
        prev_diff = diff
        have_prev = True
    return n


@njit(parallel=True, cache=True)
def cross_events(features, start, end, pair_a, pair_b):
    """Crossing events for every (signal pair, asset): CSR ``(ptr, event_bar, event_code)``.

    ``features`` is ``(n_assets, n_features, n_bars)``; signal pair ``s`` compares feature
    rows ``pair_a[s]`` and ``pair_b[s]``. Row ``s * n_assets + a`` of the CSR holds pair
    ``s`` on asset ``a``.
    """
    n_assets = features.shape[0]
    n_rows = pair_a.shape[0] * n_assets
    counts = np.zeros(n_rows, np.int64)
    dummy_bar = np.empty(0, np.int64)
    dummy_code = np.empty(0, np.int8)
    for r in prange(n_rows):
        s = r // n_assets
        a = r - s * n_assets
        counts[r] = _cross_scan(features[a, pair_a[s]], features[a, pair_b[s]], start[a],
                                end[a], dummy_bar, dummy_code, -1)
    ptr = np.zeros(n_rows + 1, np.int64)
    for r in range(n_rows):
        ptr[r + 1] = ptr[r] + counts[r]
    event_bar = np.empty(ptr[n_rows], np.int64)
    event_code = np.empty(ptr[n_rows], np.int8)
    for r in prange(n_rows):
        s = r // n_assets
        a = r - s * n_assets
        _cross_scan(features[a, pair_a[s]], features[a, pair_b[s]], start[a], end[a],
                    event_bar, event_code, ptr[r])
    return ptr, event_bar, event_code
