"""Wide tables (a time stamp column and one close column per ticker): load(layout="wide"),
recognized without it when unambiguous, from every source and on the command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
from sweepbt.data import DataError, load

pd = pytest.importorskip("pandas")

N = 30
DAYS = pd.bdate_range("2022-01-03", periods=N)


def closes():
    """Three tickers' closes (n_bars, 3): ZED lists at bar 4, YOU delists after bar 24."""
    rng = np.random.default_rng(11)
    x = 40.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (N, 3)), axis=0))
    x[:4, 1] = np.nan
    x[25:, 2] = np.nan
    return x


def frame():
    return pd.DataFrame(closes(), index=DAYS, columns=["XOM", "ZED", "YOU"])


def table():
    """The wide table with a ``Date`` column (as CSV and Parquet exports have it)."""
    return pa.Table.from_pandas(frame().rename_axis("Date").reset_index(), preserve_index=False)


def assert_wide_bundle(b):
    x = closes()
    assert b.symbols == ("XOM", "ZED", "YOU")
    assert list(b.start) == [0, 4, 0] and list(b.end) == [N, N, 25]
    assert np.array_equal(b.close, x.T, equal_nan=True)
    for price in (b.open, b.high, b.low):
        assert np.array_equal(price, b.close, equal_nan=True)
    assert np.array_equal(b.volume[0], np.zeros(N))
    assert np.array_equal(b.timestamps, DAYS.to_numpy().astype("datetime64[ns]"))


@pytest.mark.parametrize("layout", [None, "wide"])
@pytest.mark.parametrize("source", ["arrow", "pandas index", "pandas column", "polars",
                                    "parquet", "csv", "feather"])
def test_every_source_loads_wide(tmp_path, source, layout):
    if source == "arrow":
        data = table()
    elif source == "pandas index":
        data = frame()
    elif source == "pandas column":
        data = frame().rename_axis("date").reset_index()
    elif source == "polars":
        pl = pytest.importorskip("polars")
        data = pl.from_arrow(table())
    else:
        data = tmp_path / f"closes.{source}"
        write = {"parquet": pq.write_table, "csv": pcsv.write_csv,
                 "feather": feather.write_feather}[source]
        write(table(), data)
    b = load(data, layout=layout)
    assert_wide_bundle(b)
    assert b.source == (None if source in ("arrow", "pandas index", "pandas column",
                                           "polars") else str(data))


def test_selection_and_runs_like_the_same_long_data():
    wide = load(frame(), symbol=["YOU", "XOM"])
    assert wide.symbols == ("YOU", "XOM")
    long = frame().rename_axis("timestamp").reset_index().melt(
        "timestamp", var_name="symbol", value_name="close").dropna()
    same = load(long, ohlc="close", symbol=["YOU", "XOM"])
    assert np.array_equal(wide.close, same.close, equal_nan=True)
    a = sb.backtest(wide, "sma_cross", fast=3, slow=8)
    b = sb.backtest(same, "sma_cross", fast=3, slow=8)
    assert np.array_equal(a.equity, b.equity, equal_nan=True)


def test_a_hole_is_a_gap_naming_the_wide_row():
    df = frame()
    df.iloc[10, 0] = np.nan
    with pytest.raises(DataError, match=r"gap: symbol 'XOM' has no row at timestamp "
                                        r"2022-01-17.*row 9 "):
        load(df)
    filled = load(df, gaps="ffill")
    assert filled.close[0, 10] == filled.close[0, 9]


def test_bad_values_name_ticker_and_wide_row():
    df = frame()
    df.iloc[7, 1] = -3.0
    with pytest.raises(DataError, match=r"price <= 0: symbol 'ZED', row 7 \(timestamp "
                                        r"2022-01-12"):
        load(df)


def test_long_layout_and_ambiguous_tables_hint_at_wide():
    with pytest.raises(DataError, match=r"missing required column.*layout='wide' "
                                        r"\(--layout wide\)"):
        load(frame(), layout="long")
    df = frame()
    df["note"] = "text"  # not every column numeric: not recognized as wide
    with pytest.raises(DataError, match="layout='wide'"):
        load(df)
    with pytest.raises(DataError, match=r"wide layout: .*column 'note' is not numeric"):
        load(df, layout="wide")


def test_wide_refusals():
    with pytest.raises(ValueError, match="layout must be None"):
        load(frame(), layout="tall")
    with pytest.raises(ValueError, match="factors= need long-format data"):
        load(frame(), layout="wide", factors=["pe"])
    empty = frame()
    empty["ZED"] = np.nan
    with pytest.raises(DataError, match="ticker column 'ZED' .* only null or NaN"):
        load(empty)
    with pytest.raises(ValueError, match="layout= apply to raw data"):
        load(load(frame()), layout="wide")


def test_long_and_single_asset_data_stay_long():
    df = frame().rename_axis("timestamp").reset_index()[["timestamp", "XOM"]]
    single = load(df.rename(columns={"XOM": "close"}), ohlc="close")
    assert single.symbols == ("asset",)  # a close column: single-asset, not a ticker
    demo = sb.demo()
    assert load(demo.to_table()).symbols == demo.symbols


@pytest.mark.slow
def test_the_command_line_reads_a_wide_file(tmp_path):
    path = tmp_path / "closes.csv"
    pcsv.write_csv(table(), path)
    for extra in ([], ["--layout", "wide"]):
        out = subprocess.run(
            [sys.executable, "-m", "sweepbt", "backtest", "--data", str(path), *extra,
             "--param", "fast=3", "--param", "slow=8"],
            capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        assert "3 asset(s) x 30 bars" in out.stdout
        assert "wide table: a close column per ticker, 3 loaded" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "sweepbt", "sweep", "--data", str(path), "--layout", "long",
         "--param", "fast=3", "--param", "slow=8", "--no-progress"],
        capture_output=True, text=True, timeout=600)
    assert out.returncode != 0 and "--layout wide" in out.stderr
