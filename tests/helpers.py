"""Helpers shared by several test files (import them from here, never from a test file).

The reference simulators (reference.py, portfolio_reference.py, rank_reference.py) and the
built-in strategy case table (strategy_cases.py) are modules of their own; the data fixtures
are in conftest.py.
"""

import math
import os
import subprocess
import textwrap
import time

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st
from numba import njit

import sweepbt as sb
from sweepbt import BUY, SELL, kernels
from sweepbt.kernels import (N_RANK, N_RULES, TRADE_DTYPE, Holdings, Market, Outputs,
                             RankCombos, RankRule, Rule, Scores, SimSettings, Weighting)
from rank_reference import momentum_score, volatility
from portfolio_reference import reference_portfolio
from reference import reference_backtest, sma_cross_signals, wilder_atr
from sweepbt._sinks import SharpeMoments
from sweepbt._vocabulary import METRIC_NAMES

NAN = float("nan")


# --------------------------------------------------------------------------------------
# random prices
# --------------------------------------------------------------------------------------


REL = 1e-9
TRADE_NUMBERS = ("entry_price", "exit_price", "entry_quote", "exit_quote", "units", "pnl",
                 "return", "mfe", "mae", "commission", "tax")


def random_ohlc(rng, n, n_assets=1, vol=0.02):
    """Seeded GBM with realistic bars: gaps at the open, wicks beyond open/close."""
    r = rng.normal(0.0002, vol, (n_assets, n))
    close = 100.0 * np.exp(np.cumsum(r, axis=1))
    prev = np.concatenate([np.full((n_assets, 1), 100.0), close[:, :-1]], axis=1)
    open_ = prev * np.exp(rng.normal(0.0, vol / 2, (n_assets, n)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, vol / 2, (n_assets, n))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, vol / 2, (n_assets, n))))
    return open_, high, low, close


def random_config(rng):
    """Random sma_cross options: every rule, cost, fill and direction."""
    def maybe(value):
        return value if rng.random() < 0.5 else None

    fast = int(rng.integers(2, 8))
    return dict(
        fast=fast,
        slow=int(rng.integers(fast + 1, fast + 15)),
        stop_loss=maybe(float(rng.uniform(0.005, 0.08))),
        take_profit=maybe(float(rng.uniform(0.005, 0.15))),
        trailing_stop=maybe(float(rng.uniform(0.005, 0.08))),
        max_bars=maybe(int(rng.integers(1, 15))),
        fees=float(rng.choice([0.0, 0.001, 0.01])),
        fixed_fees=float(rng.choice([0.0, 1.0, 25.0])),
        slippage=float(rng.choice([0.0, 0.0005, 0.005])),
        size=float(rng.choice([1.0, 0.5, 0.9])),
        fill=str(rng.choice(["next_open", "close"])),
        direction=str(rng.choice(["long", "short", "both"])),
        stop_atr=maybe(float(rng.uniform(0.5, 4.0))),
        take_atr=maybe(float(rng.uniform(0.5, 6.0))),
        trailing_atr=maybe(float(rng.uniform(0.5, 4.0))),
        atr_window=int(rng.integers(1, 21)),
    )


def padded(prices, spans):
    """Copies of the price arrays, NaN outside each asset's span."""
    out = [p.copy() for p in prices]
    for a, (s, e) in enumerate(spans):
        for p in out:
            p[a, :s] = np.nan
            p[a, e:] = np.nan
    return out


# --------------------------------------------------------------------------------------
# the engine against the reference (tests/reference.py)
# --------------------------------------------------------------------------------------


def assert_close(actual, expected, what):
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), f"{what}: expected NaN, got {actual}"
    else:
        assert actual == pytest.approx(expected, rel=REL, abs=1e-9), what


def compare_asset(bt, a, ref, start, end, what):
    """Engine asset ``a`` (bars start..end-1 on the bundle axis) against a reference run."""
    for series in ("equity", "cash", "units"):
        got = getattr(bt, series)[a, start:end]
        np.testing.assert_allclose(got, ref[series], rtol=REL, atol=1e-7,
                                   err_msg=f"{what}: {series}")
        assert np.isnan(getattr(bt, series)[a, :start]).all()
        assert np.isnan(getattr(bt, series)[a, end:]).all()
    symbol = bt.stats["symbol"][a].as_py()
    trades = bt.trades.filter(pc.equal(bt.trades["symbol"], symbol)).to_pylist()
    assert len(trades) == len(ref["trades"]), f"{what}: trade count"
    for t, (got, exp) in enumerate(zip(trades, ref["trades"])):
        where = f"{what} trade {t}"
        assert got["direction"] == exp["direction"], where
        assert got["entry_bar"] - start == exp["entry_bar"], where
        assert got["exit_bar"] - start == exp["exit_bar"], where
        assert got["exit_reason"] == exp["exit_reason"], where
        for field in TRADE_NUMBERS:
            assert_close(got[field], exp[field], f"{where} {field}")
    stats = bt.stats.slice(a, 1).to_pylist()[0]
    for name in METRIC_NAMES:
        assert_close(float(stats[name]), float(ref["metrics"][name]), f"{what} {name}")


@njit(cache=True)
def _volume_as_feature(volume):
    out = np.empty((1, volume.shape[0]))
    out[0, :] = volume
    return out


@njit(cache=True)
def _feature_as_code(features, i):
    return int(features[0, i])


#: a strategy whose signal code at bar i is the volume of bar i (any code, conflicts too)
CODES_IN_VOLUME = sb.define_strategy("codes_in_volume", indicators=_volume_as_feature,
                                     signal=_feature_as_code, inputs=("volume",),
                                     n_features=1, check=False)

#: signal codes with both bits of one side set (they cancel), and plain ones
CONFLICTS = (sb.ENTER_LONG | sb.EXIT_LONG, sb.ENTER_SHORT | sb.EXIT_SHORT,
             sb.ENTER_LONG | sb.EXIT_LONG | sb.ENTER_SHORT,
             sb.ENTER_SHORT | sb.EXIT_SHORT | sb.EXIT_LONG, 15, sb.BUY, sb.SELL, 0)


# --------------------------------------------------------------------------------------
# property tests (hypothesis)
# --------------------------------------------------------------------------------------


PPY = 252.0
INIT_CASH = 10_000.0
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


#: SWEEPBT_PROPERTY_SCALE=20 runs 20x the examples (a deeper search, minutes instead of s)
SCALE = max(1, int(os.environ.get("SWEEPBT_PROPERTY_SCALE", "1")))


def examples(n):
    return n * SCALE


def _ohlc(rng, n_assets, n, vol, tick, flat_share):
    """random_ohlc's bars (the same draws), a share of them flat at the previous close,
    prices on a tick grid when ``tick``."""
    open_, high, low, close = random_ohlc(rng, n, n_assets, vol)
    prev = np.concatenate([np.full((n_assets, 1), 100.0), close[:, :-1]], axis=1)
    flat = rng.random((n_assets, n)) < flat_share
    open_[flat] = high[flat] = low[flat] = close[flat] = prev[flat]
    if tick:
        open_, high, low, close = (np.maximum(np.round(x / tick) * tick, tick)
                                   for x in (open_, high, low, close))
        high = np.maximum(high, np.maximum(open_, close))
        low = np.minimum(low, np.minimum(open_, close))
    return open_, high, low, close


@st.composite
def scenarios(draw, directions=("long", "short", "both"), max_size=1.0, n_assets=None):
    """(ohlc arrays padded with NaN outside the spans, spans, config)."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(12, 140))
    k = draw(st.integers(1, 3)) if n_assets is None else n_assets
    vol = draw(st.sampled_from([0.003, 0.02, 0.06]))
    tick = draw(st.sampled_from([None, None, 0.01, 0.5]))
    flat_share = draw(st.sampled_from([0.0, 0.0, 0.2]))
    rng = np.random.default_rng(seed)
    prices = _ohlc(rng, k, n, vol, tick, flat_share)
    spans = [(0, n)]  # asset 0 covers every bar: the longest span is n
    for _ in range(k - 1):
        s = draw(st.integers(0, n - 2))
        e = draw(st.integers(s + 1, n))
        spans.append((s, e))
    padded = [p.copy() for p in prices]
    for a, (s, e) in enumerate(spans):
        for p in padded:
            p[a, :s] = np.nan
            p[a, e:] = np.nan

    def maybe(strategy):
        return draw(st.one_of(st.none(), strategy))

    slow_max = min(n, 25)
    config = dict(
        fast=draw(st.integers(1, slow_max)),
        slow=draw(st.integers(1, slow_max)),
        stop_loss=maybe(st.floats(0.001, 0.3)),
        take_profit=maybe(st.floats(0.001, 0.5)),
        trailing_stop=maybe(st.floats(0.001, 0.3)),
        max_bars=maybe(st.integers(1, 30)),
        fees=draw(st.sampled_from([0.0, 0.0005, 0.01])),
        fixed_fees=draw(st.sampled_from([0.0, 1.0, 25.0])),
        slippage=draw(st.sampled_from([0.0, 0.0003, 0.005])),
        size=draw(st.one_of(st.just(1.0), st.floats(0.05, max_size))),
        fill=draw(st.sampled_from(["next_open", "close"])),
        direction=draw(st.sampled_from(directions)),
    )
    return padded, spans, config


def _same(x, y):
    """Bitwise-equal float arrays (NaN equal to NaN)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return x.shape == y.shape and np.array_equal(x.view(np.int64), y.view(np.int64))


def _tables_identical(a, b):
    assert a.schema.equals(b.schema)
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a[name], b[name]
        if x.type == "double":
            assert _same(x.to_numpy(zero_copy_only=False), y.to_numpy(zero_copy_only=False)), \
                name
            assert x.null_count == y.null_count and pc.all(
                pc.equal(pc.is_null(x), pc.is_null(y))).as_py(), name
        else:
            assert x.equals(y), name


def _two_threads():
    import numba

    return numba.config.NUMBA_NUM_THREADS >= 2


# --------------------------------------------------------------------------------------
# rank-and-rebalance: the kernel on the reference's inputs (tests/rank_reference.py)
# --------------------------------------------------------------------------------------


def flat_bars(*closes_by_asset):
    """(open, high, low, close): every bar opens, trades and closes at one price (None =
    outside the asset's span)."""
    c = np.array([[NAN if x is None else float(x) for x in row] for row in closes_by_asset])
    return c, c.copy(), c.copy(), c.copy()


def scores_at(n_assets, n_bars, by_bar):
    """(n_assets, n_bars) scores, NaN except ``by_bar = {bar: [score per asset]}``."""
    s = np.full((n_assets, n_bars), NAN)
    for bar, row in by_bar.items():
        s[:, bar] = row
    return s


def random_universe(seed, n_assets=5, n_bars=80):
    rng = np.random.default_rng(seed)
    bars = [np.array(x) for x in random_ohlc(rng, n_bars, n_assets)]
    start = rng.integers(0, n_bars // 3, n_assets)
    end = n_bars - rng.integers(0, n_bars // 3, n_assets)
    end[rng.integers(n_assets)] = n_bars
    for a in range(n_assets):
        for x in bars:
            x[a, :start[a]] = NAN
            x[a, end[a]:] = NAN
    return rng, bars, [int(s) for s in start], [int(e) for e in end]


FILLS = {"next_open": 0, "close": 1}


def _nan(x):
    return np.nan if x is None else float(x)


def kernel_inputs(bars, start, end, scores, rebalance_bars, vol=None, **kw):
    """(market, Scores, RankCombos, SimSettings) for one combo, as the reference's
    keyword arguments say."""
    o, h, lo, c = (np.ascontiguousarray(x, dtype=np.float64) for x in bars)
    n_assets, n_bars = c.shape
    market = Market(open=o, high=h, low=lo, close=c, start=np.asarray(start, np.int64),
                    end=np.asarray(end, np.int64))
    keys = np.unique(np.asarray(rebalance_bars, np.int64))
    keys = keys[(keys >= 0) & (keys < n_bars)]
    key = np.full(n_bars, -1, np.int64)
    key[keys] = np.arange(keys.size)
    mask = np.zeros((1, n_bars), np.bool_)
    mask[0, keys] = True
    score_bank = np.ascontiguousarray(np.asarray(scores, np.float64)[:, keys].T)[None]
    weighting = kw.get("weighting", "equal")
    if vol is not None:
        vol_bank = np.ascontiguousarray(np.asarray(vol, np.float64)[:, keys].T)[None]
    else:
        vol_bank = np.empty((0, keys.size, n_assets))
    rules = np.full((1, N_RULES), np.nan)
    for name in ("stop_loss", "take_profit", "trailing_stop"):
        rules[0, getattr(Rule, name)] = _nan(kw.get(name))
    for name in ("stop_atr", "take_atr", "trailing_atr"):
        rules[0, getattr(Rule, name)] = np.nan
    rules[0, Rule.max_bars] = kw.get("max_bars") or 0
    for name in ("fees", "fixed_fees", "slippage", "tax", "fees_per_share", "min_fees",
                 "max_fees", "lot_size"):
        rules[0, getattr(Rule, name)] = kw.get(name, 0.0)
    rules[0, Rule.size] = 1.0
    rules[0, Rule.max_positions] = 0
    rank = np.zeros((1, N_RANK))
    rank[0, RankRule.top_n] = kw["top_n"]
    rank[0, RankRule.bottom_n] = kw.get("bottom_n", 0)
    rank[0, RankRule.weighting] = getattr(Weighting, weighting)
    rank[0, RankRule.position_limit] = _nan(kw.get("position_limit"))
    combos = RankCombos(score_idx=np.zeros(1, np.int64),
                        vol_idx=np.array([0 if vol is not None else -1], np.int64),
                        schedule_idx=np.zeros(1, np.int64), rules=rules, rank=rank)
    commission = kw.get("commission")
    settings = SimSettings.of(FILLS[kw.get("fill", "next_open")], 0,
                              kw.get("init_cash", 10_000.0), kw.get("periods_per_year", 252.0),
                              commission=commission)
    return market, Scores(score=score_bank, vol=vol_bank, key=key, rebalance=mask), combos, \
        settings


def run_kernel(bars, start, end, scores, rebalance_bars, vol=None, **kw):
    """The kernel's record of one combo: a dict like the reference's (metrics by name,
    equity, cash, units, trades as a structured array, rebalances)."""
    market, scores_, combos, settings = kernel_inputs(bars, start, end, scores,
                                                      rebalance_bars, vol, **kw)
    n_assets, n_bars = market.close.shape
    metrics = np.empty((1, kernels.N_METRICS))
    kernels.rank_metrics(market, scores_, combos, settings, 1, metrics)
    n_trades = int(metrics[0, kernels.Metric.n_trades])
    out = Outputs(metrics=np.empty(kernels.N_METRICS), equity=np.full(n_bars, np.nan),
                  cash=np.full(n_bars, np.nan), units=np.full((n_assets, n_bars), np.nan),
                  trades=np.empty(n_trades, TRADE_DTYPE))
    n_keys = scores_.key.max() + 1 if n_bars else 0
    holdings = Holdings(bar=np.empty(n_keys, np.int64), weights=np.empty((n_keys, n_assets)),
                        turnover=np.empty(n_keys))
    count = kernels.rank_record(market, scores_, combos, settings, 0, out, holdings)
    used = holdings.bar >= 0
    return {"metrics": dict(zip(kernels.METRIC_NAMES, out.metrics)),
            "sweep_metrics": dict(zip(kernels.METRIC_NAMES, metrics[0])),
            "equity": out.equity, "cash": out.cash, "units": out.units,
            "trades": out.trades[:count], "holdings": (holdings.bar[used],
                                                       holdings.weights[used],
                                                       holdings.turnover[used])}


TRADE_FIELDS = ("direction", "entry_bar", "exit_bar", "entry_price", "exit_price", "units",
                "pnl", "return", "mfe", "mae", "asset", "commission", "tax")


def assert_same(kernel, ref, rel=1e-9):
    """A kernel record (:func:`run_kernel`) equals the reference's, bar by bar."""
    np.testing.assert_allclose(kernel["equity"], np.array(ref["equity"], float), rtol=rel,
                               atol=1e-7)
    np.testing.assert_allclose(kernel["cash"], np.array(ref["cash"], float), rtol=rel,
                               atol=1e-7)
    np.testing.assert_allclose(kernel["units"], np.array(ref["units"], float), rtol=rel,
                               atol=1e-9)
    trades = kernel["trades"]
    assert len(trades) == len(ref["trades"]), (len(trades), len(ref["trades"]))
    for got, want in zip(trades, ref["trades"]):
        for name in TRADE_FIELDS:
            assert got[name] == pytest.approx(want[name], rel=rel, abs=1e-9), name
        assert kernels.EXIT_REASONS[got["exit_reason"]] == want["exit_reason"]
    for name, value in ref["metrics"].items():
        if name in kernel["metrics"]:
            for got in (kernel["metrics"][name], kernel["sweep_metrics"][name]):
                assert got == pytest.approx(value, rel=1e-8, abs=1e-10, nan_ok=True), name
    bars, weights, turnover = kernel["holdings"]
    assert list(bars) == [r["bar"] for r in ref["rebalances"]]
    for w, t, r in zip(weights, turnover, ref["rebalances"]):
        np.testing.assert_allclose(w, r["weights"], rtol=1e-12, atol=1e-15)
        assert t == pytest.approx(r["turnover"], rel=1e-9, nan_ok=True)


# --------------------------------------------------------------------------------------
# user strategies
# --------------------------------------------------------------------------------------


@njit
def ind_bad_shape_at_7(close, w):
    n = close.shape[0] - (1 if w == 7 else 0)
    out = np.full((1, n), np.nan)
    for i in range(w - 1, n):
        out[0, i] = close[i] - close[i - w + 1]
    return out


@njit
def sig_bad_code_above_5(features, i, t):
    if t > 5.0 and i == 20:
        return 42
    return BUY if features[0, i] > t else 0


USER_FILE = """
    import numpy as np
    from numba import njit
    from sweepbt import BUY, SELL, define_strategy

    THRESHOLD = {threshold}

    @njit
    def feats(close, w):
        out = np.full((1, close.shape[0]), np.nan)
        for i in range(w, close.shape[0]):
            out[0, i] = close[i] / close[i - w] - 1.0
        return out

    @njit
    def sig(features, i):
        x = features[0, i]
        return BUY if x > THRESHOLD else SELL if x < -THRESHOLD else 0

    momentum = define_strategy("momentum", indicators=feats, signal=sig,
                               indicator_params={{"w": 10}})
    not_a_strategy = 3
"""


#: a user strategy file, ``.format(threshold=...)`` (:data:`USER_FILE`)
STRATEGY_FILE = textwrap.dedent(USER_FILE)


# --------------------------------------------------------------------------------------
# stopped and resumed runs
# --------------------------------------------------------------------------------------


class StopAfter(SharpeMoments):
    """The deflated Sharpe's sink, with a Ctrl-C after it saw ``k`` chunks (a resumed
    sweep's kept chunks included: they are read back into it)."""

    def __init__(self, n_assets, k):
        super().__init__(n_assets)
        self.left = k

    def add(self, chunk):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        super().add(chunk)


def assert_same_rows(a, b):
    """Tables ``a`` and ``b`` hold the same columns and rows exactly (NaN equal to NaN;
    pyarrow's ``equals`` treats NaN as unequal)."""
    assert a.schema.equals(b.schema, check_metadata=False)
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        np.testing.assert_array_equal(a[name].to_numpy(zero_copy_only=False),
                                      b[name].to_numpy(zero_copy_only=False), err_msg=name)


def assert_same_walk_forward(a, b):
    assert_same_rows(a.windows, b.windows)
    assert_same_rows(a.stats, b.stats)
    np.testing.assert_array_equal(a.equity, b.equity)
    np.testing.assert_array_equal(a.is_metrics, b.is_metrics)
    np.testing.assert_array_equal(a.oos_metrics, b.oos_metrics)
    assert a.chosen == b.chosen and a.n_combos == b.n_combos


def finished_parts(folder):
    """The finished parts in a sweep's ``_partial`` folder (not the hidden temporary file
    of a part being written); none when the folder does not exist."""
    folder = os.fspath(folder)
    return sorted(p for p in os.listdir(folder) if p.startswith("part-")) \
        if os.path.isdir(folder) else []


def stop_when(command, ready, signum, timeout=300):
    """Start ``command``, send it ``signum`` as soon as ``ready()`` holds, wait for it;
    returns ``(exit status, stderr)``. Fails when the command ends before that."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                pytest.fail(f"the command ended before it was stopped: {proc.communicate()}")
            assert time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


# costs, portfolio and rank comparisons (test_costs_kernel, test_portfolio_reference, test_rank_kernel)


def random_cost_config(rng, init_cash=10_000.0):
    """A random cost configuration (every cost option of DESIGN.md's Costs section), for
    the differential tests against the engine. ``rng``: ``random.Random`` or a numpy
    ``Generator`` (anything with ``random()``). Each cost is off about half the time, so
    the defaults (today's arithmetic) and every combination of pieces are drawn; a
    configuration the engine refuses (docs/semantics.md, Costs: ``min_fees > max_fees *
    init_cash``, a minimum no order can reach) is not drawn."""
    def pick(*choices):
        return choices[int(rng.random() * len(choices)) % len(choices)]

    cfg = {
        "fees": pick(0.0, 0.0, 0.0005, 0.002),
        "fixed_fees": pick(0.0, 0.0, 1.0, 25.0),
        "slippage": pick(0.0, 0.0, 0.001),
        "fees_per_share": pick(0.0, 0.0, 0.005, 0.05),
        "min_fees": pick(0.0, 0.0, 1.0, 10.0),
        "max_fees": pick(0.0, 0.0, 0.001, 0.01),
        "tax": pick(0.0, 0.0, 0.001, 0.003),
        "lot_size": pick(0.0, 0.0, 1.0, 10.0),
    }
    if cfg["max_fees"] > 0.0 and cfg["min_fees"] > cfg["max_fees"] * init_cash:
        cfg["max_fees"] = 0.0  # that minimum could never hold: an error in the engine
    return cfg


def random_case(seed, truncate=None):
    """A random universe and rank configuration (the reference's own random_run, with more
    variety: every weighting, both sides, both fills, costs, tax, rules)."""
    rng, bars, start, end = random_universe(seed, n_assets=int(3 + seed % 5),
                                            n_bars=90)
    n_assets = len(start)
    lookback = int(rng.integers(1, 10))
    top_n = int(rng.integers(1, max(2, n_assets - 1)))
    kw = dict(
        top_n=top_n, bottom_n=int(rng.integers(0, n_assets - top_n + 1)) if seed % 3 else 0,
        weighting=str(rng.choice(["equal", "inverse_vol", "score"])),
        position_limit=[None, 0.4, 0.25][int(rng.integers(3))],
        fill=str(rng.choice(["next_open", "close"])),
        fees=float(rng.choice([0.0, 0.001])), fixed_fees=float(rng.choice([0.0, 5.0])),
        slippage=float(rng.choice([0.0, 0.001])), tax=float(rng.choice([0.0, 0.003])),
        stop_loss=[None, 0.03][int(rng.integers(2))],
        trailing_stop=[None, 0.05][int(rng.integers(2))],
        take_profit=[None, 0.05][int(rng.integers(2))],
        max_bars=[None, 7][int(rng.integers(2))])
    every = int(rng.integers(2, 12))
    not_eligible = rng.random(bars[3].shape) < 0.1
    if truncate is not None:
        bars = [x[:, :truncate] for x in bars]
        end = [min(e, truncate) for e in end]
        not_eligible = not_eligible[:, :truncate]
    close = bars[3]
    scores = np.array(momentum_score(close, start, lookback))
    scores[not_eligible] = NAN
    vol = np.array(volatility(close, start, 5))
    schedule = np.arange(every - 1, close.shape[1] - 1, every)
    return bars, start, end, scores, schedule, dict(kw, vol=vol)


def portfolio_backtest(data, strategy, **options):
    """``sb.backtest(..., portfolio=True)`` with the reference's periods_per_year."""
    return sb.backtest(data, strategy, portfolio=True, periods_per_year=252, **options)


def ragged_case(rng, vol=None):
    """3-6 assets, some listed late, some delisted early (NaN outside their spans)."""
    n_assets = int(rng.integers(3, 7))
    n = int(rng.integers(70, 140))
    vol = float(rng.choice([0.01, 0.025])) if vol is None else vol
    prices = random_ohlc(rng, n, n_assets, vol=vol)
    spans = []
    for _ in range(n_assets):
        s = int(rng.integers(1, n // 3)) if rng.random() < 0.4 else 0
        e = int(rng.integers(2 * n // 3, n)) if rng.random() < 0.4 else n
        spans.append((s, e))
    return padded(prices, spans), spans


def portfolio_config(rng, value_sizing):
    """random_config (rules, costs, fill, direction) plus portfolio sizing."""
    cfg = random_config(rng)
    if value_sizing:
        cfg.update(size_type="value", size=float(rng.choice([1500.0, 3000.0, 6000.0, 1e4])))
    else:
        cfg.update(size_type="equity", size=float(rng.choice([1.0, 0.5, 0.3, 0.2])))
    cfg["max_positions"] = [None, 1, 2, 3][int(rng.integers(0, 4))]
    return cfg


def reference_inputs(padded, spans, cfg, codes=None):
    """(codes, atr) rows on the Bundle axis: sma_cross codes (or the given ones) and
    Wilder's ATR per span, 0 / NaN outside."""
    n_assets, n = padded[3].shape
    code_rows = np.zeros((n_assets, n), dtype=np.int64)
    atr_rows = np.full((n_assets, n), NAN)
    for a, (s, e) in enumerate(spans):
        if codes is None:
            signals = sma_cross_signals(list(padded[3][a, s:e]), cfg["fast"], cfg["slow"])
            code_rows[a, s:e] = [BUY if x > 0 else SELL if x < 0 else 0 for x in signals]
        else:
            code_rows[a, s:e] = codes[a, s:e]
        atr = wilder_atr(*(list(p[a, s:e]) for p in padded[1:]), cfg["atr_window"])
        atr_rows[a, s:e] = [NAN if x is None else x for x in atr]
    return code_rows, atr_rows


def compare_portfolio(bt, ref, data, what):
    """The engine's portfolio backtest of ``data`` against a reference run."""
    symbols = list(data.symbols)
    for series in ("equity", "cash", "units"):
        np.testing.assert_allclose(getattr(bt, series), np.array(ref[series]), rtol=REL,
                                   atol=1e-7, err_msg=f"{what}: {series}")
    index = {s: a for a, s in enumerate(symbols)}
    got = sorted(bt.trades.to_pylist(),
                 key=lambda t: (index[t["symbol"]], t["entry_bar"], t["exit_bar"]))
    exp = sorted(ref["trades"], key=lambda t: (t["asset"], t["entry_bar"], t["exit_bar"]))
    assert len(got) == len(exp), f"{what}: trade count"
    for k, (g, e) in enumerate(zip(got, exp)):
        where = f"{what} trade {k}"
        assert index[g["symbol"]] == e["asset"], where
        assert g["direction"] == ("long" if e["direction"] == 1 else "short"), where
        for key in ("entry_bar", "exit_bar", "exit_reason"):
            assert g[key] == e[key], f"{where} {key}"
        for key in TRADE_NUMBERS:
            assert_close(g[key], e[key], f"{where} {key}")
    (stats,) = bt.stats.to_pylist()
    assert stats["symbol"] == "portfolio", what
    for name in [*METRIC_NAMES, "n_delist"]:
        if name in stats:
            assert_close(float(stats[name]), float(ref["metrics"][name]), f"{what} {name}")
    values = getattr(bt, "values", None)
    if values is not None:  # units * close, 0.0 where flat, NaN outside [P0, P1)
        units = np.array(ref["units"])
        expected = np.where(units == 0.0, 0.0, units * data.close)
        np.testing.assert_allclose(values, expected, rtol=REL, atol=1e-7,
                                   err_msg=f"{what}: values")
    assets = getattr(bt, "assets", None)
    if assets is not None:
        rows = assets.to_pylist()
        assert [row["symbol"] for row in rows] == list(symbols), what
        for row, exp_row in zip(rows, ref["assets"]):
            for key in ("pnl", "n_trades", "win_rate"):
                assert_close(float(row[key]), float(exp_row[key]), f"{what} assets {key}")


def reference_options(cfg):
    return {k: v for k, v in cfg.items() if k not in ("fast", "slow", "atr_window")}


def run_reference(open_, high, low, close, cfg):
    signals = sma_cross_signals(list(close), cfg["fast"], cfg["slow"])
    options = {k: v for k, v in cfg.items() if k not in ("fast", "slow")}
    return reference_backtest(list(open_), list(high), list(low), list(close), signals,
                              periods_per_year=252.0, **options)


def check_random_portfolio(seed, rng, costs=None):
    """A random sma_cross portfolio of ragged assets (``portfolio_config``, plus the cost
    options ``costs`` when given) run by the engine and by the reference: they agree."""
    padded_, spans = ragged_case(rng)
    cfg = {**portfolio_config(rng, value_sizing=seed % 3 == 0), **(costs or {})}
    data = sb.Bundle.from_arrays(*padded_)
    bt = portfolio_backtest(data, "sma_cross", **cfg)
    codes, atr = reference_inputs(padded_, spans, cfg)
    ref = reference_portfolio(*padded_, [s for s, _ in spans], [e for _, e in spans],
                              codes, atr, **reference_options(cfg))
    compare_portfolio(bt, ref, data, f"seed {seed} spans {spans} {cfg}")


def check_random_asset(rng, n_low, what, costs=False):
    """A random single-asset sma_cross backtest (``random_config``, plus random costs
    when ``costs`` is True, or the cost options ``costs`` when it is a dict) of n_low..159
    bars, run by the engine and by the reference: they agree bar by bar and trade by
    trade."""
    n = int(rng.integers(n_low, 160))
    open_, high, low, close = random_ohlc(rng, n, vol=float(rng.choice([0.01, 0.03])))
    cfg = random_config(rng)
    if costs:
        cfg.update(random_cost_config(rng) if costs is True else costs)
    data = sb.Bundle.from_arrays(open_[0], high[0], low[0], close[0])
    bt = sb.backtest(data, "sma_cross", periods_per_year=252, **cfg)
    ref = run_reference(open_[0], high[0], low[0], close[0], cfg)
    compare_asset(bt, 0, ref, 0, n, f"{what} {cfg}")
