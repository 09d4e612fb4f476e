"""sweepbt._series.equity_metrics, the numpy twin of the kernel's equity metrics, against
the kernel: for every asset of a backtest, the metrics recomputed from its recorded equity
row equal the kernel's metrics row (docs/semantics.md, Metrics and Ruin)."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sweepbt as sb
from strategy_cases import CASES
from sweepbt._vocabulary import METRIC_NAMES
from sweepbt._series import EQUITY_METRIC_NAMES, equity_metrics, returns_from_equity

RTOL = 1e-9
ATOL = 1e-12  # for values that are sums cancelling to about 0 (a mean return, a skew)
#: every built-in strategy with its small parameter set (windows short enough for n >= 8)
STRATEGIES = [(case.name, case.params) for case in CASES.values()]


def assert_twin(bt, init_cash, ppy):
    """equity_metrics of each asset's equity row inside its span == the kernel's row."""
    cols = [METRIC_NAMES.index(name) for name in EQUITY_METRIC_NAMES]
    for a in range(bt.bundle.n_assets):
        s, e = bt.bundle.start[a], bt.bundle.end[a]
        got = equity_metrics(bt.equity[a, s:e], init_cash, ppy)
        assert list(got) == list(EQUITY_METRIC_NAMES)
        got = np.array(list(got.values()))
        want = bt.metrics[a, cols]
        ok = np.isclose(got, want, rtol=RTOL, atol=ATOL) | (np.isnan(got) & np.isnan(want))
        assert ok.all(), {n: (g, w) for n, g, w, k in
                          zip(EQUITY_METRIC_NAMES, got, want, ok) if not k}


def test_names_are_kernel_metrics_in_kernel_order():
    idx = [METRIC_NAMES.index(name) for name in EQUITY_METRIC_NAMES]
    assert idx == sorted(idx)


@pytest.mark.parametrize("name, params", STRATEGIES)
@pytest.mark.parametrize("config", [
    dict(),
    dict(direction="both", fill="close", fees=0.001, stop_loss=0.03, take_profit=0.08),
    dict(direction="short", trailing_stop=0.05, max_bars=20, fixed_fees=5.0, size=0.5),
    dict(stop_atr=2.0, take_atr=3.0, trailing_atr=2.5, atr_window=10, slippage=0.001,
         window=(300, 4000)),
])
def test_demo(name, params, config, demo):
    bt = sb.backtest(demo, name, periods_per_year=252, **params, **config)
    assert_twin(bt, 10_000.0, 252)


@st.composite
def cases(draw):
    """(OHLC with NaN outside each asset's span, strategy, params, config, init_cash, ppy):
    random walks up to wild jumps, costs up to fixed fees near the cash, all fill modes,
    directions and risk rules, sometimes a trade window; a quarter of the cases are
    shorts without risk rules in a wild rally, which mostly go bust."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(8, 120))
    k = draw(st.integers(1, 2))
    bust = draw(st.integers(0, 3)) == 0
    vol = draw(st.sampled_from([0.3, 1.0] if bust else [0.0, 0.004, 0.03, 0.3, 1.0]))
    drift = 0.3 if bust else draw(st.sampled_from([0.0, 0.05]))
    close = 100.0 * np.exp(np.cumsum(rng.normal(drift * vol, vol, (k, n)), axis=1))
    prev = np.concatenate([np.full((k, 1), 100.0), close[:, :-1]], axis=1)
    open_ = prev * np.exp(rng.normal(0.0, vol / 3, (k, n)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, vol / 3, (k, n))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, vol / 3, (k, n))))
    if draw(st.booleans()):  # tick-rounded: ties and exact touches
        open_, high, low, close = (np.maximum(np.round(x * 2) / 2, 0.5)
                                   for x in (open_, high, low, close))
        high = np.maximum.reduce([open_, high, close])
        low = np.minimum.reduce([open_, low, close])
    ohlc = [open_, high, low, close]
    if k == 2:  # the second asset has a shorter span
        s = draw(st.integers(0, n // 2))
        e = draw(st.integers(s + 1, n))
        for x in ohlc:
            x[1, :s] = x[1, e:] = np.nan
    name, params = draw(st.sampled_from(STRATEGIES))
    init_cash = draw(st.sampled_from([100.0, 10_000.0]))

    def maybe(strategy):
        return draw(st.one_of(st.none(), strategy))

    config = dict(
        fill=draw(st.sampled_from(["next_open", "close"])),
        direction=draw(st.sampled_from(["short", "both"] if bust else
                                       ["long", "short", "both"])),
        max_bars=maybe(st.integers(1, 30)),
        fees=draw(st.sampled_from([0.0, 0.001, 0.05])),
        fixed_fees=draw(st.sampled_from([0.0, 0.01, 0.3, 1.5])) * init_cash,
        slippage=draw(st.sampled_from([0.0, 0.002])),
        size=1.0 if bust else draw(st.one_of(st.just(1.0), st.floats(0.05, 1.0))),
    )
    if not bust:
        config.update(
            stop_loss=maybe(st.floats(0.001, 0.5)), take_profit=maybe(st.floats(0.001, 1.0)),
            trailing_stop=maybe(st.floats(0.001, 0.5)), stop_atr=maybe(st.floats(0.1, 4.0)),
            take_atr=maybe(st.floats(0.1, 4.0)), trailing_atr=maybe(st.floats(0.1, 4.0)),
            atr_window=draw(st.integers(1, 6)))
    if draw(st.booleans()):
        lo = draw(st.integers(0, n - 1))
        config["window"] = (lo, draw(st.integers(lo + 1, n)))
    ppy = draw(st.sampled_from([12.0, 252.0, 365.0, 98_280.0]))
    return ohlc, name, params, config, init_cash, ppy


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_random_paths_and_configs(case):
    ohlc, name, params, config, init_cash, ppy = case
    bt = sb.backtest(sb.Bundle.from_arrays(*ohlc), name, init_cash=init_cash,
                     periods_per_year=ppy, **params, **config)
    assert_twin(bt, init_cash, ppy)


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_ruin_by_a_short_against_a_jump(fill):
    """Short on the first falling close, then the price triples in one bar."""
    prices = np.array([100.0, 99.0, 98.0, 97.0, 96.0, 300.0, 310.0, 305.0, 320.0, 330.0])
    data = sb.Bundle.from_arrays(prices, prices, prices, prices)
    bt = sb.backtest(data, "momentum", lookback=1, threshold=0.0, direction="short",
                     fill=fill, periods_per_year=252)
    m = dict(zip(METRIC_NAMES, bt.metrics[0]))
    assert m["ruined"] == 1.0 and m["cagr"] == -1.0 and m["total_return"] < -1.0
    assert_twin(bt, 10_000.0, 252)


def test_cagr_beyond_float64_is_nan_not_inf():
    """A 60x gain over a few minute bars annualizes to 60 ** 16,380: no float holds it."""
    prices = np.array([100.0, 101.0, 500.0, 2_000.0, 6_000.0, 6_100.0])
    data = sb.Bundle.from_arrays(prices, prices, prices, prices)
    bt = sb.backtest(data, "momentum", lookback=1, threshold=0.0, fill="close",
                     periods_per_year=98_280)
    m = dict(zip(METRIC_NAMES, bt.metrics[0]))
    assert m["total_return"] > 50 and m["ruined"] == 0.0
    assert math.isnan(m["cagr"]) and math.isnan(m["calmar"])
    assert_twin(bt, 10_000.0, 98_280)
    assert math.isnan(equity_metrics([2e4, 6e5], 1e4, 98_280)["cagr"])
    slow = equity_metrics([2e4, 6e5], 1e4, 12)  # the same gain over two months is finite
    assert slow["cagr"] == pytest.approx(60.0 ** 6 - 1.0)


def test_ruin_by_fixed_fees_on_a_flat_account():
    prices = 100.0 + 10.0 * np.sin(np.arange(30) / 2.0)
    data = sb.Bundle.from_arrays(prices, prices, prices, prices)
    bt = sb.backtest(data, "sma_cross", fast=2, slow=3, fixed_fees=6_000.0,
                     periods_per_year=252)
    assert bt.metrics[0, METRIC_NAMES.index("ruined")] == 1.0
    assert_twin(bt, 10_000.0, 252)


def test_edge_series():
    nan = math.nan
    empty = equity_metrics(np.full(5, nan), 100.0, 252)
    assert empty["ruined"] == 0.0
    assert all(math.isnan(v) for k, v in empty.items() if k != "ruined")
    one = equity_metrics([99.0], 100.0, 252)
    assert one["total_return"] == pytest.approx(-0.01) and one["max_drawdown"] == \
        pytest.approx(0.01)
    assert math.isnan(one["volatility"]) and math.isnan(one["skew"])
    assert one["sortino"] == pytest.approx(-math.sqrt(252))
    flat = equity_metrics([100.0] * 4, 100.0, 252)
    assert flat["total_return"] == 0.0 and flat["max_drawdown"] == 0.0
    assert math.isnan(flat["sharpe"]) and math.isnan(flat["calmar"])
    # NaN bars are dropped and the rest chained: a walk-forward series with gaps
    gappy = equity_metrics([nan, 110.0, nan, nan, 99.0, 121.0, nan], 100.0, 12)
    assert gappy == equity_metrics([110.0, 99.0, 121.0], 100.0, 12)
    np.testing.assert_allclose(returns_from_equity([110.0, 99.0, 121.0], 100.0),
                               [0.1, -0.1, 121 / 99 - 1])
    bust = equity_metrics([50.0, -10.0, -10.0], 100.0, 12)
    assert bust["ruined"] == 1.0 and bust["cagr"] == -1.0
    assert bust["total_return"] == pytest.approx(-1.1) and bust["max_drawdown"] == \
        pytest.approx(1.1)
    assert all(math.isnan(bust[k]) for k in ("volatility", "sharpe", "sortino", "calmar",
                                             "skew", "kurtosis"))
    with pytest.raises(ValueError, match="1-D"):
        equity_metrics(np.ones((2, 3)), 100.0, 12)


def test_walk_forward_stats_are_equity_metrics_of_the_chained_equity(demo):
    """The chained out-of-sample statistics of walk_forward (its ``stats`` table) are
    equity_metrics of each asset's chained equity row (NaN between test spans)."""
    wf = sb.walk_forward(demo, "sma_cross", train=800, test=400, fast=[5, 10],
                         slow=[20, 40], direction="both", periods_per_year=252)
    for a, row in enumerate(wf.stats.to_pylist()):
        got = equity_metrics(wf.equity[a], 10_000.0, 252)
        for name in EQUITY_METRIC_NAMES[:-1]:  # the stats table has no 'ruined' column
            assert got[name] == pytest.approx(row[name], rel=RTOL, abs=ATOL, nan_ok=True), name
