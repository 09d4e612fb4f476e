"""Signal kernels: turn feature rows into sparse signal events, once per distinct signal.

A strategy's signal depends on the data and its own parameters only, never on the position,
so it is computed once per (distinct signal parameters, asset) and shared by every risk/cost
combination of a sweep. Events are stored sparse (CSR): row ``r`` holds the bars
``event_bar[ptr[r]:ptr[r+1]]`` (increasing) and their codes ``event_code`` (bit sets of
:mod:`sweepbt.kernels.codes`). Memory grows with the number of signals, never with bars x combos.
"""

import numpy as np
from numba import njit, prange

from sweepbt.kernels.codes import BUY, ENTER_LONG, ENTER_SHORT, EXIT_LONG, EXIT_SHORT, SELL


@njit(cache=True)
def _csr_alloc(counts):
    """Row pointers (prefix sums of ``counts``) and empty event arrays to fill."""
    n_rows = counts.shape[0]
    ptr = np.zeros(n_rows + 1, np.int64)
    for r in range(n_rows):
        ptr[r + 1] = ptr[r] + counts[r]
    return ptr, np.empty(ptr[n_rows], np.int64), np.empty(ptr[n_rows], np.int8)


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
    ptr, event_bar, event_code = _csr_alloc(counts)
    for r in prange(n_rows):
        s = r // n_assets
        a = r - s * n_assets
        _cross_scan(features[a, pair_a[s]], features[a, pair_b[s]], start[a], end[a],
                    event_bar, event_code, ptr[r])
    return ptr, event_bar, event_code


@njit(cache=True)
def _level_scan(x, mid, width, lower, upper, breakout, start, end, event_bar, event_code,
                out_at):
    """Level events of ``x`` against a lower and an upper level in ``[start, end)``.

    The levels at bar i are ``mid[i] + lower * width[i]`` and ``mid[i] + upper * width[i]``;
    an empty ``mid`` row stands for 0, an empty ``width`` row for 1 (plain scalar levels).
    Reversion (``breakout`` False): BUY when ``x < lower level``, SELL when
    ``x > upper level``. Breakout: BUY when ``x > upper level``, SELL when
    ``x < lower level``. An event on every bar the condition holds; nothing where ``x`` or
    a level is undefined (NaN: every comparison is False). Returns the number of events.
    """
    has_mid = mid.shape[0] > 0
    has_width = width.shape[0] > 0
    n = 0
    for i in range(start, end):
        v = x[i]
        lo = lower
        hi = upper
        if has_width:
            lo = lower * width[i]
            hi = upper * width[i]
        if has_mid:
            lo = mid[i] + lo
            hi = mid[i] + hi
        code = 0
        if v < lo:
            code = SELL if breakout else BUY
        elif v > hi:
            code = BUY if breakout else SELL
        if code != 0:
            if out_at >= 0:
                event_bar[out_at + n] = i
                event_code[out_at + n] = code
            n += 1
    return n


@njit(cache=True, inline="always")
def _row_or_none(bank, a, row):
    """Row ``bank[a, row]``, or an empty row when ``row < 0`` (none)."""
    return bank[a, max(row, 0)][:0 if row < 0 else bank.shape[2]]


@njit(parallel=True, cache=True)
def level_events(x_bank, x_rows, mid_bank, mid_rows, width_bank, width_rows, lower, upper,
                 breakout, start, end):
    """Level events for every (signal, asset): CSR ``(ptr, event_bar, event_code)``.

    Signal ``s`` compares feature row ``x_bank[a, x_rows[s]]`` with the levels
    ``mid + lower[s] * width`` and ``mid + upper[s] * width`` (see ``_level_scan``), where
    ``mid`` is row ``mid_bank[a, mid_rows[s]]`` (0 when ``mid_rows[s] < 0``) and ``width``
    row ``width_bank[a, width_rows[s]]`` (1 when ``width_rows[s] < 0``). Row
    ``s * n_assets + a`` of the CSR holds signal ``s`` on asset ``a``.
    """
    n_assets = x_bank.shape[0]
    n_rows = x_rows.shape[0] * n_assets
    counts = np.zeros(n_rows, np.int64)
    dummy_bar = np.empty(0, np.int64)
    dummy_code = np.empty(0, np.int8)
    for r in prange(n_rows):
        s = r // n_assets
        a = r - s * n_assets
        counts[r] = _level_scan(x_bank[a, x_rows[s]], _row_or_none(mid_bank, a, mid_rows[s]),
                                _row_or_none(width_bank, a, width_rows[s]), lower[s],
                                upper[s], breakout, start[a], end[a], dummy_bar, dummy_code,
                                -1)
    ptr, event_bar, event_code = _csr_alloc(counts)
    for r in prange(n_rows):
        s = r // n_assets
        a = r - s * n_assets
        _level_scan(x_bank[a, x_rows[s]], _row_or_none(mid_bank, a, mid_rows[s]),
                    _row_or_none(width_bank, a, width_rows[s]), lower[s], upper[s], breakout,
                    start[a], end[a], event_bar, event_code, ptr[r])
    return ptr, event_bar, event_code


@njit(cache=True)
def _donchian_scan(close, hh_entry, ll_entry, hh_exit, ll_exit, start, end, event_bar,
                   event_code, out_at):
    """Turtle-style channel events in ``[start, end)``; the bits of one bar are combined.

    ENTER_LONG when ``close > hh_entry``, EXIT_LONG when ``close < ll_exit``, ENTER_SHORT
    when ``close < ll_entry``, EXIT_SHORT when ``close > hh_exit``; each test only where
    its channel is defined (a NaN channel compares False). Returns the number of events.
    """
    n = 0
    for i in range(start, end):
        c = close[i]
        code = 0
        if c > hh_entry[i]:
            code |= ENTER_LONG
        if c < ll_exit[i]:
            code |= EXIT_LONG
        if c < ll_entry[i]:
            code |= ENTER_SHORT
        if c > hh_exit[i]:
            code |= EXIT_SHORT
        if code != 0:
            if out_at >= 0:
                event_bar[out_at + n] = i
                event_code[out_at + n] = code
            n += 1
    return n


@njit(parallel=True, cache=True)
def donchian_events(close, hh_bank, ll_bank, entry_rows, exit_rows, start, end):
    """Channel breakout events for every (signal, asset): CSR ``(ptr, event_bar, event_code)``.

    ``hh_bank``/``ll_bank`` are ``(n_assets, n_windows, n_bars)`` channels (current bar
    excluded); signal ``s`` enters on the channel of row ``entry_rows[s]`` and exits on
    row ``exit_rows[s]``. Row ``s * n_assets + a`` of the CSR holds signal ``s`` on asset
    ``a``.
    """
    n_assets = close.shape[0]
    n_rows = entry_rows.shape[0] * n_assets
    counts = np.zeros(n_rows, np.int64)
    dummy_bar = np.empty(0, np.int64)
    dummy_code = np.empty(0, np.int8)
    for r in prange(n_rows):
        s = r // n_assets
        a = r - s * n_assets
        en = entry_rows[s]
        ex = exit_rows[s]
        counts[r] = _donchian_scan(close[a], hh_bank[a, en], ll_bank[a, en], hh_bank[a, ex],
                                   ll_bank[a, ex], start[a], end[a], dummy_bar, dummy_code, -1)
    ptr, event_bar, event_code = _csr_alloc(counts)
    for r in prange(n_rows):
        s = r // n_assets
        a = r - s * n_assets
        en = entry_rows[s]
        ex = exit_rows[s]
        _donchian_scan(close[a], hh_bank[a, en], ll_bank[a, en], hh_bank[a, ex], ll_bank[a, ex],
                       start[a], end[a], event_bar, event_code, ptr[r])
    return ptr, event_bar, event_code


@njit(parallel=True, cache=True)
def codes_to_events(codes, counts, start, end, offs, total, n_assets):
    """Compact dense per-row signal codes into CSR events (rows ``q * n_assets + a``).

    Row ``r`` reads ``end[a] - start[a]`` codes from ``codes[q * total + offs[a]:]`` (span
    bars of asset ``a``); nonzero codes become events at bars ``start[a] + i``.
    """
    n_rows = counts.shape[0]
    ptr, event_bar, event_code = _csr_alloc(counts)
    for r in prange(n_rows):
        q = r // n_assets
        a = r - q * n_assets
        s = start[a]
        cb = q * total + offs[a]
        w = ptr[r]
        for i in range(end[a] - s):
            c = codes[cb + i]
            if c != 0:
                event_bar[w] = s + i
                event_code[w] = c
                w += 1
    return ptr, event_bar, event_code
