"""Time stamps: parsing them to UTC nanoseconds, time zones, and bars per year.

:func:`zone_name` canonicalises a zone (``"UTC"``, ``"+HH:MM"`` or an IANA name);
:func:`arrow_to_ns` and :func:`timestamps_to_ns` turn time stamps (Arrow, numpy, pandas,
strings) into int64 UTC nanoseconds plus the data's zone; :func:`infer_periods_per_year`
(public) and :func:`periods_per_year_of` count bars per year on the zone's calendar.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sweepbt.data.columns import first_null, is_string_type, plain_array
from sweepbt.data.errors import (
    DataError, RowLocator, first_cast_failure, first_failing, first_true, fmt_ts, slice_fails)

_NS_PER_DAY = 86_400_000_000_000
_DAYS_PER_YEAR = 365.25
# (minimum median spacing in days, periods per year) for bars a week or more apart
_SPACING_TIERS = ((300, 1.0), (80, 4.0), (28, 12.0), (6, 52.0))
#: ``time_unit=`` of epoch numbers -> nanoseconds per unit
TIME_UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}

# ISO-8601 date-time ending in a zone designator; the group captures the designator.
_OFFSET_RE = (
    r"^\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d*)?)?\s*"
    r"(?P<off>[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$"
)


# --------------------------------------------------------------------------------------
# time zones
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


def zone_name(tz, what: str) -> str:
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


def optional_zone(tz):
    """``tz=`` as given to the public functions: None, or its :func:`zone_name`."""
    return None if tz is None else zone_name(tz, "tz=")


def _wall_ns(ns: np.ndarray, zone: str) -> np.ndarray:
    """int64 UTC nanoseconds -> the wall-clock time in ``zone``, as int64 nanoseconds."""
    if zone == "UTC":
        return ns
    aware = pa.array(ns, pa.int64()).cast(pa.timestamp("ns", tz=zone))
    return np.asarray(pc.local_timestamp(aware).cast(pa.int64()), dtype=np.int64)


def _localize(col: pa.Array, zone: str, name: str, loc: RowLocator) -> pa.Array:
    """Naive timestamp[ns] wall-clock times in ``zone`` -> UTC instants; a time that a
    daylight-saving change skips or repeats is an error naming its row."""
    try:
        return pc.assume_timezone(col, timezone=zone)
    except pa.ArrowInvalid as exc:
        i = first_failing(len(col), slice_fails(
            col, lambda part: pc.assume_timezone(part, timezone=zone)))
        wall = fmt_ts(col[i].cast(pa.int64()).as_py(), suffix="")
        if slice_fails(col, lambda part: pc.assume_timezone(
                part, timezone=zone, ambiguous="earliest"))(i, i + 1):
            what = "does not exist (clocks skip it at a daylight-saving change)"
        else:
            what = "is ambiguous (clocks repeat it at a daylight-saving change)"
        raise DataError(f"timestamp {wall} {what} in time zone {zone!r} (tz=): "
                        f"{loc.where(i, name)}") from exc


# --------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------


def _parse_ts_strings(arr: pa.Array, name: str, loc: RowLocator, facts: dict):
    """Parse ISO-8601 strings. Returns (timestamp[ns] array, zone): strings with an offset
    give UTC instants, each row converted with its own offset; one offset throughout becomes
    the zone, differing offsets (a daylight-saving change) give ``"UTC"``. Naive strings
    stay naive and the zone is None. Naive and offset strings mixed are an error."""
    arr = pc.utf8_trim_whitespace(arr)
    match = pc.extract_regex(arr, pattern=_OFFSET_RE)
    has = np.asarray(pc.is_valid(match))
    off = pc.struct_field(match, [0])
    zone = None
    if has.all():
        uniq = pc.unique(off).to_pylist()
        zones = list(dict.fromkeys(_offset_zone(_offset_minutes(u)) for u in uniq))
        typ = pa.timestamp("ns", tz="UTC")
        if len(zones) > 1:
            zone = "UTC"
            facts["times"] = (f"UTC offsets {', '.join(zones)} in column {name!r}, each row "
                              "converted to UTC")
        else:
            zone = zones[0]
            facts["times"] = f"UTC offset {zone} in column {name!r}"
    elif not has.any():
        typ = pa.timestamp("ns")
    else:
        i = first_true(has != has[0])
        raise DataError(
            f"ambiguous time zones: {loc.where(i, name)}: {arr[i].as_py()!r} "
            f"{'has' if has[i] else 'lacks'} a UTC offset but row "
            f"{loc.row(0)} ({arr[0].as_py()!r}) "
            f"{'does' if has[0] else 'does not'}; mixing naive and zoned timestamps is "
            "ambiguous"
        )
    try:
        return pc.cast(arr, typ), zone
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        i = first_cast_failure(arr, typ)
        raise DataError(
            f"unparseable timestamp: {loc.where(i, name)}: {arr[i].as_py()!r} "
            "(expected ISO-8601, e.g. '2024-01-31' or '2024-01-31T16:00:00+00:00')"
        ) from exc


def _guess_unit(x: np.ndarray):
    """The epoch unit that puts the values' median in a plausible range (years about
    1973..5138), from their magnitude: ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``; None when
    they are too large for any."""
    m = float(np.median(np.abs(x))) if x.size else 0.0
    for limit, unit in ((1e11, "s"), (1e14, "ms"), (1e17, "us"), (2.0**63, "ns")):
        if m < limit:
            return unit
    return None  # too large for any unit


def _epoch_to_ns(col: pa.Array, name: str, loc: RowLocator, unit: str) -> np.ndarray:
    """Epoch numbers (integers or floats) in ``unit`` -> int64 UTC nanoseconds."""
    x = np.asarray(col.to_numpy(zero_copy_only=False))
    factor = TIME_UNITS[unit]
    guess = _guess_unit(x)
    hint = f"; the values look like epoch {_UNIT_WORDS[guess]}: time_unit={guess!r}?" \
        if guess not in (None, unit) else ""
    nan = first_true(np.isnan(x)) if x.dtype.kind == "f" else -1
    if nan >= 0:
        raise DataError(f"missing (NaN) timestamp: {loc.where(nan, name)}")
    scaled = x.astype(np.float64) * factor
    bad = first_true(~np.isfinite(scaled) | (np.abs(scaled) >= 2.0**63 - 2**12))
    if bad >= 0:
        raise DataError(f"timestamp out of range for nanoseconds (1677..2262): "
                        f"{loc.where(bad, name)}: {x[bad].item()!r} {_UNIT_WORDS[unit]} "
                        f"(time_unit={unit!r}){hint}")
    if x.dtype.kind in "iu":
        ns = x.astype(np.int64) * np.int64(factor)
    else:  # whole units and the fraction apart: float64 holds no 19-digit nanoseconds
        whole = np.floor(x)
        ns = whole.astype(np.int64) * np.int64(factor) + np.round(
            (x - whole) * factor).astype(np.int64)
    if hint and ns.size and np.all(np.abs(ns) < 366 * _NS_PER_DAY):
        raise DataError(f"time_unit={unit!r} puts every time stamp of column {name!r} in "
                        f"1969..1970 (row {loc.row(0)}: {fmt_ts(ns[0])}){hint}")
    return ns


def _epoch_strings(col: pa.Array) -> pa.Array:
    """Strings that are all plain numbers (epoch numbers in a CSV) as int64 or float64;
    other strings unchanged."""
    if not len(col) or not pc.all(pc.match_substring_regex(
            col, r"^\s*[+-]?\d+(\.\d*)?([eE][+-]?\d+)?\s*$")).as_py():
        return col
    ints = pc.all(pc.match_substring_regex(col, r"^\s*[+-]?\d+\s*$")).as_py()
    col = pc.utf8_trim_whitespace(col)
    try:
        return pc.cast(col, pa.int64() if ints else pa.float64())
    except pa.ArrowInvalid:  # an integer beyond int64: out of range in any unit
        return pc.cast(col, pa.float64())


def check_time_unit(time_unit):
    """``time_unit=`` as given: None or one of :data:`TIME_UNITS`."""
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit must be one of {tuple(TIME_UNITS)} (the unit of epoch "
                         f"numbers) or None, got {time_unit!r}")
    return time_unit


def _numbers(col, typ, name: str, loc: RowLocator, time_unit, facts: dict):
    """Epoch numbers -> int64 UTC ns, or the error naming ``time_unit=``."""
    if time_unit is None:
        unit = _guess_unit(np.asarray(col.to_numpy(zero_copy_only=False))) or "s"
        raise DataError(
            f"column {name!r} holds numbers ({typ}), not time stamps: epoch numbers are "
            f"ambiguous (seconds? milliseconds?); pass time_unit={unit!r} (--time-unit "
            f"{unit} on the command line) if they are epoch {_UNIT_WORDS[unit]} (the "
            f"values' size suggests it), or convert them to time stamps first"
        )
    facts["times"] = f"epoch {_UNIT_WORDS[time_unit]} in column {name!r}, UTC"
    return _epoch_to_ns(col, name, loc, time_unit)


def arrow_to_ns(col, name: str, loc: RowLocator, tz=None, time_unit=None, facts=None):
    """Arrow (chunked) array of time stamps -> (int64 ns since epoch UTC, zone).

    Zoned values (a timestamp type with a zone, strings with an offset) keep their zone
    unless ``tz`` (canonical, see :func:`zone_name`) is given; naive values are wall-clock
    times in ``tz`` (default UTC). Numbers are epoch numbers in ``time_unit`` (required for
    them, refused otherwise): UTC instants. ``facts`` (a dict), when given, gets ``"times"``:
    a sentence saying how the time stamps were read."""
    facts = {} if facts is None else facts
    col = plain_array(col)
    typ = col.type
    i = first_null(col)
    if i >= 0:
        raise DataError(f"missing (null) timestamp: {loc.where(i, name)}")
    if is_string_type(typ):
        col = _epoch_strings(col)
        typ = col.type
    numbers = pa.types.is_integer(typ) or pa.types.is_floating(typ)
    if time_unit is not None and not numbers:
        raise DataError(f"time_unit={time_unit!r} is for epoch numbers, but column {name!r} "
                        f"holds {typ}; leave time_unit= out")
    if numbers:
        return _numbers(col, typ, name, loc, time_unit, facts), tz or "UTC"
    zone = None
    if pa.types.is_timestamp(typ):
        target = pa.timestamp("ns", tz=typ.tz)
        if typ.tz is not None:
            zone = zone_name(typ.tz, f"column {name!r}")
            facts["times"] = f"time zone {zone} of column {name!r}"
    elif pa.types.is_date(typ):
        target = pa.timestamp("ns")
    elif is_string_type(typ):
        col, zone = _parse_ts_strings(col, name, loc, facts)
        target = col.type
    else:
        raise DataError(f"column {name!r} has type {typ}, which is not a time stamp")
    try:
        col = pc.cast(col, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        i = first_cast_failure(col, target)
        raise DataError(
            f"timestamp out of range for nanoseconds (1677..2262): {loc.where(i, name)}"
        ) from exc
    if zone is None:
        facts["times"] = f"naive (no zone) in column {name!r}, read as {tz or 'UTC'}"
        facts["naive"] = True
        if tz not in (None, "UTC"):
            col = _localize(col, tz, name, loc)
    return np.asarray(pc.cast(col, pa.int64()), dtype=np.int64), tz or zone or "UTC"


def _numpy_to_ns(arr: np.ndarray, name: str, tz):
    """:func:`timestamps_to_ns` for a numpy array."""
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            i = first_true(np.isnat(arr))
            raise DataError(f"missing (NaT) timestamp: row {i}, column {name!r}")
        ns = arr.astype("datetime64[ns]").view(np.int64)
        if tz in (None, "UTC"):
            return ns, "UTC"
        return arrow_to_ns(pa.array(ns, pa.timestamp("ns")), name, RowLocator(len(ns)), tz)
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
        return arrow_to_ns(parr, name, RowLocator(len(arr)), tz)
    raise DataError(f"{name} has dtype {arr.dtype}, which is not a time stamp")


def timestamps_to_ns(timestamps, name: str = "timestamps", tz=None):
    """Any array-like of time stamps -> (int64 ns since epoch UTC, zone), for arrays, not
    tables. ``tz`` as in :func:`arrow_to_ns`."""
    if isinstance(timestamps, (pa.Array, pa.ChunkedArray)):
        return arrow_to_ns(timestamps, name, RowLocator(len(timestamps)), tz)
    mod = type(timestamps).__module__ or ""
    if mod.startswith("pandas"):
        import pandas as pd

        if getattr(timestamps, "dtype", None) == object:
            try:
                timestamps = pd.to_datetime(timestamps)
            except (ValueError, TypeError) as exc:
                raise DataError(f"mixed or ambiguous time zones in {name}: {exc}") from exc
        return arrow_to_ns(pa.array(timestamps), name, RowLocator(len(timestamps)), tz)
    return _numpy_to_ns(np.asarray(timestamps), name, tz)


# --------------------------------------------------------------------------------------
# bars per year
# --------------------------------------------------------------------------------------


def periods_per_year_of(ts: np.ndarray, zone: str) -> float:
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
    ns, zone = timestamps_to_ns(timestamps, tz=optional_zone(tz))
    return periods_per_year_of(np.unique(ns), zone)
