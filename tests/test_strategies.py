"""The built-in strategies against their definitions (docs/strategies.md).

* Indicator kernels equal the pure-Python reference indicators of tests/reference.py, with
  NaN exactly where the reference has no value (warm-up, outside the asset's span).
* Every strategy's signal events equal the reference signals, combo by combo in C order.
* Differential backtests: sb.backtest with random parameters, random risk/cost options
  (ATR rules included), both fills and all directions, on assets with different spans,
  equals reference_backtest fed with the reference signal codes.
* Sweep rows equal single backtests; signals never look ahead; bad parameters raise.
* Indicator values equal vectorbt's (to 1e-9) where vectorbt has the same indicator; where
  the definitions differ (EMA and Wilder seeds, vectorbt's ATR/RSI smoothing) the part
  that coincides is compared, as explained in docs/strategies.md.

Strategy names, parameters, grids and reference signals come from tests/strategy_cases.py,
which covers exactly the built-in strategies.
"""

import math
import subprocess
import sys

import numpy as np
import pytest

import reference as ref
from helpers import compare_asset, padded, random_config, random_ohlc
import sweepbt as sb
from strategy_cases import CASES
from sweepbt import kernels
from sweepbt.strategies import builtin as strategies
from sweepbt._vocabulary import METRIC_NAMES
from sweepbt.kernels.codes import ALL_CODES

BUILTINS = tuple(CASES)
REL = 1e-12


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def random_spans(rng, n, n_assets):
    spans = [(0, n)]
    for _ in range(1, n_assets):
        s = int(rng.integers(0, n // 3))
        e = int(rng.integers(max(s + 30, 2 * n // 3), n + 1))
        spans.append((s, e))
    return spans


def as_values(strategy, params):
    """``values`` in kernel dtype (what the engine hands to ``build``), axes as lists."""
    out = {}
    for p in strategy.params:
        v = np.atleast_1d(params[p.name])
        out[p.name] = v.astype(np.int64 if p.kind == "window" else np.float64)
    return out


def dense_codes(signals, s, a, n_assets, n_bars):
    bars, codes = signals.of(s, a, n_assets)
    assert np.all(np.diff(bars) > 0), "events must be strictly increasing bars"
    out = np.zeros(n_bars, np.int64)
    out[bars] = codes
    return out, bars


def ref_array(values, n_bars, start=0):
    """Reference list (None = undefined) on a span starting at ``start``, NaN-padded."""
    out = np.full(n_bars, np.nan)
    for i, v in enumerate(values):
        if v is not None:
            out[start + i] = v
    return out


def assert_same(got, expected, what, rtol=REL):
    """Equal to ``rtol`` with NaN exactly where expected is NaN."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{what}: NaN")
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=0.0, equal_nan=True,
                               err_msg=what)


# --------------------------------------------------------------------------------------
# the case table
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_case_table_covers_exactly_the_builtins():
    """The built-ins are what sb.STRATEGIES holds right after ``import sweepbt`` (tests
    register strategies of their own): run in a fresh interpreter."""
    fresh = subprocess.run(
        [sys.executable, "-c", "import sweepbt as sb; print(*sb.STRATEGIES, sep=' ')\n"
         "print(*(n for n, s in sb.STRATEGIES.items() if s.is_rank), sep=' ')"],
        capture_output=True, text=True, check=True).stdout.splitlines()
    every, rank = fresh[0].split(), fresh[1].split()
    # the rank strategies are checked against their own reference in tests/test_rank.py
    assert sorted(rank) == ["factor_rank", "low_volatility_rank", "momentum_rank",
                            "reversal_rank"]
    assert sorted(CASES) == sorted(set(every) - set(rank))
    for name, case in CASES.items():
        names = set(sb.STRATEGIES[name].param_names)
        assert case.name == name
        assert set(case.params) == set(case.grid) == set(case.sweep_grid) == names, name
        assert set(case.draw(np.random.default_rng(0))) == names, name
        assert case.vectorbt is None or set(case.vectorbt) == names, name


# --------------------------------------------------------------------------------------
# indicators against the reference
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spanned():
    """Three assets with different spans (NaN outside), and the per-span price lists."""
    rng = np.random.default_rng(42)
    n = 180
    prices = random_ohlc(rng, n, n_assets=3)
    spans = [(0, n), (23, n), (7, 140)]
    data = sb.Bundle.from_arrays(*padded(prices, spans))
    return data, prices, spans


WINDOWS = np.array([1, 2, 5, 14, 30], np.int64)


def _bank(kernel, data, *inputs):
    out = np.empty((data.n_assets, WINDOWS.size, data.n_bars))
    kernel(*inputs, data.start, data.end, WINDOWS, out)
    return out


def test_ema_bank_matches_reference(spanned):
    data, prices, spans = spanned
    bank = _bank(kernels.ema_bank, data, data.close)
    for a, (s, e) in enumerate(spans):
        for j, w in enumerate(WINDOWS):
            expected = ref_array(ref.ema(list(prices[3][a, s:e]), w), data.n_bars, s)
            assert_same(bank[a, j], expected, f"ema asset {a} w {w}")
            assert np.isnan(bank[a, j, :s + w - 1]).all()


def test_rsi_bank_matches_reference(spanned):
    data, prices, spans = spanned
    bank = _bank(kernels.rsi_bank, data, data.close)
    for a, (s, e) in enumerate(spans):
        for j, w in enumerate(WINDOWS):
            expected = ref_array(ref.wilder_rsi(list(prices[3][a, s:e]), w), data.n_bars, s)
            assert_same(bank[a, j], expected, f"rsi asset {a} w {w}")
            assert np.isnan(bank[a, j, :s + w]).all() and not np.isnan(bank[a, j, s + w])


def test_rsi_of_a_flat_stretch_is_undefined_and_all_gains_is_100():
    close = np.array([[100.0] * 10 + [101.0, 102.0, 103.0, 104.0]])
    out = np.empty((1, 1, close.shape[1]))
    kernels.rsi_bank(close, np.array([0]), np.array([close.shape[1]]), np.array([3]), out)
    assert np.isnan(out[0, 0, :10]).all()  # no change at all: undefined
    assert (out[0, 0, 10:] == 100.0).all()  # gains and no loss: 100
    assert ref.wilder_rsi(list(close[0]), 3)[9:] == [None, 100.0, 100.0, 100.0, 100.0]
    kernels.rsi_bank(close[:, ::-1].copy(), np.array([0]), np.array([close.shape[1]]),
                     np.array([3]), out)
    assert np.isnan(out[0, 0, :3]).all() and (out[0, 0, 3:] == 0.0).all()  # no gain: 0


def test_bollinger_bank_matches_reference(spanned):
    data, prices, spans = spanned
    shape = (data.n_assets, WINDOWS.size, data.n_bars)
    mid, sd = np.empty(shape), np.empty(shape)
    kernels.bollinger_bank(data.close, data.start, data.end, WINDOWS, mid, sd)
    for a, (s, e) in enumerate(spans):
        c = list(prices[3][a, s:e])
        for j, w in enumerate(WINDOWS):
            assert_same(mid[a, j], ref_array(ref.sma(c, w), data.n_bars, s), f"mid {a} {w}")
            expected = ref_array(ref.rolling_std(c, w), data.n_bars, s)
            # sd is ~1e-2 of the price: compare its error on the price scale
            np.testing.assert_array_equal(np.isnan(sd[a, j]), np.isnan(expected))
            np.testing.assert_allclose(sd[a, j], expected, rtol=1e-9, atol=1e-11,
                                       equal_nan=True)


def test_channel_bank_matches_reference(spanned):
    data, prices, spans = spanned
    shape = (data.n_assets, WINDOWS.size, data.n_bars)
    hh, ll = np.empty(shape), np.empty(shape)
    kernels.channel_bank(data.high, data.low, data.start, data.end, WINDOWS, hh, ll)
    for a, (s, e) in enumerate(spans):
        for j, w in enumerate(WINDOWS):
            rh, rl = ref.donchian_channel(list(prices[1][a, s:e]), list(prices[2][a, s:e]), w)
            # max and min are exact: bit-for-bit equality
            np.testing.assert_array_equal(hh[a, j], ref_array(rh, data.n_bars, s))
            np.testing.assert_array_equal(ll[a, j], ref_array(rl, data.n_bars, s))
            assert np.isnan(hh[a, j, :s + w]).all() and not np.isnan(hh[a, j, s + w])


def test_channel_excludes_the_current_bar():
    high = np.array([[10.0, 11.0, 12.0, 50.0, 13.0, 9.0, 9.5]])
    low = high - 1.0
    shape = (1, 1, high.shape[1])
    hh, ll = np.empty(shape), np.empty(shape)
    kernels.channel_bank(high, low, np.array([0]), np.array([7]), np.array([2]), hh, ll)
    np.testing.assert_array_equal(hh[0, 0], [np.nan, np.nan, 11.0, 12.0, 50.0, 50.0, 13.0])
    np.testing.assert_array_equal(ll[0, 0], [np.nan, np.nan, 9.0, 10.0, 11.0, 12.0, 8.0])


def test_roc_and_atr_banks_match_reference(spanned):
    data, prices, spans = spanned
    roc = _bank(kernels.roc_bank, data, data.close)
    atr = _bank(kernels.atr_bank, data, data.high, data.low, data.close)
    for a, (s, e) in enumerate(spans):
        o, h, l, c = (list(p[a, s:e]) for p in prices)
        for j, w in enumerate(WINDOWS):
            np.testing.assert_array_equal(roc[a, j], ref_array(ref.roc(c, w), data.n_bars, s))
            assert_same(atr[a, j], ref_array(ref.wilder_atr(h, l, c, w), data.n_bars, s),
                        f"atr {a} {w}")


def test_macd_lines_match_reference(spanned):
    data, prices, spans = spanned
    fast, slow, signal = 3, 8, 5
    ema = np.empty((data.n_assets, 2, data.n_bars))
    kernels.ema_bank(data.close, data.start, data.end, np.array([fast, slow]), ema)
    line = np.empty((data.n_assets, 1, data.n_bars))
    kernels.diff_rows_bank(ema, data.start, data.end, np.array([0]), np.array([1]), line)
    sig = np.empty_like(line)
    kernels.ema_rows_bank(line, data.start, data.end, np.array([0]), np.array([signal]), sig)
    for a, (s, e) in enumerate(spans):
        rl, rs = ref.macd(list(prices[3][a, s:e]), fast, slow, signal)
        assert_same(line[a, 0], ref_array(rl, data.n_bars, s), f"macd {a}")
        assert_same(sig[a, 0], ref_array(rs, data.n_bars, s), f"signal {a}")
        assert np.isnan(sig[a, 0, :s + slow + signal - 2]).all()
        assert not np.isnan(sig[a, 0, s + slow + signal - 2])


# --------------------------------------------------------------------------------------
# signal events against the reference, every combo of an axis product
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTINS)
def test_events_match_reference_for_every_combo(name, spanned):
    data, prices, spans = spanned
    strategy = sb.STRATEGIES[name]
    values = as_values(strategy, CASES[name].grid)
    columns = strategy.product(values)
    n_signals = len(next(iter(columns.values())))
    signals = strategy.build(data, values).events(0, n_signals)
    assert signals.ptr.size == n_signals * data.n_assets + 1
    n_events = 0
    for s in range(n_signals):
        p = {k: v[s].item() for k, v in columns.items()}
        for a, (start, end) in enumerate(spans):
            got, bars = dense_codes(signals, s, a, data.n_assets, data.n_bars)
            assert bars.size == 0 or (bars[0] >= start and bars[-1] < end)
            expected = np.zeros(data.n_bars, np.int64)
            expected[start:end] = CASES[name].reference_signals(
                *(x[a, start:end] for x in prices), p)
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} {p} asset {a}")
            assert np.all((got & ~ALL_CODES) == 0)
            n_events += bars.size
    assert n_events > 0


@pytest.mark.parametrize("name", BUILTINS)
def test_events_of_a_signal_range(name, spanned):
    """events(lo, hi) is the slice lo..hi of events(0, n), rows renumbered from 0."""
    data, _, _ = spanned
    strategy = sb.STRATEGIES[name]
    values = as_values(strategy, CASES[name].grid)
    n_signals = len(next(iter(strategy.product(values).values())))
    whole = strategy.build(data, values).events(0, n_signals)
    lo, hi = 1, n_signals - 1
    part = strategy.build(data, values).events(lo, hi)
    for s in range(lo, hi):
        for a in range(data.n_assets):
            for x, y in zip(whole.of(s, a, data.n_assets), part.of(s - lo, a, data.n_assets)):
                np.testing.assert_array_equal(x, y)


def test_macd_blocks_give_the_same_events(spanned, monkeypatch):
    data, _, _ = spanned
    strategy = sb.STRATEGIES["macd_cross"]
    values = as_values(strategy, CASES["macd_cross"].grid)
    n = 8
    whole = strategy.build(data, values).events(0, n)
    monkeypatch.setattr(strategies, "DERIVED_BLOCK_FLOATS", 3 * 2 * data.n_assets * data.n_bars)
    blocked = strategy.build(data, values).events(0, n)
    for x, y in zip((whole.ptr, whole.event_bar, whole.event_code),
                    (blocked.ptr, blocked.event_bar, blocked.event_code)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name", BUILTINS)
def test_no_look_ahead(name):
    """Events up to bar k do not change when the bars after k are cut off."""
    rng = np.random.default_rng(5)
    n = 160
    prices = random_ohlc(rng, n, n_assets=2)
    strategy = sb.STRATEGIES[name]
    values = as_values(strategy, {k: v[:1] for k, v in CASES[name].grid.items()})
    full = strategy.build(sb.Bundle.from_arrays(*prices), values).events(0, 1)
    for k in (40, 77, 121):
        cut = strategy.build(sb.Bundle.from_arrays(*(p[:, :k] for p in prices)),
                             values).events(0, 1)
        for a in range(2):
            bars, codes = full.of(0, a, 2)
            cbars, ccodes = cut.of(0, a, 2)
            np.testing.assert_array_equal(bars[bars < k], cbars)
            np.testing.assert_array_equal(codes[bars < k], ccodes)


# --------------------------------------------------------------------------------------
# differential backtests against the reference simulator
# --------------------------------------------------------------------------------------


def _risk(rng):
    cfg = random_config(rng)
    del cfg["fast"], cfg["slow"]
    return cfg


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize("name", BUILTINS)
def test_backtest_matches_reference(name, seed):
    rng = np.random.default_rng(10_000 + 97 * seed + BUILTINS.index(name))
    n = int(rng.integers(70, 200))
    prices = random_ohlc(rng, n, n_assets=2, vol=float(rng.choice([0.01, 0.03])))
    spans = random_spans(rng, n, 2)
    params = CASES[name].draw(rng)
    cfg = _risk(rng)
    data = sb.Bundle.from_arrays(*padded(prices, spans))
    bt = sb.backtest(data, name, periods_per_year=252, **params, **cfg)
    for a, (s, e) in enumerate(spans):
        o, h, l, c = (p[a, s:e] for p in prices)
        codes = CASES[name].reference_signals(o, h, l, c, params)
        run = ref.reference_backtest(list(o), list(h), list(l), list(c), codes, codes=True,
                                     periods_per_year=252.0, **cfg)
        compare_asset(bt, a, run, s, e, f"{name} seed {seed} asset {a} {params} {cfg}")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", BUILTINS)
def test_trade_window_matches_reference(name, seed):
    """window=(lo, hi): indicators and ATR warm up before lo, trading in [lo, hi) only."""
    rng = np.random.default_rng(20_000 + 31 * seed + BUILTINS.index(name))
    n = 220
    o, h, l, c = (p[0] for p in random_ohlc(rng, n))
    lo = int(rng.integers(30, 120))
    hi = int(rng.integers(lo + 20, n + 1))
    params = CASES[name].draw(rng)
    cfg = _risk(rng)
    data = sb.Bundle.from_arrays(o, h, l, c)
    bt = sb.backtest(data, name, periods_per_year=252, window=(lo, hi), **params, **cfg)
    codes = CASES[name].reference_signals(o[:hi], h[:hi], l[:hi], c[:hi], params)[lo:hi]
    atr = ref.wilder_atr(list(h[:hi]), list(l[:hi]), list(c[:hi]), cfg["atr_window"])[lo:hi]
    run = ref.reference_backtest(list(o[lo:hi]), list(h[lo:hi]), list(l[lo:hi]),
                                 list(c[lo:hi]), codes, codes=True, atr=atr,
                                 periods_per_year=252.0, **cfg)
    compare_asset(bt, 0, run, lo, hi, f"{name} seed {seed} window {(lo, hi)} {params}")


def test_codes_and_plus_minus_one_signals_agree():
    """reference_backtest: +1/-1 is BUY/SELL; code bit sets act by direction."""
    rng = np.random.default_rng(3)
    o, h, l, c = (list(p[0]) for p in random_ohlc(rng, 120))
    pm = ref.sma_cross_signals(c, 3, 8)
    as_codes = [ref.BUY if x > 0 else ref.SELL if x < 0 else 0 for x in pm]
    for direction in ("long", "short", "both"):
        for fill in ("next_open", "close"):
            a = ref.reference_backtest(o, h, l, c, pm, direction=direction, fill=fill)
            b = ref.reference_backtest(o, h, l, c, as_codes, codes=True, direction=direction,
                                       fill=fill)
            assert a["equity"] == b["equity"] and a["trades"] == b["trades"]
    # long-only codes are ignored by direction="short", short-only by "long"
    long_bits = [x & (ref.ENTER_LONG | ref.EXIT_LONG) for x in as_codes]
    flat = ref.reference_backtest(o, h, l, c, long_bits, codes=True, direction="short")
    assert flat["trades"] == [] and set(flat["equity"]) == {10_000.0}


# --------------------------------------------------------------------------------------
# sweeps equal single backtests
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("name", BUILTINS)
def test_sweep_rows_equal_single_backtests(name, fill):
    rng = np.random.default_rng(11)
    prices = random_ohlc(rng, 260, n_assets=2)
    data = sb.Bundle.from_arrays(*padded(prices, [(0, 260), (40, 230)]))
    options = dict(stop_loss=[None, 0.04], trailing_atr=[None, 2.0], fees=0.001,
                   fill=fill, direction="both", periods_per_year=252)
    res = sb.sweep(data, name, constraint=CASES[name].constraint, **CASES[name].sweep_grid,
                   **options)
    rows = res.table.to_pylist()
    names = sb.STRATEGIES[name].param_names
    n_combos = len(rows) // 2
    assert n_combos == res.n_combos and n_combos >= 8
    for row in rows[::2]:
        params = {k: row[k] for k in names + ("stop_loss", "trailing_atr")}
        bt = sb.backtest(data, name, fees=0.001, fill=fill, direction="both",
                         periods_per_year=252, **params)
        for r in rows:
            if all(r[k] == row[k] for k in params):
                stats = bt.stats.to_pylist()[list(data.symbols).index(r["symbol"])]
                for m in METRIC_NAMES:
                    got, exp = float(r[m]), float(stats[m])
                    assert (math.isnan(got) and math.isnan(exp)) or got == pytest.approx(
                        exp, rel=REL, abs=1e-12), f"{name} {params} {r['symbol']} {m}"


# --------------------------------------------------------------------------------------
# parameter validation
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    return sb.Bundle.from_arrays(*(p[0] for p in random_ohlc(np.random.default_rng(1), 120)))


@pytest.mark.parametrize("name, params, message", [
    ("rsi_reversion", dict(lower=70, upper=30), "requires lower < upper"),
    ("rsi_reversion", dict(lower=50, upper=50), "requires lower < upper"),
    ("rsi_reversion", dict(lower=-1), r"lower must be in \[0, 100\]"),
    ("rsi_reversion", dict(upper=101), r"upper must be in \[0, 100\]"),
    ("macd_cross", dict(fast=26, slow=12), "requires fast < slow"),
    ("macd_cross", dict(fast=12, slow=12), "requires fast < slow"),
    ("bollinger_reversion", dict(k=0), r"k must be in \(0, inf\)"),
    ("bollinger_breakout", dict(k=-1.5), r"k must be in \(0, inf\)"),
    ("bollinger_breakout", dict(bb_window=1), r"bb_window must be in \[2, inf\)"),
    ("momentum", dict(threshold=-0.01), r"threshold must be in \[0, inf\)"),
])
def test_bad_parameters_raise(small, name, params, message):
    with pytest.raises(ValueError, match=message):
        sb.backtest(small, name, **params)


def test_bad_values_in_a_sweep_axis_raise(small):
    with pytest.raises(ValueError, match=r"k\[1\] must be in \(0, inf\)"):
        sb.sweep(small, "bollinger_reversion", k=[1.0, 0.0])
    with pytest.raises(ValueError, match="requires fast < slow"):
        sb.sweep(small, "macd_cross", fast=[30, 40], slow=[10, 20])


def test_windows_are_integers_at_least_one(small):
    with pytest.raises(ValueError, match="rsi_window"):
        sb.backtest(small, "rsi_reversion", rsi_window=0)
    with pytest.raises(TypeError, match="entry_window"):
        sb.backtest(small, "donchian_breakout", entry_window=2.5)


def test_constraint_lets_a_mixed_grid_run(small):
    res = sb.sweep(small, "macd_cross", fast=[3, 12, 30], slow=[10, 26], signal=[9],
                   constraint="fast < slow")
    assert res.n_combos == 3
    res = sb.sweep(small, "rsi_reversion", lower=[30, 50], upper=[40, 70],
                   constraint="lower < upper")
    assert res.n_combos == 3


def test_mixed_grid_without_constraint_raises(small):
    """Some combos valid, some not, no constraint: refused before any backtest runs.

    Needs params.py to call Strategy.check_combos on the grid (see the report for the
    patch); skipped until it does.
    """
    try:
        sb.sweep(small, "macd_cross", fast=[3, 30], slow=[10, 26], signal=[9])
    except ValueError as exc:
        assert "requires fast < slow" in str(exc)
    else:
        pytest.skip("params.py does not call Strategy.check_combos yet")


# --------------------------------------------------------------------------------------
# vectorbt, where it has the same indicator
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vbt():
    return pytest.importorskip("vectorbt")


@pytest.fixture(scope="module")
def long_series():
    o, h, l, c = (p[0] for p in random_ohlc(np.random.default_rng(99), 3000, vol=0.015))
    return o, h, l, c


def _one(kernel, *rows, window):
    n = rows[0].size
    out = np.empty((1, 1, n))
    kernel(*(r[None, :] for r in rows), np.array([0]), np.array([n]), np.array([window]), out)
    return out[0, 0]


def _decayed(alpha, scale=1e-15):
    """Bars after which a seed's weight (1 - alpha)**k is below ``scale``."""
    return int(math.ceil(math.log(scale) / math.log(1.0 - alpha)))


VBT_TOL = dict(rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("w", [2, 5, 12, 26, 50])
def test_ema_equals_vectorbt(vbt, long_series, w):
    """vectorbt's MA(ewm=True) is pandas' ewm(span=w, adjust=False, min_periods=w): the same
    recursion, seeded with the first close instead of the SMA of the first w closes. With
    the first w closes replaced by their mean the two definitions coincide exactly."""
    c = long_series[3]
    ours = _one(kernels.ema_bank, c, window=w)
    seeded = c.copy()
    seeded[:w] = c[:w].mean()
    theirs = vbt.MA.run(seeded, window=w, ewm=True).ma.values
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, equal_nan=True, **VBT_TOL)
    # on the raw close they converge once the seed has decayed
    plain = vbt.MA.run(c, window=w, ewm=True).ma.values
    k = w - 1 + _decayed(2.0 / (w + 1))
    np.testing.assert_allclose(ours[k:], plain[k:], **VBT_TOL)


@pytest.mark.parametrize("w", [1, 2, 5, 14, 30])
def test_rsi_equals_vectorbt(vbt, long_series, w):
    """Wilder smoothing is an EWM with alpha = 1/w, i.e. vectorbt's ewm with span 2w-1,
    seeded with the mean of the first w gains (losses) at bar w instead of the first one."""
    from vectorbt.generic.nb import ewm_mean_1d_nb

    c = long_series[3]
    ours = _one(kernels.rsi_bank, c, window=w)
    d = np.diff(c)
    gain, loss = np.maximum(d, 0.0), np.maximum(-d, 0.0)  # gain[j] is bar j + 1
    up = gain[w - 1:].copy()
    down = loss[w - 1:].copy()
    up[0], down[0] = gain[:w].mean(), loss[:w].mean()
    avg_up = ewm_mean_1d_nb(up, 2 * w - 1, 0, False)
    avg_down = ewm_mean_1d_nb(down, 2 * w - 1, 0, False)
    theirs = np.full(c.size, np.nan)
    theirs[w:] = 100.0 - 100.0 / (1.0 + avg_up / avg_down)  # vectorbt's rsi_apply_nb
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, equal_nan=True, **VBT_TOL)
    # vbt.RSI itself (span 2w-1: alpha 1/w) converges to Wilder's once the seed decayed
    plain = vbt.RSI.run(c, window=2 * w - 1, ewm=True).rsi.values
    k = 2 * w + _decayed(1.0 / w) if w > 1 else 2
    np.testing.assert_allclose(ours[k:], plain[k:], **VBT_TOL)


@pytest.mark.parametrize("w, k", [(2, 1.0), (5, 2.0), (20, 2.0), (50, 0.5)])
def test_bollinger_equals_vectorbt(vbt, long_series, w, k):
    c = long_series[3]
    mid, sd = (np.empty((1, 1, c.size)) for _ in range(2))
    kernels.bollinger_bank(c[None, :], np.array([0]), np.array([c.size]), np.array([w]), mid,
                           sd)
    mid, sd = mid[0, 0], sd[0, 0]
    bb = vbt.BBANDS.run(c, window=w, ewm=False, alpha=k, ddof=0)
    for ours, theirs in ((mid, bb.middle.values), (mid - k * sd, bb.lower.values),
                         (mid + k * sd, bb.upper.values)):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, equal_nan=True, **VBT_TOL)


@pytest.mark.parametrize("fast, slow, signal", [(2, 5, 3), (12, 26, 9), (5, 35, 5)])
def test_macd_equals_vectorbt(vbt, long_series, fast, slow, signal):
    """MACD = EMA(fast) - EMA(slow), signal = EMA(signal) of MACD: with SMA seeds put into
    vectorbt's inputs the lines coincide exactly; on the raw close vbt.MACD(macd_ewm=True,
    signal_ewm=True) converges to ours once its first-value seeds have decayed."""
    from vectorbt.generic.nb import ewm_mean_1d_nb

    c = long_series[3]
    ema = np.empty((1, 2, c.size))
    kernels.ema_bank(c[None, :], np.array([0]), np.array([c.size]), np.array([fast, slow]),
                     ema)
    line = np.empty((1, 1, c.size))
    kernels.diff_rows_bank(ema, np.array([0]), np.array([c.size]), np.array([0]),
                           np.array([1]), line)
    sig = np.empty_like(line)
    kernels.ema_rows_bank(line, np.array([0]), np.array([c.size]), np.array([0]),
                          np.array([signal]), sig)
    line, sig = line[0, 0], sig[0, 0]

    def seeded(x, w):
        x = x.copy()
        x[:w] = x[:w].mean()
        return x

    theirs = (vbt.MA.run(seeded(c, fast), window=fast, ewm=True).ma.values
              - vbt.MA.run(seeded(c, slow), window=slow, ewm=True).ma.values)
    np.testing.assert_allclose(line, theirs, equal_nan=True, **VBT_TOL)
    f = slow - 1  # the MACD line's first defined bar
    theirs_sig = np.full(c.size, np.nan)
    theirs_sig[f + signal - 1:] = ewm_mean_1d_nb(seeded(line[f:], signal), signal, signal,
                                                  False)[signal - 1:]
    np.testing.assert_allclose(sig, theirs_sig, equal_nan=True, **VBT_TOL)
    plain = vbt.MACD.run(c, fast_window=fast, slow_window=slow, signal_window=signal,
                         macd_ewm=True, signal_ewm=True)
    k = slow + signal + _decayed(2.0 / (slow + 1)) + _decayed(2.0 / (signal + 1))
    np.testing.assert_allclose(line[k:], plain.macd.values[k:], **VBT_TOL)
    np.testing.assert_allclose(sig[k:], plain.signal.values[k:], **VBT_TOL)


@pytest.mark.parametrize("w", [2, 5, 14, 30])
def test_atr_equals_vectorbt_where_it_coincides(vbt, long_series, w):
    """vectorbt's ATR is an EWM (span w, first-value seed) or SMA of the true range; Wilder's
    is alpha = 1/w seeded with the mean of the first w true ranges. The true range is the
    same (our ATR with window 1 IS the true range); Wilder's recursion is vectorbt's ewm
    with span 2w-1 from that seed."""
    from vectorbt.generic.nb import ewm_mean_1d_nb

    o, h, l, c = long_series
    theirs = vbt.ATR.run(h, l, c, window=w, ewm=True)
    np.testing.assert_allclose(_one(kernels.atr_bank, h, l, c, window=1), theirs.tr.values,
                               **VBT_TOL)
    tr = theirs.tr.values
    ours = _one(kernels.atr_bank, h, l, c, window=w)
    x = tr[w - 1:].copy()
    x[0] = tr[:w].mean()
    expected = np.full(c.size, np.nan)
    expected[w - 1:] = ewm_mean_1d_nb(x, 2 * w - 1, 0, False)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_allclose(ours, expected, equal_nan=True, **VBT_TOL)
    plain = vbt.ATR.run(h, l, c, window=2 * w - 1, ewm=True).atr.values
    k = 2 * w + _decayed(1.0 / w)
    np.testing.assert_allclose(ours[k:], plain[k:], **VBT_TOL)
