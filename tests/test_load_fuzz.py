"""Fuzzing load(): damaged files, malformed and wide tables; Bundle.check of written arrays.

Invariant: ``load`` returns a valid Bundle or raises a ``ValueError``, ``TypeError`` or
``OSError`` (subclasses included) with a message; never another exception, never a crash.
Here, where every input is a data problem, the error is always a ``DataError``, and one
about an unreadable file names the file.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweepbt.data import Bundle, DataError, load

EXPECTED_ERRORS = (ValueError, TypeError, OSError)
N_BARS = 12


def valid_columns(n=N_BARS, symbols=("AAA", "BBB")):
    """Valid long-format columns: every symbol on the same n weekdays (UTC)."""
    days = np.busday_offset(np.datetime64("2021-01-04", "D"), np.arange(n), roll="forward")
    rng = np.random.default_rng(3)
    cols = {"timestamp": [], "symbol": [], "open": [], "high": [], "low": [], "close": [],
            "volume": []}
    for sym in symbols:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = close * np.exp(rng.normal(0, 0.003, n))
        cols["timestamp"] += list(days.astype("datetime64[ns]"))
        cols["symbol"] += [sym] * n
        cols["open"] += list(open_)
        cols["high"] += list(np.maximum(open_, close) * 1.01)
        cols["low"] += list(np.minimum(open_, close) * 0.99)
        cols["close"] += list(close)
        cols["volume"] += list(rng.integers(100, 1000, n).astype(float))
    return cols


def valid_table():
    cols = valid_columns()
    ts = pa.array(np.asarray(cols.pop("timestamp")), pa.timestamp("ns", tz="UTC"))
    return pa.table({"timestamp": ts, **cols})


def check_valid(b: Bundle):
    """The Bundle invariants that kernels rely on."""
    assert isinstance(b, Bundle) and b.n_assets >= 1 and b.n_bars >= 1
    assert np.all(np.diff(b.timestamps.view(np.int64)) > 0)
    for a in range(b.n_assets):
        s, e = int(b.start[a]), int(b.end[a])
        assert 0 <= s < e <= b.n_bars
        o, h, lo, c, v = (x[a, s:e] for x in (b.open, b.high, b.low, b.close, b.volume))
        assert np.all(np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c))
        assert np.all(lo > 0) and np.all(h >= lo)
        assert np.all((o >= lo) & (o <= h) & (c >= lo) & (c <= h))
        assert np.all(np.isfinite(v) & (v >= 0))
        assert np.all(np.isnan(b.close[a, :s])) and np.all(np.isnan(b.close[a, e:]))


def load_or_clear_error(source, **options):
    """Load ``source``; return the Bundle (checked) or the expected exception."""
    try:
        b = load(source, **options)
    except EXPECTED_ERRORS as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return exc
    check_valid(b)
    return b


# --------------------------------------------------------------------------------------
# damaged files
# --------------------------------------------------------------------------------------

WRITERS = {
    "parquet": lambda t, p: pq.write_table(t, p),
    "checksummed.parquet": lambda t, p: pq.write_table(t, p, write_page_checksum=True),
    "feather": lambda t, p: feather.write_feather(t, p),
    "uncompressed.arrow": lambda t, p: feather.write_feather(t, p, compression="uncompressed"),
    "csv": lambda t, p: pcsv.write_csv(t, p),
}


def mutations(raw: bytes, rng: np.random.Generator, n: int):
    """n damaged copies of ``raw``: single-byte flips, multi-byte flips, truncations,
    zeroed runs and deleted runs (deterministic for a given rng)."""
    size = len(raw)
    for k in range(n):
        b = bytearray(raw)
        kind = k % 5
        if kind == 0:
            b[rng.integers(size)] ^= int(rng.integers(1, 256))
        elif kind == 1:
            for pos in rng.integers(0, size, 8):
                b[pos] = int(rng.integers(256))
        elif kind == 2:
            b = b[: int(rng.integers(size))]
        elif kind == 3:
            pos = int(rng.integers(size))
            b[pos:pos + 16] = bytes(len(b[pos:pos + 16]))
        else:
            pos = int(rng.integers(size))
            del b[pos:pos + int(rng.integers(1, 32))]
        yield bytes(b)


@pytest.mark.parametrize("name", list(WRITERS))
def test_damaged_files(tmp_path, name):
    table = valid_table()
    good = tmp_path / f"good.{name}"
    WRITERS[name](table, good)
    original = load(good)
    raw = good.read_bytes()
    bad = tmp_path / f"bad.{name}"
    rng = np.random.default_rng(sum(map(ord, name)))
    outcomes = {"error": 0, "same": 0, "different": 0}
    for damaged in mutations(raw, rng, 150):
        bad.write_bytes(damaged)
        got = load_or_clear_error(bad)
        if isinstance(got, Exception):
            outcomes["error"] += 1
            assert isinstance(got, DataError), repr(got)
            if "could not read" in str(got):
                assert str(bad) in str(got)
        elif got.n_bars == original.n_bars and got.symbols == original.symbols \
                and np.array_equal(got.close, original.close, equal_nan=True):
            outcomes["same"] += 1
        else:
            outcomes["different"] += 1
    assert outcomes["error"] > 0
    if name == "checksummed.parquet":  # page checksums: damage is an error or harmless
        assert outcomes["different"] == 0, outcomes


def test_every_footer_byte_of_a_checksummed_parquet_file(tmp_path):
    """Bit 3 of every footer byte flipped in turn: an error naming the file, or the same
    data. Among these flips are a row count that no longer matches the rows read and a
    stored time zone that is no longer UTF-8."""
    n = 20
    close = 100.0 + 0.5 * np.arange(n)
    table = pa.table({"timestamp": pa.array(np.arange(n) * 86_400 * 10**9,
                                            pa.timestamp("ns", tz="UTC")),
                      "symbol": ["A"] * n, "open": close, "high": close + 1, "low": close - 1,
                      "close": close})
    good = tmp_path / "good.parquet"
    pq.write_table(table, good, write_page_checksum=True)
    original = load(good)
    raw = good.read_bytes()
    footer_start = len(raw) - 8 - int.from_bytes(raw[-8:-4], "little")
    bad = tmp_path / "bad.parquet"
    for pos in range(footer_start, len(raw) - 8):
        damaged = bytearray(raw)
        damaged[pos] ^= 8
        bad.write_bytes(bytes(damaged))
        got = load_or_clear_error(bad)
        if isinstance(got, Exception):
            assert isinstance(got, DataError), (pos, repr(got))
            if "could not read" in str(got):
                assert str(bad) in str(got)
            continue
        for f in ("open", "high", "low", "close", "volume", "timestamps"):
            assert np.array_equal(getattr(got, f), getattr(original, f)), (pos, f)


# --------------------------------------------------------------------------------------
# malformed tables
# --------------------------------------------------------------------------------------

PRICE = ("open", "high", "low", "close")
BAD_NUMBERS = (np.nan, np.inf, -np.inf, 0.0, -1.0, 1e308, 5e-324)


@st.composite
def malformed_tables(draw):
    """A valid long table with a few random defects."""
    n_symbols = draw(st.integers(1, 3))
    n = draw(st.integers(1, 8))
    cols = valid_columns(n, tuple(f"S{k}" for k in range(n_symbols)))
    as_strings = set()
    for _ in range(draw(st.integers(0, 3))):
        defect = draw(st.sampled_from(["number", "swap_high_low", "duplicate", "swap_rows",
                                       "drop_column", "null", "strings", "truncate",
                                       "ragged"]))
        rows = min(map(len, cols.values()), default=0)
        if defect == "drop_column":
            cols.pop(draw(st.sampled_from(sorted(cols))), None)
            continue
        if rows == 0:
            continue
        i = draw(st.integers(0, rows - 1))
        j = draw(st.integers(0, rows - 1))
        present = [c for c in ("timestamp", "symbol", *PRICE, "volume") if c in cols]
        numbers = [c for c in present if c in (*PRICE, "volume")]
        if defect == "number" and numbers:
            cols[draw(st.sampled_from(numbers))][i] = draw(st.sampled_from(BAD_NUMBERS))
        elif defect == "swap_high_low" and "high" in cols and "low" in cols:
            cols["high"][i], cols["low"][i] = cols["low"][i], cols["high"][i]
        elif defect == "duplicate":
            for c in cols:
                cols[c].insert(j, cols[c][i])
        elif defect == "swap_rows":
            for c in cols:
                cols[c][i], cols[c][j] = cols[c][j], cols[c][i]
        elif defect == "null":
            cols[draw(st.sampled_from(present))][i] = None
        elif defect == "strings":
            as_strings.add(draw(st.sampled_from(present)))
        elif defect == "ragged":
            del cols[draw(st.sampled_from(present))][i]
        elif defect == "truncate":
            cut = draw(st.integers(0, rows))
            for c in cols:
                cols[c] = cols[c][:cut]
    for c in as_strings & set(cols):
        cols[c] = [None if x is None else str(x) for x in cols[c]]
    return {c: pa.array(v) for c, v in cols.items()}


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(malformed_tables(), st.sampled_from(["error", "ffill"]))
def test_malformed_tables(columns, gaps):
    lengths = {len(v) for v in columns.values()}
    source = columns if len(lengths) > 1 else pa.table(columns)  # ragged: a dict
    got = load_or_clear_error(source, gaps=gaps)
    assert isinstance(got, (Bundle, DataError)), repr(got)


@st.composite
def load_options(draw):
    """Random load options of the vendor formats: close-only, adjusted, dropna, epochs."""
    return {"ohlc": draw(st.sampled_from(["ohlc", "close"])),
            "adjust": draw(st.sampled_from([None, "adj_close"])),
            "dropna": draw(st.booleans()),
            "time_unit": draw(st.sampled_from([None, "s", "ms", "us", "ns"]))}


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(malformed_tables(), load_options(), st.booleans(), st.booleans())
def test_malformed_tables_with_load_options(columns, options, epoch, adj_close):
    """The options of close-only, adjusted and epoch data keep the invariant: a valid
    Bundle or a DataError, never another exception."""
    columns = dict(columns)
    ts = columns.get("timestamp")
    if epoch and ts is not None and pa.types.is_timestamp(ts.type):
        columns["timestamp"] = ts.cast(pa.int64())  # epoch nanoseconds
    close = columns.get("close")
    if adj_close and close is not None and pa.types.is_floating(close.type):
        columns["Adj Close"] = pa.array(np.asarray(close.to_numpy(zero_copy_only=False)) / 2)
    lengths = {len(v) for v in columns.values()}
    source = columns if len(lengths) > 1 else pa.table(columns)
    got = load_or_clear_error(source, **options)
    assert isinstance(got, (Bundle, DataError)), repr(got)


BAD_VALUES = (np.nan, np.inf, -np.inf, 0.0, -5.0, 1e300, 1e-300)


@st.composite
def written_bundles(draw):
    """A valid Bundle (asset BBB listed from bar 3, with a factor), then one cell of one
    of its arrays overwritten with a bad or ordinary value."""
    cols = valid_columns()
    keep = [k for k, s in enumerate(cols["symbol"]) if not (s == "BBB" and k % N_BARS < 3)]
    table = pa.table({c: pa.array([v[k] for k in keep]) for c, v in cols.items()})
    table = table.append_column("pe", pa.array(np.linspace(1.0, 2.0, table.num_rows)))
    bundle = load(table, factors=["pe"])
    name = draw(st.sampled_from(["open", "high", "low", "close", "volume", "pe"]))
    x = bundle.factors["pe"] if name == "pe" else getattr(bundle, name)
    a, i = draw(st.integers(0, 1)), draw(st.integers(0, N_BARS - 1))
    x[a, i] = draw(st.sampled_from(BAD_VALUES + (float(x[a, 3]),)))
    return bundle


@settings(max_examples=120, deadline=None, derandomize=True)
@given(written_bundles())
def test_check_of_written_arrays_agrees_with_loading_them_again(bundle):
    """``Bundle.check`` refuses a written Bundle exactly when loading its rows (inside the
    spans, what ``to_table`` writes) refuses them, with the same problem, symbol and row."""
    again = load_or_clear_error(bundle.to_table(), factors=["pe"])
    try:
        bundle.check()
    except DataError as exc:
        assert isinstance(again, DataError), str(exc)
        problem = str(exc).split(":")[0]
        assert str(again).startswith(problem), (str(exc), str(again))
        assert str(exc).split(", row")[0].split(": ", 1)[1] in str(again)
    else:
        assert isinstance(again, Bundle), str(again)


@st.composite
def wide_tables(draw):
    """A wide table of two tickers' closes with some cells null, NaN, bad or missing."""
    n = draw(st.integers(1, 8))
    values = st.one_of(st.none(), st.sampled_from(BAD_VALUES), st.floats(0.5, 200.0))
    days = np.busday_offset(np.datetime64("2021-01-04", "D"), np.arange(n), roll="forward")
    ts = list(days.astype("datetime64[ns]"))
    if draw(st.booleans()) and n > 1:
        ts[draw(st.integers(1, n - 1))] = ts[0]  # a repeated time stamp
    return pa.table({"date": pa.array(ts),
                     **{t: pa.array(draw(st.lists(values, min_size=n, max_size=n)),
                                    pa.float64()) for t in ("AAA", "BBB")}})


@settings(max_examples=100, deadline=None, derandomize=True)
@given(wide_tables(), st.sampled_from([None, "wide"]), st.sampled_from(["error", "ffill"]))
def test_wide_tables_load_or_raise_a_data_error(table, layout, gaps):
    got = load_or_clear_error(table, layout=layout, gaps=gaps)
    assert isinstance(got, (Bundle, DataError)), repr(got)
    if isinstance(got, Bundle):
        got.check()
        assert set(got.symbols) <= {"AAA", "BBB"}
