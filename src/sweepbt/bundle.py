"""Price data: loading, validation and the :class:`Bundle` container.

A :class:`Bundle` holds one contiguous float64 row per asset (``open, high, low, close,
volume`` of shape ``(n_assets, n_bars)``) on a shared UTC timestamp axis, plus each asset's
valid span ``start[a] <= i < end[a]``. Everything that reaches the compiled kernels comes
through here and has been validated: finite positive prices inside every span, consistent
OHLC, non-negative volume, strictly increasing timestamps, no gaps (or explicitly filled).

Public entry points: :func:`load`, :func:`demo`, :meth:`Bundle.from_arrays`,
:func:`infer_periods_per_year`. Every data problem raises a :class:`DataError`
(a :class:`ValueError`) naming the symbol, the row (0-based row number of the user's input,
and its timestamp) and the column.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Bundle", "DataError", "demo", "infer_periods_per_year", "load"]

_NS_PER_DAY = 86_400_000_000_000
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


def _fmt_ts(ns) -> str:
    """Format an int64 nanosecond UTC timestamp as ISO-8601 with a ``Z``."""
    ns = int(ns)
    unit = "s" if ns % 1_000_000_000 == 0 else "ns"
    return np.datetime_as_string(np.datetime64(ns, "ns"), unit=unit) + "Z"


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


def _cast_fails(arr: pa.Array, typ: pa.DataType):
    def fails(a: int, b: int) -> bool:
        try:
            pc.cast(arr.slice(a, b - a), typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return True
        return False

    return fails


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


def _parse_ts_strings(arr: pa.Array, name: str, loc: _Locator) -> pa.Array:
    """Parse ISO-8601 strings into timestamp[ns] (UTC); reject mixed zones."""
    arr = pc.utf8_trim_whitespace(arr)
    match = pc.extract_regex(arr, pattern=_OFFSET_RE)
    has = np.asarray(pc.is_valid(match))
    off = pc.struct_field(match, [0])
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
    elif not has.any():
        typ = pa.timestamp("ns")  # naive: means UTC
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
        return pc.cast(arr, typ)
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


def _arrow_ts_to_ns(col, name: str, loc: _Locator) -> np.ndarray:
    """Arrow (chunked) array of time stamps -> int64 ns since epoch, UTC."""
    col = _plain_array(col)
    typ = col.type
    if col.null_count:
        i = _first_true(np.asarray(pc.is_null(col)))
        raise DataError(f"missing (null) timestamp: {loc.where(i, name)}")
    if pa.types.is_timestamp(typ):
        target = pa.timestamp("ns", tz=typ.tz)
    elif pa.types.is_date(typ):
        target = pa.timestamp("ns")
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        col = _parse_ts_strings(col, name, loc)
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
    return np.asarray(pc.cast(col, pa.int64()), dtype=np.int64)


def _to_ns(timestamps, name: str = "timestamps") -> np.ndarray:
    """Any array-like of time stamps -> int64 ns since epoch, UTC (for arrays, not tables)."""
    if isinstance(timestamps, (pa.Array, pa.ChunkedArray)):
        return _arrow_ts_to_ns(timestamps, name, _Locator(len(timestamps)))
    mod = type(timestamps).__module__ or ""
    if mod.startswith("pandas"):
        import pandas as pd

        if getattr(timestamps, "dtype", None) == object:
            try:
                timestamps = pd.to_datetime(timestamps)
            except (ValueError, TypeError) as exc:
                raise DataError(f"mixed or ambiguous time zones in {name}: {exc}") from exc
        return _arrow_ts_to_ns(pa.array(timestamps), name, _Locator(len(timestamps)))
    arr = np.asarray(timestamps)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            i = _first_true(np.isnat(arr))
            raise DataError(f"missing (NaT) timestamp: row {i}, column {name!r}")
        return arr.astype("datetime64[ns]").view(np.int64)
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
        return _arrow_ts_to_ns(parr, name, _Locator(len(arr)))
    raise DataError(f"{name} has dtype {arr.dtype}, which is not a time stamp")


def infer_periods_per_year(timestamps) -> float:
    """Bars per year implied by the spacing of ``timestamps``.

    The median spacing decides: >= 28 days: 12 (monthly); >= 6 days: 52 (weekly);
    >= 20 hours: 252 when no bar falls on a Saturday or Sunday (UTC), else 365;
    shorter (intraday): the median number of bars per UTC calendar day times 252 (or 365 by
    the same weekend rule). Fewer than two time stamps: 252.
    """
    ts = _to_ns(timestamps)
    if ts.size < 2:
        return 252.0
    med = float(np.median(np.diff(ts)))
    day = float(_NS_PER_DAY)
    if med >= 28 * day:
        return 12.0
    if med >= 6 * day:
        return 52.0
    days = ts // _NS_PER_DAY
    weekend = bool(np.any((days + 3) % 7 >= 5))  # 1970-01-01 was a Thursday (Mon = 0)
    base = 365.0 if weekend else 252.0
    if med >= day * 20 / 24:
        return base
    counts = np.unique(days, return_counts=True)[1]
    return float(np.median(counts)) * base


# --------------------------------------------------------------------------------------
# the Bundle
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Bundle:
    """Validated prices of several assets on one UTC time axis.

    ``open, high, low, close, volume``: float64 ``(n_assets, n_bars)``, C-contiguous, one row
    per asset, NaN outside each asset's span ``start[a] <= i < end[a]``; ``timestamps``:
    datetime64[ns] ``(n_bars,)`` (UTC), strictly increasing; ``symbols``: tuple of str.

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

    def __post_init__(self):
        put = object.__setattr__
        for f in ("open", "high", "low", "close", "volume"):
            put(self, f, np.ascontiguousarray(getattr(self, f), dtype=np.float64))
        put(self, "timestamps", np.asarray(self.timestamps).astype("datetime64[ns]", copy=False))
        put(self, "symbols", tuple(str(s) for s in self.symbols))
        put(self, "start", np.ascontiguousarray(self.start, dtype=np.int64))
        put(self, "end", np.ascontiguousarray(self.end, dtype=np.int64))
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

    @property
    def periods_per_year(self) -> float:
        return infer_periods_per_year(self.timestamps)

    def __repr__(self) -> str:
        if self.n_bars:
            rng = (f"{np.datetime_as_string(self.timestamps[0], unit='s')}.."
                   f"{np.datetime_as_string(self.timestamps[-1], unit='s')}")
        else:
            rng = "empty"
        syms = ", ".join(self.symbols[:8]) + (", ..." if self.n_assets > 8 else "")
        return (f"Bundle(n_assets={self.n_assets}, n_bars={self.n_bars}, "
                f"symbols=({syms}), timestamps={rng})")

    # -- derived bundles ------------------------------------------------------------------

    def copy(self) -> Bundle:
        """A deep copy (new arrays)."""
        return Bundle(self.open.copy(), self.high.copy(), self.low.copy(), self.close.copy(),
                      self.volume.copy(), self.timestamps.copy(), self.symbols,
                      self.start.copy(), self.end.copy())

    def select(self, symbols) -> Bundle:
        """The assets named by ``symbols`` (a name or a sequence of names), in that order.

        The time axis is kept unchanged (so bar indices still match this bundle's)."""
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        if not names:
            raise ValueError("select() needs at least one symbol")
        index = {s: a for a, s in enumerate(self.symbols)}
        rows = []
        for s in names:
            if s not in index:
                raise ValueError(f"unknown symbol {s!r}; known symbols: {list(self.symbols)}")
            rows.append(index[s])
        if len(set(rows)) != len(rows):
            raise ValueError(f"duplicate symbols in selection {names}")
        rows = np.asarray(rows, dtype=np.int64)
        return Bundle(self.open[rows], self.high[rows], self.low[rows], self.close[rows],
                      self.volume[rows], self.timestamps.copy(), tuple(names),
                      self.start[rows], self.end[rows])

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
                      tuple(self.symbols[a] for a in keep), s[keep], e[keep])

    def to_table(self) -> pa.Table:
        """The bundle as a long-format ``pyarrow.Table`` (rows inside each span, sorted by
        symbol then timestamp; timestamps as ``timestamp[ns, tz=UTC]``)."""
        idx = [np.arange(s, e) for s, e in zip(self.start, self.end)]
        a = np.concatenate([np.full(len(ix), k) for k, ix in enumerate(idx)])
        i = np.concatenate(idx)
        ts = pa.array(self.timestamps[i].view(np.int64), pa.int64()).cast(
            pa.timestamp("ns", tz="UTC"))
        sym = pa.DictionaryArray.from_arrays(pa.array(a, pa.int32()),
                                             pa.array(list(self.symbols), pa.string()))
        cols = {"timestamp": ts, "symbol": sym.cast(pa.string())}
        for f in ("open", "high", "low", "close", "volume"):
            cols[f] = pa.array(getattr(self, f)[a, i])
        return pa.table(cols)

    # -- construction from arrays ---------------------------------------------------------------

    @classmethod
    def from_arrays(cls, open, high, low, close, volume=None, *, timestamps=None,
                    symbols=None) -> Bundle:
        """Build a validated Bundle from 1-D (one asset) or 2-D ``(n_assets, n_bars)`` arrays.

        NaN is allowed only as leading/trailing padding of an asset (it defines the span);
        inside the span every price must be finite. ``timestamps`` defaults to business days
        from 2000-01-03, ``symbols`` to ``"A0", "A1", ...``. The inputs are copied."""
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
            ts = _default_timestamps(nb).view(np.int64)
        else:
            ts = _to_ns(timestamps).copy()
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
                   ts.view("datetime64[ns]"), syms, start, end)


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
        sym = alts[0] if len(alts) == 1 else None
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


def _read_path(path: str, timestamp=None):
    """Read a file into a Table (only the needed columns) and return (table, stem)."""
    p = Path(path)
    sfx = [s.lower() for s in p.suffixes]
    if sfx and sfx[-1] in _COMPRESSION:
        sfx = sfx[:-1]
    ext = sfx[-1] if sfx else ""
    stem = p.name
    for _ in range(2):  # strip e.g. ".csv.gz"
        q = Path(stem)
        if q.suffix.lower() in _CSV_SUFFIXES + _ARROW_SUFFIXES + _PARQUET_SUFFIXES + _COMPRESSION:
            stem = q.stem
    if not p.exists():
        raise FileNotFoundError(f"no such file: {path}")

    def wanted(names):
        roles = _resolve_columns(names, timestamp)
        return roles, [c for c in roles.values() if c is not None]

    if ext in _PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        roles, cols = wanted(pq.read_schema(path).names)
        return pq.read_table(path, columns=cols), stem
    if ext in _ARROW_SUFFIXES:
        import pyarrow.feather as feather

        try:
            table = feather.read_table(path)
        except pa.ArrowInvalid:
            with pa.OSFile(path, "rb") as f:
                table = pa.ipc.open_stream(f).read_all()
        roles, cols = wanted(table.column_names)
        return table.select(cols), stem
    if ext in _CSV_SUFFIXES:
        import pyarrow.csv as pcsv

        parse = pcsv.ParseOptions(delimiter="\t") if ext == ".tsv" else pcsv.ParseOptions()
        try:
            with pcsv.open_csv(path, parse_options=parse) as reader:
                names = reader.schema.names
        except pa.ArrowInvalid as exc:
            if "empty" in str(exc).lower():
                raise DataError(f"empty data: {path} has no rows") from exc
            raise DataError(f"could not read CSV {path}: {exc}") from exc
        roles, cols = wanted(names)
        types = {roles["timestamp"]: pa.string()}
        if roles["symbol"] is not None:
            types[roles["symbol"]] = pa.string()
        conv = pcsv.ConvertOptions(include_columns=cols, column_types=types)
        try:
            return pcsv.read_csv(path, parse_options=parse, convert_options=conv), stem
        except pa.ArrowInvalid as exc:
            raise DataError(f"could not read CSV {path}: {exc}") from exc
    raise DataError(f"unsupported file type {p.name!r}: expected .parquet, .feather, .arrow, "
                    ".ipc or .csv")


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
    if isinstance(source, Mapping):
        return pa.table(dict(source)), "asset"
    if hasattr(source, "__arrow_c_stream__"):
        return pa.table(source), "asset"
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


def _symbols(col, name: str, loc: _Locator):
    """Arrow column of symbols -> (int codes per row, list of names in order of appearance)."""
    col = _plain_array(col)
    typ = col.type
    if pa.types.is_integer(typ):
        col = pc.cast(col, pa.string())
    elif not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        raise DataError(f"column {name!r} has type {typ}; symbols must be strings")
    if col.null_count:
        i = _first_true(np.asarray(pc.is_null(col)))
        raise DataError(f"missing (null) symbol: {loc.where(i, name)}")
    enc = pc.dictionary_encode(col)
    codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, [str(s) for s in enc.dictionary.to_pylist()]


def load(source, *, gaps: str = "error", timestamp=None, symbol=None) -> Bundle:
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
    """
    if gaps not in _GAPS:
        raise ValueError(f"gaps must be one of {_GAPS}, got {gaps!r}")
    if isinstance(source, Bundle):
        return source.copy() if symbol is None else source.select(symbol)
    table, default_name = _to_table(source, timestamp)
    roles = _resolve_columns(table.column_names, timestamp)
    if table.num_rows == 0:
        raise DataError("empty data: the input has no rows")

    loc = _Locator(table.num_rows)
    single = roles["symbol"] is None
    if single:
        if symbol is not None and not isinstance(symbol, str):
            symbol = list(symbol)
            if len(symbol) != 1:
                raise DataError("single-asset data (no symbol column): symbol= must be one name")
            symbol = symbol[0]
        loc.single = str(symbol) if symbol is not None else default_name
    elif symbol is not None:
        want = [symbol] if isinstance(symbol, str) else [str(s) for s in symbol]
        scol = table.column(roles["symbol"])
        if pa.types.is_dictionary(scol.type) or pa.types.is_integer(scol.type):
            scol = pc.cast(scol, pa.string())
        have = set(pc.unique(scol).to_pylist())
        unknown = [s for s in want if s not in have]
        if unknown:
            raise DataError(f"unknown symbol(s) {unknown} in column {roles['symbol']!r}")
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
        if symbol is not None:
            order = {s: j for j, s in enumerate(want)}
            remap = np.asarray([order[s] for s in names], dtype=np.int64)
            codes, names = remap[codes], list(want)
        k = len(names)
        loc.codes, loc.names = codes, names
    ts = _arrow_ts_to_ns(table.column(roles["timestamp"]), roles["timestamp"], loc)
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
                  union.view("datetime64[ns]"), tuple(names), start, end)


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
