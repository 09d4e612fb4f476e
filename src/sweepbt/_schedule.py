"""Rebalance schedules of rank strategies: which bars of the time axis rebalance.

:func:`rebalance_bars` turns ``rebalance`` (``"W"``, ``"M"``, ``"Q"``, ``"Y"`` or an integer
number of bars) into the sorted bar indices where a rank strategy re-ranks and trades
(docs/semantics.md, "Rank-and-rebalance strategies").
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sweepbt._validate import is_integer

CALENDAR_RULES = {"W": "ISO week", "M": "month", "Q": "quarter", "Y": "year"}
_NS_PER_DAY = 86_400_000_000_000
_ALLOWED = ("'W' (ISO week), 'M' (month), 'Q' (quarter), 'Y' (year) or an integer "
            "number of bars >= 1")


def _utc_ns(timestamps) -> np.ndarray:
    """The time axis as int64 UTC nanoseconds (datetime64 of any unit, or int64 ns)."""
    ts = np.asarray(timestamps)
    if ts.ndim != 1:
        raise ValueError(f"timestamps must be one-dimensional, got shape {ts.shape}")
    if np.issubdtype(ts.dtype, np.datetime64):
        ns = ts.astype("datetime64[ns]").view(np.int64)
    elif np.issubdtype(ts.dtype, np.integer) and ts.dtype != np.bool_:
        ns = ts.astype(np.int64)
    else:
        raise ValueError(f"timestamps must be datetime64 values or int64 UTC nanoseconds, "
                         f"got dtype {ts.dtype}")
    if ns.size > 1 and not np.all(ns[1:] > ns[:-1]):
        i = int(np.argmin(ns[1:] > ns[:-1])) + 1
        raise ValueError(f"timestamps must be strictly increasing: bar {i} is not after "
                         f"bar {i - 1}")
    return ns


def _local_days(ns: np.ndarray, tz: str) -> np.ndarray:
    """Calendar day numbers (days since 1970-01-01) of each instant in zone ``tz``."""
    if tz != "UTC":
        try:
            aware = pa.array(ns, pa.int64()).cast(pa.timestamp("ns", tz=tz))
            ns = np.asarray(pc.local_timestamp(aware).cast(pa.int64()), dtype=np.int64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"unknown time zone tz={tz!r}: expected None (UTC), an IANA "
                             "name such as 'America/New_York' or an offset such as "
                             "'+09:00'") from exc
    return np.floor_divide(ns, _NS_PER_DAY)


def _period_keys(days: np.ndarray, rule: str) -> np.ndarray:
    """A number per bar that grows by at least one from one calendar period to the next."""
    if rule == "W":  # 1970-01-01 was a Thursday: (days + 3) // 7 changes on Mondays
        return np.floor_divide(days + 3, 7)
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    if rule == "M":
        return months
    return np.floor_divide(months, 3 if rule == "Q" else 12)


def rebalance_bars(timestamps, rebalance, tz=None) -> np.ndarray:
    """Sorted int64 indices of the bars that rebalance.

    ``timestamps``: the Bundle's time axis (datetime64, UTC, strictly increasing; int64
    UTC nanoseconds also accepted). ``rebalance``: ``"W"``, ``"M"``, ``"Q"`` or ``"Y"``
    (any case): bar ``i`` rebalances when bar ``i + 1`` lies in a later ISO week (weeks
    start on Monday), month, quarter or year on the calendar of ``tz`` (the data's own
    time zone; ``None`` is UTC); or an integer ``n >= 1``: bars ``n-1, 2n-1, 3n-1, ...``.
    The final bar never rebalances (nothing follows it).
    """
    ns = _utc_ns(timestamps)
    n_bars = ns.size
    if is_integer(rebalance):
        if rebalance < 1:
            raise ValueError(f"rebalance={rebalance!r}: an integer schedule needs a number "
                             f"of bars >= 1; use {_ALLOWED}")
        return np.arange(int(rebalance) - 1, n_bars - 1, int(rebalance), dtype=np.int64)
    rule = rebalance.strip().upper() if isinstance(rebalance, str) else None
    if rule not in CALENDAR_RULES:
        raise ValueError(f"unknown rebalance schedule {rebalance!r}: use {_ALLOWED}")
    zone = "UTC" if tz is None else tz
    if not isinstance(zone, str):
        raise ValueError(f"tz must be None (UTC) or a time zone name, got {tz!r}")
    zone = "UTC" if zone.strip().upper() in ("UTC", "Z") else zone.strip()
    keys = _period_keys(_local_days(ns, zone), rule)
    return np.flatnonzero(keys[1:] > keys[:-1]).astype(np.int64)
