"""Data layer: load(), Bundle, from_arrays(), demo(), periods_per_year inference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from sweepbt.bundle import Bundle, demo, infer_periods_per_year, load

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


def test_mixed_offsets_in_csv(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(
        "timestamp,symbol,open,high,low,close\n"
        "2024-01-02T09:00:00+01:00,X,10,11,9,10.5\n"
        "2024-01-03T09:00:00+02:00,X,10.5,11,10,10.8\n"
    )
    with pytest.raises(ValueError, match=r"mixed time zones: symbol 'X', row 1, column 'timestamp'.*\+02:00"):
        load(p)


def test_naive_and_zoned_strings_mixed(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(
        "timestamp,symbol,open,high,low,close\n"
        "2024-01-02T09:00:00,X,10,11,9,10.5\n"
        "2024-01-03T09:00:00Z,X,10.5,11,10,10.8\n"
    )
    with pytest.raises(ValueError, match=r"ambiguous time zones: symbol 'X', row 1"):
        load(p)


def test_mixed_tz_pandas_object_column():
    df = pd.DataFrame({
        "timestamp": pd.Series([pd.Timestamp("2024-01-02", tz="UTC"),
                                pd.Timestamp("2024-01-03", tz="Asia/Tokyo")], dtype=object),
        "open": [10.0, 10.0], "high": [11.0, 11.0], "low": [9.0, 9.0], "close": [10.0, 10.0],
    })
    with pytest.raises(ValueError, match=r"'timestamp'.*time zones"):
        load(df)


def test_integer_timestamps_rejected(table):
    t = table.set_column(0, "timestamp", table.column("timestamp").cast(pa.int64()))
    with pytest.raises(ValueError, match=r"'timestamp'.*numbers"):
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
