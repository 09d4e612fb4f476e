"""Portfolio backtests (``portfolio=True``): properties that hold whatever the data and the
configuration, the public API around them, and bad input.

The bar-by-bar comparison with the pure-Python portfolio reference simulator lives in
tests/test_portfolio_reference.py; the cross-check with vectorbt in tests/test_vectorbt.py.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sweepbt as sb
from sweepbt._vocabulary import METRIC_NAMES
from helpers import (INIT_CASH, PPY, SETTINGS, _ohlc, _same, _tables_identical, _two_threads,
                     examples, scenarios)

#: metrics a one-asset portfolio shares with the per-asset backtest (exposure differs by
#: definition: G / equity for a portfolio, bars held for one asset)
SHARED_METRICS = [m for m in METRIC_NAMES if m != "exposure"]


@st.composite
def portfolios(draw, directions=("long", "short", "both"), n_assets=None):
    """(padded OHLC, spans, config) with the portfolio options drawn too."""
    padded, spans, config = draw(scenarios(directions=directions, n_assets=n_assets))
    config["max_positions"] = draw(st.one_of(st.none(), st.integers(1, 3)))
    if draw(st.booleans()):
        config.update(size_type="value", size=draw(st.floats(50.0, INIT_CASH)))
    else:
        config["size"] = draw(st.floats(0.05, 1.0))
    if draw(st.booleans()):
        config["stop_atr"] = draw(st.floats(0.5, 4.0))
        config["atr_window"] = draw(st.integers(2, 10))
    return padded, spans, config


def _run(padded, config, **extra):
    return sb.backtest(sb.Bundle.from_arrays(*padded), "sma_cross", portfolio=True,
                       periods_per_year=PPY, init_cash=INIT_CASH, **config, **extra)


@settings(max_examples=examples(40), **SETTINGS)
@given(scenarios(n_assets=1))
def test_one_asset_portfolio_is_the_per_asset_backtest(case):
    """With one asset and ``size`` a fraction of equity, sharing cash changes nothing."""
    padded, _, config = case
    data = sb.Bundle.from_arrays(*padded)
    single = sb.backtest(data, "sma_cross", periods_per_year=PPY, init_cash=INIT_CASH,
                         **config)
    port = sb.backtest(data, "sma_cross", portfolio=True, periods_per_year=PPY,
                       init_cash=INIT_CASH, **config)
    assert _same(single.equity[0], port.equity)
    assert _same(single.cash[0], port.cash)
    assert _same(single.units, port.units)
    assert single.trades.equals(port.trades)
    for name in SHARED_METRICS:
        assert _same(single.stats[name].to_numpy().astype(float),
                     port.stats[name].to_numpy().astype(float)), name


@settings(max_examples=examples(50), **SETTINGS)
@given(portfolios())
def test_accounting_invariants(case):
    """Cash plus positions is equity on every bar; the trades' pnl (the final marks
    included) adds up to the equity change; long-only cash never goes below zero and
    gross exposure never exceeds equity; fills lie inside their bar."""
    padded, spans, config = case
    bt = _run(padded, config)
    close = padded[3]
    inside = ~np.isnan(bt.equity)
    first = min(s for s, _ in spans)
    last = max(e for _, e in spans)
    assert inside.sum() == last - first and inside[first:last].all()
    values = np.where(bt.units == 0.0, 0.0, bt.units * close)[:, inside]
    scale = np.maximum(1.0, np.abs(values).sum(axis=0) + np.abs(bt.cash[inside]))
    assert np.all(np.abs(bt.cash[inside] + values.sum(axis=0) - bt.equity[inside])
                  <= 1e-9 * scale)
    pnl = bt.trades["pnl"].to_numpy()
    final = bt.equity[inside][-1]
    assert math.isclose(pnl.sum(), final - INIT_CASH, rel_tol=1e-9,
                        abs_tol=1e-7 * max(INIT_CASH, abs(final)))
    if config["direction"] == "long" and final > 0:
        # fixed fees included: a sale's costs take at most its notional
        assert np.all(bt.cash[inside] >= -1e-9 * INIT_CASH)
        assert np.all(np.abs(values).sum(axis=0) <= bt.equity[inside] * (1 + 1e-12))
    t = bt.trades.to_pydict()
    asset = {s: a for a, s in enumerate(bt.bundle.symbols)}
    for k in range(bt.trades.num_rows):
        a = asset[t["symbol"][k]]
        for bar, quote in ((t["entry_bar"][k], t["entry_quote"][k]),
                           (t["exit_bar"][k], t["exit_quote"][k])):
            assert padded[2][a, bar] - 1e-9 <= quote <= padded[1][a, bar] + 1e-9
        if t["exit_reason"][k] == "delist":
            assert t["exit_bar"][k] == spans[a][1] - 1 < last - 1
    if config.get("max_positions"):
        open_count = (bt.units[:, inside] != 0.0).sum(axis=0)
        assert open_count.max() <= config["max_positions"]


@settings(max_examples=examples(40), **SETTINGS)
@given(portfolios(), st.data())
def test_no_look_ahead(case, data):
    """Cutting the data after bar T-1 changes nothing before it: equity and units through
    T-2 (through T-1 unless an asset's data ends exactly at T, which makes T-1 its
    delisting bar in the full data), and every trade settled before T-1."""
    padded, spans, config = case
    n = padded[0].shape[1]
    shortest = max(config["fast"], config["slow"], config.get("atr_window", 1), 3)
    if n - 1 < shortest:
        return  # (windows are checked against the longest span: the cut must hold them)
    cut = data.draw(st.integers(shortest, n - 1), label="T")
    keep = [a for a, (s, _) in enumerate(spans) if s < cut]
    full = _run([p[keep] for p in padded], config)
    part = _run([p[keep, :cut] for p in padded], config)
    same_to = cut - 1 if all(spans[a][1] != cut for a in keep) else cut - 2
    assert _same(full.equity[:same_to], part.equity[:same_to])
    assert _same(full.units[:, :same_to], part.units[:, :same_to])

    def settled(bt):
        return [t for t in bt.trades.to_pylist() if t["exit_bar"] < cut - 1]

    key = lambda t: (t["exit_bar"], t["symbol"], t["entry_bar"])  # noqa: E731
    assert sorted(settled(full), key=key) == sorted(settled(part), key=key)


@settings(max_examples=examples(5), **SETTINGS)
@given(portfolios(n_assets=3))
def test_sweep_independent_of_threads_and_equal_to_backtests(case):
    padded, _, config = case
    data = sb.Bundle.from_arrays(*padded)
    fixed = {k: config.pop(k) for k in ("fill", "direction")}
    if "size_type" in config:
        fixed["size_type"] = config.pop("size_type")
    grid = dict(config, fast=[2, 3, 5], slow=[4, 8], max_positions=[None, 1, 2],
                stop_loss=[None, 0.03])
    kw = dict(portfolio=True, periods_per_year=PPY, init_cash=INIT_CASH, **fixed)
    one = sb.sweep(data, "sma_cross", threads=1, **kw, **grid)
    assert one.table["symbol"].unique().to_pylist() == ["portfolio"]
    assert one.table.num_rows == one.n_combos == 36
    if _two_threads():
        _tables_identical(one.table, sb.sweep(data, "sma_cross", threads=2, **kw,
                                              **grid).table)
    rows = one.table.to_pylist()
    for row in rows[::5]:
        params = {n: row[n] for n in one.names}
        bt = sb.backtest(data, "sma_cross", **kw, **params)
        for name in METRIC_NAMES:
            got, want = float(row[name]), float(bt.stats[name][0].as_py())
            assert (math.isnan(got) and math.isnan(want)) or got == want, name
    equity = one.equity([rows[0]["combo"]])
    assert equity.shape == (1, 1, data.n_bars)
    bt = sb.backtest(data, "sma_cross", **kw, **{n: rows[0][n] for n in one.names})
    assert _same(equity[0, 0], bt.equity)


@pytest.fixture(scope="module")
def eight():
    """8 assets x 600 bars of random walks, two of them listed late or delisted early."""
    rng = np.random.default_rng(7)
    o, h, lo, c = (x.copy() for x in _ohlc(rng, 8, 600, 0.015, None, 0.0))
    for x in (o, h, lo, c):
        x[2, :150] = np.nan  # listed late
        x[5, 420:] = np.nan  # delisted early
    return sb.Bundle.from_arrays(o, h, lo, c, symbols=[f"S{i}" for i in range(8)])


GRID = dict(fast=[5, 10, 20], slow=[30, 60], stop_loss=[None, 0.05], size=[0.125, 0.25],
            max_positions=[None, 4])


def test_portfolio_sweep_supports_every_result_feature(eight, tmp_path):
    res = sb.sweep(eight, "sma_cross", portfolio=True, **GRID)
    assert res.n_backtests == res.n_combos == 48
    assert res.table.num_rows == 48
    assert set(res.table["symbol"].to_pylist()) == {"portfolio"}
    best = res.best("sharpe", k=3)
    assert best.num_rows == 3
    assert best["sharpe"][0].as_py() == np.nanmax(res.table["sharpe"].to_numpy())
    dsr = res.deflated_sharpe()
    assert 0.0 <= float(dsr) <= 1.0 and dsr.n_trials == 48
    assert 0.0 <= float(res.pbo(k=20, n_splits=4)) <= 1.0
    top = sb.sweep(eight, "sma_cross", portfolio=True, top=5, **GRID)
    assert top.best("sharpe", k=5).equals(res.best("sharpe", k=5))
    out = sb.sweep(eight, "sma_cross", portfolio=True, out=tmp_path / "rows", **GRID)
    assert out.table.sort_by("combo").select(res.table.column_names).equals(res.table)
    sample = sb.sweep(eight, "sma_cross", portfolio=True, sample=10, seed=1, **GRID)
    assert sample.n_combos == 10
    for row in sample.table.to_pylist():
        assert row == res.table.filter(
            res.table["combo"].to_numpy() == row["combo"]).to_pylist()[0]
    est = sb.estimate(eight, "sma_cross", portfolio=True, **GRID)
    assert est.n_backtests == est.n_combos == 48
    assert est.bar_evaluations == 48 * int((eight.end - eight.start).sum())


def test_portfolio_backtest_result(eight):
    bt = sb.backtest(eight, "sma_cross", portfolio=True, fast=3, slow=20, size=0.25,
                     max_positions=3, fees=0.001, fixed_fees=1.0)
    assert isinstance(bt, sb.PortfolioResult)
    assert bt.equity.shape == bt.cash.shape == (eight.n_bars,)
    assert bt.units.shape == bt.values.shape == (8, eight.n_bars)
    assert bt.stats.num_rows == 1 and bt.stats["symbol"][0].as_py() == "portfolio"
    reasons = set(bt.trades["exit_reason"].to_pylist())
    assert "delist" in reasons and reasons <= {"signal", "delist", "end"}
    delisted = bt.trades.filter(bt.trades["exit_reason"].to_numpy(zero_copy_only=False)
                                == "delist")
    assert delisted["symbol"].to_pylist() == ["S5"] and delisted["exit_bar"][0].as_py() == 419
    assert np.all(bt.units[5, 420:] == 0.0) and np.all(bt.units[2, :150] == 0.0)
    assets = bt.assets
    assert assets["symbol"].to_pylist() == list(eight.symbols)
    assert math.isclose(sum(assets["pnl"].to_pylist()), bt.equity[-1] - 10_000.0,
                        rel_tol=1e-9)
    assert sum(assets["n_trades"].to_pylist()) == bt.trades.num_rows
    assert (np.abs(bt.units) > 0).sum(axis=0).max() <= 3


def test_portfolio_walk_forward_windows_are_portfolio_backtests(eight):
    wf = sb.walk_forward(eight, "sma_cross", portfolio=True, train=200, test=100,
                         fast=[5, 10], slow=[30, 60], size=[0.25, 0.5])
    assert wf.equity.shape == (1, eight.n_bars)
    assert wf.stats["symbol"].to_pylist() == ["portfolio"]
    for w, (_, _, lo, hi) in enumerate(wf.spans):
        bt = sb.backtest(eight, "sma_cross", portfolio=True, window=(lo, hi),
                         **wf.chosen[w])
        assert _same(wf.oos_metrics[w, 0], bt.metrics[0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(portfolio=True, max_positions=0), "max_positions"),
    (dict(portfolio=True, size_type="shares"), "unknown size_type 'shares'"),
    (dict(portfolio=True, size_type="value", size=20_000.0), "more cash per entry than "
     "init_cash"),
    (dict(portfolio=True, size_type="value"), "needs size="),
    (dict(portfolio=True, size=2.0), "size_type='value'"),
    (dict(max_positions=2), "max_positions needs portfolio=True"),
    (dict(size_type="value", size=100.0), "needs portfolio=True"),
    (dict(portfolio="yes"), "portfolio must be True or False"),
])
def test_bad_portfolio_options_say_what_to_do(eight, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        sb.backtest(eight, "sma_cross", fast=5, slow=30, **kwargs)


def test_cli_portfolio_backtest_and_sweep(capsys):
    from sweepbt.cli import main

    assert main(["backtest", "--demo", "--portfolio", "--size", "0.2", "--max-positions",
                 "3", "--param", "fast=10", "--param", "slow=50", "--trades", "3"]) == 0
    text = capsys.readouterr().out
    assert "portfolio stats:" in text and "per asset:" in text and "ALPHA" in text
    assert main(["sweep", "--demo", "--portfolio", "--size", "0.1,0.2", "--param",
                 "fast=5:20:5", "--param", "slow=50", "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert "one portfolio" in text and "8 portfolios of 10 assets" in text


def test_cli_portfolio_walk_forward(capsys):
    from sweepbt.cli import main

    assert main(["walk-forward", "--demo", "--portfolio", "--size", "0.25", "--train", "4Y",
                 "--test", "2Y", "--param", "fast=10,20", "--param", "slow=50"]) == 0
    text = capsys.readouterr().out
    assert "portfolio" in text.split("chained out-of-sample equity")[1]
