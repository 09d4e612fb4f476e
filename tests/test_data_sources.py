"""Data in the forms users have: files written the way each vendor writes them (Yahoo and
yfinance CSVs, a broker's minute export, Binance klines, Polars frames and files, Tokyo and
Sydney daily bars with offsets, New York across a daylight-saving change), close-only series,
adjusted prices, and the command line's loading flags and header. Exact values throughout.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import sweepbt as sb
from sweepbt import cli
from sweepbt.data import Bundle, DataError, load
from sweepbt.data.loading import load_with_facts


def utc(*stamps):
    """Expected Bundle time stamps (UTC) as datetime64[ns]."""
    return np.array(stamps, dtype="datetime64[ns]")


# --------------------------------------------------------------------------------------
# Yahoo CSV: Adj Close, "null" rows
# --------------------------------------------------------------------------------------

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,100.0,104.0,99.0,102.0,51.0,1000
2024-01-03,102.0,106.0,101.0,104.0,52.0,1100
2024-01-04,null,null,null,null,null,null
2024-01-05,104.0,110.0,103.0,108.0,54.0,1200
"""


@pytest.fixture
def yahoo(tmp_path):
    p = tmp_path / "SPY.csv"
    p.write_text(YAHOO)
    return p


def test_yahoo_null_row_is_an_error_naming_dropna(yahoo):
    with pytest.raises(DataError, match=r"missing \(null\) price: symbol 'SPY', row 2 "
                                        r"\(timestamp 2024-01-04T00:00:00Z\), column 'Open'; "
                                        r"pass dropna=True"):
        load(yahoo)


def test_yahoo_dropna_and_adj_close(yahoo):
    b, facts = load_with_facts(yahoo, dropna=True)
    assert b.symbols == ("SPY",)
    assert b.timestamps.tolist() == utc("2024-01-02", "2024-01-03", "2024-01-05").tolist()
    assert b.close[0].tolist() == [102.0, 104.0, 108.0]  # as given: Adj Close unused
    assert facts["dropped"] == 1 and facts["unused_adj_close"] == "Adj Close"

    adj = load(yahoo, dropna=True, adjust="adj_close")
    assert adj.close[0].tolist() == [51.0, 52.0, 54.0]
    assert adj.open[0].tolist() == [50.0, 51.0, 52.0]   # open * adj_close / close = 0.5
    assert adj.high[0].tolist() == [52.0, 53.0, 55.0]
    assert adj.low[0].tolist() == [49.5, 50.5, 51.5]
    assert adj.volume[0].tolist() == [1000.0, 1100.0, 1200.0]


def test_dropna_keeps_error_rows_in_the_users_numbering(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(YAHOO + "2024-01-08,104.0,105.0,106.0,104.5,52.0,900\n")  # high < low
    with pytest.raises(DataError, match=r"high < low: symbol 'x', row 4 \(timestamp "
                                        r"2024-01-08T00:00:00Z\), column 'High'"):
        load(p, dropna=True)


def test_dropna_drops_nan_prices_and_all_dropped_is_empty(table_with_nan=None):
    t = pa.table({"date": pa.array(["2024-01-02", "2024-01-03"]),
                  "close": [np.nan, None]})
    with pytest.raises(DataError, match=r"empty data: every one of the 2 rows has a missing "
                                        r"price \(dropna=True"):
        load(t, ohlc="close", dropna=True)
    with pytest.raises(TypeError, match=r"dropna must be True or False, got 'yes'"):
        load(t, ohlc="close", dropna="yes")


def test_adjust_needs_the_column_and_checks_it(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("Date,Open,High,Low,Close\n2024-01-02,1,2,1,2\n")
    with pytest.raises(DataError, match=r"adjust='adj_close' needs an adjusted close column"):
        load(p, adjust="adj_close")
    p.write_text("Date,Open,High,Low,Close,adj_close\n2024-01-02,1,2,1,2,-1\n")
    with pytest.raises(DataError, match=r"price <= 0: symbol 'x', row 0 .*column 'adj_close': "
                                        r"adj_close=-1.0"):
        load(p, adjust="adj_close")
    with pytest.raises(ValueError, match=r"adjust must be None or 'adj_close'"):
        load(p, adjust="split")


# --------------------------------------------------------------------------------------
# yfinance: the three-row header, and its DataFrame
# --------------------------------------------------------------------------------------


def yfinance_frame():
    """What ``yf.download(["AAPL", "MSFT"])`` returns: (Price, Ticker) columns; MSFT has no
    data on the first day (the vendor pads it with NaN)."""
    idx = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"], name="Date")
    cols = pd.MultiIndex.from_product(
        [["Adj Close", "Close", "High", "Low", "Open", "Volume"], ["AAPL", "MSFT"]],
        names=["Price", "Ticker"])
    df = pd.DataFrame(index=idx, columns=cols, dtype=float)
    for k, (t, base) in enumerate((("AAPL", 100.0), ("MSFT", 300.0))):
        close = base + np.arange(3.0)
        df[("Close", t)] = close
        df[("Adj Close", t)] = close / 2
        df[("Open", t)] = close - 1
        df[("High", t)] = close + 2
        df[("Low", t)] = close - 2
        df[("Volume", t)] = 1000.0 * (k + 1)
    df.loc[idx[0], (slice(None), "MSFT")] = np.nan
    return df


@pytest.mark.parametrize("group_by_ticker", [False, True])
def test_yfinance_three_row_header_csv(tmp_path, group_by_ticker):
    df = yfinance_frame()
    if group_by_ticker:
        df = df.swaplevel(axis=1)
    p = tmp_path / "download.csv"
    df.to_csv(p)
    first = p.read_text().splitlines()[:3]
    assert first[2].startswith("Date,,")  # the layout yfinance writes
    b = load(p)
    assert b.symbols == ("AAPL", "MSFT")
    assert b.timestamps.tolist() == utc("2024-01-02", "2024-01-03", "2024-01-04").tolist()
    assert b.start.tolist() == [0, 1] and b.end.tolist() == [3, 3]
    assert b.close[0].tolist() == [100.0, 101.0, 102.0]
    assert b.close[1, 1:].tolist() == [301.0, 302.0]
    assert b.open[1, 1:].tolist() == [300.0, 301.0]
    assert b.volume[1, 1:].tolist() == [2000.0, 2000.0]
    assert load(p, symbol="MSFT", adjust="adj_close").close[0].tolist() == [150.5, 151.0]


def test_yfinance_dataframe_and_single_ticker_csv(tmp_path):
    b = load(yfinance_frame())
    assert b.symbols == ("AAPL", "MSFT") and b.start.tolist() == [0, 1]
    assert b.close[1, 1:].tolist() == [301.0, 302.0]
    one = yfinance_frame().loc[:, (slice(None), "AAPL")]
    p = tmp_path / "aapl.csv"
    one.to_csv(p)
    b = load(p)
    assert b.symbols == ("AAPL",) and b.close[0].tolist() == [100.0, 101.0, 102.0]


# --------------------------------------------------------------------------------------
# time zones and offsets
# --------------------------------------------------------------------------------------


def test_new_york_across_dst_offsets_converted_per_row(tmp_path):
    # pandas writes a New York index across the March change as -05:00 then -04:00
    idx = pd.DatetimeIndex(["2024-03-08", "2024-03-11", "2024-03-12"]).tz_localize(
        "America/New_York")
    df = pd.DataFrame({"open": [10.0, 11.0, 12.0], "high": [11.0, 12.0, 13.0],
                       "low": [9.0, 10.0, 11.0], "close": [10.5, 11.5, 12.5]},
                      index=idx.rename("timestamp"))
    p = tmp_path / "ny.csv"
    df.to_csv(p)
    assert "-05:00" in p.read_text() and "-04:00" in p.read_text()
    b, facts = load_with_facts(p)
    assert b.timestamps.tolist() == utc("2024-03-08T05:00", "2024-03-11T04:00",
                                        "2024-03-12T04:00").tolist()
    assert b.tz == "UTC"
    assert facts["times"] == ("UTC offsets -05:00, -04:00 in column 'timestamp', each row "
                              "converted to UTC")
    named = load(p, tz="America/New_York")  # names the zone; the instants stay
    assert named.tz == "America/New_York"
    assert named.timestamps.tolist() == b.timestamps.tolist()


def test_new_york_broker_minute_export_naive_local_times(tmp_path):
    # a broker's export: naive New York wall-clock minutes, Friday before and Monday after
    # the March 2024 change (EST -> EDT)
    rows = ["Time,Open,High,Low,Close,Volume"]
    for day in ("2024-03-08", "2024-03-11"):
        for minute in range(3):
            rows.append(f"{day} 09:3{minute}:00,10,11,9,10.5,{100 + minute}")
    p = tmp_path / "ES.csv"
    p.write_text("\n".join(rows) + "\n")
    b, facts = load_with_facts(p, tz="America/New_York")
    assert b.timestamps[[0, 2, 3, 5]].tolist() == utc(
        "2024-03-08T14:30", "2024-03-08T14:32", "2024-03-11T13:30", "2024-03-11T13:32").tolist()
    assert b.tz == "America/New_York" and facts.get("naive") is True
    assert facts["times"] == "naive (no zone) in column 'Time', read as America/New_York"
    plain, facts = load_with_facts(p)
    assert plain.timestamps[0] == np.datetime64("2024-03-08T09:30", "ns")
    assert facts["times"] == "naive (no zone) in column 'Time', read as UTC"


@pytest.mark.parametrize("zone, offsets", [
    ("Asia/Tokyo", ["+09:00"] * 6),
    # Sydney leaves daylight saving on Sunday 2024-04-07: +11:00 before, +10:00 after
    ("Australia/Sydney", ["+11:00"] * 3 + ["+10:00"] * 3)])
def test_tokyo_and_sydney_daily_bars_with_offsets(tmp_path, zone, offsets):
    days = ["2024-04-03", "2024-04-04", "2024-04-05", "2024-04-08", "2024-04-09", "2024-04-10"]
    text = "date,symbol,open,high,low,close\n" + "".join(
        f"{d}T00:00:00{o},X,10,11,9,10\n" for d, o in zip(days, offsets))
    p = tmp_path / "x.csv"
    p.write_text(text)
    b = load(p)
    hours = [-int(o[1:3]) for o in offsets]  # local midnight is the previous day in UTC
    want = [np.datetime64(d, "h") + h for d, h in zip(days, hours)]
    assert b.timestamps.tolist() == np.array(want, "datetime64[ns]").tolist()
    assert b.tz == ("+09:00" if zone == "Asia/Tokyo" else "UTC")
    assert load(p, tz=zone).periods_per_year == 252.0  # weekdays on the local calendar


def test_naive_and_offset_strings_mixed_are_still_ambiguous(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("timestamp,open,high,low,close\n2024-01-02T00:00:00-05:00,1,1,1,1\n"
                 "2024-01-03T00:00:00,1,1,1,1\n")
    with pytest.raises(DataError, match=r"ambiguous time zones: symbol 'x', row 1"):
        load(p)


# --------------------------------------------------------------------------------------
# epoch numbers: time_unit
# --------------------------------------------------------------------------------------

KLINES_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                 "taker_buy_volume,taker_buy_quote_volume,ignore")
KLINES = [
    "1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68,1704070799999,5.4e7,47134,"
    "682.57,2.9e7,0",
    "1704070800000,42475.23,42775.00,42431.65,42613.56,1196.37,1704074399999,5.1e7,44635,"
    "628.19,2.7e7,0",
]


def test_binance_klines_epoch_ms(tmp_path):
    p = tmp_path / "BTCUSDT-1h-2024-01.csv"
    p.write_text(KLINES_HEADER + "\n" + "\n".join(KLINES) + "\n")
    with pytest.raises(DataError, match=r"missing required column\(s\) \['timestamp'\].*"
                                        r"timestamp= \(--timestamp-column\)"):
        load(p)
    with pytest.raises(DataError, match=r"column 'open_time' holds numbers \(int64\).*pass "
                                        r"time_unit='ms' \(--time-unit ms"):
        load(p, timestamp="open_time")
    b, facts = load_with_facts(p, timestamp="open_time", time_unit="ms")
    assert b.symbols == ("BTCUSDT-1h-2024-01",)
    assert b.timestamps.tolist() == utc("2024-01-01T00:00", "2024-01-01T01:00").tolist()
    assert b.close[0].tolist() == [42475.23, 42613.56]
    assert b.tz == "UTC" and facts["times"] == "epoch milliseconds in column 'open_time', UTC"


def test_headerless_klines_say_so(tmp_path):
    p = tmp_path / "k.csv"
    p.write_text("\n".join(KLINES) + "\n")
    with pytest.raises(DataError, match=r"no header row: add one \(Binance klines"):
        load(p)


@pytest.mark.parametrize("unit, value", [("s", 1704067200), ("ms", 1704067200000),
                                         ("us", 1704067200000000),
                                         ("ns", 1704067200000000000)])
def test_time_units_exact(unit, value):
    t = pa.table({"timestamp": pa.array([value, value + 60 * 10**{"s": 0, "ms": 3, "us": 6,
                                                                  "ns": 9}[unit]]),
                  "close": [1.0, 2.0]})
    b = load(t, time_unit=unit, ohlc="close")
    assert b.timestamps.tolist() == utc("2024-01-01T00:00", "2024-01-01T00:01").tolist()


def test_float_epoch_seconds_and_unit_errors():
    t = pa.table({"timestamp": [1704067200.5, 1704067201.25], "close": [1.0, 2.0]})
    b = load(t, time_unit="s", ohlc="close")
    assert b.timestamps.view(np.int64).tolist() == [1704067200500000000, 1704067201250000000]
    with pytest.raises(DataError, match=r"out of range .*: 1.7e\+16 milliseconds \(time_unit="
                                        r"'ms'\); the values look like epoch microseconds: "
                                        r"time_unit='us'\?"):
        load(pa.table({"timestamp": [1.7e16], "close": [1.0]}), time_unit="ms", ohlc="close")
    ms = pa.table({"timestamp": [1704067200000, 1704067260000], "close": [1.0, 2.0]})
    with pytest.raises(DataError, match=r"time_unit='ns' puts every time stamp .* in "
                                        r"1969..1970.*epoch milliseconds: time_unit='ms'\?"):
        load(ms, time_unit="ns", ohlc="close")
    with pytest.raises(ValueError, match=r"time_unit must be one of \('s', 'ms', 'us', 'ns'\)"):
        load(ms, time_unit="sec", ohlc="close")
    dates = pa.table({"timestamp": ["2024-01-02"], "close": [1.0]})
    with pytest.raises(DataError, match=r"time_unit='s' is for epoch numbers, but column "
                                        r"'timestamp' holds string"):
        load(dates, time_unit="s", ohlc="close")


# --------------------------------------------------------------------------------------
# Polars
# --------------------------------------------------------------------------------------


def test_polars_frame_and_files(tmp_path):
    pl = pytest.importorskip("polars")
    import datetime as dt

    df = pl.DataFrame({
        "ticker": ["A", "B", "A", "B"],
        "date": [dt.date(2024, 1, 2)] * 2 + [dt.date(2024, 1, 3)] * 2,
        "open": [10.0, 20.0, 11.0, 21.0], "high": [12.0, 22.0, 13.0, 23.0],
        "low": [9.0, 19.0, 10.0, 20.0], "close": [11.0, 21.0, 12.0, 22.0],
    })
    assert pa.table(df).schema.field("ticker").type == pa.string_view()
    paths = {"arrow": tmp_path / "p.arrow", "feather": tmp_path / "p.feather",
             "parquet": tmp_path / "p.parquet"}
    df.write_ipc(paths["arrow"])
    df.write_ipc(paths["feather"], compression="lz4")
    df.write_parquet(paths["parquet"])
    cat = df.with_columns(pl.col("ticker").cast(pl.Categorical))
    for source in (df, cat, *paths.values()):
        b = load(source)
        assert b.symbols == ("A", "B")
        assert b.timestamps.tolist() == utc("2024-01-02", "2024-01-03").tolist()
        assert b.close.tolist() == [[11.0, 12.0], [21.0, 22.0]]
    zoned = df.with_columns(pl.col("date").cast(pl.Datetime("us", "Asia/Tokyo")))
    b = load(zoned)
    assert b.tz == "Asia/Tokyo" and b.timestamps[0] == np.datetime64("2024-01-02", "ns")
    assert load(df, symbol="B").close.tolist() == [[21.0, 22.0]]


def test_large_string_and_string_view_columns():
    for typ in (pa.large_string(), pa.string_view()):
        t = pa.table({"timestamp": pa.array(["2024-01-02", "2024-01-03"], typ),
                      "symbol": pa.array(["X", "X"], typ), "close": [1.0, 2.0]})
        b = load(t, ohlc="close")
        assert b.symbols == ("X",) and b.close.tolist() == [[1.0, 2.0]]


class ArrowStream:
    """Any object exporting ``__arrow_c_stream__`` (not a pyarrow or pandas type)."""

    def __init__(self, table):
        self.table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)


def test_any_arrow_c_stream_object():
    t = pa.table({"date": ["2024-01-02", "2024-01-03"], "close": [1.0, 2.0]})
    b = load(ArrowStream(t), ohlc="close", symbol="IDX")
    assert b.symbols == ("IDX",) and b.close.tolist() == [[1.0, 2.0]]


# --------------------------------------------------------------------------------------
# close-only data
# --------------------------------------------------------------------------------------


def test_close_only_series(tmp_path):
    p = tmp_path / "SP500.csv"
    p.write_text("DATE,Close\n2024-01-02,4742.83\n2024-01-03,4704.81\n2024-01-04,4688.68\n")
    with pytest.raises(DataError, match=r"missing required column\(s\) \['open', 'high', "
                                        r"'low'\].*pass ohlc='close' \(--ohlc close\)"):
        load(p)
    b, facts = load_with_facts(p, ohlc="close")
    for field in ("open", "high", "low", "close"):
        assert getattr(b, field)[0].tolist() == [4742.83, 4704.81, 4688.68]
    assert b.volume[0].tolist() == [0.0, 0.0, 0.0]
    assert facts["prices"] == "close only: open, high and low equal the close"
    with pytest.raises(ValueError, match=r"ohlc must be one of \('ohlc', 'close'\)"):
        load(p, ohlc="c")


def test_close_only_adjusted_close_and_ignored_ohlc(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("Date,Open,High,Low,Close,Adj Close\n2024-01-02,1,5,1,4,2\n")
    b = load(p, ohlc="close")  # open, high and low in the file are not used
    assert [b.open[0, 0], b.high[0, 0], b.close[0, 0]] == [4.0, 4.0, 4.0]
    b = load(p, ohlc="close", adjust="adj_close")
    assert [b.open[0, 0], b.close[0, 0]] == [2.0, 2.0]
    q = tmp_path / "adj_only.csv"
    q.write_text("Date,Adj Close\n2024-01-02,2\n")
    with pytest.raises(DataError, match=r"pass ohlc='close', adjust='adj_close'"):
        load(q)
    assert load(q, ohlc="close", adjust="adj_close").close.tolist() == [[2.0]]


def test_close_only_backtest_stops_fill_at_the_close():
    close = np.array([10.0, 10.0, 10.0, 11.0, 12.0, 10.0, 8.0, 8.0, 9.0, 10.0])
    data = Bundle.from_arrays(close=close)
    assert data.open.tolist() == data.close.tolist() == data.low.tolist()
    bt = sb.backtest(data, "sma_cross", fast=1, slow=2, stop_loss=0.1)
    t = bt.trades.to_pydict()
    # the cross at bar 3 fills at the "next open", which is bar 4's close (12); the stop at
    # 10.8 is gapped through by bar 5, whose open is its close: the exit is at 10
    assert t["entry_bar"] == [4, 9] and t["exit_bar"] == [5, 9]
    assert t["entry_price"] == [12.0, 10.0] and t["exit_price"] == [10.0, 10.0]
    assert t["exit_reason"] == ["stop", "end"]


# --------------------------------------------------------------------------------------
# from_arrays and symbol filters
# --------------------------------------------------------------------------------------


def test_from_arrays_transposed_input_is_explained():
    prices = np.full((50, 3), 10.0)  # bars x assets, as df.to_numpy() gives
    with pytest.raises(DataError, match=r"shape \(50, 3\), read as 50 assets x 3 bars, but 3 "
                                        r"symbols \(one per column\).*look transposed.*arr\.T"):
        Bundle.from_arrays(close=prices, symbols=["A", "B", "C"])
    ts = np.arange(50).astype("datetime64[D]")
    with pytest.raises(DataError, match=r"but 50 timestamps \(one per row\)"):
        Bundle.from_arrays(prices, prices, prices, prices, timestamps=ts)
    b = Bundle.from_arrays(close=prices.T, timestamps=ts, symbols=["A", "B", "C"])
    assert b.close.shape == (3, 50)
    with pytest.raises(TypeError, match=r"some of open, high, low but not \['low'\]"):
        Bundle.from_arrays(prices, prices, None, prices)


def test_single_asset_symbol_selects_and_never_relabels(tmp_path, yahoo):
    with pytest.raises(DataError, match=r"single asset \(no symbol column\), named 'SPY' "
                                        r"after the file; symbol 'QQQ' selects nothing"):
        load_with_facts(yahoo, symbol="QQQ", dropna=True, rename_single=False)
    b, _ = load_with_facts(yahoo, symbol="SPY", dropna=True, rename_single=False)
    assert b.symbols == ("SPY",)
    assert load(yahoo, symbol="QQQ", dropna=True).symbols == ("QQQ",)  # the API names it


# --------------------------------------------------------------------------------------
# the demo file and the command line
# --------------------------------------------------------------------------------------


def test_demo_to_parquet_round_trip(tmp_path):
    demo = sb.demo()
    path = tmp_path / "prices.parquet"
    demo.to_parquet(path)
    back = load(path)
    assert back.symbols == demo.symbols and back.tz == "UTC"
    assert np.array_equal(back.close, demo.close, equal_nan=True)
    assert np.array_equal(back.timestamps, demo.timestamps)
    assert back.start.tolist() == demo.start.tolist()


def run(argv, capsys):
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_demo_out(tmp_path, capsys):
    out = tmp_path / "prices.parquet"
    status, text, _ = run(["demo", "--out", str(out)], capsys)
    assert status == 0 and f"to {out}" in text
    assert np.array_equal(load(out).close, sb.demo().close, equal_nan=True)
    status, _, err = run(["demo", "--out", str(out)], capsys)
    assert status == 2 and "already exists; pass --force" in err
    assert run(["demo", "--out", str(out), "--force"], capsys)[0] == 0
    csv = tmp_path / "prices.csv"
    assert run(["demo", "--out", str(csv)], capsys)[0] == 0
    assert load(csv).n_bars == sb.demo().n_bars
    status, _, err = run(["demo", "--out", str(tmp_path / "prices.txt")], capsys)
    assert status == 2 and "must end in .parquet or .csv" in err


BACKTEST = ["backtest", "--param", "fast=1", "--param", "slow=2", "--trades", "0"]


def test_cli_header_says_what_loading_assumed(yahoo, capsys):
    status, _, err = run([*BACKTEST, "--data", str(yahoo)], capsys)
    assert status == 2 and "pass dropna=True (--dropna)" in err
    status, text, _ = run([*BACKTEST, "--data", str(yahoo), "--dropna"], capsys)
    assert status == 0
    lines = text.splitlines()
    assert lines[1] == ("times: naive (no zone) in column 'Date', read as UTC; pass --tz ZONE "
                        "if they are local times")
    assert lines[2] == ("prices: as given; column 'Adj Close' is not used (--adjust adj_close "
                        "uses it)")
    assert lines[3] == "dropped: 1 row(s) with a missing price (--dropna)"
    status, text, _ = run([*BACKTEST, "--data", str(yahoo), "--dropna", "--adjust",
                           "adj_close", "--tz", "America/New_York"], capsys)
    assert status == 0
    assert text.splitlines()[1:3] == [
        "times: naive (no zone) in column 'Date', read as America/New_York (--tz)",
        "prices: adjusted: close = column 'Adj Close', open, high and low scaled by "
        "adj_close / close"]


def test_cli_loading_flags(tmp_path, yahoo, capsys):
    p = tmp_path / "BTCUSDT.csv"
    p.write_text(KLINES_HEADER + "\n" + "\n".join(KLINES) + "\n")
    status, _, err = run([*BACKTEST, "--data", str(p), "--timestamp-column", "open_time"],
                         capsys)
    assert status == 2 and "--time-unit ms" in err
    status, text, _ = run([*BACKTEST, "--data", str(p), "--timestamp-column", "open_time",
                           "--time-unit", "ms"], capsys)
    assert status == 0
    assert text.splitlines()[1] == "times: epoch milliseconds in column 'open_time', UTC"
    status, _, err = run([*BACKTEST, "--data", str(yahoo), "--dropna", "--symbols", "QQQ"],
                         capsys)
    assert status == 2 and "named 'SPY' after the file" in err
    status, _, err = run([*BACKTEST, "--demo", "--tz", "UTC", "--ohlc", "close"], capsys)
    assert status == 2 and "--tz, --ohlc apply to --data only" in err
    status, _, err = run([*BACKTEST, "--demo", "--symbols", "NOPE"], capsys)
    assert status == 2 and "available: ['ALPHA', 'BRAVO'" in err
