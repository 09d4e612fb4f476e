""":func:`load` (long-format price data from any source into a :class:`Bundle`) and
:func:`demo` (the packaged demo data set).

``load`` runs as named steps: read the source, pick the wanted symbols' rows, encode the
symbols, parse the time stamps, read and check the values, check each symbol's order, build
the shared time axis and each symbol's span (gaps: an error, or filled), scatter the rows
into ``(n_assets, n_bars)`` arrays.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sweepbt.data.bundle import Bundle
from sweepbt.data.columns import (
    PRICE_COLS, VALUE_COLS, check_values, encode_symbols, numeric, resolve_columns,
    symbol_list, symbol_strings)
from sweepbt.data.errors import DataError, RowLocator, fmt_ts, some
from sweepbt.data.readers import read_source
from sweepbt.data.times import arrow_to_ns, optional_zone

_GAPS = ("error", "ffill")


def load(source, *, gaps: str = "error", timestamp=None, symbol=None, tz=None) -> Bundle:
    """Load and validate price data into a :class:`Bundle`.

    Parameters
    ----------
    source
        A path to a ``.parquet``, ``.feather``/``.arrow``/``.ipc`` or ``.csv`` file, a
        ``pyarrow.Table``, or a pandas ``DataFrame``. Long format: one row per
        (timestamp, symbol) with columns ``timestamp, symbol, open, high, low, close`` and
        optional ``volume`` (names case-insensitive, extra columns ignored); without a
        ``symbol`` column the data is a single asset.
    gaps
        ``"error"`` (default): a time stamp that other assets have but an asset lacks inside
        its span raises. ``"ffill"``: such a bar becomes a flat bar at the previous close
        (open = high = low = close, volume 0).
    timestamp
        Name of the time stamp column when it is not ``timestamp`` (case-insensitive).
        By default ``timestamp`` is used, else the only one of ``datetime``/``date``/``time``.
    symbol
        Single-asset data: the asset's name (default: the file name's stem, or ``"asset"``).
        Long-format data: a name or list of names to load (the rest is skipped before
        validation).
    tz
        The data's time zone: an IANA name (``"America/New_York"``) or a UTC offset
        (``"+09:00"``). Naive timestamps are wall-clock times in it (default: UTC); zoned
        timestamps are converted, and keep their own zone unless ``tz`` is given. It
        becomes :attr:`Bundle.tz`, whose calendar :attr:`Bundle.periods_per_year` counts.
    """
    if gaps not in _GAPS:
        raise ValueError(f"gaps must be one of {_GAPS}, got {gaps!r}")
    zone = optional_zone(tz)
    want = None if symbol is None else symbol_list(symbol, "symbol")
    if isinstance(source, Bundle):
        out = source.copy() if want is None else source.select(want)
        return out if zone is None else replace(out, tz=zone)
    table, default_name = read_source(source, timestamp)
    roles = resolve_columns(table.column_names, timestamp)
    if table.num_rows == 0:
        raise DataError("empty data: the input has no rows")

    # symbols, time stamps, values (in the user's row order)
    table, loc = _pick_rows(table, roles, want, default_name)
    codes, names = _symbol_codes(table, roles, want, loc)
    ts_col = roles["timestamp"]
    ts, zone = arrow_to_ns(table.column(ts_col), ts_col, loc, zone)
    loc.ts = ts
    cols = _values(table, roles, loc)

    # each symbol's rows in time order, the shared time axis, each symbol's span
    grp = _grouping(codes, len(names))
    _check_order(codes, ts, grp, ts_col, loc)
    union, pos = _time_axis(ts, len(names))
    spans = _spans(codes, pos, grp, len(names))
    if gaps == "error" and spans.missing.any():
        _raise_gap(spans, union, names, grp, loc, ts_col)

    flat = codes * union.size + pos  # each row's position in (n_assets, n_bars), flattened
    out = _scatter(cols, flat, len(names), union.size)
    if spans.missing.any():  # gaps == "ffill"
        _fill_gaps(out, flat, spans)
    return Bundle(out["open"], out["high"], out["low"], out["close"], out["volume"],
                  union.view("datetime64[ns]"), tuple(names), spans.start, spans.end, zone)


# --------------------------------------------------------------------------------------
# the steps of load
# --------------------------------------------------------------------------------------


def _pick_rows(table: pa.Table, roles: dict, want, default_name):
    """(table of the wanted symbols' rows, locator of those rows in the user's input)."""
    loc = RowLocator(table.num_rows)
    if roles["symbol"] is None:
        if want is not None and len(want) != 1:
            raise DataError(f"single-asset data (no symbol column): symbol= must be one name, "
                            f"got {want}")
        loc.single = default_name if want is None else want[0]
        return table, loc
    if want is None:
        return table, loc
    scol = symbol_strings(table.column(roles["symbol"]), roles["symbol"])
    have = pc.unique(scol).to_pylist()
    known = set(have)
    unknown = [s for s in want if s not in known]
    if unknown:
        raise DataError(f"unknown symbol(s) {unknown} (symbol=) in column "
                        f"{roles['symbol']!r}; available: {some(have)}")
    mask = pc.is_in(scol, value_set=pa.array(want, scol.type))
    loc.rows = np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False)))
    table = table.filter(mask)
    loc.n = table.num_rows
    return table, loc


def _symbol_codes(table: pa.Table, roles: dict, want, loc: RowLocator):
    """(symbol index of each row, symbol names): in ``want``'s order when given, else in
    order of appearance."""
    if roles["symbol"] is None:
        return np.zeros(table.num_rows, dtype=np.int64), [loc.single]
    codes, names = encode_symbols(table.column(roles["symbol"]), roles["symbol"], loc)
    if want is not None:
        order = {s: j for j, s in enumerate(want)}
        remap = np.asarray([order[s] for s in names], dtype=np.int64)
        codes, names = remap[codes], list(want)
    loc.codes, loc.names = codes, names
    return codes, names


def _values(table: pa.Table, roles: dict, loc: RowLocator) -> dict:
    """role -> float64 values per row, checked (volume only when the input has it)."""
    cols, nulls, shown = {}, {}, {}
    for role in VALUE_COLS:
        if roles[role] is None:
            continue
        cols[role], nulls[role] = numeric(table.column(roles[role]), roles[role], loc)
        shown[role] = roles[role]
    check_values(cols, shown, loc, nulls=nulls)
    return cols


def _grouping(codes: np.ndarray, k: int):
    """The rows' order grouped by symbol (stable), or None when they already are."""
    if k == 1 or bool(np.all(codes[1:] >= codes[:-1])):
        return None
    small = codes.astype(np.int16 if k < 2**15 else np.int64)
    return np.argsort(small, kind="stable")


def _check_order(codes, ts, grp, col: str, loc: RowLocator) -> None:
    """Each symbol's time stamps strictly increase; else name the first offending row (in
    the user's order) as a duplicate or an unsorted row."""
    codes_g, ts_g = (codes, ts) if grp is None else (codes[grp], ts[grp])
    bad = (codes_g[1:] == codes_g[:-1]) & (ts_g[1:] <= ts_g[:-1])
    if not bad.any():
        return
    pos = np.flatnonzero(bad)
    later = pos + 1 if grp is None else grp[pos + 1]
    j = int(np.argmin(later))
    r = int(later[j])
    prev = int(pos[j] if grp is None else grp[pos[j]])
    same = np.flatnonzero((codes == codes[r]) & (ts == ts[r]))
    if same.size > 1:
        raise DataError(f"duplicate (timestamp, symbol) row: {loc.where(r, col)}: same "
                        f"timestamp and symbol as row {loc.row(int(same[0]))}")
    raise DataError(
        f"unsorted timestamps: {loc.where(r, col)}: earlier than the previous row of this "
        f"symbol (row {loc.row(prev)}, timestamp {fmt_ts(ts[prev])}); sort the input by "
        "timestamp within each symbol"
    )


def _time_axis(ts: np.ndarray, k: int):
    """(the sorted distinct time stamps of all rows, each row's bar on that axis)."""
    n = ts.size
    if k == 1:
        return ts.copy(), np.arange(n, dtype=np.int64)
    if bool(np.all(ts[1:] >= ts[:-1])):
        union = ts[np.concatenate(([True], ts[1:] != ts[:-1]))]
    else:
        union = np.unique(ts)
    return union, np.searchsorted(union, ts).astype(np.int64)


class _Spans(NamedTuple):
    """Each symbol's rows and span: its rows are ``first[a]..last[a]`` of the grouped order,
    on bars ``pos_g`` of the axis; its span is ``start[a] <= i < end[a]``, with ``missing[a]``
    bars inside it lacking a row."""

    first: np.ndarray
    last: np.ndarray
    pos_g: np.ndarray
    start: np.ndarray
    end: np.ndarray
    missing: np.ndarray


def _spans(codes, pos, grp, k: int) -> _Spans:
    counts = np.bincount(codes, minlength=k)
    last = np.cumsum(counts) - 1
    first = last - counts + 1
    pos_g = pos if grp is None else pos[grp]
    start = pos_g[first].astype(np.int64)
    end = (pos_g[last] + 1).astype(np.int64)
    return _Spans(first, last, pos_g, start, end, (end - start) - counts)


def _raise_gap(spans: _Spans, union, names, grp, loc: RowLocator, col: str):
    """The error for the first symbol with a gap (``gaps="error"``)."""
    a = int(np.argmax(spans.missing > 0))
    seg = spans.pos_g[spans.first[a]:spans.last[a] + 1]
    j = int(np.argmax(np.diff(seg) > 1))
    before = int(spans.first[a] + j)
    r = before if grp is None else int(grp[before])
    raise DataError(
        f"gap: symbol {names[a]!r} has no row at timestamp {fmt_ts(union[seg[j] + 1])}, "
        f"which other symbols have, inside its span ({fmt_ts(union[spans.start[a]])} .. "
        f"{fmt_ts(union[spans.end[a] - 1])}); {int(spans.missing[a])} bar(s) missing in all; "
        f"the last row before the gap is {loc.where(r, col)}. Pass gaps='ffill' to fill gaps "
        "with flat bars at the previous close"
    )


def _scatter(cols: dict, flat: np.ndarray, k: int, nb: int) -> dict:
    """role -> ``(k, nb)`` array: row values at their flat positions ``flat``, NaN
    elsewhere; volume 0 when the input has none."""
    out = {}
    for role in VALUE_COLS:
        arr = np.full(k * nb, np.nan)
        arr[flat] = cols[role] if role in cols else 0.0
        out[role] = arr.reshape(k, nb)
    return out


def _fill_gaps(out: dict, flat: np.ndarray, spans: _Spans) -> None:
    """``gaps="ffill"``: each bar missing inside a span becomes a flat bar at the previous
    close with volume 0 (in place)."""
    k, nb = out["close"].shape
    present = np.zeros(k * nb, dtype=bool)
    present[flat] = True
    present = present.reshape(k, nb)
    bars = np.arange(nb)
    for a in np.flatnonzero(spans.missing):
        s, e = int(spans.start[a]), int(spans.end[a])
        p = present[a, s:e]
        idx = np.maximum.accumulate(np.where(p, bars[: e - s], 0))
        hole = ~p
        fill = out["close"][a, s:e][idx][hole]
        for role in PRICE_COLS:
            out[role][a, s:e][hole] = fill
        out["volume"][a, s:e][hole] = 0.0


# --------------------------------------------------------------------------------------
# demo()
# --------------------------------------------------------------------------------------

_demo_lock = threading.Lock()
_demo_cache: list = []


def demo() -> Bundle:
    """The packaged demo data set: daily bars of several synthetic assets over 20+ years.

    Deterministic (generated from a fixed seed by ``python -m sweepbt.data.make_demo``).
    Each call returns fresh arrays, so callers may modify them."""
    with _demo_lock:
        if not _demo_cache:
            from importlib.resources import files

            import pyarrow.parquet as pq

            raw = files("sweepbt.data").joinpath("demo.parquet").read_bytes()
            _demo_cache.append(load(pq.read_table(pa.BufferReader(raw))))
        return _demo_cache[0].copy()
