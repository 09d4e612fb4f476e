"""Property tests (hypothesis): invariants every backtest must satisfy, whatever the data
and the configuration.

The ``scenarios`` strategy draws seeded OHLC data (one to three assets with their own
spans, sometimes tick-rounded prices so that averages tie and levels touch exactly,
sometimes flat bars) and a random configuration covering both fill modes, all three
directions, all four risk rules, the three costs and ``size``.
"""

import math

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sweepbt as sb
import sweepbt._plan
from helpers import (INIT_CASH, PPY, SETTINGS, _ohlc, _same, _tables_identical, _two_threads,
                     examples, scenarios)
from strategy_cases import CASES
from sweepbt._vocabulary import METRIC_NAMES


REASON_COUNTS = ("n_stop", "n_take", "n_trail", "n_time", "n_signal")


def _bundle(padded):
    return sb.Bundle.from_arrays(*padded)


def _run(padded, config):
    return sb.backtest(_bundle(padded), "sma_cross", periods_per_year=PPY,
                       init_cash=INIT_CASH, **config)


def _asset_of(bt):
    return {s: a for a, s in enumerate(bt.bundle.symbols)}


@settings(max_examples=examples(60), **SETTINGS)
@given(scenarios())
def test_fill_quotes_lie_within_their_bar(case):
    padded, _, config = case
    bt = _run(padded, config)
    o, h, l, c = padded
    asset = _asset_of(bt)
    for t in bt.trades.to_pylist():
        a = asset[t["symbol"]]
        for side in ("entry", "exit"):
            i, q = t[f"{side}_bar"], t[f"{side}_quote"]
            assert l[a, i] <= q <= h[a, i], (side, t)
        # prices are the quotes moved against the trader by the slippage
        # (an 'end' trade is marked at the last close: no exit fill, no slippage)
        slip = config["slippage"]
        sign = 1.0 if t["direction"] == "long" else -1.0
        assert t["entry_price"] == pytest.approx(t["entry_quote"] * (1 + sign * slip),
                                                 rel=1e-12)
        if t["exit_reason"] == "end":
            assert t["exit_price"] == t["exit_quote"] == c[a, t["exit_bar"]]
        else:
            assert t["exit_price"] == pytest.approx(t["exit_quote"] * (1 - sign * slip),
                                                    rel=1e-12)


@settings(max_examples=examples(60), **SETTINGS)
@given(scenarios())
def test_cash_plus_position_is_equity_on_every_bar(case):
    padded, spans, config = case
    bt = _run(padded, config)
    close = padded[3]
    for a, (s, e) in enumerate(spans):
        for series in (bt.equity, bt.cash, bt.units):
            assert np.isnan(series[a, :s]).all() and np.isnan(series[a, e:]).all()
            assert np.isfinite(series[a, s:e]).all()
        value = bt.cash[a, s:e] + bt.units[a, s:e] * close[a, s:e]
        np.testing.assert_allclose(bt.equity[a, s:e], value, rtol=1e-12,
                                   atol=1e-9 * INIT_CASH)
    assert bt.equity.dtype == np.float64 and bt.equity.shape == padded[3].shape


@settings(max_examples=examples(60), **SETTINGS)
@given(scenarios(), st.data())
def test_no_look_ahead(case, data):
    """Cutting the data after bar T-1 changes nothing that happened up to T-1.

    Equity through bar T-1 is the same (an open position is marked to the same close, with
    no exit fee, in both runs). Trades that exited before T-1 are identical, and so are
    trades that exited AT T-1 for a reason other than 'end' (a stop, a time exit, or a
    signal filled at T-1 is decided by data up to T-1). Positions still open at T-1 become
    'end' trades of the cut run.
    """
    padded, spans, config = case
    n = padded[0].shape[1]
    slow = max(config["fast"], config["slow"])
    if n - 1 < max(slow, 2):
        return
    cut = data.draw(st.integers(max(slow, 2), n - 1), label="T")
    keep = [a for a, (s, _) in enumerate(spans) if s < cut]  # assets with data before T
    full = _run([p[keep] for p in padded], config)
    part = _run([p[keep, :cut] for p in padded], config)
    assert _same(full.equity[:, :cut], part.equity)
    assert _same(full.units[:, :cut], part.units)

    def settled(bt, last):
        rows = bt.trades.to_pylist()
        return [t for t in rows if t["exit_bar"] < last
                or (t["exit_bar"] == last and t["exit_reason"] != "end")]

    before = settled(full, cut - 1)
    after = settled(part, cut - 1)
    assert before == after
    # whatever is open at the cut is reported as an 'end' trade at bar T-1
    ends = [t for t in part.trades.to_pylist() if t["exit_reason"] == "end"]
    for t in ends:
        a = list(part.bundle.symbols).index(t["symbol"])
        assert t["exit_bar"] == part.bundle.end[a] - 1


SWEEP = dict(fast=[2, 3, 5], slow=[4, 8, 11], stop_loss=[None, 0.02], take_profit=[None, 0.05],
             trailing_stop=[None, 0.03], max_bars=[None, 7], fees=0.001, fixed_fees=[0.0, 2.0],
             slippage=0.0005, size=[1.0, 0.5])


@settings(max_examples=examples(6), **SETTINGS)
@given(scenarios(n_assets=3))
def test_sweep_independent_of_threads_and_chunking(case):
    padded, _, config = case
    data = _bundle(padded)
    opts = dict(fill=config["fill"], direction=config["direction"], periods_per_year=PPY)
    if not _two_threads():
        return
    one = sb.sweep(data, "sma_cross", threads=1, **opts, **SWEEP)
    two = sb.sweep(data, "sma_cross", threads=2, **opts, **SWEEP)
    _tables_identical(one.table, two.table)
    saved = sweepbt._plan.CHUNK_BAR_EVALUATIONS
    # 7 combos per chunk (about 80 launches), so chunks straddle signal and option groups
    bars = float((data.end - data.start).mean()) * data.n_assets
    sweepbt._plan.CHUNK_BAR_EVALUATIONS = 7.5 * bars
    try:
        chunked = sb.sweep(data, "sma_cross", threads=2, **opts, **SWEEP)
        # and with a constraint, so chunks hold different numbers of kept combos
        small = sb.sweep(data, "sma_cross", threads=2, constraint="fast < slow", **opts,
                         **SWEEP)
    finally:
        sweepbt._plan.CHUNK_BAR_EVALUATIONS = saved
    _tables_identical(one.table, chunked.table)
    whole = sb.sweep(data, "sma_cross", threads=1, constraint="fast < slow", **opts, **SWEEP)
    _tables_identical(whole.table, small.table)
    keep = pc.less(one.table["fast"], one.table["slow"])
    kept = one.table.filter(keep)
    assert small.table.num_rows == kept.num_rows < one.table.num_rows
    _tables_identical(small.table.drop_columns(["combo"]), kept.drop_columns(["combo"]))


def test_chunking_really_splits_the_sweep(monkeypatch):
    """The tiny chunk setting above does make many kernel launches."""
    launches = []
    real = sweepbt._plan.Plan.run_chunk

    def counting(*args, **kwargs):
        launches.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sweepbt._plan, "CHUNK_BAR_EVALUATIONS", 1)
    monkeypatch.setattr(sweepbt._plan.Plan, "run_chunk", counting)
    data = sb.Bundle.from_arrays(*(p[0] for p in _ohlc(np.random.default_rng(3), 1, 60,
                                                         0.02, None, 0.0)))
    res = sb.sweep(data, "sma_cross", fast=[2, 3], slow=[5, 8, 11], stop_loss=[None, 0.02])
    assert res.n_combos == 12 and len(launches) == 12


@settings(max_examples=examples(25), **SETTINGS)
@given(scenarios())
def test_sweep_row_equals_single_backtest(case):
    padded, _, config = case
    data = _bundle(padded)
    fixed = {k: config[k] for k in ("fill", "direction")}
    params = {k: v for k, v in config.items() if k not in fixed}
    # the drawn combination is one point of a small grid around it
    grid = dict(params, fast=sorted({params["fast"], 1, 2}),
                stop_loss=[params["stop_loss"], None] if params["stop_loss"] else [None],
                fees=sorted({params["fees"], 0.0}))
    res = sb.sweep(data, "sma_cross", periods_per_year=PPY, init_cash=INIT_CASH, **fixed,
                   **grid)
    bt = sb.backtest(data, "sma_cross", periods_per_year=PPY, init_cash=INIT_CASH, **fixed,
                     **params)
    table = res.table
    mask = np.ones(table.num_rows, dtype=bool)
    for name in ("fast", "fees"):
        mask &= table[name].to_numpy() == params[name]
    sl = table["stop_loss"]
    mask &= (sl.is_null().to_numpy(zero_copy_only=False) if params["stop_loss"] is None
             else sl.fill_null(-1.0).to_numpy() == params["stop_loss"])
    rows = table.filter(mask)
    assert rows.num_rows == data.n_assets
    assert rows["symbol"].to_pylist() == list(data.symbols)
    for name in METRIC_NAMES:
        got = rows[name].to_numpy().astype(np.float64)
        want = bt.stats[name].to_numpy().astype(np.float64)
        assert _same(got, want), name


@settings(max_examples=examples(60), **SETTINGS)
@given(scenarios())
def test_trade_pnl_adds_up_to_the_equity_change(case):
    padded, spans, config = case
    bt = _run(padded, config)
    pnl = bt.trades["pnl"].to_numpy()
    owner = np.array([_asset_of(bt)[s] for s in bt.trades["symbol"].to_pylist()], dtype=int)
    for a, (_, e) in enumerate(spans):
        total = float(pnl[owner == a].sum())
        change = float(bt.equity[a, e - 1]) - INIT_CASH
        assert total == pytest.approx(change, rel=1e-9, abs=1e-7 * INIT_CASH)
        assert bt.stats["total_return"][a].as_py() == pytest.approx(change / INIT_CASH,
                                                                   rel=1e-12, abs=1e-15)
    # each trade's return is its pnl over the cash committed at entry
    fees, fixed = config["fees"], config["fixed_fees"]
    for t in bt.trades.to_pylist():
        committed = t["units"] * t["entry_price"] * (1 + fees) + fixed
        assert t["return"] == pytest.approx(t["pnl"] / committed, rel=1e-9, abs=1e-12)
        assert t["units"] > 0 and t["mfe"] >= 0.0 and t["mae"] >= 0.0


def _check_metrics(bt, long_only):
    stats = bt.stats.to_pylist()
    ends = pc.value_counts(bt.trades.filter(
        pc.equal(bt.trades["exit_reason"], "end"))["symbol"]).to_pylist()
    ends = {d["values"]: d["counts"] for d in ends}
    for row in stats:
        assert row["max_drawdown"] >= 0.0
        if long_only:
            assert row["max_drawdown"] <= 1.0
        assert 0.0 <= row["exposure"] <= 1.0
        assert row["n_trades"] == sum(row[r] for r in REASON_COUNTS) + ends.get(row["symbol"], 0)
        n_rows = bt.trades.filter(pc.equal(bt.trades["symbol"], row["symbol"])).num_rows
        assert row["n_trades"] == n_rows
        if row["n_trades"]:
            assert 0.0 <= row["win_rate"] <= 1.0
            assert row["avg_bars_held"] >= 0.0
        else:
            assert math.isnan(row["win_rate"]) and math.isnan(row["avg_bars_held"])
        for name in METRIC_NAMES:  # NaN for undefined ratios, never inf
            assert not math.isinf(row[name]), name
        if not math.isnan(row["profit_factor"]):
            assert row["profit_factor"] >= 0.0


@settings(max_examples=examples(60), **SETTINGS)
@given(scenarios())
def test_metrics_agree_with_trades_and_equity(case):
    """The metrics row, recomputed from the trades table and the equity/units series."""
    padded, spans, config = case
    bt = _run(padded, config)
    trades = bt.trades.to_pylist()
    for a, row in enumerate(bt.stats.to_pylist()):
        s, e = spans[a]
        mine = [t for t in trades if t["symbol"] == row["symbol"]]
        pnl = np.array([t["pnl"] for t in mine])
        assert row["n_trades"] == len(mine)
        for reason in ("stop", "take", "trail", "time", "signal"):
            assert row[f"n_{reason}"] == sum(t["exit_reason"] == reason for t in mine)
        if mine:
            assert row["win_rate"] == pytest.approx(np.mean(pnl > 0), rel=1e-12)
            assert row["avg_trade"] == pytest.approx(np.mean([t["return"] for t in mine]),
                                                     rel=1e-9, abs=1e-12)
            assert row["avg_bars_held"] == pytest.approx(
                np.mean([t["exit_bar"] - t["entry_bar"] for t in mine]), rel=1e-12)
        losses = -pnl[pnl < 0].sum()
        if losses > 0:
            assert row["profit_factor"] == pytest.approx(pnl[pnl > 0].sum() / losses,
                                                         rel=1e-9)
        else:
            assert math.isnan(row["profit_factor"])
        units = bt.units[a, s:e]
        assert row["exposure"] == pytest.approx(np.mean(units != 0), rel=1e-12)
        equity = bt.equity[a, s:e]
        peak = np.maximum.accumulate(np.concatenate([[INIT_CASH], equity]))[1:]
        assert row["max_drawdown"] == pytest.approx(np.max(1 - equity / peak), rel=1e-9,
                                                    abs=1e-12)


@settings(max_examples=examples(60), **SETTINGS)
@given(scenarios(directions=("long",)))
def test_metrics_sanity_long_only(case):
    padded, _, config = case
    _check_metrics(_run(padded, config), long_only=True)


@settings(max_examples=examples(30), **SETTINGS)
@given(scenarios(directions=("short", "both")))
def test_metrics_sanity_short_and_both(case):
    padded, _, config = case
    _check_metrics(_run(padded, config), long_only=False)


@settings(max_examples=examples(80), **SETTINGS)
@given(scenarios(), st.sampled_from([0.3, 1.0, 2.0]), st.sampled_from([0.15, 0.5]),
       st.sampled_from([(case.name, case.params) for case in CASES.values()]))
def test_no_configuration_raises_from_a_kernel_even_through_ruin(case, fee_share, jump,
                                                                  strategy):
    """Wild prices (jumps of +/- ``jump`` per bar) and fixed fees up to twice the cash: no
    kernel raises; a ruined backtest is flat at its ruined equity afterwards, with NaN
    ratios; cash + position == equity on every bar (docs/semantics.md, Ruin)."""
    padded, spans, config = case
    rng = np.random.default_rng(len(spans) * 7919 + int(jump * 100))
    scale = np.exp(np.cumsum(rng.normal(0.0, jump, padded[0].shape), axis=1))
    prices = [p * scale for p in padded]
    prices[1] = np.maximum.reduce(prices)  # high
    prices[2] = np.minimum.reduce(prices)  # low
    init_cash = 100.0
    strategy, windows = strategy
    config = {k: v for k, v in config.items() if k not in ("fast", "slow")}
    config.update(windows, fixed_fees=fee_share * init_cash * float(rng.random()))
    bundle = _bundle(prices)
    bt = sb.backtest(bundle, strategy, periods_per_year=PPY, init_cash=init_cash, **config)
    res = sb.sweep(bundle, strategy, periods_per_year=PPY, init_cash=init_cash,
                   **{**config, "fees": [0.0, config["fees"]]})
    assert res.table.num_rows == 2 * bundle.n_assets
    close = bundle.close
    for a, (s, e) in enumerate(spans):
        eq, cash, units = bt.equity[a, s:e], bt.cash[a, s:e], bt.units[a, s:e]
        np.testing.assert_allclose(cash + units * close[a, s:e], eq, rtol=1e-9, atol=1e-9)
        stats = bt.stats.slice(a, 1).to_pylist()[0]
        bust = np.flatnonzero(eq <= 0.0)
        assert stats["ruined"] == (1.0 if bust.size else 0.0)
        if bust.size:
            i = bust[0]
            assert (eq[i:] == eq[i]).all() and (units[i + 1:] == 0).all()
            assert stats["cagr"] == -1.0 and stats["total_return"] == eq[i] / init_cash - 1
            for name in ("volatility", "sharpe", "sortino", "calmar", "skew", "kurtosis"):
                assert math.isnan(stats[name])
        for name in METRIC_NAMES:
            assert not math.isinf(stats[name]), name
