"""Price data: loading, validation and the :class:`Bundle` container.

A :class:`Bundle` holds one contiguous float64 row per asset (``open, high, low, close,
volume`` of shape ``(n_assets, n_bars)``) on a shared UTC timestamp axis, plus each asset's
valid span ``start[a] <= i < end[a]`` and the data's own time zone ``tz`` (whose calendar
days count for ``periods_per_year``). Everything that reaches the compiled kernels comes
through here and has been validated: finite positive prices inside every span, consistent
OHLC, non-negative volume, strictly increasing timestamps, no gaps (or explicitly filled).

Public entry points: :func:`load`, :func:`demo`, :meth:`Bundle.from_arrays`,
:func:`infer_periods_per_year`. Every data problem raises a :class:`DataError`
(a :class:`ValueError`) naming the symbol, the row (0-based row number of the user's input,
and its timestamp) and the column.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Bundle", "DataError", "demo", "infer_periods_per_year", "load"]

_NS_PER_DAY = 86_400_000_000_000
_DAYS_PER_YEAR = 365.25
# (minimum median spacing in days, periods per year) for bars a week or more apart
_SPACING_TIERS = ((300, 1.0), (80, 4.0), (28, 12.0), (6, 52.0))
_PRICE_COLS = ("open", "high", "low", "close")
_TS_ALIASES = ("datetime", "date", "time")
_SYM_ALIASES = ("ticker", "asset")
_GAPS = ("error", "ffill")

# ISO-8601 date-time ending in a zone designator; the group captures the designator.
_OFFSET_RE = (
    r"^\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d*)?)?\s*"
    r"(?P<off>[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$"
)


class DataError(ValueError):
    """Invalid input data. A ``ValueError`` whose message names symbol, row and column."""


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------


def _fmt_ts(ns, suffix="Z") -> str:
    """Format an int64 nanosecond UTC timestamp as ISO-8601 with a ``Z`` (or ``suffix``)."""
    ns = int(ns)
    unit = "s" if ns % 1_000_000_000 == 0 else "ns"
    return np.datetime_as_string(np.datetime64(ns, "ns"), unit=unit) + suffix


def _first_true(mask: np.ndarray) -> int:
    """Index of the first True in a 1-D (or flattened) bool array, or -1."""
    flat = mask.reshape(-1)
    if flat.size == 0:
        return -1
    i = int(np.argmax(flat))
    return i if flat[i] else -1


def _first_failing(n: int, fails) -> int:
    """Smallest index ``k`` such that ``fails(0, k + 1)`` is True (given ``fails(0, n)``)."""
    lo, hi = 0, n  # invariant: fails(0, hi) is True, fails(0, lo) is False
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fails(0, mid):
            hi = mid
        else:
            lo = mid
    return hi - 1


def _slice_fails(arr: pa.Array, op):
    """``fails(a, b)``: whether ``op(arr[a:b])`` raises an Arrow error."""
    def fails(a: int, b: int) -> bool:
        try:
            op(arr.slice(a, b - a))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return True
        return False

    return fails


def _cast_fails(arr: pa.Array, typ: pa.DataType):
    return _slice_fails(arr, lambda part: pc.cast(part, typ))


def _some(names, limit: int = 20) -> str:
    """``names`` as a list for a message, the first ``limit`` of them when there are more."""
    names = list(names)
    if len(names) <= limit:
        return repr(names)
    return f"{repr(names[:limit])[:-1]}, ...] ({len(names)} in all)"


def _symbol_list(symbols, param: str) -> list:
    """A symbol-selection argument (one name or a sequence of names) as a list of distinct
    names; ``TypeError``/``ValueError`` naming ``param`` otherwise."""
    if isinstance(symbols, str):
        return [symbols]
    if isinstance(symbols, (bytes, Mapping)) or not hasattr(symbols, "__iter__"):
        raise TypeError(f"{param}= must be a symbol name (str) or a list of names, got "
                        f"{type(symbols).__name__} {symbols!r}")
    names = list(symbols)
    bad = [s for s in names if not isinstance(s, str)]
    if bad:
        raise TypeError(f"{param}= must hold symbol names (str), got {type(bad[0]).__name__} "
                        f"{bad[0]!r} in {names!r}")
    if not names:
        raise ValueError(f"{param}= is empty: give at least one symbol name")
    twice = sorted(s for s, n in Counter(names).items() if n > 1)
    if twice:
        raise ValueError(f"{param}= names {twice} more than once: {names!r}")
    return names


def _default_timestamps(n: int) -> np.ndarray:
    days = np.busday_offset(np.datetime64("2000-01-03", "D"), np.arange(n), roll="forward")
    return days.astype("datetime64[ns]")


class _Locator:
    """Describes a row of the (possibly filtered) long input for error messages."""

    def __init__(self, n: int, rows=None, ts=None, codes=None, names=None, single=None):
        self.n = n
        self.rows = rows  # filtered row -> original row number, or None (identity)
        self.ts = ts  # int64 ns per row, once parsed
        self.codes = codes  # symbol code per row, once encoded
        self.names = names
        self.single = single  # symbol name of single-asset input

    def symbol(self, i: int):
        if self.single is not None:
            return self.single
        if self.codes is not None:
            return self.names[int(self.codes[i])]
        return None

    def where(self, i: int, column=None) -> str:
        row = int(self.rows[i]) if self.rows is not None else int(i)
        parts = []
        sym = self.symbol(i)
        if sym is not None:
            parts.append(f"symbol {sym!r}")
        loc = f"row {row}"
        if self.ts is not None:
            loc += f" (timestamp {_fmt_ts(self.ts[i])})"
        parts.append(loc)
        if column is not None:
            parts.append(f"column {column!r}")
        return ", ".join(parts)


class _GridLocator:
    """Describes bar ``i`` of asset ``a`` for 2-D input (``from_arrays``)."""

    def __init__(self, symbols, ts, n_bars):
        self.symbols = symbols
        self.ts = ts
        self.n_bars = n_bars

    def where(self, flat: int, column=None) -> str:
        a, i = divmod(int(flat), self.n_bars)
        s = f"symbol {self.symbols[a]!r}, row {i} (bar {i}, timestamp {_fmt_ts(self.ts[i])})"
        if column is not None:
            s += f", column {column!r}"
        return s


def _check_values(cols: dict, names: dict, loc, valid=None, nulls=None) -> None:
    """Validate OHLC(V) values. ``cols``: role -> float64 array (all the same shape);
    ``names``: role -> column name shown to the user; ``valid``: bool mask of positions to
    check (None: all); ``nulls``: role -> index of the first null, or -1."""

    def fail(mask, role, problem, detail):
        if valid is not None:
            mask = mask & valid
        i = _first_true(mask)
        if i >= 0:
            raise DataError(f"{problem}: {loc.where(i, names[role])}: {detail(i)}")

    for role in _PRICE_COLS + ("volume",):
        if nulls and nulls.get(role, -1) >= 0:
            i = nulls[role]
            raise DataError(
                f"missing (null) {'volume' if role == 'volume' else 'price'}: "
                f"{loc.where(i, names[role])}"
            )
    for role in _PRICE_COLS:
        x = cols[role]
        fail(~np.isfinite(x), role, "price is NaN or infinite",
             lambda i, x=x, r=role: f"{r}={float(x.flat[i])!r}")
    for role in _PRICE_COLS:
        x = cols[role]
        fail(x <= 0, role, "price <= 0", lambda i, x=x, r=role: f"{r}={float(x.flat[i])!r}")
    o, h, lo, c = (cols[r] for r in _PRICE_COLS)
    fail(h < lo, "high", "high < low",
         lambda i: f"high={float(h.flat[i])!r}, low={float(lo.flat[i])!r}")
    for role, x in (("open", o), ("close", c)):
        fail((x < lo) | (x > h), role, f"{role} outside [low, high]",
             lambda i, x=x, r=role: f"{r}={float(x.flat[i])!r}, low={float(lo.flat[i])!r}, "
                                    f"high={float(h.flat[i])!r}")
    v = cols.get("volume")
    if v is not None:
        fail(~((v >= 0) & np.isfinite(v)), "volume", "volume is negative, NaN or infinite",
             lambda i: f"volume={float(v.flat[i])!r}")


# --------------------------------------------------------------------------------------
# time stamps
# --------------------------------------------------------------------------------------


def _offset_minutes(off: str) -> int:
    if off in ("Z", "z"):
        return 0
    sign = -1 if off[0] == "-" else 1
    digits = off[1:].replace(":", "")
    hh = int(digits[:2])
    mm = int(digits[2:4]) if len(digits) > 2 else 0
    return sign * (hh * 60 + mm)


def _offset_zone(minutes: int) -> str:
    """A fixed UTC offset in minutes as a zone name: ``"UTC"`` or ``"+HH:MM"``."""
    if minutes == 0:
        return "UTC"
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _zone_name(tz, what: str) -> str:
    """Canonical time zone: ``"UTC"``, a fixed offset ``"+HH:MM"`` or an IANA name.

    ``what`` says where the zone came from (``"tz="``, a column) for the error message."""
    if not isinstance(tz, str):
        raise TypeError(f"time zone ({what}) must be a string such as 'America/New_York' or "
                        f"'+09:00', got {type(tz).__name__} {tz!r}")
    name = tz.strip()
    if name.upper() in ("UTC", "Z"):
        return "UTC"
    if re.fullmatch(r"[+-]\d{2}(?::?\d{2})?", name):
        name = _offset_zone(_offset_minutes(name))
        if name == "UTC":
            return name
    if name:
        try:
            pc.local_timestamp(pa.array([0], pa.timestamp("s", tz=name)))
            return name
        except pa.ArrowInvalid:
            pass
    raise DataError(f"unknown time zone {tz!r} ({what}): expected an IANA name such as "
                    "'America/New_York' or a UTC offset such as '+09:00'")


def _wall_ns(ns: np.ndarray, zone: str) -> np.ndarray:
    """int64 UTC nanoseconds -> the wall-clock time in ``zone``, as int64 nanoseconds."""
    if zone == "UTC":
        return ns
    aware = pa.array(ns, pa.int64()).cast(pa.timestamp("ns", tz=zone))
    return np.asarray(pc.local_timestamp(aware).cast(pa.int64()), dtype=np.int64)


def _localize(col: pa.Array, zone: str, name: str, loc: _Locator) -> pa.Array:
    """Naive timestamp[ns] wall-clock times in ``zone`` -> UTC instants; a time that a
    daylight-saving change skips or repeats is an error naming its row."""
    try:
        return pc.assume_timezone(col, timezone=zone)
    except pa.ArrowInvalid as exc:
        i = _first_failing(len(col), _slice_fails(
            col, lambda part: pc.assume_timezone(part, timezone=zone)))
        wall = _fmt_ts(col[i].cast(pa.int64()).as_py(), suffix="")
        if _slice_fails(col, lambda part: pc.assume_timezone(
                part, timezone=zone, ambiguous="earliest"))(i, i + 1):
            what = "does not exist (clocks skip it at a daylight-saving change)"
        else:
            what = "is ambiguous (clocks repeat it at a daylight-saving change)"
        raise DataError(f"timestamp {wall} {what} in time zone {zone!r} (tz=): "
                        f"{loc.where(i, name)}") from exc


def _parse_ts_strings(arr: pa.Array, name: str, loc: _Locator):
    """Parse ISO-8601 strings; reject mixed zones. Returns (timestamp[ns] array, zone):
    strings with an offset give UTC instants and the offset as zone; naive ones stay naive
    and the zone is None."""
    arr = pc.utf8_trim_whitespace(arr)
    match = pc.extract_regex(arr, pattern=_OFFSET_RE)
    has = np.asarray(pc.is_valid(match))
    off = pc.struct_field(match, [0])
    zone = None
    if has.all():
        uniq = pc.unique(off).to_pylist()
        minutes = {u: _offset_minutes(u) for u in uniq}
        if len(set(minutes.values())) > 1:
            mins = np.asarray(pc.index_in(off, value_set=pa.array(uniq)))
            mins = np.asarray([minutes[u] for u in uniq])[mins]
            i = _first_true(mins != mins[0])
            raise DataError(
                f"mixed time zones: {loc.where(i, name)}: {arr[i].as_py()!r} has UTC offset "
                f"{off[i].as_py()!r} but row "
                f"{int(loc.rows[0]) if loc.rows is not None else 0} has {off[0].as_py()!r}; "
                "give all timestamps in one zone (e.g. convert them to UTC)"
            )
        typ = pa.timestamp("ns", tz="UTC")
        zone = _offset_zone(minutes[uniq[0]])
    elif not has.any():
        typ = pa.timestamp("ns")
    else:
        i = _first_true(has != has[0])
        raise DataError(
            f"ambiguous time zones: {loc.where(i, name)}: {arr[i].as_py()!r} "
            f"{'has' if has[i] else 'lacks'} a UTC offset but row "
            f"{int(loc.rows[0]) if loc.rows is not None else 0} ({arr[0].as_py()!r}) "
            f"{'does' if has[0] else 'does not'}; mixing naive and zoned timestamps is "
            "ambiguous"
        )
    try:
        return pc.cast(arr, typ), zone
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        i = _first_failing(len(arr), _cast_fails(arr, typ))
        raise DataError(
            f"unparseable timestamp: {loc.where(i, name)}: {arr[i].as_py()!r} "
            "(expected ISO-8601, e.g. '2024-01-31' or '2024-01-31T16:00:00+00:00')"
        ) from exc


def _plain_array(col):
    """One contiguous Arrow array, dictionary-encoded values decoded."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    return col


def _arrow_ts_to_ns(col, name: str, loc: _Locator, tz=None):
    """Arrow (chunked) array of time stamps -> (int64 ns since epoch UTC, zone).

    Zoned values (a timestamp type with a zone, strings with an offset) keep their zone
    unless ``tz`` (canonical, see :func:`_zone_name`) is given; naive values are wall-clock
    times in ``tz`` (default UTC)."""
    col = _plain_array(col)
    typ = col.type
    if col.null_count:
        i = _first_true(np.asarray(pc.is_null(col)))
        raise DataError(f"missing (null) timestamp: {loc.where(i, name)}")
    zone = None
    if pa.types.is_timestamp(typ):
        target = pa.timestamp("ns", tz=typ.tz)
        if typ.tz is not None:
            zone = _zone_name(typ.tz, f"column {name!r}")
    elif pa.types.is_date(typ):
        target = pa.timestamp("ns")
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        col, zone = _parse_ts_strings(col, name, loc)
        target = col.type
    elif pa.types.is_integer(typ) or pa.types.is_floating(typ):
        raise DataError(
            f"column {name!r} holds numbers ({typ}), not time stamps: epoch numbers are "
            "ambiguous (seconds? nanoseconds?); convert them to a timestamp type or ISO-8601 "
            "strings first"
        )
    else:
        raise DataError(f"column {name!r} has type {typ}, which is not a time stamp")
    try:
        col = pc.cast(col, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        i = _first_failing(len(col), _cast_fails(col, target))
        raise DataError(
            f"timestamp out of range for nanoseconds (1677..2262): {loc.where(i, name)}"
        ) from exc
    if zone is None and tz not in (None, "UTC"):
        col = _localize(col, tz, name, loc)
    return np.asarray(pc.cast(col, pa.int64()), dtype=np.int64), tz or zone or "UTC"


def _to_ns(timestamps, name: str = "timestamps", tz=None):
    """Any array-like of time stamps -> (int64 ns since epoch UTC, zone), for arrays, not
    tables. ``tz`` as in :func:`_arrow_ts_to_ns`."""
    if isinstance(timestamps, (pa.Array, pa.ChunkedArray)):
        return _arrow_ts_to_ns(timestamps, name, _Locator(len(timestamps)), tz)
    mod = type(timestamps).__module__ or ""
    if mod.startswith("pandas"):
        import pandas as pd

        if getattr(timestamps, "dtype", None) == object:
            try:
                timestamps = pd.to_datetime(timestamps)
            except (ValueError, TypeError) as exc:
                raise DataError(f"mixed or ambiguous time zones in {name}: {exc}") from exc
        return _arrow_ts_to_ns(pa.array(timestamps), name, _Locator(len(timestamps)), tz)
    arr = np.asarray(timestamps)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            i = _first_true(np.isnat(arr))
            raise DataError(f"missing (NaT) timestamp: row {i}, column {name!r}")
        ns = arr.astype("datetime64[ns]").view(np.int64)
        if tz in (None, "UTC"):
            return ns, "UTC"
        return _arrow_ts_to_ns(pa.array(ns, pa.timestamp("ns")), name, _Locator(len(ns)), tz)
    if arr.dtype.kind in "iufb":
        raise DataError(
            f"{name} holds numbers ({arr.dtype}), not time stamps: epoch numbers are "
            "ambiguous; pass datetime64 values or ISO-8601 strings"
        )
    if arr.dtype.kind in "UO":
        try:
            parr = pa.array(arr.tolist() if arr.dtype.kind == "U" else arr)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"{name} could not be read as time stamps: {exc}") from exc
        return _arrow_ts_to_ns(parr, name, _Locator(len(arr)), tz)
    raise DataError(f"{name} has dtype {arr.dtype}, which is not a time stamp")


def _periods_per_year(ts: np.ndarray, zone: str) -> float:
    """Bars per year of strictly increasing int64 UTC ns ``ts``, on the calendar of
    ``zone``; the rule is :func:`infer_periods_per_year`'s."""
    if ts.size < 2:
        return 252.0
    spacing_days = float(np.median(np.diff(ts))) / _NS_PER_DAY
    for min_days, periods in _SPACING_TIERS:
        if spacing_days >= min_days:
            return periods
    days = _wall_ns(ts, zone) // _NS_PER_DAY  # local calendar day of each bar
    bars_per_day = float(np.median(np.unique(days, return_counts=True)[1]))
    weeks = (days + 3) // 7  # Monday-to-Sunday weeks (1970-01-01 was a Thursday)
    bars_per_week = np.unique(weeks, return_counts=True)[1]
    if bars_per_week.size < 3:  # no full week to measure: any weekend bar means 7 days
        weekend = bool(np.any((days + 3) % 7 >= 5))
        return bars_per_day * (365.0 if weekend else 252.0)
    days_per_week = float(np.median(bars_per_week[1:-1])) / bars_per_day
    if abs(days_per_week - 5) <= 0.5:
        return bars_per_day * 252.0
    if abs(days_per_week - 7) <= 0.5:
        return bars_per_day * 365.0
    return (ts.size - 1) * _DAYS_PER_YEAR * _NS_PER_DAY / float(ts[-1] - ts[0])


def infer_periods_per_year(timestamps, tz=None) -> float:
    """Bars per year implied by ``timestamps``.

    The median spacing decides first: >= 300 days: 1 (yearly); >= 80 days: 4 (quarterly);
    >= 28 days: 12 (monthly); >= 6 days: 52 (weekly). Closer bars (daily, intraday) are
    judged on local calendar days of the data's zone: ``k`` = the median number of bars per
    local day, ``d`` = the median number of bars per Monday-to-Sunday week (first and last
    week left out) divided by ``k``. ``d`` within 0.5 of 5 gives ``k * 252``, within 0.5 of
    7 gives ``k * 365``; otherwise the observed bars per year (365.25-day years). Data
    touching fewer than three weeks: ``k * 365`` if any bar falls on a local Saturday or
    Sunday, else ``k * 252``. Fewer than two time stamps: 252.

    ``tz`` (an IANA name or an offset such as ``"+09:00"``) is the data's zone, as in
    :func:`load`: naive timestamps are wall-clock times there (default UTC); zoned ones
    (pandas/Arrow) are judged in ``tz``, by default in their own zone.
    """
    ns, zone = _to_ns(timestamps, tz=None if tz is None else _zone_name(tz, "tz="))
    return _periods_per_year(np.unique(ns), zone)


# --------------------------------------------------------------------------------------
# the Bundle
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Bundle:
    """Validated prices of several assets on one UTC time axis.

    ``open, high, low, close, volume``: float64 ``(n_assets, n_bars)``, C-contiguous, one row
    per asset, NaN outside each asset's span ``start[a] <= i < end[a]``; ``timestamps``:
    datetime64[ns] ``(n_bars,)`` (UTC), strictly increasing; ``symbols``: tuple of str;
    ``tz``: the data's own time zone (``"UTC"``, an IANA name such as ``"Asia/Tokyo"`` or a
    fixed offset such as ``"+09:00"``), whose calendar days :attr:`periods_per_year` counts.

    Build one with :func:`load`, :func:`demo` or :meth:`from_arrays` (which validate); the
    constructor itself only checks shapes and types.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    timestamps: np.ndarray
    symbols: tuple
    start: np.ndarray
    end: np.ndarray
    tz: str = "UTC"

    def __post_init__(self):
        put = object.__setattr__
        for f in ("open", "high", "low", "close", "volume"):
            put(self, f, np.ascontiguousarray(getattr(self, f), dtype=np.float64))
        put(self, "timestamps", np.asarray(self.timestamps).astype("datetime64[ns]", copy=False))
        put(self, "symbols", tuple(str(s) for s in self.symbols))
        put(self, "start", np.ascontiguousarray(self.start, dtype=np.int64))
        put(self, "end", np.ascontiguousarray(self.end, dtype=np.int64))
        put(self, "tz", _zone_name(self.tz, "Bundle tz"))
        shape = self.close.shape
        if len(shape) != 2:
            raise ValueError(f"price arrays must be 2-D (n_assets, n_bars), got {shape}")
        for f in ("open", "high", "low", "volume"):
            if getattr(self, f).shape != shape:
                raise ValueError(f"{f} has shape {getattr(self, f).shape}, close has {shape}")
        na, nb = shape
        if self.timestamps.shape != (nb,):
            raise ValueError(f"timestamps has shape {self.timestamps.shape}, expected ({nb},)")
        if len(self.symbols) != na or self.start.shape != (na,) or self.end.shape != (na,):
            raise ValueError("symbols, start and end must have one entry per asset")
        if len(set(self.symbols)) != na:
            raise ValueError(f"duplicate symbols in {self.symbols}")
        if na and (np.any(self.start < 0) or np.any(self.end > nb)
                   or np.any(self.start >= self.end)):
            raise ValueError("spans must satisfy 0 <= start < end <= n_bars")

    # -- properties ---------------------------------------------------------------------

    @property
    def n_assets(self) -> int:
        return int(self.close.shape[0])

    @property
    def n_bars(self) -> int:
        return int(self.close.shape[1])

    @functools.cached_property
    def periods_per_year(self) -> float:
        """Bars per year, inferred from the time axis on the calendar of :attr:`tz` (see
        :func:`infer_periods_per_year`); computed once per Bundle."""
        return _periods_per_year(self.timestamps.view(np.int64), self.tz)

    def __repr__(self) -> str:
        if self.n_bars:
            rng = (f"{np.datetime_as_string(self.timestamps[0], unit='s')}.."
                   f"{np.datetime_as_string(self.timestamps[-1], unit='s')}")
        else:
            rng = "empty"
        syms = ", ".join(self.symbols[:8]) + (", ..." if self.n_assets > 8 else "")
        return (f"Bundle(n_assets={self.n_assets}, n_bars={self.n_bars}, "
                f"symbols=({syms}), timestamps={rng}, tz={self.tz!r})")

    # -- derived bundles ------------------------------------------------------------------

    def copy(self) -> Bundle:
        """A deep copy (new arrays)."""
        return Bundle(self.open.copy(), self.high.copy(), self.low.copy(), self.close.copy(),
                      self.volume.copy(), self.timestamps.copy(), self.symbols,
                      self.start.copy(), self.end.copy(), self.tz)

    def select(self, symbols) -> Bundle:
        """The assets named by ``symbols`` (a name or a sequence of names), in that order.

        The time axis is kept unchanged (so bar indices still match this bundle's)."""
        names = _symbol_list(symbols, "symbols")
        unknown = [s for s in names if s not in self.symbols]
        if unknown:
            raise ValueError(f"unknown symbol(s) {unknown}; available: {_some(self.symbols)}")
        index = {s: a for a, s in enumerate(self.symbols)}
        rows = np.asarray([index[s] for s in names], dtype=np.int64)
        return Bundle(self.open[rows], self.high[rows], self.low[rows], self.close[rows],
                      self.volume[rows], self.timestamps.copy(), tuple(names),
                      self.start[rows], self.end[rows], self.tz)

    def slice_bars(self, start_bar=None, stop_bar=None) -> Bundle:
        """Bars ``start_bar:stop_bar`` (Python slice rules, negatives allowed), copied.

        Spans are clipped to the range; assets left with no bar are dropped."""
        lo, hi, _ = slice(start_bar, stop_bar).indices(self.n_bars)
        m = hi - lo
        if m <= 0:
            raise ValueError(f"empty bar range [{start_bar}, {stop_bar}) of {self.n_bars} bars")
        s = np.clip(self.start - lo, 0, m)
        e = np.clip(self.end - lo, 0, m)
        keep = np.flatnonzero(e > s)
        if keep.size == 0:
            raise ValueError(f"no asset has data in bars [{lo}, {hi})")

        def cut(x):
            return np.ascontiguousarray(x[keep, lo:hi])

        return Bundle(cut(self.open), cut(self.high), cut(self.low), cut(self.close),
                      cut(self.volume), self.timestamps[lo:hi].copy(),
                      tuple(self.symbols[a] for a in keep), s[keep], e[keep], self.tz)

    def to_table(self) -> pa.Table:
        """The bundle as a long-format ``pyarrow.Table`` (rows inside each span, sorted by
        symbol then timestamp; timestamps as ``timestamp[ns, tz=<self.tz>]``)."""
        idx = [np.arange(s, e) for s, e in zip(self.start, self.end)]
        a = np.concatenate([np.full(len(ix), k) for k, ix in enumerate(idx)])
        i = np.concatenate(idx)
        ts = pa.array(self.timestamps[i].view(np.int64), pa.int64()).cast(
            pa.timestamp("ns", tz=self.tz))
        sym = pa.DictionaryArray.from_arrays(pa.array(a, pa.int32()),
                                             pa.array(list(self.symbols), pa.string()))
        cols = {"timestamp": ts, "symbol": sym.cast(pa.string())}
        for f in ("open", "high", "low", "close", "volume"):
            cols[f] = pa.array(getattr(self, f)[a, i])
        return pa.table(cols)

    # -- construction from arrays ---------------------------------------------------------------

    @classmethod
    def from_arrays(cls, open, high, low, close, volume=None, *, timestamps=None,
                    symbols=None, tz=None) -> Bundle:
        """Build a validated Bundle from 1-D (one asset) or 2-D ``(n_assets, n_bars)`` arrays.

        NaN is allowed only as leading/trailing padding of an asset (it defines the span);
        inside the span every price must be finite. ``timestamps`` defaults to business days
        (midnight) from 2000-01-03, ``symbols`` to ``"A0", "A1", ...``. ``tz`` is the data's
        zone as in :func:`load`: naive timestamps are wall-clock times there (default UTC),
        zoned ones keep their own zone unless ``tz`` is given. The inputs are copied."""
        given = {"open": open, "high": high, "low": low, "close": close}
        if volume is not None:
            given["volume"] = volume
        arrs = {}
        for role, x in given.items():
            a = np.asarray(x)
            if a.dtype.kind not in "iufO":
                raise DataError(f"column {role!r} is not numeric (dtype {a.dtype})")
            try:
                a = np.array(a, dtype=np.float64, copy=True)
            except (TypeError, ValueError) as exc:
                raise DataError(f"column {role!r} is not numeric: {exc}") from exc
            arrs[role] = a
        shape = arrs["close"].shape
        for role, a in arrs.items():
            if a.shape != shape:
                raise DataError(f"column {role!r} has shape {a.shape}, 'close' has {shape}")
        if len(shape) == 1:
            arrs = {r: a.reshape(1, -1) for r, a in arrs.items()}
        elif len(shape) != 2:
            raise DataError(f"price arrays must be 1-D or 2-D, got shape {shape}")
        na, nb = arrs["close"].shape
        if na == 0 or nb == 0:
            raise DataError(f"empty data: price arrays have shape {shape}")

        if symbols is None:
            syms = tuple(f"A{k}" for k in range(na))
        else:
            syms = (symbols,) if isinstance(symbols, str) else tuple(symbols)
            syms = tuple(str(s) for s in syms)
            if len(syms) != na:
                raise DataError(f"{len(syms)} symbols given for {na} assets")
            if len(set(syms)) != na:
                raise DataError(f"duplicate symbols: {syms}")

        if timestamps is None:
            timestamps = _default_timestamps(nb)
        ts, zone = _to_ns(timestamps, tz=None if tz is None else _zone_name(tz, "tz="))
        ts = ts.copy()
        if ts.shape != (nb,):
            raise DataError(f"timestamps has length {ts.size}, the arrays have {nb} bars")
        bad = _first_true(np.diff(ts) <= 0)
        if bad >= 0:
            i = bad + 1
            kind = "duplicate" if ts[i] == ts[i - 1] else "unsorted"
            raise DataError(
                f"{kind} timestamps: row {i} (timestamp {_fmt_ts(ts[i])}), column "
                f"'timestamps': not after row {i - 1} ({_fmt_ts(ts[i - 1])}); timestamps must "
                "be strictly increasing"
            )

        o, h, lo, c = (arrs[r] for r in _PRICE_COLS)
        present = ~(np.isnan(o) & np.isnan(h) & np.isnan(lo) & np.isnan(c))
        anyp = present.any(axis=1)
        if not anyp.all():
            a = int(np.argmin(anyp))
            raise DataError(f"no data: symbol {syms[a]!r} has only NaN prices")
        start = np.argmax(present, axis=1).astype(np.int64)
        end = (nb - np.argmax(present[:, ::-1], axis=1)).astype(np.int64)
        bars = np.arange(nb)
        in_span = (bars >= start[:, None]) & (bars < end[:, None])
        loc = _GridLocator(syms, ts, nb)
        names = {r: r for r in _PRICE_COLS + ("volume",)}
        _check_values(arrs, names, loc, valid=in_span)

        if "volume" not in arrs:
            arrs["volume"] = np.zeros((na, nb))
        out = ~in_span
        for a in arrs.values():
            a[out] = np.nan
        return cls(arrs["open"], arrs["high"], arrs["low"], arrs["close"], arrs["volume"],
                   ts.view("datetime64[ns]"), syms, start, end, zone)


# --------------------------------------------------------------------------------------
# load()
# --------------------------------------------------------------------------------------


def _resolve_columns(names, timestamp=None) -> dict:
    """Map roles (timestamp, symbol, open, ..., volume) to actual column names."""
    lower: dict = {}
    for n in names:
        lower.setdefault(str(n).lower(), []).append(n)

    def one(key):
        hits = lower.get(key.lower(), [])
        if len(hits) > 1:
            raise DataError(f"ambiguous columns {hits}: names are case-insensitive")
        return hits[0] if hits else None

    out = {}
    if timestamp is not None:
        out["timestamp"] = one(str(timestamp))
        if out["timestamp"] is None:
            raise DataError(f"missing column {timestamp!r} (timestamp=); columns are "
                            f"{list(names)}")
    else:
        out["timestamp"] = one("timestamp")
        if out["timestamp"] is None:
            alts = [one(a) for a in _TS_ALIASES if one(a) is not None]
            if len(alts) > 1:
                raise DataError(f"no 'timestamp' column and several candidates {alts}: pass "
                                "timestamp=<column name>")
            out["timestamp"] = alts[0] if alts else None
        if out["timestamp"] is None and "__index_level_0__" in names:
            out["timestamp"] = "__index_level_0__"  # an unnamed pandas index
    sym = one("symbol")
    if sym is None:
        alts = [one(a) for a in _SYM_ALIASES if one(a) is not None]
        if len(alts) > 1:
            raise DataError(f"ambiguous symbol column: no 'symbol' column and several "
                            f"candidates {alts}; rename the one holding the symbols to "
                            "'symbol' (or drop the others)")
        sym = alts[0] if alts else None
    out["symbol"] = sym
    for role in _PRICE_COLS + ("volume",):
        out[role] = one(role)
    missing = [r for r in ("timestamp",) + _PRICE_COLS if out[r] is None]
    if missing:
        raise DataError(f"missing required column(s) {missing}; columns are {list(names)} "
                        "(names are case-insensitive)")
    return out


def _pandas_to_table(df, timestamp=None) -> pa.Table:
    import pandas as pd

    cands = {str(timestamp).lower()} if timestamp is not None else {"timestamp", *_TS_ALIASES}
    fixed = None
    for name in df.columns:
        col = df[name]
        if str(name).lower() not in cands or getattr(col, "dtype", None) != object:
            continue
        kind = pd.api.types.infer_dtype(col, skipna=True)
        if kind in ("string", "empty", "integer", "floating", "mixed-integer-float",
                    "decimal", "boolean"):
            continue  # strings: parsed (and zone-checked) like CSV; numbers: rejected later
        try:
            conv = pd.to_datetime(col)
        except (ValueError, TypeError) as exc:
            raise DataError(f"column {name!r}: mixed or ambiguous time zones or values that are "
                            f"not time stamps: {exc}") from exc
        if fixed is None:
            fixed = df.copy(deep=False)
        fixed[name] = conv
    src = df if fixed is None else fixed
    try:
        return pa.Table.from_pandas(src, preserve_index=None)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"could not convert the DataFrame: {exc}") from exc


def _is_pandas_df(obj) -> bool:
    return (type(obj).__module__ or "").startswith("pandas") and hasattr(obj, "columns") \
        and hasattr(obj, "iloc")


_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_ARROW_SUFFIXES = (".feather", ".arrow", ".ipc")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSION = (".gz", ".bz2", ".zst", ".lz4")
_FORMATS = {**dict.fromkeys(_CSV_SUFFIXES, "CSV"), **dict.fromkeys(_ARROW_SUFFIXES, "Arrow IPC"),
            **dict.fromkeys(_PARQUET_SUFFIXES, "Parquet")}
_EXPECTED = "expected a .parquet, .feather, .arrow, .ipc or .csv file"


def _read_csv(path: str, ext: str, wanted) -> pa.Table:
    import pyarrow.csv as pcsv

    parse = pcsv.ParseOptions(delimiter="\t") if ext == ".tsv" else pcsv.ParseOptions()
    try:
        with pcsv.open_csv(path, parse_options=parse) as reader:
            names = reader.schema.names
    except pa.ArrowInvalid as exc:
        if "empty" in str(exc).lower():
            raise DataError(f"empty data: {path} has no rows") from exc
        raise
    roles, cols = wanted(names)
    types = {roles["timestamp"]: pa.string()}
    if roles["symbol"] is not None:
        types[roles["symbol"]] = pa.string()
    conv = pcsv.ConvertOptions(include_columns=cols, column_types=types)
    return pcsv.read_csv(path, parse_options=parse, convert_options=conv)


def _read_ipc(path: str) -> pa.Table:
    """An Arrow IPC file (Feather v1/v2, told by its magic bytes) or an IPC stream."""
    import pyarrow.feather as feather

    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"ARROW1" or magic[:4] == b"FEA1":
        return feather.read_table(path)
    with pa.OSFile(path, "rb") as f:
        return pa.ipc.open_stream(f).read_all()


def _read_path(path: str, timestamp=None):
    """Read a file into a Table (only the needed columns) and return (table, stem).

    Parquet page checksums are verified when the file has them. A file that cannot be read
    (damaged, truncated, not in its suffix's format) raises a DataError naming it."""
    p = Path(path)
    sfx = [s.lower() for s in p.suffixes]
    if sfx and sfx[-1] in _COMPRESSION:
        sfx = sfx[:-1]
    ext = sfx[-1] if sfx else ""
    stem = p.name
    for _ in range(2):  # strip e.g. ".csv.gz"
        q = Path(stem)
        if q.suffix.lower() in (*_FORMATS, *_COMPRESSION):
            stem = q.stem
    if not p.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if p.is_dir():
        raise IsADirectoryError(f"{path} is a directory, {_EXPECTED}")
    if ext not in _FORMATS:
        raise DataError(f"unsupported file type {p.name!r}: {_EXPECTED}")

    def wanted(names):
        roles = _resolve_columns(names, timestamp)
        return roles, [c for c in roles.values() if c is not None]

    kind = _FORMATS[ext]

    def unreadable(detail) -> DataError:
        return DataError(f"could not read {path} as a {kind} file (is it damaged or "
                         f"truncated?): {detail}")

    try:
        if kind == "Parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(path, page_checksum_verification=True) as pf:
                table = pf.read(columns=wanted(pf.schema_arrow.names)[1])
                if table.num_rows != pf.metadata.num_rows:
                    raise unreadable(f"its footer counts {pf.metadata.num_rows} rows but "
                                     f"{table.num_rows} were read")
        elif kind == "Arrow IPC":
            table = _read_ipc(path)
            table = table.select(wanted(table.column_names)[1])
        else:
            table = _read_csv(path, ext, wanted)
        table.validate(full=True)
        for field in table.schema:  # a stored time zone that is not UTF-8 raises here
            if pa.types.is_timestamp(field.type):
                field.type.tz
    except PermissionError:
        raise
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise unreadable(exc) from exc
    return table, stem


def _to_table(source, timestamp=None):
    """(table, default single-asset symbol) for any accepted source."""
    if isinstance(source, pa.Table):
        return source, "asset"
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source]), "asset"
    if _is_pandas_df(source):
        return _pandas_to_table(source, timestamp), "asset"
    if isinstance(source, (str, os.PathLike)):
        return _read_path(os.fspath(source), timestamp)
    if isinstance(source, Mapping) or hasattr(source, "__arrow_c_stream__"):
        try:
            return pa.table(dict(source) if isinstance(source, Mapping) else source), "asset"
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"could not make a table of the {type(source).__name__}: "
                            f"{exc}") from exc
    raise TypeError(f"cannot load data from {type(source).__name__}: pass a path, a "
                    "pyarrow.Table or a pandas DataFrame")


def _numeric(col, name: str, loc: _Locator):
    """Arrow column -> (float64 numpy array, first null row or -1)."""
    col = _plain_array(col)
    typ = col.type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ)
            or pa.types.is_decimal(typ) or pa.types.is_null(typ)):
        detail = ""
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            try:
                pc.cast(col, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                i = _first_failing(len(col), _cast_fails(col, pa.float64()))
                detail = f"; first non-numeric value {col[i].as_py()!r} at {loc.where(i)}"
        raise DataError(f"column {name!r} is not numeric (type {typ}){detail}")
    null = -1
    if col.null_count:
        null = _first_true(np.asarray(pc.is_null(col)))
    x = np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return x, null


def _symbol_strings(col, name: str) -> pa.Array:
    """Arrow column of symbols as one string array (integers are read as their digits)."""
    col = _plain_array(col)
    typ = col.type
    if pa.types.is_integer(typ):
        return pc.cast(col, pa.string())
    if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise DataError(f"column {name!r} has type {typ}; symbols must be strings")
    return col


def _symbols(col, name: str, loc: _Locator):
    """Arrow column of symbols -> (int codes per row, list of names in order of appearance)."""
    col = _symbol_strings(col, name)
    if col.null_count:
        i = _first_true(np.asarray(pc.is_null(col)))
        raise DataError(f"missing (null) symbol: {loc.where(i, name)}")
    enc = pc.dictionary_encode(col)
    codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, [str(s) for s in enc.dictionary.to_pylist()]


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
    zone = None if tz is None else _zone_name(tz, "tz=")
    want = None if symbol is None else _symbol_list(symbol, "symbol")
    if isinstance(source, Bundle):
        out = source.copy() if want is None else source.select(want)
        return out if zone is None else replace(out, tz=zone)
    table, default_name = _to_table(source, timestamp)
    roles = _resolve_columns(table.column_names, timestamp)
    if table.num_rows == 0:
        raise DataError("empty data: the input has no rows")

    loc = _Locator(table.num_rows)
    single = roles["symbol"] is None
    if single:
        if want is not None and len(want) != 1:
            raise DataError(f"single-asset data (no symbol column): symbol= must be one name, "
                            f"got {want}")
        loc.single = default_name if want is None else want[0]
    elif want is not None:
        scol = _symbol_strings(table.column(roles["symbol"]), roles["symbol"])
        have = pc.unique(scol).to_pylist()
        known = set(have)
        unknown = [s for s in want if s not in known]
        if unknown:
            raise DataError(f"unknown symbol(s) {unknown} (symbol=) in column "
                            f"{roles['symbol']!r}; available: {_some(have)}")
        mask = pc.is_in(scol, value_set=pa.array(want, scol.type))
        loc.rows = np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False)))
        table = table.filter(mask)
        loc.n = table.num_rows

    # symbols, time stamps, values (in the user's row order)
    if single:
        k, names = 1, [loc.single]
        codes = np.zeros(table.num_rows, dtype=np.int64)
    else:
        codes, names = _symbols(table.column(roles["symbol"]), roles["symbol"], loc)
        if want is not None:
            order = {s: j for j, s in enumerate(want)}
            remap = np.asarray([order[s] for s in names], dtype=np.int64)
            codes, names = remap[codes], list(want)
        k = len(names)
        loc.codes, loc.names = codes, names
    ts, zone = _arrow_ts_to_ns(table.column(roles["timestamp"]), roles["timestamp"], loc, zone)
    loc.ts = ts
    cols, nulls, shown = {}, {}, {}
    for role in _PRICE_COLS + ("volume",):
        if roles[role] is None:
            continue
        cols[role], nulls[role] = _numeric(table.column(roles[role]), roles[role], loc)
        shown[role] = roles[role]
    _check_values(cols, shown, loc, nulls=nulls)

    # order within each symbol: strictly increasing time stamps
    n = ts.size
    if k == 1 or bool(np.all(codes[1:] >= codes[:-1])):
        grp = None  # already grouped by symbol
        codes_g, ts_g = codes, ts
    else:
        small = codes.astype(np.int16 if k < 2**15 else np.int64)
        grp = np.argsort(small, kind="stable")
        codes_g, ts_g = codes[grp], ts[grp]
    bad = (codes_g[1:] == codes_g[:-1]) & (ts_g[1:] <= ts_g[:-1])
    if bad.any():
        pos = np.flatnonzero(bad)
        later = pos + 1 if grp is None else grp[pos + 1]
        j = int(np.argmin(later))
        r = int(later[j])
        prev = int(pos[j] if grp is None else grp[pos[j]])
        col = roles["timestamp"]
        same = np.flatnonzero((codes == codes[r]) & (ts == ts[r]))
        if same.size > 1:
            first = int(same[0])
            row0 = int(loc.rows[first]) if loc.rows is not None else first
            raise DataError(f"duplicate (timestamp, symbol) row: {loc.where(r, col)}: same "
                            f"timestamp and symbol as row {row0}")
        rowp = int(loc.rows[prev]) if loc.rows is not None else prev
        raise DataError(
            f"unsorted timestamps: {loc.where(r, col)}: earlier than the previous row of this "
            f"symbol (row {rowp}, timestamp {_fmt_ts(ts[prev])}); sort the input by timestamp "
            "within each symbol"
        )

    # the shared time axis and each row's bar
    if k == 1:
        union = ts.copy()
        pos = np.arange(n, dtype=np.int64)
    else:
        if bool(np.all(ts[1:] >= ts[:-1])):
            union = ts[np.concatenate(([True], ts[1:] != ts[:-1]))]
        else:
            union = np.unique(ts)
        pos = np.searchsorted(union, ts).astype(np.int64)
    nb = union.size
    counts = np.bincount(codes, minlength=k)
    last = np.cumsum(counts) - 1
    first = last - counts + 1
    pos_g = pos if grp is None else pos[grp]
    start = pos_g[first].astype(np.int64)
    end = (pos_g[last] + 1).astype(np.int64)
    missing = (end - start) - counts
    if gaps == "error" and missing.any():
        a = int(np.argmax(missing > 0))
        seg = pos_g[first[a]:last[a] + 1]
        j = int(np.argmax(np.diff(seg) > 1))
        before = int(first[a] + j)
        r = before if grp is None else int(grp[before])
        t_missing = union[seg[j] + 1]
        raise DataError(
            f"gap: symbol {names[a]!r} has no row at timestamp {_fmt_ts(t_missing)}, which "
            f"other symbols have, inside its span ({_fmt_ts(union[start[a]])} .. "
            f"{_fmt_ts(union[end[a] - 1])}); {int(missing[a])} bar(s) missing in all; the "
            f"last row before the gap is {loc.where(r, roles['timestamp'])}. Pass "
            "gaps='ffill' to fill gaps with flat bars at the previous close"
        )

    # scatter rows into (n_assets, n_bars)
    flat = codes * nb + pos
    out = {}
    for role in _PRICE_COLS + ("volume",):
        arr = np.full(k * nb, np.nan)
        arr[flat] = cols[role] if role in cols else 0.0
        out[role] = arr.reshape(k, nb)
    if missing.any():  # gaps == "ffill"
        present = np.zeros(k * nb, dtype=bool)
        present[flat] = True
        present = present.reshape(k, nb)
        bars = np.arange(nb)
        for a in np.flatnonzero(missing):
            s, e = int(start[a]), int(end[a])
            p = present[a, s:e]
            idx = np.maximum.accumulate(np.where(p, bars[: e - s], 0))
            hole = ~p
            fill = out["close"][a, s:e][idx][hole]
            for role in _PRICE_COLS:
                out[role][a, s:e][hole] = fill
            out["volume"][a, s:e][hole] = 0.0
    return Bundle(out["open"], out["high"], out["low"], out["close"], out["volume"],
                  union.view("datetime64[ns]"), tuple(names), start, end, zone)


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
