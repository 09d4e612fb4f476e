"""User-written strategies: define_strategy / load_strategy (docs/custom-strategies.md).

Covers: a custom re-implementation of sma_cross giving exactly the built-in's results; the
worked example examples/zscore.py against the pure-Python reference simulator; parameter
declaration and validation; clear errors for every kind of mistake (never a raw numba
traceback); look-ahead detection; the generated, disk-cached drivers (reused by a second
process, new ones when the user's file changes, a read-only cache location); and the
in-memory fallback for functions that cannot be imported by name.

Compiles are slow, so the compiled strategies are module-scope fixtures.
"""

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from numba import njit

import sweepbt as sb
from helpers import USER_FILE, ind_bad_shape_at_7, sig_bad_code_above_5
from reference import reference_backtest
from sweepbt import BUY, SELL, _numba_cache
from sweepbt.strategies import custom, custom_cache, custom_files, custom_signals
from sweepbt._vocabulary import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "zscore.py"


# ----------------------------------------------------------------------------------------
# a custom sma_cross with the built-in's exact arithmetic


@njit(cache=True)
def _sma_row(x, w, out):
    """Neumaier-compensated rolling mean, as sweepbt.kernels.rolling_mean_1d."""
    n = x.shape[0]
    if n < w:
        return
    total = 0.0
    comp = 0.0
    for i in range(n):
        v = x[i]
        t = total + v
        if abs(total) >= abs(v):
            comp += (total - t) + v
        else:
            comp += (v - t) + total
        total = t
        if i - w >= 0:
            y = -x[i - w]
            t = total + y
            if abs(total) >= abs(y):
                comp += (total - t) + y
            else:
                comp += (y - t) + total
            total = t
        if i >= w - 1:
            out[i] = (total + comp) / w


@njit(cache=True)
def sma_features(close, fast, slow):
    out = np.full((2, close.shape[0]), np.nan)
    _sma_row(close, fast, out[0])
    _sma_row(close, slow, out[1])
    return out


@njit(cache=True)
def cross_signal(features, i):
    if i < 1:
        return 0
    a, b = features[0, i], features[1, i]
    pa, pb = features[0, i - 1], features[1, i - 1]
    if a != a or b != b or pa != pa or pb != pb:
        return 0
    d, pd = a - b, pa - pb
    if d > 0.0 and pd <= 0.0:
        return BUY
    if d < 0.0 and pd >= 0.0:
        return SELL
    return 0


def random_bundle(seed, n=260, n_assets=3, spans=True):
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, (n_assets, n)), axis=1))
    prev = np.concatenate([np.full((n_assets, 1), 100.0), close[:, :-1]], axis=1)
    open_ = prev * np.exp(rng.normal(0.0, 0.01, (n_assets, n)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.01, (n_assets, n))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.01, (n_assets, n))))
    prices = [open_, high, low, close]
    if spans and n_assets > 1:  # a late listing and an early delisting
        for p in prices:
            p[1, :37] = np.nan
            if n_assets > 2:
                p[2, n - 41:] = np.nan
    return sb.Bundle.from_arrays(*prices)


@pytest.fixture(scope="module")
def custom_sma():
    return custom.define_strategy("custom_sma_cross", indicators=sma_features,
                                  signal=cross_signal,
                                  indicator_params={"fast": 10, "slow": 50})


@pytest.fixture(scope="module")
def zscore():
    return sb.load_strategy(f"{EXAMPLE}:zscore")


@pytest.fixture(scope="module")
def data():
    return random_bundle(1)


def assert_tables_equal(a, b, columns):
    for c in columns:
        x = np.asarray(a[c].to_numpy(zero_copy_only=False), dtype=np.float64)
        y = np.asarray(b[c].to_numpy(zero_copy_only=False), dtype=np.float64)
        np.testing.assert_array_equal(x, y, err_msg=c)


# ----------------------------------------------------------------------------------------
# same results as the built-in, same path


def test_custom_sma_cross_sweep_equals_builtin(custom_sma, data):
    grid = dict(fast=[3, 5, 8], slow=[10, 21], stop_loss=[None, 0.04],
                take_profit=[None, 0.08], fees=0.001, constraint="fast < slow",
                direction="both", fill="next_open")
    a = sb.sweep(data, "sma_cross", **grid).table
    b = sb.sweep(data, custom_sma, **grid).table
    assert a.num_rows == b.num_rows == 3 * 2 * 2 * 2 * data.n_assets
    assert_tables_equal(a, b, ("fast", "slow", "stop_loss", "take_profit") + METRIC_NAMES)


def test_custom_sma_cross_backtest_equals_builtin(custom_sma, data):
    kw = dict(fast=4, slow=15, trailing_stop=0.05, fill="close", direction="long")
    a = sb.backtest(data, "sma_cross", **kw)
    b = sb.backtest(data, custom_sma, **kw)
    assert b.strategy == "custom_sma_cross"
    assert b.params["fast"] == 4 and b.params["slow"] == 15
    np.testing.assert_array_equal(a.equity, b.equity)
    assert a.trades.to_pylist() == b.trades.to_pylist()


def test_events_in_blocks_equal_one_block(custom_sma, zscore, data, monkeypatch):
    """Tiny block budget: one signal per block (features reused across blocks and calls),
    the same CSR events as one block."""
    values = {"fast": np.array([3, 5, 8]), "slow": np.array([10, 21, 30])}
    whole = custom_sma.build(data, values).events(1, 8)
    zvalues = {"lookback": np.array([5, 9]), "entry_z": np.array([0.5, 1.0, 1.5]),
               "exit_z": np.array([0.0, 0.5])}
    zsource = zscore.build(data, zvalues)
    zwhole = [zsource.events(lo, hi) for lo, hi in ((0, 12), (3, 10), (0, 1))]
    monkeypatch.setattr(custom_signals, "BLOCK_BYTES", 1)
    source = custom_sma.build(data, values)
    parts = source.events(1, 8)
    for f in ("ptr", "event_bar", "event_code"):
        np.testing.assert_array_equal(getattr(whole, f), getattr(parts, f))
    zsource = zscore.build(data, zvalues)
    for (lo, hi), expected in zip(((0, 12), (3, 10), (0, 1)), zwhole):
        got = zsource.events(lo, hi)
        for f in ("ptr", "event_bar", "event_code"):
            np.testing.assert_array_equal(getattr(expected, f), getattr(got, f))
    # features: a partly cached range is completed, a cached sub-range is reused
    fresh = zscore.build(data, zvalues)._bank(0, 2)
    source = zscore.build(data, zvalues)
    source._bank(1, 2)
    np.testing.assert_array_equal(source._bank(0, 2), fresh)
    np.testing.assert_array_equal(source._bank(1, 2), fresh[fresh.size // 2:])
    # events lie in each asset's span, sorted, with valid codes
    n_assets = data.n_assets
    for row in range(7 * n_assets):
        a = row % n_assets
        bars = whole.event_bar[whole.ptr[row]:whole.ptr[row + 1]]
        assert np.all(np.diff(bars) > 0)
        assert np.all((bars >= data.start[a]) & (bars < data.end[a]))
    assert set(np.unique(whole.event_code)) <= {BUY, SELL}


# ----------------------------------------------------------------------------------------
# the worked example against the pure-Python reference


def py_zscore_signals(close, lookback, entry_z, exit_z):
    """The z-score strategy of examples/zscore.py in plain Python: +1 BUY, -1 SELL, 0."""
    out = []
    for i in range(len(close)):
        if i < lookback - 1:
            out.append(0)
            continue
        window = [float(x) for x in close[i - lookback + 1:i + 1]]
        total = 0.0
        for x in window:
            total += x
        mean = total / lookback
        ss = 0.0
        for x in window:
            ss += (x - mean) * (x - mean)
        std = math.sqrt(ss / lookback)
        if std <= 0.0:
            out.append(0)
            continue
        z = (float(close[i]) - mean) / std
        out.append(1 if z < -entry_z else -1 if z > exit_z else 0)
    return out


def test_zscore_example_sweep_matches_reference(zscore):
    data = random_bundle(5, n=220, n_assets=2)
    prices = [data.open, data.high, data.low, data.close]
    res = sb.sweep(data, zscore, lookback=[5, 12], entry_z=[1.0, 1.5], exit_z=[0.0, 0.5],
                   stop_loss=[None, 0.04], fees=0.001, direction="both",
                   periods_per_year=252)
    rows = res.table.to_pylist()
    assert len(rows) == 2 * 2 * 2 * 2 * 2
    n_traded = 0
    for row in rows:
        a = data.symbols.index(row["symbol"])
        s, e = int(data.start[a]), int(data.end[a])
        signals = py_zscore_signals(data.close[a, s:e], row["lookback"], row["entry_z"],
                                    row["exit_z"])
        ref = reference_backtest(*(list(p[a, s:e]) for p in prices), signals,
                                 stop_loss=row["stop_loss"], fees=0.001, direction="both",
                                 periods_per_year=252.0)
        for name in METRIC_NAMES:
            if name not in ref["metrics"]:
                continue
            got, exp = float(row[name]), float(ref["metrics"][name])
            if math.isnan(exp):
                assert math.isnan(got), (row, name)
            else:
                assert got == pytest.approx(exp, rel=1e-9, abs=1e-9), (row, name)
        n_traded += row["n_trades"] > 0
    assert n_traded > len(rows) // 2  # the check is not vacuous


def test_zscore_example_parameters(zscore):
    assert zscore.name == "zscore"
    assert [(p.name, p.kind, p.default) for p in zscore.params] == [
        ("lookback", "window", 20), ("entry_z", "float", 2.0), ("exit_z", "float", 0.0)]
    assert "rolling mean" in zscore.params[0].doc


# ----------------------------------------------------------------------------------------
# parameters: declaration and validation


def test_parameter_validation(custom_sma, data):
    with pytest.raises(TypeError, match="unknown parameter.*lookback"):
        sb.backtest(data, custom_sma, lookback=3)
    with pytest.raises(ValueError, match="fast must be >= 1"):
        sb.backtest(data, custom_sma, fast=0)
    with pytest.raises(ValueError, match="longer than the data"):
        sb.sweep(data, custom_sma, fast=[5, 10_000])
    with pytest.raises(TypeError, match="integer number of bars"):
        sb.backtest(data, custom_sma, fast=2.5)


def test_float_parameters_take_ints(zscore, data):
    bt = sb.backtest(data, zscore, lookback=10, entry_z=1, exit_z=0)
    assert bt.params == {"lookback": 10, "entry_z": 1.0, "exit_z": 0.0}


def test_windows_longer_than_an_assets_span(custom_sma):
    """An asset shorter than a window gets NaN features and no signal, not a crash."""
    data = random_bundle(3, n=120, n_assets=3)
    short = int((data.end - data.start).min())
    bt = sb.backtest(data, custom_sma, fast=5, slow=short + 3)
    a = int(np.argmin(data.end - data.start))
    assert bt.stats["n_trades"][a].as_py() == 0


def test_register(custom_sma, data):
    strat = custom.define_strategy("custom_sma_registered", indicators=sma_features,
                                   signal=cross_signal,
                                   indicator_params={"fast": 10, "slow": 50}, register=True)
    try:
        assert sb.STRATEGIES["custom_sma_registered"] is strat
        by_name = sb.backtest(data, "custom_sma_registered", fast=5, slow=20)
        by_obj = sb.backtest(data, custom_sma, fast=5, slow=20)
        np.testing.assert_array_equal(by_name.equity, by_obj.equity)
    finally:
        sb.STRATEGIES.pop("custom_sma_registered", None)
    with pytest.raises(ValueError, match="built-in strategy has this name"):
        custom.define_strategy("sma_cross", indicators=sma_features, signal=cross_signal,
                               indicator_params={"fast": 10, "slow": 50}, register=True)


# ----------------------------------------------------------------------------------------
# mistakes: clear errors naming the strategy, caught at definition time


@njit
def ind_one(close, w):
    out = np.full((1, close.shape[0]), np.nan)
    for i in range(w - 1, close.shape[0]):
        out[0, i] = close[i] - close[i - w + 1]
    return out


@njit
def sig_one(features, i, t):
    x = features[0, i]
    if x > t:
        return BUY
    if x < -t:
        return SELL
    return 0


def plain_signal(features, i, t):
    return 0


@njit
def sig_float(features, i, t):
    return 9.0


@njit
def sig_bool(features, i, t):
    return features[0, i] > t


@njit
def sig_16(features, i, t):
    return 16 if i == 3 else 0


@njit
def sig_peek(features, i, t):
    return BUY if features[0, i + 1] > t else 0


@njit
def sig_wrap(features, i, t):
    prev = features[0, i - 1]  # at i = 0, index -1 wraps around to the last bar
    return BUY if prev == prev else 0


@njit
def sig_global_max(features, i, t):
    m = -np.inf
    for k in range(features.shape[1]):
        if features[0, k] > m:
            m = features[0, k]
    return BUY if features[0, i] >= m else 0


@njit
def sig_writes(features, i, t):
    features[0, i] = 0.0
    return 0


@njit
def sig_row1(features, i, t):
    return BUY if features[1, i] > t else 0


@njit
def ind_1d(close, w):
    return close.copy()


@njit
def ind_short(close, w):
    return np.full((1, close.shape[0] - 1), np.nan)


@njit
def ind_int(close, w):
    return np.zeros((1, close.shape[0]), np.int64)


@njit
def ind_centered(close, w):
    n = close.shape[0]
    out = np.full((1, n), np.nan)
    h = w // 2
    for i in range(h, n - h):
        out[0, i] = close[i - h:i + h + 1].mean()
    return out


@njit
def ind_normalized(close, w):
    return (close / close.max()).reshape((1, close.shape[0])).copy()


@njit
def ind_crash_short(close, w):
    out = np.full((1, close.shape[0]), np.nan)
    out[0, w - 1] = close[w - 1]  # IndexError when the span is shorter than w
    return out


@njit
def ind_two(close, w, k):
    return np.full((1, close.shape[0]), np.nan)


@njit
def ind_hlc(high, low, close, w):
    return np.full((1, close.shape[0]), np.nan)


@njit
def sig_two(features, i, entry, exit_):
    return 0


@njit
def sig_untypable(features, i, t):
    seen = {}
    seen[1] = "x"
    seen[2] = features[0, i]  # fine in Python; numba: a dict's values have one type
    return 0


def define(indicators=ind_one, signal=sig_one, **kw):
    kw.setdefault("indicator_params", {"w": 5})
    kw.setdefault("signal_params", {"t": 1.0})
    return custom.define_strategy("oops", indicators=indicators, signal=signal, **kw)


MISTAKES = [
    (dict(signal=plain_signal), "signal must be a numba @njit function, got a plain Python"),
    (dict(indicators=np.mean), "indicators must be a numba @njit function"),
    (dict(indicator_params={"w": 5, "k": 2.0}),
     r"indicators ind_one\(close, w\) takes 2 argument\(s\) but sweepbt passes 3"),
    (dict(signal_params={}), r"signal sig_one\(features, i, t\) takes 3 argument\(s\) but "
                             r"sweepbt passes 2"),
    (dict(signal=sig_two, signal_params={"exit_": 0.0, "entry": 1.0}),
     r"parameters in the order \(entry, exit_\) but they are declared in the order"),
    (dict(indicators=ind_two, indicator_params={"w": 5, "t": 1.0}, signal_params={"k": 1.0}),
     "declared both in|takes"),
    (dict(indicators=ind_hlc), r"starts with \(high, low, close\) but inputs=\('close',\)"),
    (dict(inputs=("close", "adj_close")), "unknown input 'adj_close'"),
    (dict(indicator_params={"window": 5}), "'window' clashes with an engine option"),
    (dict(signal_params={"stop_loss": 0.1}), "'stop_loss' clashes"),
    (dict(indicator_params={"w": True}), "bool default"),
    (dict(indicator_params={"w": 0}), "int default declares a window"),
    (dict(indicator_params={"w": "5"}), "must be an int"),
    (dict(signal=sig_float), r"signal returned 9\.0 \(float\) at bar 0; it must return an "
                             "integer code"),
    (dict(signal=sig_bool), r"signal returned (True|False) \(bool_?\)"),
    (dict(signal=sig_16), r"signal returned 16 at bar 3, outside 0\.\.15"),
    (dict(signal=sig_peek), r"signal raised IndexError at bar \d+ .*reads beyond bar i "
                            r"\(look-ahead\)"),
    (dict(signal=sig_wrap), r"signal at bar 0 changes when later bars are removed"),
    (dict(signal=sig_global_max), "signal at bar .* changes when later bars are removed.*"
                                  r"look-ahead"),
    (dict(signal=sig_writes), "signal must not modify features"),
    (dict(signal=sig_row1), "reads a feature row indicators does not produce"),
    (dict(indicators=ind_1d), r"2-D float64 array.*1-D array of shape"),
    (dict(indicators=ind_short), r"indicators returned shape \(1, \d+\).*expected"),
    (dict(indicators=ind_int), "must return a float64 array; it returned int64"),
    (dict(n_features=3), r"indicators returned shape \(1, \d+\).*expected \(3, "),
    (dict(indicators=ind_centered), r"indicators: feature 0 at bar \d+ changes when the bars "
                                    r"after bar \d+ are removed.*look-ahead"),
    (dict(indicators=ind_normalized), "indicators: feature 0 at bar 0 changes.*look-ahead"),
    (dict(indicators=ind_crash_short, indicator_params={"w": 30}),
     r"indicators raised IndexError: .* on 1 bar\(s\) .*shorter than its window"),
]


@pytest.mark.parametrize("kwargs, message", MISTAKES,
                         ids=[m[1][:40] for m in MISTAKES])
def test_mistakes_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError) as info:
        define(**kwargs)
    text = str(info.value)
    assert text.startswith("strategy 'oops': "), text
    assert __import__("re").search(message, text), text
    assert "Traceback" not in text and "nopython" not in text


def test_define_checks_name_and_n_features():
    with pytest.raises(ValueError, match="identifier"):
        custom.define_strategy("z score", indicators=ind_one, signal=sig_one,
                               indicator_params={"w": 5}, signal_params={"t": 1.0})
    with pytest.raises(ValueError, match="n_features is required with check=False"):
        define(check=False)
    with pytest.raises(ValueError, match="param_docs names unknown"):
        define(param_docs={"nope": "x"})


def test_numba_typing_error_is_wrapped(data):
    strat = define(signal=sig_untypable)  # the pure-Python probe passes
    with pytest.raises(ValueError) as info:
        sb.backtest(data, strat)
    text = str(info.value)
    assert text.startswith("strategy 'oops': numba cannot compile signal sig_untypable("), text
    assert "Failed in nopython mode" not in text and "\n" not in text
    assert "test_custom_strategies.py, line" in text


@pytest.fixture(scope="module")
def runtime_checked():
    return custom.define_strategy("rt", indicators=ind_bad_shape_at_7,
                                  signal=sig_bad_code_above_5, indicator_params={"w": 5},
                                  signal_params={"t": 1.0})


def test_runtime_checks_in_compiled_drivers(runtime_checked, data):
    """Parameter values the probe did not try: checked inside the compiled drivers."""
    sb.backtest(data, runtime_checked, w=6, t=2.0)
    with pytest.raises(ValueError, match=r"strategy 'rt': indicators returned shape \(1, "
                                         r"\d+\) on A0 \(\d+ bars\) with w=7; expected"):
        sb.sweep(data, runtime_checked, w=[5, 7])
    with pytest.raises(ValueError, match=r"strategy 'rt': signal returned 42 \(outside "
                                         r"0\.\.15\) at span bar 20 of A0 with w=5, t=6\.0"):
        sb.sweep(data, runtime_checked, t=[1.0, 6.0])


# ----------------------------------------------------------------------------------------
# load_strategy


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_load_strategy_errors(tmp_path):
    path = write(tmp_path / "mom.py", USER_FILE.format(threshold=0.02))
    with pytest.raises(ValueError, match="not found"):
        sb.load_strategy(f"{tmp_path / 'missing.py'}:x")
    with pytest.raises(ValueError, match=r"has no 'nope' \(Strategy objects in the file: "
                                         r"momentum\)"):
        sb.load_strategy(f"{path}:nope")
    with pytest.raises(ValueError, match="is a int, not a Strategy"):
        sb.load_strategy(f"{path}:not_a_strategy")
    assert sb.load_strategy(str(path)).name == "momentum"  # the file's only Strategy


BAD_FILES = {
    "syntax": ("x = 1\ndef f(:\n    pass\n",
               "SyntaxError at line 2: invalid syntax: def f(:"),
    "indent": ("    x = 1\n", "IndentationError at line 1: unexpected indent: x = 1"),
    "raises": ("import math\n\nx = 1 / 0\n",
               "it raised ZeroDivisionError: division by zero while being imported (line 3)"),
    "raises_in_a_function": ("def helper():\n    raise RuntimeError('no data\\nmore')\n"
                             "\nhelper()\n",
                             "it raised RuntimeError: no data while being imported (line 2)"),
    "exits": ("import sys\nsys.exit(0)\n",
              "it called sys.exit(0) while being imported (raise an exception instead)"),
    "exits_3": ("raise SystemExit(3)\n",
                "it called sys.exit(3) while being imported (raise an exception instead)"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_load_strategy_file_that_cannot_be_imported(tmp_path, kind):
    """A syntax error, an exception or sys.exit() while the file runs: a ValueError naming
    the file and the original error; nothing is left in sys.modules; fixed, it loads."""
    body, message = BAD_FILES[kind]
    path = tmp_path / f"bad_{kind}.py"
    path.write_text(body)
    before = set(sys.modules)
    with pytest.raises(ValueError) as info:
        sb.load_strategy(f"{path}:momentum")
    real = os.path.realpath(path)
    assert str(info.value) == f"cannot import strategy file {real}: {message}"
    assert set(sys.modules) == before
    write(path, USER_FILE.format(threshold=0.02))
    assert sb.load_strategy(f"{path}:momentum").name == "momentum"


def test_load_strategy_keyboard_interrupt_propagates(tmp_path):
    path = tmp_path / "interrupted.py"
    path.write_text("raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        sb.load_strategy(f"{path}:x")
    assert "interrupted" not in sys.modules


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["syntax", "raises", "exits"])
def test_cli_strategy_file_that_cannot_be_imported(tmp_path, kind):
    body, message = BAD_FILES[kind]
    path = tmp_path / "bad.py"
    path.write_text(body)
    proc = subprocess.run([sys.executable, "-m", "sweepbt", "backtest", "--demo", "--strategy",
                           f"{path}:x"], capture_output=True, text=True, timeout=120,
                          env=os.environ.copy())
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.splitlines() == [
        f"sweepbt: error: cannot import strategy file {os.path.realpath(path)}: {message}"
    ], proc.stderr


def test_load_strategy_module_names(tmp_path, monkeypatch):
    """The file gets the name a plain import gives it, unless another module holds it."""
    for name in [m for m in sys.modules if m.startswith("sbt_zz_")]:
        monkeypatch.delitem(sys.modules, name)
    code = USER_FILE.format(threshold=0.1)
    tmp_path = Path(os.path.realpath(tmp_path))
    (tmp_path / "a").mkdir()
    plain = write(tmp_path / "a" / "sbt_zz_strategy.py", code)
    assert custom_files.file_module_name(str(plain)) == "sbt_zz_strategy"
    pkg = tmp_path / "root" / "sbt_zz_pkg" / "sub"
    pkg.mkdir(parents=True)
    for d in (pkg, pkg.parent):
        (d / "__init__.py").write_text("")
    inside = write(pkg / "strats.py", code)
    assert custom_files.file_module_name(str(inside)) == "sbt_zz_pkg.sub.strats"
    hashed = _numba_cache.user_module_name
    # a standard-library name, or a name another file holds: the path's hash
    shadow = write(tmp_path / "random.py", code)
    assert custom_files.file_module_name(str(shadow)) == hashed(str(shadow))
    (tmp_path / "b").mkdir()
    twin = write(tmp_path / "b" / "sbt_zz_strategy.py", code)
    (tmp_path / "c").mkdir()
    normal = write(tmp_path / "c" / "sbt_zz_imported.py", code)
    try:
        first = sb.load_strategy(f"{plain}:momentum")
        second = sb.load_strategy(f"{twin}:momentum")
        assert first.build.spec.signal.py_func.__module__ == "sbt_zz_strategy"
        assert second.build.spec.signal.py_func.__module__ == hashed(str(twin))
        # a package's module whose package is not importable here runs all the same
        in_pkg = sb.load_strategy(f"{inside}:momentum")
        assert in_pkg.build.spec.signal.py_func.__module__ == "sbt_zz_pkg.sub.strats"
        assert "sbt_zz_pkg" not in sys.modules
        bt = sb.backtest(random_bundle(3, n=120, n_assets=2), in_pkg, w=5)
        assert bt.stats.num_rows == 2
        # a module imported normally is used as it is, not executed again
        monkeypatch.syspath_prepend(str(normal.parent))
        import sbt_zz_imported

        assert sb.load_strategy(f"{normal}:momentum") is sbt_zz_imported.momentum
    finally:
        for name in [m for m in sys.modules
                     if m.startswith("sbt_zz_") or m == hashed(str(twin))]:
            del sys.modules[name]


def test_load_strategy_reloads_an_edited_file(tmp_path):
    """Editing the file (even a constant only) gives a new generated module; the old
    generated file is left as it was."""
    path = write(tmp_path / "mom.py", USER_FILE.format(threshold=0.02))
    first = sb.load_strategy(f"{path}:momentum")
    assert sb.load_strategy(f"{path}:momentum") is first  # unchanged file: not re-executed
    mod1 = custom.generated_module(first)
    stamp = os.stat(mod1.__file__).st_mtime_ns
    write(path, USER_FILE.format(threshold=0.03))
    second = sb.load_strategy(f"{path}:momentum")
    assert second is not first
    mod2 = custom.generated_module(second)
    assert mod2.__file__ != mod1.__file__
    assert os.stat(mod1.__file__).st_mtime_ns == stamp
    module_name = second.build.spec.indicators.py_func.__module__
    assert sys.modules[module_name].__file__ == os.path.realpath(path)  # "mom", or a hash
    assert f"_indicators_module = importlib.import_module({module_name!r})" in \
        Path(mod2.__file__).read_text()


def test_generated_file_is_never_rewritten(custom_sma):
    mod = custom.generated_module(custom_sma)
    stamp = os.stat(mod.__file__).st_mtime_ns
    del sys.modules[mod.__name__]
    try:
        again = custom_cache.make_drivers(custom_sma.build.spec)  # imports the file anew
    finally:
        sys.modules[mod.__name__] = mod
    assert again is not mod and again.__file__ == mod.__file__
    assert os.stat(mod.__file__).st_mtime_ns == stamp


def test_read_only_cache_location_falls_back(custom_sma, tmp_path, monkeypatch):
    read_only, writable = str(tmp_path / "ro"), str(tmp_path / "rw")
    real = custom_cache.writable
    monkeypatch.setattr(custom_cache, "writable", lambda d: d != read_only and real(d))
    monkeypatch.setattr(custom_cache, "candidate_dirs", lambda: [read_only, writable])
    spec = custom_sma.build.spec
    name = custom.generated_module(custom_sma).__name__
    saved = sys.modules.pop(name)
    try:
        # the read-only location is skipped
        mod = custom_cache.make_drivers(spec)
        assert os.path.dirname(mod.__file__) == writable
        del sys.modules[name]
        # a file already present in a read-only location is used as it is
        monkeypatch.setattr(custom_cache, "writable", lambda d: False)
        monkeypatch.setattr(custom_cache, "candidate_dirs", lambda: [writable])
        assert custom_cache.make_drivers(spec).__file__ == mod.__file__
        del sys.modules[name]
        # nothing writable, nothing there: drivers compiled in memory, no disk cache
        monkeypatch.setattr(custom_cache, "candidate_dirs", lambda: [read_only])
        assert not hasattr(custom_cache.make_drivers(spec), "__file__")
    finally:
        sys.modules[name] = saved


def test_not_importable_functions_compile_in_memory():
    """Functions nested in a function cannot be imported by a fresh process: no disk
    cache, same results. Also: a strategy without any parameter."""

    @njit
    def feats(close):
        out = np.full((1, close.shape[0]), np.nan)
        for i in range(1, close.shape[0]):
            out[0, i] = close[i] - close[i - 1]
        return out

    @njit
    def sig(features, i):
        x = features[0, i]
        return BUY if x > 0.0 else SELL if x < 0.0 else 0

    strat = custom.define_strategy("updown", indicators=feats, signal=sig)
    assert strat.params == ()
    data = random_bundle(9, n=80, n_assets=2)
    bt = sb.backtest(data, strat, fill="close", fees=0.0)
    assert not hasattr(custom.generated_module(strat), "__file__")
    for a in range(data.n_assets):
        s, e = int(data.start[a]), int(data.end[a])
        c = data.close[a, s:e]
        signals = [0] + [1 if c[i] > c[i - 1] else -1 if c[i] < c[i - 1] else 0
                         for i in range(1, e - s)]
        ref = reference_backtest(*(list(p[a, s:e]) for p in (data.open, data.high,
                                                                 data.low, data.close)),
                                 signals, fill="close")
        np.testing.assert_allclose(bt.equity[a, s:e], ref["equity"], rtol=1e-12)


# ----------------------------------------------------------------------------------------
# a second process reuses numba's cache


@pytest.mark.slow
def test_second_process_reuses_the_cache(zscore):
    data = random_bundle(2, n=300, n_assets=2)
    sb.backtest(data, zscore, lookback=15)  # compiled (or loaded) here, on disk now
    script = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        import sweepbt as sb
        from sweepbt.strategies import custom
        rng = np.random.default_rng(0)
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
        data = sb.Bundle.from_arrays(close, close * 1.01, close * 0.99, close)
        t0 = time.perf_counter()
        strat = sb.load_strategy({str(EXAMPLE) + ':zscore'!r})
        bt = sb.backtest(data, strat, lookback=15)
        took = time.perf_counter() - t0
        mod = custom.generated_module(strat)
        hits = [sum(f.stats.cache_hits.values()) for f in
                (mod.indicator_stage, mod.signal_stage)]
        misses = [sum(f.stats.cache_misses.values()) for f in
                  (mod.indicator_stage, mod.signal_stage)]
        print(hits[0], hits[1], misses[0], misses[1], took, mod.__file__)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=120)
    assert out.returncode == 0, out.stderr
    hit_ind, hit_sig, miss_ind, miss_sig, took, path = out.stdout.split()
    assert int(hit_ind) > 0 and int(hit_sig) > 0, out.stdout
    assert int(miss_ind) == 0 and int(miss_sig) == 0, out.stdout
    assert path == custom.generated_module(zscore).__file__
    print(f"second process: load_strategy + first backtest {float(took):.3f} s")


# ----------------------------------------------------------------------------------------
# a strategy file imported normally and loaded by path share numba's cache


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """A fresh NUMBA_CACHE_DIR, seeded with a copy of the built-in kernels' cache (if any),
    so that subprocesses start fast but see no cache entry of the user's files."""
    import shutil

    from sweepbt.kernels import sweep_metrics

    cache = tmp_path_factory.mktemp("numba_cache")
    source = getattr(getattr(sweep_metrics, "_cache", None), "cache_path", None)
    if source and os.path.isdir(source):
        shutil.copytree(source, cache / os.path.basename(source))
    return cache


PLAIN_IMPORT = """
import sweepbt as sb
from zscore import zscore
from sweepbt.strategies import custom
bt = sb.backtest(sb.demo(), zscore)
drivers = custom.generated_module(zscore)
print(zscore.build.spec.indicators.py_func.__module__, drivers.__name__,
      sum(drivers.indicator_stage.stats.cache_hits.values()),
      repr(bt.stats["total_return"].to_pylist()))
"""


@pytest.mark.slow
@pytest.mark.parametrize("plain_first", [True, False], ids=["import-then-cli",
                                                            "cli-then-import"])
def test_file_imported_normally_and_by_path_share_the_cache(private_cache, tmp_path,
                                                             plain_first):
    """`from zscore import zscore` in one process and `--strategy zscore.py:zscore` in
    another (a shared NUMBA_CACHE_DIR), in either order: both run, with the same
    generated drivers, the second from the cache. (It was ModuleNotFoundError: numba's
    cache entry recorded the module name the first process gave the file.)"""
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "zscore.py").write_text(EXAMPLE.read_text())
    env = {k: v for k, v in os.environ.items() if k != "SWEEPBT_CACHE_DIR"}
    env["NUMBA_CACHE_DIR"] = str(private_cache)

    def plain():  # the file's folder is the working directory: `import zscore` works
        out = subprocess.run([sys.executable, "-c", PLAIN_IMPORT], cwd=folder, env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout.split(maxsplit=3)

    def cli():  # run elsewhere: `zscore` is not importable by name there
        out = subprocess.run([sys.executable, "-m", "sweepbt", "backtest", "--demo",
                              "--strategy", f"{folder / 'zscore.py'}:zscore", "--trades",
                              "0"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "ALPHA" in out.stdout and "Traceback" not in out.stderr
        return out.stdout

    if plain_first:
        module, drivers, hits, returns = plain()
        cli()
        assert int(hits) == 0  # compiled here first
    else:
        cli()
        module, drivers, hits, returns = plain()
        assert int(hits) > 0  # the drivers the CLI compiled
    assert module == "zscore"
    again = plain()  # and once more, from the cache
    assert again[:2] == [module, drivers] and int(again[2]) > 0
    assert again[3] == returns
