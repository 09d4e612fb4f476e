"""Rebalance schedules (sweepbt._schedule.rebalance_bars): exact bars on hand-made axes."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from sweepbt._schedule import rebalance_bars


def utc_axis(*stamps):
    """datetime64[ns] UTC axis from ISO strings (UTC wall times)."""
    return np.array(stamps, dtype="datetime64[ns]")


def local_axis(zone, *stamps):
    """datetime64[ns] UTC axis from wall-clock ISO strings in ``zone``."""
    z = ZoneInfo(zone)
    utc = [datetime.fromisoformat(s).replace(tzinfo=z).astimezone(ZoneInfo("UTC"))
           .replace(tzinfo=None) for s in stamps]
    return np.array(utc, dtype="datetime64[ns]")


def bars(timestamps, rebalance, tz=None):
    out = rebalance_bars(timestamps, rebalance, tz)
    assert out.dtype == np.int64
    return out.tolist()


def test_integer_schedules():
    ts = utc_axis(*[f"2024-01-{d:02d}" for d in range(1, 11)])  # 10 bars
    assert bars(ts, 3) == [2, 5, 8]
    assert bars(ts, 5) == [4]  # bar 9 is the final bar: it never rebalances
    assert bars(ts, 1) == list(range(9))
    assert bars(ts, 9) == [8]
    assert bars(ts, 10) == []
    assert bars(ts, 20) == []
    assert bars(ts, np.int32(4)) == [3, 7]


def test_month_end_on_a_holiday_and_quarter_and_year():
    # 2024-03-29 (Good Friday) and the weekend are missing: the last March bar is the 28th
    ts = utc_axis("2024-03-27", "2024-03-28", "2024-04-01", "2024-04-02", "2024-06-28",
                  "2024-07-01", "2024-12-31", "2025-01-02")
    assert bars(ts, "M") == [1, 3, 4, 5, 6]
    assert bars(ts, "Q") == [1, 4, 5, 6]  # Q1->Q2, Q2->Q3, Q3->Q4, Q4->Q1
    assert bars(ts, "Y") == [6]
    assert bars(ts, "m") == bars(ts, "M")  # any case


def test_iso_week_53_and_year_boundaries():
    # ISO week 53 of 2020 runs from Monday 2020-12-28 to Sunday 2021-01-03
    ts = utc_axis("2020-12-24", "2020-12-28", "2020-12-31", "2021-01-01", "2021-01-04")
    assert bars(ts, "W") == [0, 3]  # no weekly rebalance at the new year inside week 53
    assert bars(ts, "M") == [2]
    assert bars(ts, "Q") == [2]
    assert bars(ts, "Y") == [2]
    # 2022-01-01 (Saturday) and 01-02 (Sunday) belong to ISO week 52 of 2021
    ts = utc_axis("2021-12-31", "2022-01-01", "2022-01-02", "2022-01-03")
    assert bars(ts, "W") == [2]
    assert bars(ts, "Y") == [0]


def test_tokyo_daily_bars_use_the_local_date():
    # midnight in Tokyo is 15:00 UTC of the day before
    ts = local_axis("Asia/Tokyo", "2024-01-29", "2024-01-30", "2024-01-31", "2024-02-01",
                    "2024-02-02", "2024-02-05")
    assert str(ts[0]) == "2024-01-28T15:00:00.000000000"
    assert bars(ts, "M", "Asia/Tokyo") == [2]  # local Jan 31 -> Feb 1
    assert bars(ts, "W", "Asia/Tokyo") == [4]  # local Friday Feb 2 -> Monday Feb 5
    assert bars(ts, "M", "+09:00") == [2]  # a fixed offset is a zone too
    # judged in UTC the same instants fall a day earlier: Jan 28 is a Sunday
    assert bars(ts, "M") == [3]
    assert bars(ts, "W") == [0]
    assert bars(ts, "W", "UTC") == [0]


def test_new_york_across_daylight_saving():
    # 23:30 in New York: 03:30 UTC of the next day in summer (EDT), 04:30 in winter (EST)
    ts = local_axis("America/New_York", "2024-08-30 23:30", "2024-08-31 23:30",
                    "2024-09-03 23:30", "2024-11-29 23:30", "2024-11-30 23:30",
                    "2024-12-02 23:30")
    assert str(ts[1]) == "2024-09-01T03:30:00.000000000"
    assert str(ts[4]) == "2024-12-01T04:30:00.000000000"
    assert bars(ts, "M", "America/New_York") == [1, 2, 4]
    assert bars(ts, "Q", "America/New_York") == [2]
    assert bars(ts, "M") == [0, 2, 3]  # in UTC
    # bars a day apart across the November change (EDT -> EST) stay on their local days
    ts = local_axis("America/New_York", "2024-10-31 20:00", "2024-11-01 20:00",
                    "2024-11-04 20:00")
    assert bars(ts, "M", "America/New_York") == [0]
    assert bars(ts, "W", "America/New_York") == [1]


def test_intraday_bars_rebalance_at_the_last_bar_of_the_period():
    start = datetime(2024, 1, 31, 14)
    stamps = [start + timedelta(hours=h) for h in range(3)] + [datetime(2024, 2, 1, 9),
                                                                  datetime(2024, 2, 1, 10)]
    ts = np.array(stamps, dtype="datetime64[ns]")
    assert bars(ts, "M") == [2]
    assert bars(ts, "W") == []  # Wednesday to Thursday
    assert bars(ts, 2) == [1, 3]


def test_short_axes_and_int64_input():
    assert bars(utc_axis(), "M") == []
    assert bars(utc_axis("2024-01-31"), "M") == []  # the final bar never rebalances
    ts = utc_axis("2024-01-31", "2024-02-01")
    assert bars(ts.view(np.int64), "M") == [0]
    assert bars(ts.astype("datetime64[s]"), "M") == [0]


def test_the_input_is_not_modified():
    ts = utc_axis("2024-01-31", "2024-02-01")
    before = ts.copy()
    rebalance_bars(ts, "M", "Asia/Tokyo")
    assert np.array_equal(ts, before)


@pytest.mark.parametrize("rebalance, words", [
    ("D", "unknown rebalance schedule 'D'"),
    ("month", "unknown rebalance schedule 'month'"),
    (0, "number of bars >= 1"),
    (-3, "number of bars >= 1"),
    (2.5, "unknown rebalance schedule 2.5"),
    (True, "unknown rebalance schedule True"),
    (None, "unknown rebalance schedule None"),
])
def test_bad_schedules_name_the_allowed_forms(rebalance, words):
    ts = utc_axis("2024-01-31", "2024-02-01")
    with pytest.raises(ValueError) as err:
        rebalance_bars(ts, rebalance)
    assert words in str(err.value)
    assert "'W' (ISO week), 'M' (month), 'Q' (quarter), 'Y' (year)" in str(err.value)


def test_bad_axes_and_zones():
    with pytest.raises(ValueError, match="unknown time zone tz='Mars/Base'"):
        rebalance_bars(utc_axis("2024-01-31", "2024-02-01"), "M", "Mars/Base")
    with pytest.raises(ValueError, match="strictly increasing: bar 2 is not after bar 1"):
        rebalance_bars(utc_axis("2024-01-01", "2024-01-03", "2024-01-02"), "M")
    with pytest.raises(ValueError, match="one-dimensional"):
        rebalance_bars(np.zeros((2, 2), dtype="datetime64[ns]"), "M")
    with pytest.raises(ValueError, match="datetime64 values or int64"):
        rebalance_bars(np.array([1.0, 2.0]), "M")
