"""The :class:`Bundle`: validated prices of several assets on one UTC time axis.

A :class:`Bundle` holds one contiguous float64 row per asset (``open, high, low, close,
volume`` of shape ``(n_assets, n_bars)``) on a shared UTC timestamp axis, plus each asset's
valid span ``start[a] <= i < end[a]`` and the data's own time zone ``tz`` (whose calendar
days count for ``periods_per_year``), and any factor columns (``factors``, NaN allowed).
:meth:`Bundle.from_arrays` validates 2-D input; long-format input goes through
:func:`sweepbt.data.load`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from sweepbt._files import write_atomic, write_parquet
from sweepbt.data.columns import PRICE_COLS, VALUE_COLS, check_values, symbol_list
from sweepbt.data.errors import DataError, GridLocator, first_true, fmt_ts, some
from sweepbt.data.factors import FactorMap, bundle_factors, check_factors, mapping_names
from sweepbt.data.times import optional_zone, periods_per_year_of, timestamps_to_ns, zone_name


@dataclass(frozen=True, eq=False)
class Bundle:
    """Validated prices of several assets on one UTC time axis.

    ``open, high, low, close, volume``: float64 ``(n_assets, n_bars)``, C-contiguous, one row
    per asset, NaN outside each asset's span ``start[a] <= i < end[a]``; ``timestamps``:
    datetime64[ns] ``(n_bars,)`` (UTC), strictly increasing; ``symbols``: tuple of str;
    ``tz``: the data's own time zone (``"UTC"``, an IANA name such as ``"Asia/Tokyo"`` or a
    fixed offset such as ``"+09:00"``), whose calendar days :attr:`periods_per_year` counts;
    ``factors``: a read-only mapping (:class:`~sweepbt.data.factors.FactorMap`) of factor
    name -> float64 ``(n_assets, n_bars)`` array like the prices, NaN outside each span and
    where a value is missing; empty unless loaded with ``factors=``; ``source``: the
    absolute path of the file it was loaded from (None for in-memory data; kept by
    :meth:`copy`, :meth:`select` and :meth:`slice_bars`, no part of the data's identity).

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
    factors: FactorMap = field(default_factory=FactorMap)
    source: str | None = field(default=None, compare=False)

    def __post_init__(self):
        put = object.__setattr__
        for f in VALUE_COLS:
            put(self, f, np.ascontiguousarray(getattr(self, f), dtype=np.float64))
        put(self, "timestamps", np.asarray(self.timestamps).astype("datetime64[ns]", copy=False))
        put(self, "symbols", tuple(str(s) for s in self.symbols))
        put(self, "start", np.ascontiguousarray(self.start, dtype=np.int64))
        put(self, "end", np.ascontiguousarray(self.end, dtype=np.int64))
        put(self, "tz", zone_name(self.tz, "Bundle tz"))
        if self.source is not None:
            put(self, "source", os.path.abspath(os.fspath(self.source)))
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
        put(self, "factors", bundle_factors(self.factors, shape))
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
        return periods_per_year_of(self.timestamps.view(np.int64), self.tz)

    def __repr__(self) -> str:
        if self.n_bars:
            rng = (f"{np.datetime_as_string(self.timestamps[0], unit='s')}.."
                   f"{np.datetime_as_string(self.timestamps[-1], unit='s')}")
        else:
            rng = "empty"
        syms = ", ".join(self.symbols[:8]) + (", ..." if self.n_assets > 8 else "")
        facs = f", factors=({', '.join(self.factors)})" if self.factors else ""
        return (f"Bundle(n_assets={self.n_assets}, n_bars={self.n_bars}, "
                f"symbols=({syms}), timestamps={rng}, tz={self.tz!r}{facs})")

    def check(self) -> None:
        """Validate the arrays as they are now, as :func:`load` does: the arrays are
        writable, so every public call checks its Bundle again before any kernel runs.
        Raises a :class:`DataError` naming symbol, row and column (spans, time stamps,
        shapes, prices, volume, factors)."""
        _check_structure(self)
        _check_contents(self)

    # -- derived bundles ------------------------------------------------------------------

    def copy(self) -> Bundle:
        """A deep copy (new arrays)."""
        return Bundle(self.open.copy(), self.high.copy(), self.low.copy(), self.close.copy(),
                      self.volume.copy(), self.timestamps.copy(), self.symbols,
                      self.start.copy(), self.end.copy(), self.tz,
                      {k: a.copy() for k, a in self.factors.items()}, self.source)

    def select(self, symbols) -> Bundle:
        """The assets named by ``symbols`` (a name or a sequence of names), in that order.

        The time axis is kept unchanged (so bar indices still match this bundle's)."""
        names = symbol_list(symbols, "symbols")
        unknown = [s for s in names if s not in self.symbols]
        if unknown:
            raise ValueError(f"unknown symbol(s) {unknown}; available: {some(self.symbols)}")
        index = {s: a for a, s in enumerate(self.symbols)}
        rows = np.asarray([index[s] for s in names], dtype=np.int64)
        return Bundle(self.open[rows], self.high[rows], self.low[rows], self.close[rows],
                      self.volume[rows], self.timestamps.copy(), tuple(names),
                      self.start[rows], self.end[rows], self.tz,
                      {k: a[rows] for k, a in self.factors.items()}, self.source)

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
                      tuple(self.symbols[a] for a in keep), s[keep], e[keep], self.tz,
                      {k: cut(a) for k, a in self.factors.items()}, self.source)

    def to_parquet(self, path, overwrite: bool = False) -> None:
        """Write :meth:`to_table` to a new Parquet file at ``path`` (with page checksums,
        which :func:`load` verifies), atomically. An existing ``path`` is a FileExistsError
        unless ``overwrite=True`` (then it is replaced once the new file is complete); the
        file this bundle was loaded from (:attr:`source`) is never overwritten.
        ``load(path)`` gives this bundle back (``load(path, factors=list(bundle.factors))``
        with its factors)."""
        target = os.fspath(path)
        if self.source is not None and _same_file(target, self.source):
            raise ValueError(f"{target!r} is the file this Bundle was loaded from "
                             "(Bundle.source); write to another path")
        if os.path.isdir(target):
            raise IsADirectoryError(f"{target!r} is a directory; give a file path")
        if not overwrite and os.path.lexists(target):
            raise FileExistsError(f"{target!r} exists; pass overwrite=True to replace it")
        write_atomic(target, lambda tmp: write_parquet(self.to_table(), tmp),
                     replace=overwrite)

    def to_table(self) -> pa.Table:
        """The bundle as a long-format ``pyarrow.Table`` (rows inside each span, sorted by
        symbol then timestamp; timestamps as ``timestamp[ns, tz=<self.tz>]``), with one
        column per factor after the prices (NaN where missing)."""
        idx = [np.arange(s, e) for s, e in zip(self.start, self.end)]
        a = np.concatenate([np.full(len(ix), k) for k, ix in enumerate(idx)])
        i = np.concatenate(idx)
        ts = pa.array(self.timestamps[i].view(np.int64), pa.int64()).cast(
            pa.timestamp("ns", tz=self.tz))
        sym = pa.DictionaryArray.from_arrays(pa.array(a, pa.int32()),
                                             pa.array(list(self.symbols), pa.string()))
        cols = {"timestamp": ts, "symbol": sym.cast(pa.string())}
        for f in VALUE_COLS:
            cols[f] = pa.array(getattr(self, f)[a, i])
        for name, x in self.factors.items():
            cols[name] = pa.array(x[a, i])
        return pa.table(cols)

    # -- construction from arrays ---------------------------------------------------------------

    @classmethod
    def from_arrays(cls, open=None, high=None, low=None, close=None, volume=None, *,
                    timestamps=None, symbols=None, tz=None, factors=None) -> Bundle:
        """Build a validated Bundle from 1-D (one asset) or 2-D ``(n_assets, n_bars)`` arrays.

        NaN is allowed only as leading/trailing padding of an asset (it defines the span);
        inside the span every price must be finite. ``close`` alone (open, high and low
        None) is close-only data: open, high and low equal the close. ``timestamps``
        defaults to business days (midnight) from 2000-01-03, ``symbols`` to ``"A0", "A1",
        ...``. ``tz`` is the data's zone as in :func:`load`: naive timestamps are wall-clock
        times there (default UTC), zoned ones keep their own zone unless ``tz`` is given.
        ``factors``: a mapping factor name -> array shaped like ``close``; NaN is allowed
        anywhere (not eligible), infinity is not, and values outside an asset's span are
        dropped (NaN). The inputs are copied."""
        given = _given_prices(open, high, low, close)
        if volume is not None:
            given["volume"] = volume
        names = mapping_names(factors)
        arrs = _grid_arrays({**given, **{f: factors[f] for f in names}})
        facs = {f: arrs.pop(f) for f in names}
        na, nb = arrs["close"].shape
        _check_orientation(na, nb, timestamps, symbols)
        syms = _symbol_names(symbols, na)
        if timestamps is None:
            timestamps = _default_timestamps(nb)
        ts, zone = _checked_timestamps(timestamps, tz, nb)

        present = ~np.logical_and.reduce([np.isnan(arrs[r]) for r in PRICE_COLS if r in arrs])
        anyp = present.any(axis=1)
        if not anyp.all():
            a = int(np.argmin(anyp))
            raise DataError(f"no data: symbol {syms[a]!r} has only NaN prices")
        start = np.argmax(present, axis=1).astype(np.int64)
        end = (nb - np.argmax(present[:, ::-1], axis=1)).astype(np.int64)
        bars = np.arange(nb)
        in_span = (bars >= start[:, None]) & (bars < end[:, None])
        loc = GridLocator(syms, ts, nb)
        check_values(arrs, {r: r for r in VALUE_COLS}, loc, valid=in_span)
        check_factors(facs, {f: f for f in facs}, loc, valid=in_span)
        for role in PRICE_COLS:  # close-only data: open, high and low equal the close
            arrs.setdefault(role, arrs["close"].copy())

        if "volume" not in arrs:
            arrs["volume"] = np.zeros((na, nb))
        out = ~in_span
        for a in (*arrs.values(), *facs.values()):
            a[out] = np.nan
        return cls(arrs["open"], arrs["high"], arrs["low"], arrs["close"], arrs["volume"],
                   ts.view("datetime64[ns]"), syms, start, end, zone, facs)


#: the end of every message of :meth:`Bundle.check`
_CHANGED = " (the Bundle's arrays were changed after it was built)"


def _check_structure(b: Bundle) -> None:
    """Shapes, dtypes and layout of every array, the spans ``0 <= start < end <= n_bars``
    and strictly increasing time stamps: what the kernels index by."""
    shape = b.close.shape
    arrays = {**{f: getattr(b, f) for f in VALUE_COLS},
              **{f"factor {f!r}": x for f, x in b.factors.items()}}
    for name, x in arrays.items():
        if x.dtype != np.float64 or x.shape != shape or not x.flags.c_contiguous:
            raise DataError(f"{name} is a {x.dtype} array of shape {x.shape}, expected a "
                            f"C-contiguous float64 array of shape {shape}{_CHANGED}")
    na, nb = shape
    for name in ("start", "end"):
        x = getattr(b, name)
        if x.dtype != np.int64 or x.shape != (na,):
            raise DataError(f"{name} is a {x.dtype} array of shape {x.shape}, expected int64 "
                            f"of shape ({na},), one per asset{_CHANGED}")
    if len(b.symbols) != na:
        raise DataError(f"{len(b.symbols)} symbols for {na} assets{_CHANGED}")
    bad = first_true((b.start < 0) | (b.end > nb) | (b.start >= b.end))
    if bad >= 0:
        raise DataError(f"span of symbol {b.symbols[bad]!r}: start={int(b.start[bad])}, "
                        f"end={int(b.end[bad])}, columns 'start'/'end': must satisfy 0 <= "
                        f"start < end <= n_bars={nb}{_CHANGED}")
    ts = b.timestamps
    if ts.dtype != np.dtype("datetime64[ns]") or ts.shape != (nb,):
        raise DataError(f"timestamps is a {ts.dtype} array of shape {ts.shape}, expected "
                        f"datetime64[ns] of shape ({nb},){_CHANGED}")
    _check_increasing(ts.view(np.int64), _CHANGED)


def _check_contents(b: Bundle) -> None:
    """Inside every span: finite prices > 0, low <= open, close <= high, volume finite and
    >= 0, no infinite factor. One vectorized pass finds whether anything is wrong; only
    then do the loaders' checks run, for their message."""
    o, h, lo, c, v = (getattr(b, f) for f in VALUE_COLS)
    ok = np.greater(lo, 0.0)
    cond = np.empty_like(ok)  # one buffer for every comparison
    for compare, x, y in ((np.less, h, np.inf), (np.less_equal, lo, o),
                          (np.less_equal, o, h), (np.less_equal, lo, c),
                          (np.less_equal, c, h), (np.greater_equal, v, 0.0),
                          (np.less, v, np.inf)):
        ok &= compare(x, y, out=cond)
    bad_factors = [np.isinf(x) for x in b.factors.values()]
    for a in np.flatnonzero((b.start > 0) | (b.end < b.n_bars)):  # outside a span: unread
        s, e = b.start[a], b.end[a]
        ok[a, :s] = ok[a, e:] = True
        for bad in bad_factors:
            bad[a, :s] = bad[a, e:] = False
    if ok.all() and not any(m.any() for m in bad_factors):
        return
    bars = np.arange(b.n_bars)
    in_span = (bars >= b.start[:, None]) & (bars < b.end[:, None])
    loc = _ChangedLocator(b.symbols, b.timestamps.view(np.int64), b.n_bars)
    check_values({f: getattr(b, f) for f in VALUE_COLS}, {f: f for f in VALUE_COLS}, loc,
                 valid=in_span)
    check_factors(dict(b.factors), {f: f for f in b.factors}, loc, valid=in_span)


class _ChangedLocator(GridLocator):
    """A :class:`GridLocator` whose place ends by saying the arrays were changed."""

    def where(self, flat: int, column=None) -> str:
        return super().where(flat, column) + _CHANGED


def _same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name one file (links and relative paths resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return os.path.realpath(a) == os.path.realpath(b)


# --------------------------------------------------------------------------------------
# the steps of from_arrays
# --------------------------------------------------------------------------------------


def _given_prices(open, high, low, close) -> dict:
    """The prices given to ``from_arrays``: all four, or a close only."""
    if close is None:
        raise TypeError("from_arrays needs close= (and open=, high=, low=, or none of them "
                        "for close-only data)")
    others = {"open": open, "high": high, "low": low}
    if all(x is None for x in others.values()):
        return {"close": close}
    missing = [r for r, x in others.items() if x is None]
    if missing:
        raise TypeError(f"from_arrays got some of open, high, low but not {missing}: give "
                        "all four prices, or close alone for close-only data")
    return {**others, "close": close}


def _check_orientation(na: int, nb: int, timestamps, symbols) -> None:
    """A clear error for ``(n_bars, n_assets)`` input: the timestamps or symbols fit the
    other axis."""
    n_ts = None if timestamps is None else len(timestamps)
    n_sym = None if symbols is None or isinstance(symbols, str) else len(symbols)
    if na == nb or not ((n_ts == na and n_ts != nb) or (n_sym == nb and n_sym != na)):
        return
    given = (f"{n_ts} timestamps (one per row)" if n_ts == na
             else f"{n_sym} symbols (one per column)")
    raise DataError(
        f"the price arrays have shape ({na}, {nb}), read as {na} assets x {nb} bars, but "
        f"{given} were given: the arrays look transposed (bars x assets, as in a pandas "
        "DataFrame with one column per asset); pass them transposed (arr.T, "
        "df.to_numpy().T)")


def _grid_arrays(given: dict) -> dict:
    """role -> the given array as a new float64 ``(n_assets, n_bars)`` array (1-D input is
    one asset); all of the same shape, not empty."""
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
    return arrs


def _symbol_names(symbols, na: int) -> tuple:
    """``symbols=`` of :meth:`Bundle.from_arrays` as a tuple of ``na`` distinct names."""
    if symbols is None:
        return tuple(f"A{k}" for k in range(na))
    syms = (symbols,) if isinstance(symbols, str) else tuple(symbols)
    syms = tuple(str(s) for s in syms)
    if len(syms) != na:
        raise DataError(f"{len(syms)} symbols given for {na} assets")
    if len(set(syms)) != na:
        raise DataError(f"duplicate symbols: {syms}")
    return syms


def _default_timestamps(n: int) -> np.ndarray:
    days = np.busday_offset(np.datetime64("2000-01-03", "D"), np.arange(n), roll="forward")
    return days.astype("datetime64[ns]")


def _checked_timestamps(timestamps, tz, nb: int):
    """(int64 UTC ns of ``nb`` strictly increasing bars, zone) of ``from_arrays`` input."""
    ts, zone = timestamps_to_ns(timestamps, tz=optional_zone(tz))
    ts = ts.copy()
    if ts.shape != (nb,):
        raise DataError(f"timestamps has length {ts.size}, the arrays have {nb} bars")
    _check_increasing(ts)
    return ts, zone


def _check_increasing(ts: np.ndarray, note: str = "") -> None:
    """DataError naming the first int64 time stamp not after the one before it."""
    bad = first_true(ts[1:] <= ts[:-1])
    if bad >= 0:
        i = bad + 1
        kind = "duplicate" if ts[i] == ts[i - 1] else "unsorted"
        raise DataError(
            f"{kind} timestamps: row {i} (timestamp {fmt_ts(ts[i])}), column "
            f"'timestamps': not after row {i - 1} ({fmt_ts(ts[i - 1])}); timestamps must "
            f"be strictly increasing{note}"
        )
