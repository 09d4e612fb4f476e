"""Walk-forward windows: calendar durations and the (train, test) bar spans they give.

Bars or durations (``"2Y"``, ``"6M"``, ``"4W"``, ``"90D"``, ``"12h"``, ``"30min"``) over a
Bundle's time stamps (int64 ns); see docs/walk-forward.md for the exact spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from sweepbt._validate import check_count, is_integer
from sweepbt._params import MAX_GRID

__all__ = ["Duration", "parse_duration", "window_spans"]

_NS = {"W": 7 * 86_400_000_000_000, "D": 86_400_000_000_000, "h": 3_600_000_000_000,
       "min": 60_000_000_000}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(Y|y|M|W|w|D|d|H|h|min)\s*$")
_UNIT_ALIASES = {"y": "Y", "w": "W", "d": "D", "H": "h"}
#: the longest duration accepted (datetime64[ns] covers about 292 years either side of 1970)
MAX_DURATION_YEARS = 250
MAX_DURATION_NS = MAX_DURATION_YEARS * 366 * 86_400 * 10**9

@dataclass(frozen=True)
class Duration:
    """A calendar duration: whole months plus a fixed number of nanoseconds."""

    months: int
    ns: int
    text: str

    def times(self, k):
        return Duration(self.months * k, self.ns * k, f"{k}x{self.text}")

    def __add__(self, other):
        return Duration(self.months + other.months, self.ns + other.ns,
                        f"{self.text}+{other.text}")


def parse_duration(text):
    """``"2Y"``, ``"6M"``, ``"4W"``, ``"90D"``, ``"12h"``, ``"30min"`` -> :class:`Duration`.

    Years and months are calendar months (``"1Y"`` == ``"12M"``; a day past the end of the
    target month is clipped to its last day); weeks, days, hours and minutes are fixed
    lengths. ``Y``, ``W``, ``D`` may be lower case; ``M`` (months) may not, to keep it
    apart from minutes (``min``).
    """
    m = _DURATION_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"{text!r} is not a duration; use a positive whole number and a unit: "
                         "Y (years), M (months), W (weeks), D (days), h (hours), min "
                         "(minutes), e.g. '2Y', '6M', '90D'")
    n, unit = int(m.group(1)), _UNIT_ALIASES.get(m.group(2), m.group(2))
    if n < 1:
        raise ValueError(f"duration {text!r} must be positive")
    longest = {"Y": 366 * _NS["D"], "M": 31 * _NS["D"]}.get(unit) or _NS[unit]
    if n * longest > MAX_DURATION_NS:
        raise ValueError(f"duration {text!r} is longer than {MAX_DURATION_YEARS:,} years")
    if unit == "Y":
        return Duration(12 * n, 0, text.strip())
    if unit == "M":
        return Duration(n, 0, text.strip())
    return Duration(0, n * _NS[unit], text.strip())


def _add_months(t, months):
    """``t`` (datetime64[ns]) plus calendar ``months``, the day clipped to the month's end."""
    month = t.astype("datetime64[M]")
    within = t - month.astype("datetime64[ns]")
    target = month + np.timedelta64(months, "M")
    first = target.astype("datetime64[ns]")
    following = (target + np.timedelta64(1, "M")).astype("datetime64[ns]")
    if first + within >= following:
        day = np.timedelta64(1, "D").astype("timedelta64[ns]")
        within = (following - first) - day + within % day
    return first + within


def _shift(t, d):
    return _add_months(t, d.months) + np.timedelta64(d.ns, "ns")


def _show(span):
    return repr(span.text) if isinstance(span, Duration) else repr(span)


def _as_span(name, value):
    """A bar count (int) or a Duration."""
    if isinstance(value, str):
        return parse_duration(value)
    if not is_integer(value):
        raise TypeError(f"{name} must be a number of bars (int) or a duration such as '2Y', "
                        f"'6M', '90D'; got {value!r}")
    return check_count(f"{name} (bars)", value, 1, MAX_GRID, TypeError)


def window_spans(timestamps, train, test, step=None, anchored=False, partial=False):
    """The walk-forward windows as ``(train_start, train_end, test_start, test_end)`` bars.

    Spans are half-open bar ranges on the time axis ``timestamps``; ``test_start ==
    train_end``. ``train``, ``test`` and ``step`` (default: ``test``) are all bar counts
    or all durations (see :func:`parse_duration`).

    Bars: window ``k`` trains on ``[k*step, train + k*step)`` (``[0, ...)`` when
    ``anchored``) and tests on the ``test`` bars after it.

    Durations: with ``t0`` the first time stamp, window ``k`` trains on the bars with
    time in ``[t0 + k*step, t0 + train + k*step)`` (from ``t0`` when ``anchored``) and
    tests on ``[t0 + train + k*step, t0 + train + k*step + test)``, every boundary
    computed from ``t0`` (no drift). A window whose training or test span holds no bar is
    skipped.

    A window is kept only if the data reach the end of its test span (bars:
    ``test_end <= n_bars``; durations: the last time stamp plus the longest spacing
    between two consecutive bars is at or after the test end), unless ``partial=True``,
    which keeps a last, shorter window cut at the end of the data.
    """
    ts = np.asarray(timestamps).astype("datetime64[ns]")
    n_bars = ts.size
    train, test = _as_span("train", train), _as_span("test", test)
    step = test if step is None else _as_span("step", step)
    kinds = {type(x) for x in (train, test, step)}
    if len(kinds) != 1:
        raise ValueError("give train, test and step all as bar counts or all as durations "
                         f"(got train={_show(train)}, test={_show(test)}, step={_show(step)})")
    spans = []
    if isinstance(train, int):
        k = 0
        while True:
            tr_hi = train + k * step
            tr_lo = 0 if anchored else k * step
            te_hi = tr_hi + test
            if tr_hi >= n_bars or (te_hi > n_bars and not partial):
                break
            spans.append((tr_lo, tr_hi, tr_hi, min(te_hi, n_bars)))
            k += 1
    else:
        t0 = ts[0]
        reach = ts[-1] + (np.diff(ts).max() if n_bars > 1 else np.timedelta64(0, "ns"))
        k = 0
        while True:
            offset = step.times(k)
            t_tr_lo = t0 if anchored else _shift(t0, offset)
            t_tr_hi = _shift(t0, train + offset)
            t_te_hi = _shift(t0, train + offset + test)
            if t_tr_hi > ts[-1] or (t_te_hi > reach and not partial):
                break
            tr_lo, tr_hi, te_hi = np.searchsorted(ts, [t_tr_lo, t_tr_hi, t_te_hi])
            if tr_lo < tr_hi < te_hi:
                spans.append((int(tr_lo), int(tr_hi), int(tr_hi), int(te_hi)))
            k += 1
            if k > n_bars + 1:  # pragma: no cover - a zero step cannot be given
                break
    for (_, _, _, prev_hi), (_, _, lo, _) in zip(spans, spans[1:]):
        if lo < prev_hi:
            raise ValueError(f"step={_show(step)} is shorter than test={_show(test)}: test "
                             "spans would overlap (give step >= test)")
    return spans
