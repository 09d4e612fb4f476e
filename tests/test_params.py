"""Parameters: bad values raise a clear error naming the parameter; grid semantics."""

import itertools
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
import sweepbt._results
from sweepbt._vocabulary import METRIC_NAMES

N_BARS = 90


def _prices(seed, n=N_BARS, n_assets=2):
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (n_assets, n)), axis=1))
    prev = np.concatenate([np.full((n_assets, 1), 100.0), close[:, :-1]], axis=1)
    open_ = prev * np.exp(rng.normal(0.0, 0.01, (n_assets, n)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.01, (n_assets, n))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.01, (n_assets, n))))
    return open_, high, low, close


@pytest.fixture(scope="module")
def data():
    return sb.Bundle.from_arrays(*_prices(11), symbols=["AAA", "BBB"])


# ----------------------------------------------------------------------------------------
# bad parameters
# ----------------------------------------------------------------------------------------

BAD_SCALARS = [
    # (kwargs, exception, words the message must contain)
    ({"fastt": 3}, TypeError, ["fastt"]),
    ({"stop": 0.05}, TypeError, ["stop"]),
    ({"fast": 0}, ValueError, ["fast", ">= 1"]),
    ({"slow": -3}, ValueError, ["slow"]),
    ({"slow": N_BARS + 1}, ValueError, ["slow", "longer than the data"]),
    ({"fast": 2.5}, TypeError, ["fast", "integer"]),
    ({"fast": "3"}, TypeError, ["fast"]),
    ({"fast": True}, TypeError, ["fast"]),
    ({"fast": None}, TypeError, ["fast"]),
    ({"stop_loss": -0.05}, ValueError, ["stop_loss"]),
    ({"stop_loss": 0.0}, ValueError, ["stop_loss"]),
    ({"stop_loss": 1.0}, ValueError, ["stop_loss"]),
    ({"stop_loss": 1.5}, ValueError, ["stop_loss"]),
    ({"take_profit": -0.1}, ValueError, ["take_profit"]),
    ({"take_profit": 0.0}, ValueError, ["take_profit"]),
    ({"trailing_stop": -0.1}, ValueError, ["trailing_stop"]),
    ({"trailing_stop": 1.0}, ValueError, ["trailing_stop"]),
    ({"max_bars": 0}, ValueError, ["max_bars"]),
    ({"max_bars": 2.5}, TypeError, ["max_bars"]),
    ({"fees": -0.001}, ValueError, ["fees"]),
    ({"fees": None}, ValueError, ["fees"]),
    ({"fixed_fees": -1.0}, ValueError, ["fixed_fees"]),
    ({"slippage": -0.01}, ValueError, ["slippage"]),
    ({"size": 0}, ValueError, ["size"]),
    ({"size": 0.0}, ValueError, ["size"]),
    ({"size": 1.0001}, ValueError, ["size"]),
    ({"size": -0.5}, ValueError, ["size"]),
    ({"stop_loss": math.inf}, ValueError, ["stop_loss", "finite"]),
    ({"take_profit": math.inf}, ValueError, ["take_profit", "finite"]),
    ({"fees": math.inf}, ValueError, ["fees", "finite"]),
    ({"fixed_fees": math.nan}, ValueError, ["fixed_fees", "finite"]),
    ({"slippage": math.nan}, ValueError, ["slippage", "finite"]),
    ({"size": math.nan}, ValueError, ["size", "finite"]),
    ({"fast": math.nan}, ValueError, ["fast", "finite"]),
    ({"slow": math.inf}, ValueError, ["slow", "finite"]),
    ({"max_bars": np.float64(math.inf)}, ValueError, ["max_bars", "finite"]),
    ({"stop_loss": "5%"}, TypeError, ["stop_loss"]),
    ({"fill": "open"}, ValueError, ["fill", "open"]),
    ({"fill": None}, ValueError, ["fill"]),
    ({"direction": "up"}, ValueError, ["direction", "up"]),
    ({"init_cash": 0}, ValueError, ["init_cash"]),
    ({"init_cash": math.nan}, ValueError, ["init_cash"]),
    ({"periods_per_year": -1}, ValueError, ["periods_per_year"]),
    ({"threads": 0}, ValueError, ["threads"]),
    ({"threads": -2}, ValueError, ["threads"]),
    ({"threads": 10**6}, ValueError, ["threads"]),
    ({"threads": 1.5}, TypeError, ["threads"]),
    ({"threads": "2"}, TypeError, ["threads"]),
    ({"threads": True}, TypeError, ["threads"]),
]


def _id(case):
    return ",".join(f"{k}={v!r}" for k, v in case[0].items())


@pytest.mark.parametrize("case", BAD_SCALARS, ids=[_id(c) for c in BAD_SCALARS])
@pytest.mark.parametrize("run", ["backtest", "sweep"])
def test_bad_parameter_raises_naming_it(data, run, case):
    kwargs, exc, words = case
    with pytest.raises(exc) as info:
        getattr(sb, run)(data, "sma_cross", **kwargs)
    for word in words:
        assert word in str(info.value)


BAD_AXES = [
    ({"fast": []}, ValueError, ["fast", "empty"]),
    ({"stop_loss": ()}, ValueError, ["stop_loss", "empty"]),
    ({"fast": [2, 0]}, ValueError, ["fast[1]"]),
    ({"fast": [2, 3.5]}, TypeError, ["fast[1]"]),
    ({"slow": [10, N_BARS + 5]}, ValueError, ["slow[1]", "longer than the data"]),
    ({"stop_loss": [0.02, math.inf]}, ValueError, ["stop_loss[1]", "finite"]),
    ({"fees": [0.001, -0.001]}, ValueError, ["fees[1]"]),
    ({"fees": [0.001, None]}, ValueError, ["fees"]),
    ({"size": [0.5, 0.0]}, ValueError, ["size[1]"]),
    ({"take_profit": np.array([0.05, np.inf])}, ValueError, ["take_profit[1]", "finite"]),
    ({"fill": ["close", "next_open"]}, ValueError, ["fill", "swept"]),
    ({"direction": ["long", "short"]}, ValueError, ["direction", "swept"]),
    ({"direction": ("long",)}, ValueError, ["direction", "swept"]),
]


@pytest.mark.parametrize("case", BAD_AXES, ids=[_id(c) for c in BAD_AXES])
def test_bad_axis_raises_naming_it(data, case):
    kwargs, exc, words = case
    with pytest.raises(exc) as info:
        sb.sweep(data, "sma_cross", **kwargs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("value", [[3, 5], (3, 5), range(3, 5), np.array([3, 5])])
def test_backtest_refuses_sequences(data, value):
    with pytest.raises(ValueError, match=r"fast.*sweep"):
        sb.backtest(data, "sma_cross", fast=value)


def test_backtest_refuses_option_sequences(data):
    with pytest.raises(ValueError, match="stop_loss"):
        sb.backtest(data, "sma_cross", stop_loss=[0.02, 0.05])


def test_unknown_strategy(data):
    with pytest.raises(ValueError, match="nope"):
        sb.backtest(data, "nope")


BAD_CONSTRAINTS = [
    ("fast <", ValueError, ["constraint", "fast <", "ends with '<', which needs a value"]),
    ("", ValueError, ["constraint", "it is empty"]),
    ("fast < slwo", ValueError, ["slwo"]),
    ("fast < stop_loss", ValueError, ["stop_loss"]),  # an option not given is not a name
    ("__import__('os')", ValueError, ["a function call is not allowed"]),
    ("__import__('os').system('true') or fast < slow", ValueError, ["not allowed"]),
    ("fast.real < slow", ValueError, ["an attribute (a dot after a name) is not allowed"]),
    ("fast < slow if 1 else 0", ValueError, ["an if/else expression is not allowed"]),
    ("[fast][0] < slow", ValueError, ["is not allowed"]),
    ("lambda: 1", ValueError, ["lambda is not allowed"]),
    ("'a' < 'b'", ValueError, ["'a' is not a number"]),
    ("fast < slow and True", ValueError, ["True is not a number"]),
    # Python's own words ("invalid syntax", "BinOp") become what to write instead
    ("fast = slow", ValueError, ["to compare, write '=='"]),
    ("fast <> slow", ValueError, ["'<>' is not an operator here; write '!='"]),
    ("fast < slow && slow < 50", ValueError, ["write 'and'"]),
    ("fast < slow || slow < 50", ValueError, ["write 'or'"]),
    ("fast =< slow", ValueError, ["write '<='"]),
    ("!(fast < slow)", ValueError, ["write 'not'"]),
    ("fast & slow", ValueError, ["'&' is not an operator a constraint takes; write 'and'"]),
    ("fast << slow", ValueError, ["'<<' is not an operator a constraint takes"]),
    ("fast is slow", ValueError, ["write '=='"]),
    ("(fast < slow", ValueError, ["parentheses do not pair up (one '(' too many)"]),
    ("fast < slow)", ValueError, ["parentheses do not pair up (one ')' too many)"]),
    ("fast < slow and", ValueError, ["ends with 'and'"]),
    ("fast < slow;", ValueError, ["at character 12 (';')", "comparisons (< <= > >= =="]),
    ("fast < slow, 3", ValueError, ["a comma (a tuple) is not allowed"]),
    (3, TypeError, ["constraint"]),
]


@pytest.mark.parametrize("case", BAD_CONSTRAINTS, ids=[repr(c[0]) for c in BAD_CONSTRAINTS])
def test_bad_constraint(data, case):
    expression, exc, words = case
    with pytest.raises(exc) as info:
        sb.sweep(data, "sma_cross", fast=[2, 5], slow=[10, 20], constraint=expression)
    for word in words:
        assert word in str(info.value)
    for python_word in ("invalid syntax", "BinOp", "Constant", "Call", "Attribute"):
        assert python_word not in str(info.value)


def test_constraint_leaving_nothing(data):
    with pytest.raises(ValueError, match=r"constraint.*leaves no combination"):
        sb.sweep(data, "sma_cross", fast=[20, 30], slow=[5, 10], constraint="fast < slow")


def test_constraint_does_not_run_code(data, tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(ValueError):
        sb.sweep(data, "sma_cross", fast=[2, 5], slow=[10, 20],
                 constraint=f"open({str(marker)!r}, 'w')")
    assert not marker.exists()


@pytest.mark.parametrize("metric,k,how,exc,word", [
    ("sharp", 3, "mean", ValueError, "sharp"),
    ("", 3, "mean", ValueError, "metric"),
    ("sharpe", 0, "mean", ValueError, "k"),
    ("sharpe", -1, "mean", ValueError, "k"),
    ("sharpe", 1.5, "mean", ValueError, "k"),
    ("sharpe", True, "mean", ValueError, "k"),
    ("sharpe", "3", "mean", ValueError, "k"),
    ("sharpe", 3, "max", ValueError, "max"),
])
def test_best_bad_arguments(data, metric, k, how, exc, word):
    res = sb.sweep(data, "sma_cross", fast=[2, 3], slow=[5, 8])
    with pytest.raises(exc) as info:
        res.best(metric, k=k, how=how)
    assert word in str(info.value)


# ----------------------------------------------------------------------------------------
# grid semantics
# ----------------------------------------------------------------------------------------


def test_cartesian_product_size_and_order(data):
    axes = dict(fast=[2, 3, 4], slow=[10, 20], stop_loss=[None, 0.02, 0.05],
                fees=[0.0, 0.001])
    res = sb.sweep(data, "sma_cross", **axes)
    n_combos = 3 * 2 * 3 * 2
    assert res.n_combos == n_combos
    table = res.table
    assert table.num_rows == n_combos * data.n_assets
    # combo ids 0..n-1, each once per asset (combo-major), symbols in bundle order
    assert table["combo"].to_pylist() == [c for c in range(n_combos) for _ in data.symbols]
    assert table["symbol"].to_pylist() == list(data.symbols) * n_combos
    # combos enumerate the product with the first parameter varying slowest
    rows = table.to_pylist()[::data.n_assets]
    got = [tuple(r[name] for name in axes) for r in rows]
    assert got == list(itertools.product(*axes.values()))


def test_constraint_filters_combinations(data):
    fasts, slows = [2, 5, 10, 20], [5, 10, 20]
    res = sb.sweep(data, "sma_cross", fast=fasts, slow=slows, stop_loss=[None, 0.03],
                   constraint="fast < slow")
    expected = [(f, s, sl) for f, s, sl in itertools.product(fasts, slows, [None, 0.03])
                if f < s]
    rows = res.table.to_pylist()[::data.n_assets]
    assert [(r["fast"], r["slow"], r["stop_loss"]) for r in rows] == expected
    assert res.n_combos == len(expected)
    # a combo's id is its index in the unconstrained grid (C order), whatever is kept
    grid = list(itertools.product(fasts, slows, [None, 0.03]))
    assert res.table["combo"].to_pylist()[::data.n_assets] == [grid.index(e) for e in expected]


def test_constraint_arithmetic_and_chained(data):
    res = sb.sweep(data, "sma_cross", fast=[2, 3, 5, 8], slow=[6, 10, 16],
                   constraint="2 * fast <= slow <= 3 * fast and not fast == 3")
    pairs = {(r["fast"], r["slow"]) for r in res.table.to_pylist()}
    assert pairs == {(f, s) for f in [2, 3, 5, 8] for s in [6, 10, 16]
                     if 2 * f <= s <= 3 * f and f != 3}


def test_constraint_on_a_rule_that_is_off(data):
    """An option that is off compares as NaN: every comparison with it is False."""
    res = sb.sweep(data, "sma_cross", fast=[2], slow=[10], stop_loss=[None, 0.01, 0.05],
                   constraint="stop_loss < 0.03 or stop_loss > 0.04")
    assert res.table["stop_loss"].to_pylist()[::data.n_assets] == [0.01, 0.05]


def test_none_in_a_list_means_rule_off(data):
    res = sb.sweep(data, "sma_cross", fast=3, slow=12, stop_loss=[None, 0.01],
                   take_profit=[None, 0.02], trailing_stop=[None, 0.015], max_bars=[None, 4])
    table = res.table
    assert table.schema.field("stop_loss").type == pa.float64()
    assert table.schema.field("max_bars").type == pa.int64()
    n = data.n_assets
    assert table["stop_loss"].to_pylist()[::n] == [None] * 8 + [0.01] * 8
    assert table["max_bars"].to_pylist()[::n] == [None, 4] * 8
    for row in table.to_pylist():
        # the row equals the single backtest with those rules (None = off)
        params = {k: row[k] for k in ("stop_loss", "take_profit", "trailing_stop", "max_bars")}
        bt = sb.backtest(data, "sma_cross", fast=3, slow=12, **params)
        a = list(data.symbols).index(row["symbol"])
        stats = bt.stats.to_pylist()[a]
        for name in METRIC_NAMES:
            assert row[name] == pytest.approx(stats[name], rel=1e-12, nan_ok=True), name
        for rule, count in (("stop_loss", "n_stop"), ("take_profit", "n_take"),
                            ("trailing_stop", "n_trail"), ("max_bars", "n_time")):
            if params[rule] is None:
                assert row[count] == 0
    # the rules do fire when on (the comparison above is not vacuous)
    assert sum(table["n_stop"].to_pylist()) > 0 and sum(table["n_time"].to_pylist()) > 0


def test_scalar_options_given_appear_as_columns(data):
    res = sb.sweep(data, "sma_cross", fast=[2, 4], slow=15, fees=0.001, stop_loss=None,
                   size=0.5)
    table = res.table
    assert table["slow"].to_pylist() == [15] * table.num_rows
    assert table["fees"].to_pylist() == [0.001] * table.num_rows
    assert table["size"].to_pylist() == [0.5] * table.num_rows
    assert table["stop_loss"].null_count == table.num_rows
    for absent in ("take_profit", "trailing_stop", "max_bars", "fixed_fees", "slippage"):
        assert absent not in table.column_names


def test_strategy_parameters_always_appear(data):
    """Parameters not given take the strategy's defaults and still get a column."""
    long_data = sb.Bundle.from_arrays(*_prices(5, n=120))
    res = sb.sweep(long_data, "sma_cross", stop_loss=[0.02, 0.04])
    assert res.table["fast"].to_pylist()[0] == 10 and res.table["slow"].to_pylist()[0] == 50


def test_column_order(data):
    res = sb.sweep(data, "sma_cross", fees=0.001, stop_loss=[None, 0.02], slow=[10, 20],
                   fast=3)
    names = res.table.column_names
    assert names[0] == "combo"
    s = names.index("symbol")
    assert names[s + 1:] == list(METRIC_NAMES)
    params = names[1:s]
    assert params[:2] == ["fast", "slow"]  # strategy parameters first, declared order
    assert sorted(params[2:]) == ["fees", "stop_loss"]
    # the order does not depend on the order the keywords were given in
    again = sb.sweep(data, "sma_cross", fast=3, slow=[10, 20], stop_loss=[None, 0.02],
                     fees=0.001)
    assert again.table.column_names == names
    # metric types: counts are integers, the rest float64
    for name in METRIC_NAMES:
        want = pa.int64() if name.startswith("n_") else pa.float64()
        assert res.table.schema.field(name).type == want, name


def _tables_equal(a, b):
    assert a.column_names == b.column_names
    assert a.schema.equals(b.schema, check_metadata=False)
    for name in a.column_names:
        x, y = a[name].to_pylist(), b[name].to_pylist()
        assert len(x) == len(y)
        for u, v in zip(x, y):
            assert u == v or (isinstance(u, float) and math.isnan(u) and math.isnan(v)), name


def test_to_parquet_round_trip(data, tmp_path):
    res = sb.sweep(data, "sma_cross", fast=[2, 3], slow=[5, 10], stop_loss=[None, 0.02],
                   max_bars=[None, 5])
    path = tmp_path / "sweep.parquet"
    returned = res.to_parquet(path)
    assert os.fspath(returned) == os.fspath(path)
    back = pq.read_table(path)
    _tables_equal(back, res.table)
    assert back.schema.metadata == res.table.schema.metadata
    assert sorted(os.listdir(tmp_path)) == ["sweep.parquet"]


def test_to_parquet_leaves_no_partial_file(data, tmp_path, monkeypatch):
    res = sb.sweep(data, "sma_cross", fast=[2, 3], slow=[5, 10])
    path = tmp_path / "sweep.parquet"

    def failing_write(table, where, **kwargs):
        with open(where, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(sweepbt._results.pq, "write_table", failing_write)
    with pytest.raises(OSError, match="disk full"):
        res.to_parquet(path)
    assert os.listdir(tmp_path) == []


def test_to_parquet_does_not_clobber_on_error(data, tmp_path, monkeypatch):
    """An earlier good file survives a failed rewrite."""
    res = sb.sweep(data, "sma_cross", fast=[2, 3], slow=[5, 10])
    path = tmp_path / "sweep.parquet"
    res.to_parquet(path)
    before = path.read_bytes()

    def failing_write(table, where, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sweepbt._results.pq, "write_table", failing_write)
    with pytest.raises(OSError):
        res.to_parquet(path, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["sweep.parquet"]


def test_best_orders_with_nan_last(data):
    # fast == slow never crosses: no trade, flat equity, sharpe NaN
    res = sb.sweep(data, "sma_cross", fast=[3, 5, 8], slow=[5, 8, 13])
    table = res.table
    n = data.n_assets
    sharpe = np.array(table["sharpe"].to_pylist(), dtype=float).reshape(-1, n).mean(axis=1)
    assert np.isnan(sharpe).sum() == 2  # (5, 5) and (8, 8)
    best = res.best("sharpe", k=100)
    assert best.num_rows == res.n_combos
    assert best["rank"].to_pylist() == list(range(1, res.n_combos + 1))
    got = np.array(best["sharpe"].to_pylist(), dtype=float)
    finite = got[~np.isnan(got)]
    assert np.isnan(got[-2:]).all() and finite.size == res.n_combos - 2
    assert (np.diff(finite) <= 0).all()
    # values are the per-combo means over assets, with their own parameters
    for row in best.to_pylist():
        c = row["combo"]
        want = sharpe[c]
        assert row["sharpe"] == pytest.approx(want, nan_ok=True)
        assert (row["fast"], row["slow"]) == (table["fast"][c * n].as_py(),
                                              table["slow"][c * n].as_py())
    top3 = res.best("sharpe", k=3)
    assert top3.to_pylist() == best.slice(0, 3).to_pylist()


def test_best_lower_is_better_for_drawdown(data):
    res = sb.sweep(data, "sma_cross", fast=[2, 3, 5], slow=[8, 13, 21], stop_loss=[None, 0.01])
    best = res.best("max_drawdown", k=50)
    dd = best["max_drawdown"].to_pylist()
    assert dd == sorted(dd)
    assert res.best("max_drawdown", k=1)["max_drawdown"][0].as_py() == min(dd)
    # higher is better for the others
    ret = res.best("total_return", k=50)["total_return"].to_pylist()
    assert ret == sorted(ret, reverse=True)


def test_best_ties_keep_combo_order(data):
    # fast == slow never trades: every combo has total_return 0, so all tie
    res = sb.sweep(data, "sma_cross", fast=[4, 4], slow=[4, 4])
    best = res.best("total_return", k=10)
    assert best["combo"].to_pylist() == list(range(res.n_combos))


def test_best_median(data):
    res = sb.sweep(data, "sma_cross", fast=[2, 3, 5], slow=[8, 13])
    n = data.n_assets
    med = np.median(np.array(res.table["total_return"].to_pylist()).reshape(-1, n), axis=1)
    best = res.best("total_return", k=10, how="median")
    assert best["total_return"].to_pylist() == pytest.approx(sorted(med, reverse=True))


@pytest.mark.parametrize("nan", [math.nan, np.float64(math.nan)])
def test_nan_turns_a_rule_off_like_none(data, nan):
    """NaN where a risk rule may be None means "off" (a pandas or Arrow row carries it so)."""
    off = dict(stop_loss=None, take_profit=None, trailing_stop=None, max_bars=None)
    with_nan = dict.fromkeys(off, nan)
    a = sb.backtest(data, "sma_cross", fast=3, slow=10, **off)
    b = sb.backtest(data, "sma_cross", fast=3, slow=10, **with_nan)
    assert b.params == a.params and all(b.params[n] is None for n in off)
    assert b.stats.equals(a.stats) and b.trades.equals(a.trades)
    res = sb.sweep(data, "sma_cross", fast=3, slow=10, stop_loss=[0.05, nan])
    assert res.table["stop_loss"].to_pylist()[-1] is None
