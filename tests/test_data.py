"""Data layer: load(), Bundle, from_arrays(), demo(), periods_per_year inference."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from sweepbt.data import Bundle, demo, infer_periods_per_year, load

pd = pytest.importorskip("pandas")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------



def bars(n, first="2021-01-04", seed=0):
    """Valid OHLCV for n bars as a dict of numpy arrays."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    vol = rng.integers(100, 1000, n).astype(float)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": vol}


def weekdays(n, first="2021-01-04"):
    return np.busday_offset(np.datetime64(first, "D"), np.arange(n), roll="forward").astype(
        "datetime64[ns]")


def local_weekdays(first, last, zone):
    """Weekday local midnights in ``zone`` from first to last, as UTC datetime64[ns]."""
    days = pd.bdate_range(first, last).tz_localize(zone)
    return days.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[ns]")


def long_table(spec=None, tz="UTC"):
    """Long pyarrow table. spec: symbol -> (first bar index, n bars) on a weekday axis."""
    spec = spec or {"AAA": (0, 10), "BBB": (0, 10)}
    axis = weekdays(max(s + n for s, n in spec.values()))
    parts = []
    for k, (sym, (s, n)) in enumerate(spec.items()):
        b = bars(n, seed=k)
        parts.append(pd.DataFrame({"timestamp": axis[s:s + n], "symbol": sym, **b}))
    df = pd.concat(parts, ignore_index=True)
    t = pa.Table.from_pandas(df, preserve_index=False)
    ts = t.column("timestamp").cast(pa.timestamp("ns", tz=tz))
    return t.set_column(0, "timestamp", ts)


def replace(table, name, values):
    i = table.column_names.index(name)
    return table.set_column(i, name, pa.array(values))


def col(table, name):
    return table.column(name).to_numpy().copy()


def assert_bundle_equal(a: Bundle, b: Bundle):
    assert a.symbols == b.symbols
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.start, b.start)
    np.testing.assert_array_equal(a.end, b.end)
    for f in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


# --------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------


@pytest.fixture
def table():
    return long_table({"AAA": (0, 30), "BBB": (5, 20), "CCC": (0, 12)})


def test_table_basic(table):
    b = load(table)
    assert b.symbols == ("AAA", "BBB", "CCC")
    assert b.n_assets == 3 and b.n_bars == 30
    np.testing.assert_array_equal(b.start, [0, 5, 0])
    np.testing.assert_array_equal(b.end, [30, 25, 12])
    assert b.timestamps.dtype == np.dtype("datetime64[ns]")
    assert np.all(np.diff(b.timestamps.view(np.int64)) > 0)
    # values land where they belong, NaN outside spans
    bbb = table.filter(pa.compute.equal(table.column("symbol"), "BBB"))
    np.testing.assert_array_equal(b.close[1, 5:25], col(bbb, "close"))
    np.testing.assert_array_equal(b.volume[1, 5:25], col(bbb, "volume"))
    assert np.isnan(b.close[1, :5]).all() and np.isnan(b.close[1, 25:]).all()
    assert np.isnan(b.volume[2, 12:]).all()
    assert not np.isnan(b.close[0]).any()


def test_arrays_contiguous_writable_float64(table):
    b = load(table)
    for f in ("open", "high", "low", "close", "volume"):
        x = getattr(b, f)
        assert x.dtype == np.float64
        assert x.flags.c_contiguous and x.flags.writeable
        assert x.shape == (3, 30)
    assert b.start.dtype == np.int64 and b.end.dtype == np.int64
    assert b.timestamps.flags.writeable


@pytest.mark.parametrize("ext", ["parquet", "feather", "arrow", "csv"])
def test_file_round_trip(tmp_path, table, ext):
    path = tmp_path / f"prices.{ext}"
    if ext == "parquet":
        pq.write_table(table, path)
    elif ext in ("feather", "arrow"):
        feather.write_feather(table, path)
    else:
        pcsv.write_csv(table, path)
    assert_bundle_equal(load(path), load(table))
    assert_bundle_equal(load(str(path)), load(table))


def test_csv_iso_strings_with_offsets(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(
        "Timestamp,Symbol,Open,High,Low,Close\n"
        "2024-01-02T09:00:00+01:00,X,10,11,9,10.5\n"
        "2024-01-03T09:00:00+01:00,X,10.5,11,10,10.8\n"
    )
    b = load(path)
    assert b.symbols == ("X",)
    np.testing.assert_array_equal(
        b.timestamps, np.array(["2024-01-02T08:00", "2024-01-03T08:00"], "datetime64[ns]"))
    np.testing.assert_array_equal(b.volume, [[0.0, 0.0]])


def test_pandas_dataframe_round_trip(table):
    df = table.to_pandas()
    assert_bundle_equal(load(df), load(table))


def test_pandas_tz_aware_converted_to_utc():
    n = 5
    ts = pd.date_range("2024-03-01 09:30", periods=n, freq="D", tz="America/New_York")
    df = pd.DataFrame({"timestamp": ts, **bars(n)})
    b = load(df)
    expect = ts.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[ns]")
    np.testing.assert_array_equal(b.timestamps, expect)
    assert b.symbols == ("asset",)


def test_pandas_datetime_index():
    n = 6
    df = pd.DataFrame(bars(n), index=pd.DatetimeIndex(weekdays(n), name="Date"))
    b = load(df)
    np.testing.assert_array_equal(b.timestamps, weekdays(n))


def test_timestamp_units_and_naive_mean_utc(table):
    for unit in ("s", "ms", "us"):
        t = table.set_column(0, "timestamp", table.column("timestamp").cast(pa.timestamp(unit)))
        assert_bundle_equal(load(t), load(table))
    t = table.set_column(0, "timestamp",
                         table.column("timestamp").cast(pa.timestamp("ns", tz="Asia/Tokyo")))
    assert_bundle_equal(load(t), load(table))


def test_case_insensitive_names_and_extra_columns(table):
    t = table.rename_columns(["TimeStamp", "SYMBOL", "Open", "HIGH", "low", "Close", "Volume"])
    t = t.append_column("comment", pa.array(["x"] * t.num_rows))
    assert_bundle_equal(load(t), load(table))


def test_date_alias_and_timestamp_option(table):
    t = table.rename_columns(["Date"] + table.column_names[1:])
    assert_bundle_equal(load(t), load(table))
    t = table.rename_columns(["when"] + table.column_names[1:])
    assert_bundle_equal(load(t, timestamp="WHEN"), load(table))


def test_single_asset(tmp_path):
    n = 15
    t = pa.table({"timestamp": weekdays(n), **bars(n)})
    b = load(t)
    assert b.symbols == ("asset",) and b.close.shape == (1, n)
    assert load(t, symbol="SPY").symbols == ("SPY",)
    path = tmp_path / "SPY.parquet"
    pq.write_table(t, path)
    b = load(path)
    assert b.symbols == ("SPY",)
    np.testing.assert_array_equal(b.close[0], bars(n)["close"])
    np.testing.assert_array_equal(b.start, [0])
    np.testing.assert_array_equal(b.end, [n])


def test_symbol_filter(table):
    b = load(table, symbol=["CCC", "AAA"])
    assert b.symbols == ("CCC", "AAA")
    full = load(table)
    np.testing.assert_array_equal(b.close[0], full.close[2])
    with pytest.raises(ValueError, match="ZZZ"):
        load(table, symbol="ZZZ")


def test_time_major_order_and_spans():
    # rows interleaved by time (sorted by timestamp, then symbol)
    t = long_table({"AAA": (0, 20), "BBB": (3, 10), "CCC": (8, 12)})
    df = t.to_pandas().sort_values(["timestamp", "symbol"], kind="stable")
    b = load(df)
    assert b.symbols == ("AAA", "BBB", "CCC")
    np.testing.assert_array_equal(b.start, [0, 3, 8])
    np.testing.assert_array_equal(b.end, [20, 13, 20])
    assert_bundle_equal(b, load(t))


def test_volume_optional(table):
    b = load(table.drop_columns(["volume"]))
    assert b.volume.dtype == np.float64
    np.testing.assert_array_equal(b.volume[1, 5:25], 0.0)
    assert np.isnan(b.volume[1, :5]).all()


def test_integer_prices_accepted():
    n = 4
    t = pa.table({"timestamp": weekdays(n), "open": [10, 11, 12, 13], "high": [12] * 3 + [14],
                  "low": [9, 10, 10, 10], "close": [11, 12, 11, 13], "volume": [1, 2, 3, 4]})
    b = load(t)
    assert b.close.dtype == np.float64
    np.testing.assert_array_equal(b.close[0], [11, 12, 11, 13])


def test_to_table_round_trip(table):
    b = load(table)
    assert_bundle_equal(load(b.to_table()), b)


# --------------------------------------------------------------------------------------
# input is never modified, output never aliases it
# --------------------------------------------------------------------------------------


def test_dataframe_not_modified():
    n = 8
    ts = pd.date_range("2024-01-01", periods=n, freq="D", tz="Europe/Berlin")
    df = pd.DataFrame({"Timestamp": ts, "Symbol": "X", **bars(n)})
    df_obj = df.copy()
    df_obj["Timestamp"] = df_obj["Timestamp"].astype(object)
    for frame in (df, df_obj):
        before = frame.copy(deep=True)
        b = load(frame, gaps="ffill")
        b.close[:] = -1.0
        pd.testing.assert_frame_equal(frame, before)
        assert list(frame.columns) == list(before.columns)


def test_arrays_not_aliased():
    d = bars(10)
    keep = {k: v.copy() for k, v in d.items()}
    b = Bundle.from_arrays(**d)
    b.close[0, 0] = 123.0
    d["close"][1] = np.nan  # later change to the input must not reach the bundle
    for k in d:
        if k != "close":
            np.testing.assert_array_equal(d[k], keep[k])
    assert np.isfinite(b.close).all()


# --------------------------------------------------------------------------------------
# gaps
# --------------------------------------------------------------------------------------


def gapped_table():
    t = long_table({"AAA": (0, 10), "BBB": (0, 10)})
    # drop BBB's bars 3 and 4 (rows 13, 14)
    keep = np.ones(t.num_rows, bool)
    keep[[13, 14]] = False
    return t.filter(pa.array(keep))


def test_gap_is_error_by_default():
    t = gapped_table()
    with pytest.raises(ValueError, match=r"gap.*'BBB'.*2021-01-07.*row 12.*gaps='ffill'"):
        load(t)


def test_gap_ffill():
    t = gapped_table()
    b = load(t, gaps="ffill")
    assert b.n_bars == 10
    np.testing.assert_array_equal(b.start, [0, 0])
    np.testing.assert_array_equal(b.end, [10, 10])
    prev_close = b.close[1, 2]
    for f in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(getattr(b, f)[1, 3:5], [prev_close, prev_close])
    np.testing.assert_array_equal(b.volume[1, 3:5], [0.0, 0.0])
    bbb = t.filter(pa.compute.equal(t.column("symbol"), "BBB"))
    np.testing.assert_array_equal(b.close[1, [0, 1, 2, 5, 6, 7, 8, 9]], col(bbb, "close"))


def test_different_calendars_not_gaps_outside_span():
    # BBB ends before AAA's extra bars: those are outside its span, not gaps
    t = long_table({"AAA": (0, 12), "BBB": (2, 5)})
    b = load(t)
    np.testing.assert_array_equal(b.start, [0, 2])
    np.testing.assert_array_equal(b.end, [12, 7])


def test_gaps_option_checked(table):
    with pytest.raises(ValueError, match="gaps"):
        load(table, gaps="bfill")


# --------------------------------------------------------------------------------------
# bad input: every message names symbol, row and column
# --------------------------------------------------------------------------------------


def test_empty_table(table):
    with pytest.raises(ValueError, match="empty"):
        load(table.slice(0, 0))


def test_empty_csv(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("timestamp,symbol,open,high,low,close\n")
    with pytest.raises(ValueError, match="empty"):
        load(p)
    p.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load(p)


def test_missing_columns(table):
    with pytest.raises(ValueError, match=r"missing.*\['high', 'low'\]"):
        load(table.drop_columns(["high", "low"]))
    with pytest.raises(ValueError, match=r"missing.*\['timestamp'\]"):
        load(table.drop_columns(["timestamp"]))


def test_non_numeric_price_column(table):
    vals = [str(x) for x in col(table, "close")]
    vals[7] = "n/a"
    with pytest.raises(ValueError, match=r"'close'.*not numeric.*'n/a'.*'AAA'.*row 7"):
        load(replace(table, "close", vals))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, None])
def test_nan_inf_null_price(table, bad):
    vals = col(table, "high").tolist()
    vals[33] = bad
    with pytest.raises(ValueError, match=r"symbol 'BBB', row 33 \(timestamp 2021-01-14.*"
                                         r"column 'high'"):
        load(replace(table, "high", vals))


def test_price_not_positive(table):
    t = table
    for name in ("open", "high", "low", "close"):
        t = replace(t, name, np.where(np.arange(t.num_rows) == 44, 0.0, col(t, name)))
    with pytest.raises(ValueError, match=r"price <= 0: symbol 'BBB', row 44 .*column 'open'"):
        load(t)


def test_high_below_low(table):
    hi, lo = col(table, "high"), col(table, "low")
    hi[51], lo[51] = lo[51], hi[51]
    t = replace(replace(table, "high", hi), "low", lo)
    with pytest.raises(ValueError, match=r"high < low: symbol 'CCC', row 51 .*column 'high'"):
        load(t)


@pytest.mark.parametrize("name", ["open", "close"])
@pytest.mark.parametrize("where", ["above", "below"])
def test_open_close_outside_range(table, name, where):
    x = col(table, name)
    x[3] = col(table, "high")[3] * 1.01 if where == "above" else col(table, "low")[3] * 0.99
    with pytest.raises(ValueError, match=rf"{name} outside \[low, high\]: symbol 'AAA', "
                                         rf"row 3 .*column '{name}'"):
        load(replace(table, name, x))


@pytest.mark.parametrize("bad", [-1.0, np.nan, None])
def test_bad_volume(table, bad):
    v = col(table, "volume").tolist()
    v[40] = bad
    with pytest.raises(ValueError, match=r"volume.*symbol 'BBB', row 40 .*column 'volume'"):
        load(replace(table, "volume", v))


def test_duplicate_rows(table):
    # repeat row 31 (BBB, 2nd bar) right after itself
    idx = list(range(32)) + [31] + list(range(32, table.num_rows))
    with pytest.raises(ValueError, match=r"duplicate.*'BBB', row 32 .*column 'timestamp'.*31"):
        load(table.take(idx))


def test_duplicate_timestamps_single_asset():
    n = 5
    ts = weekdays(n)
    ts[3] = ts[2]
    with pytest.raises(ValueError, match=r"duplicate.*'asset', row 3 .*column 'timestamp'"):
        load(pa.table({"timestamp": ts, **bars(n)}))


def test_unsorted_rows_are_an_error(table):
    idx = list(range(table.num_rows))
    idx[35], idx[36] = idx[36], idx[35]
    with pytest.raises(ValueError, match=r"unsorted.*'BBB', row 36 .*column 'timestamp'"):
        load(table.take(idx))


def test_mixed_offsets_in_csv_converted_per_row(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(
        "timestamp,symbol,open,high,low,close\n"
        "2024-01-02T09:00:00+01:00,X,10,11,9,10.5\n"
        "2024-01-03T09:00:00+02:00,X,10.5,11,10,10.8\n"
    )
    b = load(p)
    assert list(b.timestamps.astype(str)) == ["2024-01-02T08:00:00.000000000",
                                              "2024-01-03T07:00:00.000000000"]
    assert b.tz == "UTC"


def test_naive_and_zoned_strings_mixed(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(
        "timestamp,symbol,open,high,low,close\n"
        "2024-01-02T09:00:00,X,10,11,9,10.5\n"
        "2024-01-03T09:00:00Z,X,10.5,11,10,10.8\n"
    )
    with pytest.raises(ValueError, match=r"ambiguous time zones: symbol 'X', row 1"):
        load(p)


def test_mixed_tz_pandas_object_column_converted_per_row():
    df = pd.DataFrame({
        "timestamp": pd.Series([pd.Timestamp("2024-01-02", tz="UTC"),
                                pd.Timestamp("2024-01-03", tz="Asia/Tokyo")], dtype=object),
        "open": [10.0, 10.0], "high": [11.0, 11.0], "low": [9.0, 9.0], "close": [10.0, 10.0],
    })
    b = load(df)
    assert list(b.timestamps.astype(str)) == ["2024-01-02T00:00:00.000000000",
                                              "2024-01-02T15:00:00.000000000"]


def test_naive_and_aware_pandas_object_column_is_ambiguous():
    df = pd.DataFrame({
        "timestamp": pd.Series([pd.Timestamp("2024-01-02"),
                                pd.Timestamp("2024-01-03", tz="Asia/Tokyo")], dtype=object),
        "open": [10.0, 10.0], "high": [11.0, 11.0], "low": [9.0, 9.0], "close": [10.0, 10.0],
    })
    with pytest.raises(ValueError, match=r"'timestamp'.*ambiguous time zones"):
        load(df)


def test_integer_timestamps_rejected(table):
    t = table.set_column(0, "timestamp", table.column("timestamp").cast(pa.int64()))
    with pytest.raises(ValueError, match=r"'timestamp'.*numbers.*pass time_unit="):
        load(t)


def test_unparseable_timestamp_string(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("timestamp,open,high,low,close\n2024-01-02,1,1,1,1\nyesterday,1,1,1,1\n")
    with pytest.raises(ValueError, match=r"unparseable timestamp: symbol 'x', row 1, "
                                         r"column 'timestamp'.*yesterday"):
        load(p)


def test_null_symbol_and_timestamp(table):
    syms = table.column("symbol").to_pylist()
    syms[5] = None
    with pytest.raises(ValueError, match=r"symbol.*row 5.*column 'symbol'"):
        load(replace(table, "symbol", syms))
    ts = table.column("timestamp").to_pylist()
    ts[6] = None
    t = table.set_column(0, "timestamp", pa.array(ts, table.column("timestamp").type))
    with pytest.raises(ValueError, match=r"timestamp.*'AAA', row 6.*column 'timestamp'"):
        load(t)


def test_error_rows_refer_to_original_rows_when_filtered(table):
    v = col(table, "volume")
    v[40] = -5.0
    with pytest.raises(ValueError, match=r"'BBB', row 40 "):
        load(replace(table, "volume", v), symbol="BBB")


def test_unsupported_inputs(tmp_path, table):
    p = tmp_path / "x.xlsx"
    p.write_text("")
    with pytest.raises(ValueError, match="unsupported"):
        load(p)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.parquet")
    with pytest.raises(TypeError):
        load(42)


# --------------------------------------------------------------------------------------
# from_arrays
# --------------------------------------------------------------------------------------


def test_from_arrays_single_asset_defaults():
    d = bars(7)
    b = Bundle.from_arrays(d["open"], d["high"], d["low"], d["close"])
    assert b.symbols == ("A0",) and b.close.shape == (1, 7)
    np.testing.assert_array_equal(b.volume, np.zeros((1, 7)))
    np.testing.assert_array_equal(b.timestamps[:5], np.array(
        ["2000-01-03", "2000-01-04", "2000-01-05", "2000-01-06", "2000-01-07"],
        "datetime64[ns]"))
    assert b.timestamps[5] == np.datetime64("2000-01-10")  # skips the weekend
    assert b.periods_per_year == 252.0


def test_from_arrays_padding_defines_spans():
    n = 12
    d = {k: np.tile(v, (3, 1)) for k, v in bars(n).items()}
    for k in d:
        d[k][1, :4] = np.nan  # lists late
        d[k][2, 9:] = np.nan  # delists early
    d["volume"][2, 10] = 5.0  # values outside the span are ignored
    b = Bundle.from_arrays(**d, symbols=["X", "Y", "Z"], timestamps=weekdays(n))
    np.testing.assert_array_equal(b.start, [0, 4, 0])
    np.testing.assert_array_equal(b.end, [12, 12, 9])
    assert np.isnan(b.volume[2, 9:]).all()
    assert b.symbols == ("X", "Y", "Z")


def test_from_arrays_nan_inside_span():
    d = {k: np.tile(v, (2, 1)) for k, v in bars(10).items()}
    d["close"][1, 5] = np.nan
    with pytest.raises(ValueError, match=r"symbol 'A1', row 5 .*column 'close'"):
        Bundle.from_arrays(**d)


def test_from_arrays_validation_same_as_load():
    d = bars(10)
    d["low"][4] = d["high"][4] * 1.5
    with pytest.raises(ValueError, match=r"high < low: symbol 'A0', row 4"):
        Bundle.from_arrays(**d)
    d = bars(10)
    ts = weekdays(10)[::-1]
    with pytest.raises(ValueError, match=r"row 1 .*strictly increasing"):
        Bundle.from_arrays(**d, timestamps=ts)
    with pytest.raises(ValueError, match="numbers"):
        Bundle.from_arrays(**d, timestamps=np.arange(10))
    with pytest.raises(ValueError, match="'A0' has only NaN"):
        Bundle.from_arrays(*(np.full(3, np.nan) for _ in range(4)))
    with pytest.raises(ValueError, match="'open' is not numeric"):
        Bundle.from_arrays(np.array(["a"] * 10), d["high"], d["low"], d["close"])


def test_from_arrays_tz_aware_pandas_timestamps():
    n = 5
    ts = pd.date_range("2024-01-02 10:00", periods=n, freq="D", tz="Europe/London")
    b = Bundle.from_arrays(**bars(n), timestamps=ts)
    np.testing.assert_array_equal(b.timestamps, ts.tz_convert("UTC").tz_localize(None)
                                  .to_numpy().astype("datetime64[ns]"))


# --------------------------------------------------------------------------------------
# select / slice_bars
# --------------------------------------------------------------------------------------


def test_select(table):
    b = load(table)
    s = b.select(["CCC", "AAA"])
    assert s.symbols == ("CCC", "AAA")
    np.testing.assert_array_equal(s.close[0], b.close[2])
    np.testing.assert_array_equal(s.end, [12, 30])
    s.close[0, 0] = -1
    assert b.close[2, 0] != -1
    assert b.select("BBB").symbols == ("BBB",)
    with pytest.raises(ValueError, match="'NOPE'"):
        b.select(["AAA", "NOPE"])


def test_slice_bars(table):
    b = load(table)
    s = b.slice_bars(10, 28)
    assert s.symbols == ("AAA", "BBB", "CCC")
    np.testing.assert_array_equal(s.start, [0, 0, 0])
    np.testing.assert_array_equal(s.end, [18, 15, 2])
    np.testing.assert_array_equal(s.timestamps, b.timestamps[10:28])
    np.testing.assert_array_equal(s.close, b.close[:, 10:28])
    assert s.close.flags.c_contiguous and s.close.flags.writeable
    s2 = b.slice_bars(26, None)  # CCC and BBB have nothing there
    assert s2.symbols == ("AAA",)
    with pytest.raises(ValueError, match="no asset"):
        b.select(["CCC"]).slice_bars(20, 25)
    with pytest.raises(ValueError, match="empty"):
        b.slice_bars(5, 5)


# --------------------------------------------------------------------------------------
# demo data
# --------------------------------------------------------------------------------------


def test_demo_shape_and_content():
    b = demo()
    assert b.n_assets >= 8
    years = (b.timestamps[-1] - b.timestamps[0]) / np.timedelta64(365, "D")
    assert years >= 20
    assert b.periods_per_year == 252.0
    assert len(set(b.start.tolist())) > 1 and len(set(b.end.tolist())) > 1
    for a in range(b.n_assets):
        s, e = b.start[a], b.end[a]
        assert np.isfinite(b.close[a, s:e]).all()
        assert (b.high[a, s:e] >= np.maximum(b.open[a, s:e], b.close[a, s:e])).all()
        assert (b.low[a, s:e] <= np.minimum(b.open[a, s:e], b.close[a, s:e])).all()
        assert (b.volume[a, s:e] > 0).all()
        assert np.isnan(b.close[a, :s]).all() and np.isnan(b.close[a, e:]).all()


def test_demo_deterministic_and_copied():
    a = demo()
    a.close[:] = 0.0
    b, c = demo(), demo()
    assert np.nanmin(b.close) > 0
    assert_bundle_equal(b, c)
    assert b.close is not c.close


def test_make_demo_reproduces_packaged_file(tmp_path):
    from sweepbt.data import make_demo

    t = make_demo.build()
    assert_bundle_equal(load(t), demo())


# --------------------------------------------------------------------------------------
# periods_per_year
# --------------------------------------------------------------------------------------


def test_periods_per_year():
    assert infer_periods_per_year(weekdays(300)) == 252.0
    days7 = np.arange("2021-01-01", "2021-12-31", dtype="datetime64[D]").astype("datetime64[ns]")
    assert infer_periods_per_year(days7) == 365.0
    weekly = np.arange("2021-01-04", "2023-01-04", 7, dtype="datetime64[D]")
    assert infer_periods_per_year(weekly) == 52.0
    monthly = np.arange("2015-01", "2021-01", dtype="datetime64[M]").astype("datetime64[D]")
    assert infer_periods_per_year(monthly) == 12.0
    # hourly, 24/7: 24 bars a day on every day
    h247 = np.arange(0, 24 * 60, dtype="int64") * 3600 * 10**9
    assert infer_periods_per_year(h247.view("datetime64[ns]")) == 24 * 365.0
    # hourly, 7 bars on each weekday only
    hours = (weekdays(40)[:, None] + np.arange(14, 21).astype("timedelta64[h]")).ravel()
    assert infer_periods_per_year(hours) == 7 * 252.0
    assert infer_periods_per_year(weekdays(1)) == 252.0
    assert infer_periods_per_year(np.array([], "datetime64[ns]")) == 252.0


def test_bundle_periods_per_year(table):
    assert load(table).periods_per_year == 252.0


def test_periods_per_year_quarterly_and_yearly():
    quarters = pd.date_range("2000-03-31", "2020-12-31", freq="QE").to_numpy()
    assert infer_periods_per_year(quarters) == 4.0
    years = pd.date_range("2000-12-31", "2020-12-31", freq="YE").to_numpy()
    assert infer_periods_per_year(years) == 1.0
    business_quarter_ends = pd.date_range("2010-03-31", "2020-12-31", freq="BQE").to_numpy()
    assert infer_periods_per_year(business_quarter_ends) == 4.0


def test_periods_per_year_fx_24_5_hourly():
    """FX trades Sunday 17:00 to Friday 17:00 New York time: a 5-day week of 24 hours."""
    hours = pd.date_range("2021-01-03 17:00", "2021-12-31", freq="h", tz="America/New_York")
    dow, hour = hours.day_of_week, hours.hour
    fx = hours[(dow < 4) | ((dow == 4) & (hour < 17)) | ((dow == 6) & (hour >= 17))]
    assert infer_periods_per_year(fx) == 24 * 252.0
    assert infer_periods_per_year(fx.tz_convert("UTC")) == 24 * 252.0
    t = pa.table({"timestamp": fx.tz_convert("UTC"), **bars(len(fx))})
    assert load(t).tz == "UTC" and load(t).periods_per_year == 24 * 252.0


def test_periods_per_year_stray_weekend_bar():
    days = pd.bdate_range("2001-01-01", "2020-12-31").to_numpy()
    with_saturday = np.sort(np.append(days, np.datetime64("2010-06-05", "ns")))
    assert infer_periods_per_year(with_saturday) == 252.0
    assert infer_periods_per_year(with_saturday[:-1]) == 252.0


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "Australia/Sydney", "+09:00"])
def test_periods_per_year_weekdays_at_local_midnight_east_of_utc(zone):
    naive = pd.bdate_range("2015-01-01", "2020-12-31").to_numpy()
    t = pa.table({"timestamp": naive, **bars(len(naive))})
    b = load(t, tz=zone)
    np.testing.assert_array_equal(b.timestamps, local_weekdays("2015-01-01", "2020-12-31", zone))
    assert b.tz == zone and b.periods_per_year == 252.0
    assert infer_periods_per_year(naive, tz=zone) == 252.0
    # the same instants stored in UTC fall on Sunday..Thursday; still a 5-day week
    assert load(t.set_column(0, "timestamp", pa.array(b.timestamps))).periods_per_year == 252.0
    # under three weeks only weekend bars can tell: the data's zone decides
    short = b.slice_bars(0, 6)
    assert short.periods_per_year == 252.0
    assert load(short, tz="UTC").periods_per_year == 365.0


@pytest.mark.parametrize("first, last", [("2021-01-04", "2021-02-26"),   # EST, UTC-5
                                          ("2021-06-07", "2021-07-30")])  # EDT, UTC-4
def test_periods_per_year_us_extended_hours_minutes(first, last):
    """04:00-20:00 New York: 960 minute bars a day, crossing midnight UTC in winter."""
    days = pd.bdate_range(first, last)
    wall = (days.to_numpy()[:, None] + np.timedelta64(4, "h")
            + np.arange(960).astype("timedelta64[m]")).ravel()
    minutes = pd.DatetimeIndex(wall).tz_localize("America/New_York")
    assert infer_periods_per_year(minutes) == 960 * 252.0
    assert infer_periods_per_year(minutes.tz_convert("UTC")) == 960 * 252.0
    assert infer_periods_per_year(wall, tz="America/New_York") == 960 * 252.0


def test_periods_per_year_irregular_uses_observed_rate():
    days = pd.bdate_range("2021-01-01", "2022-12-31")
    mwf = days[days.day_of_week % 2 == 0].to_numpy()  # Monday, Wednesday, Friday
    span_years = (mwf[-1] - mwf[0]) / np.timedelta64(1, "D") / 365.25
    assert infer_periods_per_year(mwf) == pytest.approx((len(mwf) - 1) / span_years)
    assert 150 < infer_periods_per_year(mwf) < 160
    six_day = pd.date_range("2021-01-04", "2022-12-31", freq="D")
    six_day = six_day[six_day.day_of_week < 6].to_numpy()
    assert infer_periods_per_year(six_day) == pytest.approx(6 / 7 * 365.25, rel=0.01)


def test_periods_per_year_short_data():
    assert infer_periods_per_year(weekdays(7)) == 252.0
    days7 = np.arange("2021-01-01", "2021-01-10", dtype="datetime64[D]")
    assert infer_periods_per_year(days7) == 365.0


# --------------------------------------------------------------------------------------
# time zones
# --------------------------------------------------------------------------------------


def test_tz_from_zoned_column_survives_derived_bundles(table):
    t = table.set_column(0, "timestamp",
                         table.column("timestamp").cast(pa.timestamp("ns", tz="Asia/Tokyo")))
    b = load(t)
    assert b.tz == "Asia/Tokyo"
    np.testing.assert_array_equal(b.timestamps, load(table).timestamps)  # still UTC
    assert b.copy().tz == b.select("BBB").tz == b.slice_bars(2, 9).tz == "Asia/Tokyo"
    out = b.to_table()
    assert out.schema.field("timestamp").type == pa.timestamp("ns", tz="Asia/Tokyo")
    assert load(out).tz == "Asia/Tokyo"
    assert load(b).tz == "Asia/Tokyo" and load(b, tz="+09:00").tz == "+09:00"
    assert "tz='Asia/Tokyo'" in repr(b)


def test_tz_localizes_naive_and_converts_zoned(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("date,open,high,low,close\n"
                    "2024-01-04,10,11,9,10.5\n"
                    "2024-07-04 09:30,10.5,11,10,10.8\n")
    b = load(path, tz="America/New_York")
    np.testing.assert_array_equal(
        b.timestamps, np.array(["2024-01-04T05:00", "2024-07-04T13:30"], "datetime64[ns]"))
    assert b.tz == "America/New_York"
    utc = load(path)
    assert utc.tz == "UTC"
    # zoned input: the instants stay, tz= only names the zone
    again = load(utc.to_table(), tz="America/New_York")
    np.testing.assert_array_equal(again.timestamps, utc.timestamps)
    assert again.tz == "America/New_York"


@pytest.mark.parametrize("offset, zone, utc", [("+09:00", "+09:00", "2024-01-02T00:00"),
                                               ("+0530", "+05:30", "2024-01-02T03:30"),
                                               ("Z", "UTC", "2024-01-02T09:00"),
                                               ("+00:00", "UTC", "2024-01-02T09:00")])
def test_consistent_string_offset_becomes_zone(tmp_path, offset, zone, utc):
    path = tmp_path / "x.csv"
    path.write_text("timestamp,open,high,low,close\n"
                    f"2024-01-02T09:00:00{offset},10,11,9,10.5\n"
                    f"2024-01-03T09:00:00{offset},10.5,11,10,10.8\n")
    b = load(path)
    assert b.tz == zone
    assert b.timestamps[0] == np.datetime64(utc, "ns")


def test_from_arrays_tz():
    d = bars(5)
    naive = weekdays(5)
    b = Bundle.from_arrays(d["open"], d["high"], d["low"], d["close"], timestamps=naive,
                           tz="Asia/Tokyo")
    assert b.tz == "Asia/Tokyo"
    np.testing.assert_array_equal(b.timestamps, naive - np.timedelta64(9, "h"))
    aware = pd.DatetimeIndex(naive).tz_localize("Europe/Paris")
    b = Bundle.from_arrays(d["open"], d["high"], d["low"], d["close"], timestamps=aware)
    assert b.tz == "Europe/Paris"
    plain = Bundle.from_arrays(d["open"], d["high"], d["low"], d["close"])
    assert plain.tz == "UTC"


def test_tz_invalid(table):
    with pytest.raises(ValueError, match=r"unknown time zone 'Mars/Olympus' \(tz=\)"):
        load(table, tz="Mars/Olympus")
    with pytest.raises(ValueError, match=r"unknown time zone '\+25:00' \(tz=\)"):
        load(table, tz="+25:00")
    with pytest.raises(TypeError, match=r"time zone \(tz=\) must be a string.*int 9"):
        load(table, tz=9)
    b = load(table)
    with pytest.raises(ValueError, match=r"unknown time zone 'nowhere' \(Bundle tz\)"):
        Bundle(b.open, b.high, b.low, b.close, b.volume, b.timestamps, b.symbols, b.start,
               b.end, "nowhere")
    with pytest.raises(ValueError, match=r"unknown time zone '' \(tz=\)"):
        infer_periods_per_year(weekdays(5), tz="")


def test_tz_skipped_and_repeated_local_times(tmp_path):
    path = tmp_path / "x.csv"
    rows = "\n".join(f"{t},10,11,9,10.5" for t in ("2021-03-14 01:30", "2021-03-14 02:30"))
    path.write_text("timestamp,open,high,low,close\n" + rows + "\n")
    with pytest.raises(ValueError, match=r"timestamp 2021-03-14T02:30:00 does not exist "
                                         r".*'America/New_York' \(tz=\): symbol 'x', row 1"):
        load(path, tz="America/New_York")
    rows = "\n".join(f"{t},10,11,9,10.5" for t in ("2021-11-07 00:30", "2021-11-07 01:30"))
    path.write_text("timestamp,open,high,low,close\n" + rows + "\n")
    with pytest.raises(ValueError, match=r"timestamp 2021-11-07T01:30:00 is ambiguous "
                                         r".*'America/New_York' \(tz=\): symbol 'x', row 1"):
        load(path, tz="America/New_York")


# --------------------------------------------------------------------------------------
# symbol columns and the symbol= parameter
# --------------------------------------------------------------------------------------


def test_ticker_and_asset_columns_are_ambiguous(tmp_path, table):
    t = table.rename_columns(["timestamp", "ticker"] + table.column_names[2:])
    t = t.append_column("asset", pa.array(["equity"] * t.num_rows))
    with pytest.raises(ValueError, match=r"ambiguous symbol column: no 'symbol' column and "
                                         r"several candidates \['ticker', 'asset'\]"):
        load(t)
    path = tmp_path / "x.parquet"
    pq.write_table(t, path)
    with pytest.raises(ValueError, match=r"ambiguous symbol column.*\['ticker', 'asset'\]"):
        load(path)
    assert load(t.drop_columns(["asset"])).symbols == ("AAA", "BBB", "CCC")
    with_symbol = t.append_column("symbol", t.column("ticker"))
    assert_bundle_equal(load(with_symbol), load(table))


def test_symbol_parameter_checked(table):
    with pytest.raises(ValueError, match=r"symbol= names \['AAA'\] more than once"):
        load(table, symbol=["AAA", "AAA"])
    with pytest.raises(ValueError, match=r"symbol= is empty"):
        load(table, symbol=[])
    with pytest.raises(TypeError, match=r"symbol= must be a symbol name \(str\) or a list of "
                                        r"names, got int 5"):
        load(table, symbol=5)
    with pytest.raises(TypeError, match=r"symbol= must hold symbol names \(str\), got int 5"):
        load(table, symbol=["AAA", 5])
    with pytest.raises(ValueError, match=r"unknown symbol\(s\) \['ZZZ'\] \(symbol=\) in column "
                                         r"'symbol'; available: \['AAA', 'BBB', 'CCC'\]"):
        load(table, symbol=["AAA", "ZZZ"])
    single = table.filter(pc.equal(table.column("symbol"), "AAA")).drop_columns(["symbol"])
    with pytest.raises(ValueError, match=r"symbol= must be one name, got \['A', 'B'\]"):
        load(single, symbol=["A", "B"])
    b = load(table)
    with pytest.raises(TypeError, match=r"symbol= must be a symbol name"):
        load(b, symbol=5)
    with pytest.raises(ValueError, match=r"symbols= is empty"):
        b.select([])
    with pytest.raises(ValueError, match=r"symbols= names \['BBB'\] more than once"):
        b.select(["BBB", "AAA", "BBB"])


def test_unknown_symbol_lists_some_available():
    n_symbols = 25
    t = pa.table({"timestamp": np.repeat(weekdays(1), n_symbols),
                  "symbol": [f"S{k:02d}" for k in range(n_symbols)],
                  **{k: np.repeat(v, n_symbols) for k, v in bars(1).items()}})
    with pytest.raises(ValueError, match=r"available: \['S00', .*'S19', \.\.\.\] \(25 in all\)"):
        load(t, symbol="NOPE")


# --------------------------------------------------------------------------------------
# unreadable files
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext, kind", [("parquet", "Parquet"), ("feather", "Arrow IPC"),
                                       ("arrow", "Arrow IPC")])
def test_empty_or_garbage_file_names_the_file(tmp_path, ext, kind):
    path = tmp_path / f"prices.{ext}"
    for content in (b"", b"not a data file at all\n" * 10):
        path.write_bytes(content)
        with pytest.raises(ValueError, match=rf"could not read {re.escape(str(path))} as a "
                                             rf"{kind} file"):
            load(path)


@pytest.mark.parametrize("ext, kind, write", [("parquet", "Parquet", pq.write_table),
                                             ("feather", "Arrow IPC", feather.write_feather),
                                             ("csv", "CSV", pcsv.write_csv)])
def test_truncated_file_names_the_file(tmp_path, table, ext, kind, write):
    path = tmp_path / f"prices.{ext}"
    write(table, path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) * 2 // 3])  # a CSV cut mid-line ends with a short row
    with pytest.raises(ValueError, match=rf"could not read {re.escape(str(path))} as a {kind} "
                                         r"file \(is it damaged or truncated\?\): "):
        load(path)


def test_directory_is_named(tmp_path):
    folder = tmp_path / "prices.parquet"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"{re.escape(str(folder))} is a directory, "
                                                r"expected a \.parquet, .* or \.csv file"):
        load(folder)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load(str(tmp_path) + "/")


# --------------------------------------------------------------------------------------
# Parquet page checksums
# --------------------------------------------------------------------------------------


def data_page_ranges(path):
    """(first byte, end) of every column chunk's pages (page headers included)."""
    meta = pq.ParquetFile(path).metadata
    out = []
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            chunk = meta.row_group(g).column(c)
            first = chunk.dictionary_page_offset if chunk.has_dictionary_page else \
                chunk.data_page_offset
            out.append((first, first + chunk.total_compressed_size))
    return out


@pytest.mark.parametrize("dictionary", [True, False])
def test_parquet_checksums_catch_flipped_bytes(tmp_path, table, dictionary):
    good = tmp_path / "good.parquet"
    pq.write_table(table, good, write_page_checksum=True, use_dictionary=dictionary)
    original = load(good)
    raw = good.read_bytes()
    ranges = data_page_ranges(good)
    rng = np.random.default_rng(7)
    bad = tmp_path / "bad.parquet"
    caught = 0
    for _ in range(200):
        lo, hi = ranges[rng.integers(len(ranges))]
        damaged = bytearray(raw)
        damaged[rng.integers(lo, hi)] ^= int(rng.integers(1, 256))
        bad.write_bytes(bytes(damaged))
        try:
            b = load(bad)
        except ValueError as exc:
            assert f"could not read {bad} as a Parquet file" in str(exc)
            caught += 1
        else:
            assert_bundle_equal(b, original)
    assert caught >= 180


def test_a_damaged_demo_file_is_refused():
    from importlib.resources import files

    from sweepbt.data.errors import DataError
    from sweepbt.data.loading import check_demo_bytes

    raw = files("sweepbt.data").joinpath("demo.parquet").read_bytes()
    check_demo_bytes(raw)  # the packaged file
    damaged = bytearray(raw)
    damaged[len(raw) // 2] ^= 1
    with pytest.raises(DataError, match=r"the packaged demo data \(sweepbt/data/demo"
                                        r"\.parquet\) is damaged or from another version: "
                                        r"SHA-256 [0-9a-f]{16}\.\.\., expected 997e79f4"):
        check_demo_bytes(bytes(damaged))
