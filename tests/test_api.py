"""Public API behaviour: inputs are never modified, thread safety, the demo, result schemas."""

import concurrent.futures
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

import sweepbt as sb
from helpers import padded
from sweepbt._backtest_stats import EXTRA_STAT_NAMES
from sweepbt._vocabulary import METRIC_NAMES

EXIT_REASONS = {"stop", "take", "trail", "time", "signal", "end"}
COUNT_METRICS = {"n_trades", "n_stop", "n_take", "n_trail", "n_time", "n_signal"}
TS = pa.timestamp("ns", tz="UTC")
TRADE_SCHEMA = [
    ("symbol", pa.string()), ("direction", pa.string()),
    ("entry_bar", pa.int64()), ("exit_bar", pa.int64()),
    ("entry_time", TS), ("exit_time", TS),
    ("entry_price", pa.float64()), ("exit_price", pa.float64()),
    ("entry_quote", pa.float64()), ("exit_quote", pa.float64()),
    ("units", pa.float64()), ("pnl", pa.float64()), ("return", pa.float64()),
    ("exit_reason", pa.string()), ("mfe", pa.float64()), ("mae", pa.float64()),
    ("commission", pa.float64()), ("tax", pa.float64()),
]
GRID = dict(fast=[2, 4, 7], slow=[10, 20], stop_loss=[None, 0.02], take_profit=[None, 0.05],
            trailing_stop=[None, 0.03], max_bars=[None, 6], fees=0.001, fixed_fees=[0.0, 2.0])


def _prices(seed, n_assets=3, n=300):
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (n_assets, n)), axis=1))
    prev = np.concatenate([np.full((n_assets, 1), 100.0), close[:, :-1]], axis=1)
    open_ = prev * np.exp(rng.normal(0.0, 0.01, (n_assets, n)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.01, (n_assets, n))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.01, (n_assets, n))))
    return open_, high, low, close


@pytest.fixture(scope="module")
def spans():
    return [(0, 300), (40, 300), (0, 250)]


@pytest.fixture(scope="module")
def data(spans):
    return sb.Bundle.from_arrays(*padded(_prices(1), spans), symbols=["AA", "BB", "CC"])


def _long_table(prices, spans, symbols):
    ts = np.datetime64("2015-01-05", "ns") + np.arange(prices[0].shape[1]) * np.timedelta64(
        1, "D")
    cols = {k: [] for k in ("timestamp", "symbol", "open", "high", "low", "close", "volume")}
    for a, (s, e) in enumerate(spans):
        cols["timestamp"].extend(ts[s:e])
        cols["symbol"].extend([symbols[a]] * (e - s))
        for name, p in zip(("open", "high", "low", "close"), prices):
            cols[name].extend(p[a, s:e])
        cols["volume"].extend(np.full(e - s, 1000.0))
    return pa.table({
        "timestamp": pa.array(np.array(cols["timestamp"], dtype="datetime64[ns]"),
                              pa.timestamp("ns", tz="UTC")),
        "symbol": pa.array(cols["symbol"], pa.string()),
        **{k: pa.array(np.array(cols[k], dtype=np.float64)) for k in
           ("open", "high", "low", "close", "volume")},
    })


def _ipc_bytes(table):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _snapshot(bundle):
    return {f: getattr(bundle, f).copy() for f in
            ("open", "high", "low", "close", "volume", "timestamps", "start", "end")}


def _assert_snapshot(bundle, snap):
    for f, v in snap.items():
        np.testing.assert_array_equal(getattr(bundle, f), v, err_msg=f)


# ----------------------------------------------------------------------------------------
# the user's data is never modified
# ----------------------------------------------------------------------------------------


def test_numpy_arrays_not_modified(spans):
    arrays = padded(_prices(2), spans)
    copies = [a.copy() for a in arrays]
    bundle = sb.Bundle.from_arrays(*arrays)
    sb.backtest(bundle, "sma_cross", fast=3, slow=12, stop_loss=0.02)
    sb.sweep(bundle, "sma_cross", fast=[2, 3], slow=[8, 12])
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)
    # the Bundle owns its arrays: writing to it does not reach the user's arrays
    bundle.close[0, 5] = -1.0
    np.testing.assert_array_equal(arrays[3], copies[3])


def test_arrays_with_nan_padding_not_modified():
    """from_arrays NaN-pads outside each span: on its own copies, never the user's."""
    o, h, l, c = (x[0] for x in _prices(3, n_assets=1, n=60))
    arrays = [np.concatenate([[np.nan, np.nan], x[2:]]) for x in (o, h, l, c)]
    volume = np.arange(60, dtype=np.float64)  # volume outside the span is not NaN
    copies = [a.copy() for a in arrays] + [volume.copy()]
    bundle = sb.Bundle.from_arrays(*arrays, volume)
    assert bundle.start[0] == 2
    sb.backtest(bundle, "sma_cross", fast=2, slow=5)
    for a, c in zip(arrays + [volume], copies):
        np.testing.assert_array_equal(a, c)


def test_bundle_not_modified_by_backtest_and_sweep(data):
    snap = _snapshot(data)
    for fill in ("next_open", "close"):
        for direction in ("long", "short", "both"):
            sb.backtest(data, "sma_cross", fast=3, slow=12, stop_loss=0.02, trailing_stop=0.03,
                        take_profit=0.05, max_bars=5, fees=0.001, slippage=0.001, fill=fill,
                        direction=direction)
            sb.sweep(data, "sma_cross", fast=[2, 3], slow=[8, 12], fill=fill,
                     direction=direction)
    _assert_snapshot(data, snap)


def test_arrow_table_not_modified(spans):
    prices = _prices(4)
    table = _long_table(prices, spans, ["X", "Y", "Z"])
    before = _ipc_bytes(table)
    bundle = sb.load(table)
    assert bundle.symbols == ("X", "Y", "Z")
    bt = sb.backtest(table, "sma_cross", fast=3, slow=12, stop_loss=0.02)
    res = sb.sweep(table, "sma_cross", fast=[2, 3], slow=[8, 12])
    assert res.table.num_rows == 4 * 3 and bt.equity.shape == (3, 300)
    bundle.close[:] = 1.0  # the Bundle's arrays are its own, not views of the table
    bundle.open[0, 0] = 7.0
    assert _ipc_bytes(table) == before


def test_pandas_dataframe_not_modified(spans):
    pd = pytest.importorskip("pandas")
    df = _long_table(_prices(5), spans, ["X", "Y", "Z"]).to_pandas()
    copy = df.copy(deep=True)
    bundle = sb.load(df)
    sb.backtest(df, "sma_cross", fast=3, slow=12)
    sb.sweep(df, "sma_cross", fast=[2, 3], slow=[8, 12])
    bundle.close[:] = 1.0
    pd.testing.assert_frame_equal(df, copy)


def test_demo_returns_fresh_arrays():
    a = sb.demo()
    b = sb.demo()
    a.close[:] = 1.0
    c = sb.demo()
    np.testing.assert_array_equal(b.close, c.close)
    assert not np.shares_memory(b.close, c.close)


# ----------------------------------------------------------------------------------------
# several Python threads at once
# ----------------------------------------------------------------------------------------


def _jobs():
    jobs = []
    for k, (fill, direction) in enumerate([("next_open", "long"), ("close", "short"),
                                          ("next_open", "both"), ("close", "long"),
                                          ("close", "both"), ("next_open", "short"),
                                          ("close", "long"), ("next_open", "long")]):
        jobs.append(dict(fill=fill, direction=direction, slippage=0.0005 * (k % 3)))
    return jobs


def _sweep_job(data, job):
    return sb.sweep(data, "sma_cross", threads=2, periods_per_year=252, **job, **GRID).table


def _backtest_job(data, job):
    bt = sb.backtest(data, "sma_cross", threads=2, periods_per_year=252, fast=3, slow=12,
                     stop_loss=0.02, take_profit=0.05, **job)
    return bt.stats, bt.trades, bt.equity


def _assert_tables_identical(a, b):
    assert a.schema.equals(b.schema)
    for name in a.column_names:
        x = a[name].to_numpy(zero_copy_only=False)
        y = b[name].to_numpy(zero_copy_only=False)
        if x.dtype == np.float64:
            assert np.array_equal(x.view(np.int64), y.view(np.int64)), name
        else:
            assert a[name].equals(b[name]), name


def test_concurrent_sweeps_match_sequential(data):
    if sb._threading.numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs with a single thread here")
    jobs = _jobs()
    sequential = [_sweep_job(data, job) for job in jobs]
    sequential_bt = [_backtest_job(data, job) for job in jobs]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        sweeps = [pool.submit(_sweep_job, data, job) for job in jobs]
        backtests = [pool.submit(_backtest_job, data, job) for job in jobs]
        concurrent_sweeps = [f.result() for f in sweeps]
        concurrent_bt = [f.result() for f in backtests]
    for seq, con in zip(sequential, concurrent_sweeps):
        _assert_tables_identical(seq, con)
    for (s1, t1, e1), (s2, t2, e2) in zip(sequential_bt, concurrent_bt):
        _assert_tables_identical(s1, s2)
        _assert_tables_identical(t1, t2)
        assert np.array_equal(e1, e2, equal_nan=True)


_FRESH_PROCESS = textwrap.dedent("""
    import concurrent.futures, sys
    import numpy as np
    import sweepbt as sb

    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (3, 400)), axis=1))
    data = sb.Bundle.from_arrays(close, close * 1.01, close * 0.99, close)
    grid = dict(fast=[2, 3, 5, 8], slow=[10, 20, 30], stop_loss=[None, 0.02],
                trailing_stop=[None, 0.03])

    def job(k):
        return sb.sweep(data, "sma_cross", threads=2, fees=0.001 * (k % 2), **grid).metrics

    # the very first kernel launches of the process happen in 4 threads at once
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(job, range(8)))
    want = [job(k) for k in range(8)]
    assert all(np.array_equal(g, w, equal_nan=True) for g, w in zip(got, want))
    print("OK", sb._threading.numba.threading_layer())
""")


@pytest.mark.slow
def test_concurrent_first_use_in_a_fresh_process():
    """Threads racing to make the process's first parallel launch neither crash (numba's
    workqueue layer would abort the process) nor change results."""
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), os.pardir,
                                                   ".numba_cache"))
    proc = subprocess.run([sys.executable, "-c", _FRESH_PROCESS], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("OK")


# ----------------------------------------------------------------------------------------
# the demo
# ----------------------------------------------------------------------------------------


def test_demo_sweep_runs():
    data = sb.demo()
    assert data.n_assets >= 2 and data.n_bars >= 1000
    years = (data.timestamps[-1] - data.timestamps[0]) / np.timedelta64(365, "D")
    assert years >= 4
    res = sb.sweep(data, "sma_cross", fast=[10, 20], slow=[50, 100], stop_loss=[None, 0.05],
                   constraint="fast < slow", fees=0.001)
    table = res.table
    assert res.n_combos == 8 and table.num_rows == 8 * data.n_assets
    assert np.isfinite(table["total_return"].to_numpy()).all()
    assert (table["n_trades"].to_numpy() > 0).all()
    assert res.best("sharpe", k=3).num_rows == 3
    bt = sb.backtest(data, "sma_cross", fast=10, slow=50, stop_loss=0.05, fees=0.001)
    assert bt.stats.num_rows == data.n_assets and bt.trades.num_rows > 0


def test_demo_is_deterministic():
    a, b = sb.demo(), sb.demo()
    for f in ("open", "high", "low", "close", "volume", "timestamps", "start", "end"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert a.symbols == b.symbols


# ----------------------------------------------------------------------------------------
# schemas and shapes
# ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def result(data):
    return sb.backtest(data, "sma_cross", fast=3, slow=12, stop_loss=0.03, take_profit=0.05,
                       trailing_stop=0.04, max_bars=4, fees=0.001, direction="both")


def test_stats_schema(result, data):
    stats = result.stats
    assert stats.column_names == ["symbol", *METRIC_NAMES, *EXTRA_STAT_NAMES]
    assert stats.schema.field("symbol").type == pa.string()
    for name in METRIC_NAMES:
        want = pa.int64() if name in COUNT_METRICS else pa.float64()
        assert stats.schema.field(name).type == want, name
    assert stats["symbol"].to_pylist() == list(data.symbols)


def test_trades_schema(result, data):
    trades = result.trades
    assert [(f.name, f.type) for f in trades.schema] == TRADE_SCHEMA
    assert trades.num_rows > 0
    ts = data.timestamps.astype("datetime64[ns]").view(np.int64)
    entry_bar = trades["entry_bar"].to_numpy()
    exit_bar = trades["exit_bar"].to_numpy()
    assert np.array_equal(trades["entry_time"].cast(pa.int64()).to_numpy(), ts[entry_bar])
    assert np.array_equal(trades["exit_time"].cast(pa.int64()).to_numpy(), ts[exit_bar])
    assert (exit_bar >= entry_bar).all()
    assert set(trades["direction"].to_pylist()) == {"long", "short"}
    assert set(trades["exit_reason"].to_pylist()) <= EXIT_REASONS
    # every rule fired somewhere in this configuration
    assert {"stop", "take", "trail", "time", "signal"} <= set(trades["exit_reason"].to_pylist())
    # rows in order of asset, then entry
    symbols = trades["symbol"].to_pylist()
    order = [list(data.symbols).index(s) for s in symbols]
    assert order == sorted(order)
    for s in data.symbols:
        bars = [b for b, sym in zip(entry_bar, symbols) if sym == s]
        assert bars == sorted(bars)
    # trades lie inside their asset's span
    for sym, e0, e1 in zip(symbols, entry_bar, exit_bar):
        a = list(data.symbols).index(sym)
        assert data.start[a] <= e0 and e1 < data.end[a]


def test_empty_trades_keep_the_schema(data):
    bt = sb.backtest(data, "sma_cross", fast=5, slow=5)  # equal windows never cross
    assert bt.trades.num_rows == 0
    assert [(f.name, f.type) for f in bt.trades.schema] == TRADE_SCHEMA
    assert bt.stats["n_trades"].to_pylist() == [0] * data.n_assets


def test_equity_shape_and_spans(result, data):
    for name in ("equity", "cash", "units"):
        arr = getattr(result, name)
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float64, name
        assert arr.shape == (data.n_assets, data.n_bars), name
        for a in range(data.n_assets):
            s, e = data.start[a], data.end[a]
            assert np.isnan(arr[a, :s]).all() and np.isnan(arr[a, e:]).all(), name
            assert np.isfinite(arr[a, s:e]).all(), name


@pytest.mark.parametrize("direction", ["long", "short", "both"])
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_exit_reasons_in_allowed_set(data, fill, direction):
    bt = sb.backtest(data, "sma_cross", fast=2, slow=9, stop_loss=0.015, take_profit=0.03,
                     trailing_stop=0.02, max_bars=4, fill=fill, direction=direction)
    reasons = bt.trades["exit_reason"].to_pylist()
    assert set(reasons) <= EXIT_REASONS
    dirs = set(bt.trades["direction"].to_pylist())
    assert dirs <= ({"long"} if direction == "long" else
                    {"short"} if direction == "short" else {"long", "short"})
    # only the last trade of an asset can be an 'end' trade, at its last bar
    for a, sym in enumerate(data.symbols):
        rows = [t for t in bt.trades.to_pylist() if t["symbol"] == sym]
        for t in rows[:-1]:
            assert t["exit_reason"] != "end"
        if rows and rows[-1]["exit_reason"] == "end":
            assert rows[-1]["exit_bar"] == data.end[a] - 1


def test_sweep_table_types(data):
    res = sb.sweep(data, "sma_cross", **GRID)
    schema = res.table.schema
    assert schema.field("combo").type == pa.int64()
    assert schema.field("symbol").type == pa.string()
    assert schema.field("fast").type == pa.int64()
    assert schema.field("max_bars").type == pa.int64()
    for name in ("stop_loss", "take_profit", "trailing_stop", "fees", "fixed_fees"):
        assert schema.field(name).type == pa.float64(), name
    assert res.n_backtests == res.table.num_rows
