"""Factor columns: ``load(..., factors=[...])``, ``Bundle.from_arrays(..., factors={...})``,
``Bundle.factors`` through the Bundle's operations, pickling, the resume fingerprint and
``--factors`` on the command line."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from sweepbt import cli
from sweepbt.data import Bundle, DataError, load
from sweepbt._outdir import data_fingerprint

pd = pytest.importorskip("pandas")

#: the weekday axis of the test data
AXIS = pd.bdate_range("2022-01-03", periods=12)
#: symbol -> (first bar, number of bars): ragged spans
SPANS = {"AAA": (0, 10), "BBB": (3, 9), "CCC": (1, 4)}


def frame(spans=SPANS, interleave=True):
    """Long-format prices with factor columns ``pe`` (floats, with NaN) and ``roe``
    (nullable integers, with nulls), rows ordered by time then symbol (interleaved)."""
    parts = []
    for k, (sym, (s, n)) in enumerate(spans.items()):
        close = 100.0 + 10 * k + np.arange(n, dtype=float)
        pe = 10.0 * (k + 1) + 0.5 * np.arange(n)
        pe[1::3] = np.nan
        roe = pd.array(np.arange(n) + 100 * k, dtype="Int64")
        roe[2::4] = pd.NA
        parts.append(pd.DataFrame({
            "timestamp": AXIS[s:s + n], "symbol": sym, "open": close, "high": close + 1,
            "low": close - 1, "close": close, "volume": 1000.0, "pe": pe, "roe": roe}))
    df = pd.concat(parts, ignore_index=True)
    if interleave:
        df = df.sort_values(["timestamp", "symbol"], kind="stable", ignore_index=True)
    return df


def expected(df, bundle, column):
    """The factor grid that ``column`` of ``df`` should give on ``bundle``'s axis, built row
    by row: NaN outside the rows and where the value is missing."""
    out = np.full((bundle.n_assets, bundle.n_bars), np.nan)
    axis = list(pd.DatetimeIndex(bundle.timestamps))
    for sym, ts, value in zip(df["symbol"], df["timestamp"], df[column]):
        if not pd.isna(value):
            out[bundle.symbols.index(sym), axis.index(pd.Timestamp(ts))] = float(value)
    return out


def assert_same_prices(a: Bundle, b: Bundle):
    for f in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.start, b.start)
    np.testing.assert_array_equal(a.end, b.end)
    assert a.symbols == b.symbols and a.tz == b.tz


def assert_factors(bundle, df, names=("pe", "roe")):
    assert list(bundle.factors) == list(names)
    for name in names:
        x = bundle.factors[name]
        assert x.dtype == np.float64 and x.flags.c_contiguous
        assert x.shape == bundle.close.shape
        np.testing.assert_array_equal(x, expected(df, bundle, name.lower()))


def write_source(df, kind, tmp_path):
    """``df`` as the source ``kind``: a file written by pyarrow/pandas, or an object."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if kind == "parquet":
        path = tmp_path / "prices.parquet"
        pq.write_table(table, path)
        return path
    if kind == "csv":
        path = tmp_path / "prices.csv"
        df.to_csv(path, index=False)
        return path
    if kind == "feather":
        path = tmp_path / "prices.feather"
        feather.write_feather(table, path)
        return path
    if kind == "pandas":
        return df
    if kind == "table":
        return table
    if kind == "batch":
        return table.to_batches()[0] if table.num_rows else table
    if kind == "polars":
        pl = pytest.importorskip("polars")
        return pl.from_pandas(df)
    assert kind == "dict"
    return {c: table.column(c) for c in table.column_names}


SOURCES = ("parquet", "csv", "feather", "pandas", "table", "batch", "polars", "dict")


# --------------------------------------------------------------------------------------
# load(..., factors=)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SOURCES)
def test_load_factors_from_every_source(kind, tmp_path):
    df = frame()
    src = write_source(df, kind, tmp_path)
    plain = load(src)
    b = load(src, factors=["pe", "roe"])
    assert_same_prices(b, plain)  # loading factors changes no price
    assert plain.factors == {} and len(plain.factors) == 0
    assert_factors(b, df)
    assert b.symbols == ("AAA", "CCC", "BBB")  # order of first appearance
    np.testing.assert_array_equal(b.start, [0, 1, 3])
    np.testing.assert_array_equal(b.end, [10, 5, 12])
    out = ~(np.arange(b.n_bars) >= b.start[:, None]) | ~(np.arange(b.n_bars) < b.end[:, None])
    for x in b.factors.values():
        assert np.isnan(x[out]).all()  # NaN outside each span
    # the NaN and null values are NaN, the rest as given
    assert b.factors["pe"][0, 0] == 10.0 and np.isnan(b.factors["pe"][0, 1])
    assert np.isnan(b.factors["roe"][0, 2]) and b.factors["roe"][0, 3] == 3.0


def test_load_factors_rows_grouped_by_symbol_and_one_name(tmp_path):
    df = frame(interleave=False)
    b = load(write_source(df, "parquet", tmp_path), factors="pe")
    assert_factors(b, df, names=("pe",))


def test_factor_names_are_case_insensitive_and_keep_the_given_name():
    df = frame().rename(columns={"pe": "PE_Ratio"})
    b = load(df, factors=["pe_ratio"])
    assert list(b.factors) == ["pe_ratio"]
    np.testing.assert_array_equal(b.factors["pe_ratio"], expected(df, b, "PE_Ratio"))


def test_factors_follow_symbol_selection_and_dropna():
    df = frame()
    row = df.index[(df["symbol"] == "AAA") & (df["timestamp"] == AXIS[6])][0]
    df.loc[row, "close"] = np.nan  # a row dropped by dropna=True
    dropped = df.loc[row, ["symbol", "timestamp"]]
    b = load(df, symbol=["BBB", "AAA"], dropna=True, factors=["pe"], gaps="ffill")
    assert b.symbols == ("BBB", "AAA")
    kept = df.drop(index=row)
    kept = kept[kept["symbol"].isin(["BBB", "AAA"])]
    want = expected(kept, b, "pe")
    a = b.symbols.index(dropped["symbol"])
    i = list(pd.DatetimeIndex(b.timestamps)).index(dropped["timestamp"])
    want[a, i] = want[a, i - 1]  # the gap left by the dropped row is filled forward
    np.testing.assert_array_equal(b.factors["pe"], want)


def test_gaps_ffill_carries_factors_forward():
    df = frame({"AAA": (0, 6), "BBB": (0, 6)})
    df = df[~((df["symbol"] == "BBB") & df["timestamp"].isin(AXIS[2:4]))]  # a 2-bar gap
    b = load(df, gaps="ffill", factors=["pe", "roe"])
    pe = b.factors["pe"][1]
    np.testing.assert_array_equal(pe[:2], [20.0, np.nan])
    np.testing.assert_array_equal(pe[2:4], [np.nan, np.nan])  # previous value was NaN
    np.testing.assert_array_equal(b.factors["roe"][1, 2:4], [101.0, 101.0])
    np.testing.assert_array_equal(b.close[1, 2:4], [111.0, 111.0])


def test_factor_column_all_null_and_integer_types(tmp_path):
    df = frame()
    df["empty"] = np.nan
    df["n"] = np.arange(len(df), dtype=np.int32)
    path = tmp_path / "prices.csv"
    df.to_csv(path, index=False)  # "empty" is all blanks: a null-typed column
    b = load(path, factors=["empty", "n"])
    assert np.isnan(b.factors["empty"]).all()
    np.testing.assert_array_equal(b.factors["n"], expected(df, b, "n"))


def test_single_asset_file_with_factor(tmp_path):
    df = frame({"SPY": (0, 8)}).drop(columns="symbol")
    path = tmp_path / "SPY.parquet"
    df.to_parquet(path, index=False)
    b = load(path, factors=["pe"])
    assert b.symbols == ("SPY",)
    np.testing.assert_array_equal(b.factors["pe"][0], df["pe"].to_numpy())


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


def test_unknown_factor_column_lists_the_columns(tmp_path):
    path = write_source(frame(), "parquet", tmp_path)
    with pytest.raises(DataError, match=r"unknown factor column\(s\) \['pb'\] \(factors=\); "
                       r"columns are \['timestamp', 'symbol', 'open', 'high', 'low', "
                       r"'close', 'volume', 'pe', 'roe'\]"):
        load(path, factors=["pe", "pb"])


@pytest.mark.parametrize("kind", ["csv", "pandas"])
def test_non_numeric_factor_names_its_type(kind, tmp_path):
    df = frame()
    df["sector"] = "tech"
    df["flag"] = df["close"] > 105
    src = write_source(df, kind, tmp_path)
    with pytest.raises(DataError, match=r"factor column 'flag' is not numeric \(type bool\)"):
        load(src, factors=["flag"])
    with pytest.raises(DataError, match=r"factor column 'sector' is not numeric \(type "
                       r"string\); first non-numeric value 'tech' at symbol 'AAA', row 0"):
        load(src, factors=["sector"])


@pytest.mark.parametrize("names, message", [
    (["close"], r"factors= names \['close'\]: a factor cannot be named like a price"),
    (["Volume"], r"factors= names \['Volume'\]: a factor cannot be named like a price"),
    (["symbol"], r"factors= names \['symbol'\]"),
    (["pe", "pe"], r"factors= names \['pe'\] more than once"),
    (["pe", "PE"], r"factors= names \['pe'\] more than once \(names are case-insensitive\)"),
])
def test_factor_names_colliding_or_twice(names, message):
    with pytest.raises(ValueError, match=message):
        load(frame(), factors=names)


def test_factor_that_is_a_column_read_for_something_else():
    df = frame().rename(columns={"timestamp": "date", "symbol": "ticker"})
    with pytest.raises(DataError, match=r"factor 'date' \(factors=\) is column 'date', which "
                       r"is read as the timestamp"):
        load(df, factors=["date"])
    with pytest.raises(DataError, match=r"factor 'Ticker' \(factors=\) is column 'ticker', "
                       r"which is read as the symbol"):
        load(df, factors=["Ticker"])
    df["Adj Close"] = df["close"]
    with pytest.raises(DataError, match=r"is column 'Adj Close', which is read as the "
                       r"adj_close"):
        load(df, factors=["adj close"], adjust="adj_close")
    b = load(df, factors=["adj close"])  # not adjusting: the column is free to be a factor
    np.testing.assert_array_equal(b.factors["adj close"], b.close)


@pytest.mark.parametrize("bad", [[1], [""], 3, {"pe": 1}, b"pe"])
def test_factors_argument_type(bad):
    with pytest.raises(TypeError, match=r"factors= must"):
        load(frame(), factors=bad)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_factor_names_column_symbol_and_timestamp(value, tmp_path):
    df = frame()
    row = df.index[(df["symbol"] == "BBB")][2]
    df.loc[row, "pe"] = value
    path = tmp_path / "prices.csv"
    df.to_csv(path, index=False)  # written as inf / -inf
    with pytest.raises(DataError, match=rf"factor is infinite: symbol 'BBB', row {row} "
                       rf"\(timestamp 2022-01-10T00:00:00Z\), column 'pe': pe={value!r}"):
        load(path, factors=["pe"])
    load(path)  # without the factor the file loads


def test_price_errors_unchanged_by_factors():
    df = frame()
    df.loc[3, "close"] = -1.0
    with pytest.raises(DataError, match=r"price <= 0: symbol 'AAA', row 3"):
        load(df, factors=["pe"])


# --------------------------------------------------------------------------------------
# Bundle.from_arrays(..., factors=)
# --------------------------------------------------------------------------------------


def test_from_arrays_factors():
    close = np.array([[1.0, 2.0, 3.0, np.nan], [np.nan, 5.0, 6.0, 7.0]])
    pe = np.array([[9.0, np.nan, 8.0, 99.0], [99.0, 1, 2, 3]], dtype=np.float32)
    roe = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    b = Bundle.from_arrays(close=close, symbols=["X", "Y"], factors={"pe": pe, "roe": roe})
    assert list(b.factors) == ["pe", "roe"]
    # values outside the spans are dropped; NaN inside is kept
    np.testing.assert_array_equal(b.factors["pe"], [[9, np.nan, 8, np.nan],
                                                    [np.nan, 1, 2, 3]])
    np.testing.assert_array_equal(b.factors["roe"], [[1, 2, 3, np.nan], [np.nan, 6, 7, 8]])
    assert b.factors["pe"].dtype == np.float64 and b.factors["pe"].flags.c_contiguous
    roe[0, 0] = 100  # the inputs are copied
    assert b.factors["roe"][0, 0] == 1
    assert_same_prices(b, Bundle.from_arrays(close=close, symbols=["X", "Y"]))
    one = Bundle.from_arrays(close=[1.0, 2.0], factors={"pe": [3.0, np.nan]})
    np.testing.assert_array_equal(one.factors["pe"], [[3.0, np.nan]])


def test_from_arrays_factor_errors():
    close = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with pytest.raises(DataError, match=r"factor is infinite: symbol 'Y', row 2 \(bar 2, "
                       r"timestamp 2000-01-05T00:00:00Z\), column 'pe': pe=inf"):
        Bundle.from_arrays(close=close, symbols=["X", "Y"],
                           factors={"pe": [[1, 2, 3], [4, 5, np.inf]]})
    with pytest.raises(DataError, match=r"column 'pe' has shape \(2, 2\), 'close' has "
                       r"\(2, 3\)"):
        Bundle.from_arrays(close=close, factors={"pe": np.ones((2, 2))})
    with pytest.raises(DataError, match=r"column 'pe' is not numeric \(dtype bool\)"):
        Bundle.from_arrays(close=close, factors={"pe": close > 2})
    with pytest.raises(ValueError, match=r"factors= names \['low'\]: a factor cannot"):
        Bundle.from_arrays(close=close, factors={"low": close})
    with pytest.raises(TypeError, match=r"factors= must be a mapping of factor name -> array"):
        Bundle.from_arrays(close=close, factors=["pe"])
    # infinity outside a span is dropped with the rest of the padding
    b = Bundle.from_arrays(close=[[np.nan, 1.0]], factors={"pe": [[np.inf, 2.0]]})
    np.testing.assert_array_equal(b.factors["pe"], [[np.nan, 2.0]])


# --------------------------------------------------------------------------------------
# the Bundle's operations, pickling, fingerprint
# --------------------------------------------------------------------------------------


@pytest.fixture
def bundle():
    return load(frame(), factors=["pe", "roe"])


def test_factors_mapping_is_read_only(bundle):
    with pytest.raises(TypeError):
        bundle.factors["pb"] = bundle.close
    with pytest.raises(KeyError, match=r"no factor 'pb'; the Bundle has factors \['pe', "
                       r"'roe'\]"):
        bundle.factors["pb"]
    assert "pe" in bundle.factors and bundle.factors.get("pb") is None
    assert repr(bundle).endswith("tz='UTC', factors=(pe, roe))")
    with pytest.raises(ValueError, match=r"factor 'pe' has shape \(3, 2\), close has"):
        Bundle(bundle.open, bundle.high, bundle.low, bundle.close, bundle.volume,
               bundle.timestamps, bundle.symbols, bundle.start, bundle.end,
               factors={"pe": np.ones((3, 2))})


def test_select_slice_copy_carry_factors(bundle):
    sel = bundle.select(["BBB", "AAA"])
    for name, x in bundle.factors.items():
        np.testing.assert_array_equal(sel.factors[name], x[[2, 0]])
    cut = bundle.slice_bars(5, 11)  # CCC (bars 1..4) is dropped
    assert cut.symbols == ("AAA", "BBB")
    for name, x in bundle.factors.items():
        np.testing.assert_array_equal(cut.factors[name], x[[0, 2], 5:11])
        assert cut.factors[name].flags.c_contiguous
    dup = bundle.copy()
    dup.factors["pe"][0, 0] = -5.0
    assert bundle.factors["pe"][0, 0] == 10.0  # a deep copy
    again = load(bundle, tz="Asia/Tokyo")
    assert again.tz == "Asia/Tokyo" and list(again.factors) == ["pe", "roe"]
    only = load(bundle, factors=["roe"])
    assert list(only.factors) == ["roe"]
    np.testing.assert_array_equal(only.factors["roe"], bundle.factors["roe"])
    assert list(load(bundle, factors=[]).factors) == []
    with pytest.raises(DataError, match=r"unknown factor\(s\) \['pb'\] \(factors=\): the "
                       r"Bundle has factors \['pe', 'roe'\]"):
        load(bundle, factors=["pb"])


def test_to_parquet_round_trip_with_factors(bundle, tmp_path):
    path = tmp_path / "out.parquet"
    bundle.to_parquet(path)
    assert pq.read_schema(path).names[-2:] == ["pe", "roe"]
    back = load(path, factors=list(bundle.factors))
    assert_same_prices(back, bundle)
    for name, x in bundle.factors.items():
        np.testing.assert_array_equal(back.factors[name], x)
    assert_same_prices(load(path), bundle)


def test_pickle_round_trip_keeps_factors(bundle):
    back = pickle.loads(pickle.dumps(bundle))
    assert_same_prices(back, bundle)
    assert list(back.factors) == ["pe", "roe"]
    for name, x in bundle.factors.items():
        np.testing.assert_array_equal(back.factors[name], x)
    with pytest.raises(TypeError):
        back.factors["pe"] = back.close
    assert data_fingerprint(back) == data_fingerprint(bundle)


def test_fingerprint_includes_factors(bundle):
    base = data_fingerprint(bundle)
    changed = bundle.copy()
    changed.factors["pe"][2, 5] += 1.0
    assert data_fingerprint(changed) != base
    assert data_fingerprint(load(bundle, factors=["pe"])) != base
    assert data_fingerprint(load(bundle, factors=[])) != base
    assert data_fingerprint(load(bundle, factors=["roe", "pe"])) == base  # order aside


def test_fingerprint_without_factors_as_before_factors_existed():
    """A folder written before factors existed still resumes: this is the fingerprint that
    data_fingerprint gave this Bundle then (at commit 90a77e1)."""
    b = Bundle.from_arrays(close=np.array([[1.0, 2.0, 3.0], [np.nan, 5.0, 6.0]]),
                           symbols=["X", "Y"])
    assert data_fingerprint(b) == \
        "5fd85e9cbc10b89dd3638c2ef54bba0544803aabc140aacd7771308d19c11d61"


# --------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------

RUN = ["--param", "fast=2", "--param", "slow=4", "--trades", "0"]


def test_cli_factors_flag(tmp_path, capsys):
    path = write_source(frame(), "csv", tmp_path)
    assert cli.main(["backtest", "--data", str(path), "--factors", "pe, roe", *RUN]) == 0
    out = capsys.readouterr().out
    assert "\nfactors: pe, roe\n" in out
    assert cli.main(["backtest", "--data", str(path), "--factors", "pe,pb", *RUN]) == 2
    err = capsys.readouterr().err
    assert "sweepbt: error: unknown factor column(s) ['pb'] (factors=); columns are" in err
    assert cli.main(["backtest", "--demo", "--factors", "pe", *RUN]) == 2
    assert "--factors applies to --data only" in capsys.readouterr().err
    assert cli.main(["sweep", "--data", str(path), "--factors", ",", *RUN[:4]]) == 2
    assert "--factors: give at least one column name" in capsys.readouterr().err
