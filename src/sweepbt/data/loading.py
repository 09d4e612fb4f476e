""":func:`load` (long-format price data from any source into a :class:`Bundle`) and
:func:`demo` (the packaged demo data set).

``load`` runs as named steps: read the source, pick the wanted symbols' rows, encode the
symbols, parse the time stamps, read and check the values (and the factor columns), check
each symbol's order, build the shared time axis and each symbol's span (gaps: an error, or
filled), scatter the rows into ``(n_assets, n_bars)`` arrays.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sweepbt.data.bundle import Bundle
from sweepbt.data.columns import (
    PRICE_COLS, VALUE_COLS, ColumnSpec, check_values, encode_symbols, factor_list, numeric,
    plain_array, symbol_list, symbol_strings)
from sweepbt.data.errors import DataError, RowLocator, fmt_ts, some
from sweepbt.data.factors import row_factors
from sweepbt.data.readers import read_source
from sweepbt.data.times import arrow_to_ns, check_time_unit, optional_zone
from sweepbt.data.wide import as_long

_GAPS = ("error", "ffill")


def load(source, *, gaps: str = "error", timestamp=None, symbol=None, tz=None,
         time_unit=None, ohlc: str = "ohlc", adjust=None, dropna: bool = False,
         factors=None, layout=None) -> Bundle:
    """Load and validate price data into a :class:`Bundle`.

    Parameters
    ----------
    source
        A path to a ``.parquet``, ``.feather``/``.arrow``/``.ipc`` or ``.csv`` file (a
        yfinance CSV with its three header rows too), a ``pyarrow.Table``, a pandas or Polars
        ``DataFrame``, or any object with ``__arrow_c_stream__``. Long format: one row per
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
    time_unit
        ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``: the time stamp column holds epoch numbers
        in that unit (UTC). Required for numbers, refused for anything else.
    ohlc
        ``"ohlc"`` (default): open, high, low and close are required. ``"close"``: only a
        close is read; open, high and low equal it (stops fill at the close, ``next_open``
        means the next close).
    adjust
        ``"adj_close"``: scale open, high and low by ``adj_close / close`` and use the
        adjusted close (an ``Adj Close`` or ``adj_close`` column). Default None: prices as
        given.
    dropna
        True: drop rows with a missing (null or NaN) price instead of raising.
    factors
        A column name or a list of them: numeric columns to keep as :attr:`Bundle.factors`
        (float64 ``(n_assets, n_bars)`` arrays beside the prices, names case-insensitive,
        keyed by the names given here). A null or NaN value is allowed (NaN: not eligible
        for ranking); infinity is not. ``gaps="ffill"`` carries a factor forward like the
        close. On a Bundle: keep only these of its factors (default: all).
    layout
        ``"wide"``: a time stamp column and one close column per ticker (named after the
        ticker; a null or NaN cell: no bar); open, high and low equal the close.
        ``"long"``: long format only. None (default): wide when the columns say so
        unambiguously (a time stamp column, no symbol, price, volume or adjusted close
        column, every other column numeric), else long.
    """
    return load_with_facts(source, gaps=gaps, timestamp=timestamp, symbol=symbol, tz=tz,
                           time_unit=time_unit, ohlc=ohlc, adjust=adjust, dropna=dropna,
                           factors=factors, layout=layout)[0]


def _check_options(gaps, time_unit, dropna, spec: ColumnSpec) -> None:
    if gaps not in _GAPS:
        raise ValueError(f"gaps must be one of {_GAPS}, got {gaps!r}")
    check_time_unit(time_unit)
    if not isinstance(dropna, (bool, np.bool_)):
        raise TypeError(f"dropna must be True or False, got {dropna!r}")
    spec.checked()


def load_with_facts(source, *, gaps="error", timestamp=None, symbol=None, tz=None,
                    time_unit=None, ohlc="ohlc", adjust=None, dropna=False,
                    rename_single=True, factors=None, layout=None):
    """``(bundle, facts)``: :func:`load`, and what it assumed, for the command line's
    header. ``facts`` may hold ``"times"`` (how the time stamps were read), ``"naive"``
    (True: they had no zone), ``"prices"`` (close-only, adjusted, an unused adjusted close,
    a wide table) and ``"dropped"`` (rows dropped by ``dropna``). ``rename_single=False``:
    ``symbol=`` on single-asset data must be the name it already has (a selection, never a
    new label)."""
    spec = ColumnSpec(timestamp, ohlc, adjust, factor_list(factors), layout)
    _check_options(gaps, time_unit, dropna, spec)
    zone = optional_zone(tz)
    want = None if symbol is None else symbol_list(symbol, "symbol")
    facts: dict = {}
    if isinstance(source, Bundle):
        if (time_unit, ohlc, adjust, dropna, layout) != (None, "ohlc", None, False, None):
            raise ValueError("time_unit=, ohlc=, adjust=, dropna= and layout= apply to raw "
                             "data, not to a Bundle (which is already loaded)")
        source.check()
        out = source.copy() if want is None else source.select(want)
        if factors is not None:
            out = replace(out, factors=_kept_factors(out, spec.factors))
        return (out if zone is None else replace(out, tz=zone)), facts
    table, default_name = read_source(source, spec)
    table, spec, wide_rows = as_long(table, spec)
    roles = spec.roles(table.column_names)
    fcols = spec.factor_columns(table.column_names, roles)
    if table.num_rows == 0:
        raise DataError("empty data: the input has no rows")

    # symbols, time stamps, values (in the user's row order)
    table, loc = _pick_rows(table, roles, want, default_name, rename_single, wide_rows)
    if dropna:
        table = _drop_missing(table, roles, spec, loc, facts)
    codes, names = _symbol_codes(table, roles, want, loc)
    ts_col = roles["timestamp"]
    ts, zone = arrow_to_ns(table.column(ts_col), ts_col, loc, zone, time_unit, facts)
    loc.ts = ts
    cols = _values(table, roles, spec, loc, facts)
    if wide_rows is not None:
        facts["prices"] = (f"wide table: a close column per ticker, {len(names)} loaded; "
                           "open, high and low equal the close")
    frows = row_factors(table, fcols, loc)

    # each symbol's rows in time order, the shared time axis, each symbol's span
    grp = _grouping(codes, len(names))
    _check_order(codes, ts, grp, ts_col, loc)
    union, pos = _time_axis(ts, len(names))
    spans = _spans(codes, pos, grp, len(names))
    if gaps == "error" and spans.missing.any():
        _raise_gap(spans, union, names, grp, loc, ts_col)

    flat = codes * union.size + pos  # each row's position in (n_assets, n_bars), flattened
    out = _scatter(cols, flat, len(names), union.size)
    facs = {f: _on_grid(x, flat, len(names), union.size) for f, x in frows.items()}
    if spans.missing.any():  # gaps == "ffill"
        _fill_gaps(out, facs, flat, spans)
    path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    bundle = Bundle(out["open"], out["high"], out["low"], out["close"], out["volume"],
                    union.view("datetime64[ns]"), tuple(names), spans.start, spans.end, zone,
                    facs, path)
    return bundle, facts


# --------------------------------------------------------------------------------------
# the steps of load
# --------------------------------------------------------------------------------------


def _kept_factors(bundle: Bundle, names) -> dict:
    """``factors=`` on a Bundle: those of its factors (exact names)."""
    unknown = [f for f in names if f not in bundle.factors]
    if unknown:
        raise DataError(f"unknown factor(s) {unknown} (factors=): the Bundle has factors "
                        f"{list(bundle.factors)}")
    return {f: bundle.factors[f] for f in names}


def _single_asset(want, default_name, rename_single: bool) -> str:
    """The name of single-asset data (no symbol column) given ``symbol=``."""
    if want is None:
        return default_name
    if len(want) != 1:
        raise DataError(f"single-asset data (no symbol column): symbol= must be one name, "
                        f"got {want}")
    if not rename_single and want[0] != default_name:
        raise DataError(f"the data is a single asset (no symbol column), named "
                        f"{default_name!r} after the file; symbol {want[0]!r} selects "
                        f"nothing and would relabel it: drop the symbol selection, or name "
                        f"the file {want[0]}.csv/.parquet")
    return want[0]


def _pick_rows(table: pa.Table, roles: dict, want, default_name, rename_single=True,
               rows=None):
    """(table of the wanted symbols' rows, locator of those rows in the user's input;
    ``rows``: each row's number there, when not its position)."""
    loc = RowLocator(table.num_rows, rows=rows)
    if roles["symbol"] is None:
        loc.single = _single_asset(want, default_name, rename_single)
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
    _keep_rows(loc, np.asarray(mask.to_numpy(zero_copy_only=False)))
    return table.filter(mask), loc


def _keep_rows(loc: RowLocator, keep: np.ndarray) -> None:
    """Narrow the locator to the rows where ``keep`` is True."""
    rows = np.flatnonzero(keep)
    loc.rows = rows if loc.rows is None else loc.rows[rows]
    loc.n = rows.size


def _price_roles(roles: dict, spec: ColumnSpec) -> list:
    """The price roles read from the input."""
    used = [r for r in PRICE_COLS if roles[r] is not None]
    return used + (["adj_close"] if spec.adjust == "adj_close" else [])


def _drop_missing(table: pa.Table, roles: dict, spec, loc: RowLocator, facts) -> pa.Table:
    """``dropna=True``: the rows whose prices are all present (not null, not NaN)."""
    missing = np.zeros(table.num_rows, dtype=bool)
    for role in _price_roles(roles, spec):
        col = plain_array(table.column(roles[role]))
        if pa.types.is_floating(col.type) or pa.types.is_integer(col.type) \
                or pa.types.is_decimal(col.type) or pa.types.is_null(col.type):
            missing |= np.asarray(pc.is_null(col, nan_is_null=True))
    if not missing.any():
        return table
    if missing.all():
        raise DataError(f"empty data: every one of the {table.num_rows} rows has a missing "
                        "price (dropna=True dropped them all)")
    facts["dropped"] = int(missing.sum())
    _keep_rows(loc, ~missing)
    return table.filter(pa.array(~missing))


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


def _values(table: pa.Table, roles: dict, spec: ColumnSpec, loc: RowLocator,
            facts: dict) -> dict:
    """role -> float64 values per row, checked, then adjusted (``adjust``) and completed
    (``ohlc="close"``: open, high and low equal the close); volume only when the input
    has it."""
    cols, nulls, shown = {}, {}, {}
    for role in _price_roles(roles, spec) + ["volume"]:
        if roles[role] is None:
            continue
        cols[role], nulls[role] = numeric(table.column(roles[role]), roles[role], loc)
        shown[role] = roles[role]
    check_values(cols, shown, loc, nulls=nulls)
    if spec.adjust == "adj_close":
        adj = cols.pop("adj_close")
        if "close" in cols:
            factor = adj / cols["close"]
            for role in ("open", "high", "low"):
                if role in cols:
                    cols[role] = cols[role] * factor
        cols["close"] = adj
        facts["prices"] = (f"adjusted: close = column {roles['adj_close']!r}"
                           + ("" if spec.ohlc == "close" else
                              ", open, high and low scaled by adj_close / close"))
    elif roles["adj_close"] is not None:
        facts["unused_adj_close"] = roles["adj_close"]
    if spec.ohlc == "close":
        for role in ("open", "high", "low"):
            cols[role] = cols["close"]
        facts["prices"] = "close only: open, high and low equal the close" + (
            f"; {facts['prices']}" if "prices" in facts else "")
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


def _on_grid(values, flat: np.ndarray, k: int, nb: int) -> np.ndarray:
    """A ``(k, nb)`` array: row values at their flat positions ``flat``, NaN elsewhere."""
    arr = np.full(k * nb, np.nan)
    arr[flat] = values
    return arr.reshape(k, nb)


def _scatter(cols: dict, flat: np.ndarray, k: int, nb: int) -> dict:
    """role -> ``(k, nb)`` array: row values at their flat positions ``flat``, NaN
    elsewhere; volume 0 when the input has none."""
    return {role: _on_grid(cols[role] if role in cols else 0.0, flat, k, nb)
            for role in VALUE_COLS}


def _fill_gaps(out: dict, facs: dict, flat: np.ndarray, spans: _Spans) -> None:
    """``gaps="ffill"``: each bar missing inside a span becomes a flat bar at the previous
    close with volume 0, each factor the previous bar's value (in place)."""
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
        for x in facs.values():
            x[a, s:e][hole] = x[a, s:e][idx][hole]


# --------------------------------------------------------------------------------------
# demo()
# --------------------------------------------------------------------------------------

_demo_lock = threading.Lock()
_demo_cache: list = []
#: SHA-256 of the packaged demo.parquet (``python -m sweepbt.data.make_demo`` prints it)
DEMO_SHA256 = "997e79f418101f37ab02068ebce628340fd2221cc0ad272e98bde6c90cf402dd"


def check_demo_bytes(raw):
    """DataError unless ``raw`` are the bytes of the packaged demo file (a damaged or
    mismatched install)."""
    digest = hashlib.sha256(raw).hexdigest()
    if digest != DEMO_SHA256:
        raise DataError(f"the packaged demo data (sweepbt/data/demo.parquet) is damaged or "
                        f"from another version: SHA-256 {digest[:16]}..., expected "
                        f"{DEMO_SHA256[:16]}...; reinstall sweepbt")


def demo() -> Bundle:
    """The packaged demo data set: daily bars of several synthetic assets over 20+ years.

    Deterministic (generated from a fixed seed by ``python -m sweepbt.data.make_demo``).
    Each call returns fresh arrays, so callers may modify them (every run checks them
    again, :meth:`Bundle.check`)."""
    with _demo_lock:
        if not _demo_cache:
            from importlib.resources import files

            import pyarrow.parquet as pq

            raw = files("sweepbt.data").joinpath("demo.parquet").read_bytes()
            check_demo_bytes(raw)
            _demo_cache.append(load(pq.read_table(pa.BufferReader(raw))))
        return _demo_cache[0].copy()
