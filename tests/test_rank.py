"""Rank strategies through the public API (sb.backtest, sb.sweep, sb.walk_forward, the CLI)
against the pure-Python reference (tests/rank_reference.py): the scores, the schedule,
the parameters given as words, the result tables, and the errors."""

import math
import subprocess
import sys

import numpy as np
import pytest

import sweepbt as sb
from rank_reference import (low_volatility_score, momentum_score, reference_rank_portfolio,
                            reversal_score, volatility)
from sweepbt._schedule import rebalance_bars
from helpers import assert_same, random_ohlc

NAN = float("nan")


def ragged_bundle(seed, n_assets=6, n_bars=260):
    """Daily bars with ragged spans (late listings, early delistings)."""
    rng = np.random.default_rng(seed)
    bars = [np.array(x) for x in random_ohlc(rng, n_bars, n_assets)]
    start = rng.integers(0, n_bars // 4, n_assets)
    end = n_bars - rng.integers(0, n_bars // 4, n_assets)
    start[0], end[1] = 0, n_bars
    for a in range(n_assets):
        for x in bars:
            x[a, :start[a]] = NAN
            x[a, end[a]:] = NAN
    data = sb.Bundle.from_arrays(*bars)
    return data, bars, [int(s) for s in start], [int(e) for e in end]


def reference_for(data, bars, start, end, strategy, rebalance, **kw):
    close = bars[3]
    score_kw = {k: kw.pop(k) for k in ("lookback", "skip") if k in kw}
    vol_window = kw.pop("vol_window", 63)
    if strategy == "momentum_rank":
        scores = momentum_score(close, start, score_kw["lookback"], score_kw.get("skip", 0))
    elif strategy == "reversal_rank":
        scores = reversal_score(close, start, score_kw["lookback"])
    else:
        scores = low_volatility_score(close, start, vol_window)
    vol = volatility(close, start, vol_window)
    schedule = rebalance_bars(data.timestamps, rebalance, data.tz)
    return reference_rank_portfolio(*bars, start, end, scores, schedule, vol=vol,
                                    periods_per_year=float(data.periods_per_year), **kw)


def as_kernel_record(bt):
    return {"metrics": dict(zip(sb.kernels.METRIC_NAMES, bt.metrics[0])),
            "sweep_metrics": dict(zip(sb.kernels.METRIC_NAMES, bt.metrics[0])),
            "equity": bt.equity, "cash": bt.cash, "units": bt.units,
            "trades": bt.trade_rows, "holdings": tuple(bt.rebalance_rows)}


CASES = [
    ("momentum_rank", dict(lookback=20, top_n=2, rebalance="M")),
    ("momentum_rank", dict(lookback=10, skip=3, top_n=2, bottom_n=1, rebalance="W",
                           fill="close", fees=0.001, tax=0.003, stop_loss=0.05)),
    ("reversal_rank", dict(lookback=5, top_n=3, rebalance=7, weighting="score",
                           fixed_fees=2.0, slippage=0.001, trailing_stop=0.08)),
    ("low_volatility_rank", dict(vol_window=15, top_n=2, rebalance="Q",
                                 weighting="inverse_vol", position_limit=0.4,
                                 take_profit=0.1, max_bars=30)),
    ("momentum_rank", dict(lookback=30, top_n=1, bottom_n=2, rebalance=10,
                           weighting="inverse_vol", vol_window=20, fill="close")),
]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("strategy, kw", CASES)
def test_backtest_equals_the_reference(strategy, kw, seed):
    data, bars, start, end = ragged_bundle(seed)
    bt = sb.backtest(data, strategy, **kw)
    ref_kw = {k: v for k, v in kw.items() if k != "rebalance"}
    ref = reference_for(data, bars, start, end, strategy, kw["rebalance"], **ref_kw)
    assert_same(as_kernel_record(bt), ref)
    stats = bt.stats.to_pylist()[0]
    assert stats["symbol"] == "portfolio"
    assert stats["turnover"] == pytest.approx(ref["metrics"]["turnover"], rel=1e-9,
                                              nan_ok=True)
    # the tables of the rebalances and targets
    rebalances = bt.rebalances
    assert rebalances.num_rows == len(ref["rebalances"])
    holdings = bt.holdings.to_pylist()
    expected = [(r["bar"], a, w) for r in ref["rebalances"]
                for a, w in enumerate(r["weights"]) if w != 0.0]
    assert len(holdings) == len(expected)
    for row, (bar, a, w) in zip(holdings, expected):
        assert row["symbol"] == data.symbols[a] and row["weight"] == pytest.approx(w)
        assert row["rebalance"].value == data.timestamps[bar].astype(np.int64)


def test_sweep_rows_equal_single_backtests_and_round_trip_the_words():
    data = ragged_bundle(5)[0]
    grid = dict(lookback=[5, 20], top_n=[1, 2], rebalance=["W", "M", 9],
                weighting=["equal", "inverse_vol", "score"], stop_loss=[None, 0.05])
    res = sb.sweep(data, "momentum_rank", **grid)
    assert res.n_combos == 72
    table = res.table
    assert set(table["rebalance"].to_pylist()) == {"W", "M", "9"}
    assert set(table["weighting"].to_pylist()) == {"equal", "inverse_vol", "score"}
    assert "turnover" in table.column_names
    for combo in (0, 17, 40, 71):
        params = res.params(combo)
        assert params["rebalance"] in ("W", "M", 9)
        bt = sb.backtest(data, "momentum_rank", **params)
        row = table.slice(combo, 1).to_pylist()[0]
        for name in ("total_return", "sharpe", "n_trades", "turnover", "max_drawdown"):
            assert bt.stats[name][0].as_py() == pytest.approx(row[name], rel=1e-12,
                                                              nan_ok=True)
    best = res.best("sharpe", k=1).to_pylist()[0]
    again = sb.backtest(data, "momentum_rank", **best)  # a best() row passed whole
    assert again.stats["sharpe"][0].as_py() == pytest.approx(best["sharpe"], rel=1e-12)
    for threads in (1, 2):  # independent of threads and of chunking
        other = sb.sweep(data, "momentum_rank", **grid, threads=threads, top=72)
        assert other.best("sharpe", k=72).equals(res.best("sharpe", k=72))


def test_constraints_and_where_compare_the_words():
    data = ragged_bundle(5)[0]
    grid = dict(lookback=[5, 20], top_n=[1, 2], rebalance=["W", "M", 9],
                weighting=["equal", "score"])
    res = sb.sweep(data, "momentum_rank", **grid,
                   constraint="rebalance == 'M' and weighting != 'score' or rebalance == 9")
    table = res.table
    pairs = set(zip(table["rebalance"].to_pylist(), table["weighting"].to_pylist()))
    assert pairs == {("M", "equal"), ("9", "equal"), ("9", "score")}
    assert res.n_combos == 12
    best = res.best("sharpe", k=12, where="rebalance == 'm'")  # words are case-free
    assert set(best["rebalance"].to_pylist()) == {"M"} and best.num_rows == 4
    for constraint, words in [
            ("rebalance < 30", "rebalance holds words: compare it only with == or != and a "
                               "word, e.g. rebalance == 'M'"),
            ("rebalance * 2 == 18", "rebalance holds words"),
            ("weighting == 1", "weighting holds words: compare it only with == or != and a "
                               "word, e.g. weighting == 'equal'"),
            ("weighting == 'best'", "weighting must be one of equal, inverse_vol, score; got "
                                    "'best'"),
            ("rebalance == 'D'", "rebalance must be 'W' (ISO week), 'M' (month)"),
            ("top_n == 'M'", "'M' is not a number; a constraint compares numbers and "
                             "parameter names; a word compares only with a parameter that "
                             "takes words, e.g. rebalance == 'M'")]:
        with pytest.raises(ValueError) as info:
            sb.sweep(data, "momentum_rank", **grid, constraint=constraint)
        assert words in str(info.value) and repr(constraint) in str(info.value)
    numbers_only = sb.sweep(data, "momentum_rank", lookback=5, top_n=2,
                            rebalance=[5, 9, 21],  # bars only: order is meaningful
                            constraint="rebalance < 10")
    assert set(numbers_only.table["rebalance"].to_pylist()) == {"5", "9"}


def test_out_folder_resume_and_sample_keep_the_words(tmp_path):
    data = ragged_bundle(6)[0]
    grid = dict(lookback=[5, 20], top_n=[1, 2], rebalance=["M", "Q"])
    whole = sb.sweep(data, "momentum_rank", **grid)
    written = sb.sweep(data, "momentum_rank", **grid, out=tmp_path / "run")
    assert written.table.select(["combo", "rebalance", "sharpe", "turnover"]).equals(
        whole.table.select(["combo", "rebalance", "sharpe", "turnover"]))
    resumed = sb.sweep(data, "momentum_rank", **grid, out=tmp_path / "run", resume=True)
    assert resumed.best("sharpe", k=8).equals(whole.best("sharpe", k=8))
    sample = sb.sweep(data, "momentum_rank", **grid, sample=3, seed=2)
    assert sample.table.num_rows == 3


def test_walk_forward_with_a_rank_strategy(demo):
    data = demo.select(["ALPHA", "BRAVO", "CHARLIE", "DELTA"])
    wf = sb.walk_forward(data, "momentum_rank", train=756, test=252, lookback=[21, 63],
                         top_n=[1, 2], rebalance=["M", "Q"])
    windows = wf.windows
    assert set(windows["rebalance"].to_pylist()) <= {"M", "Q"}
    assert "is_turnover" in windows.column_names and "oos_turnover" in windows.column_names
    assert all(c["rebalance"] in ("M", "Q") for c in wf.chosen)
    assert wf.stats.num_rows == 1


@pytest.mark.parametrize("kw, words", [
    (dict(top_n=7), "more than the 6 assets"),
    (dict(top_n=4, bottom_n=3), "top_n + bottom_n = 7"),
    (dict(top_n=0), "at least 1"),
    (dict(rebalance="X"), "rebalance must be 'W'"),
    (dict(rebalance=0), "whole number of bars >= 1"),
    (dict(weighting="risk_parity"), "weighting must be one of equal, inverse_vol, score"),
    (dict(stop_atr=2.0), "stop_atr do(es) not apply"),
    (dict(size=0.5), "size do(es) not apply"),
    (dict(direction="short"), "direction='short' does not apply"),
    (dict(position_limit=0.0), "position_limit must be in (0, 1]"),
    (dict(tax=1.0), "tax must be in [0, 1)"),
    (dict(vol_window=1), "vol_window must be in [2"),
])
def test_bad_input_names_the_problem(kw, words):
    data = ragged_bundle(1)[0]
    with pytest.raises((ValueError, TypeError)) as err:
        sb.backtest(data, "momentum_rank", **{"lookback": 10, **kw})
    assert words in str(err.value)


@pytest.mark.slow
def test_the_cli_sweeps_a_rank_strategy():
    out = subprocess.run(
        [sys.executable, "-m", "sweepbt", "sweep", "--demo", "--strategy", "momentum_rank",
         "--param", "lookback=21,63", "--param", "top_n=2,3", "--param", "rebalance=M,Q",
         "--columns", "sharpe,turnover", "--no-progress"],
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "top 8 of 8 combos by sharpe (one portfolio)" in out.stdout
    lines = [line.split() for line in out.stdout.splitlines()]
    header = next(line for line in lines if line[:2] == ["rank", "combo"])
    assert "rebalance" in header and "turnover" in header
    rows = [line for line in lines if len(line) == len(header) and line[0].isdigit()]
    assert len(rows) == 8
    assert {row[header.index("rebalance")] for row in rows} == {"M", "Q"}
    assert all(0.0 < float(row[header.index("turnover")]) < 2.0 for row in rows)
    assert math.isfinite(float(rows[0][header.index("sharpe/yr")]))


def factor_bundle(seed):
    data, bars, start, end = ragged_bundle(seed)
    rng = np.random.default_rng(seed)
    pe = rng.normal(15.0, 4.0, bars[3].shape)
    pe[rng.random(pe.shape) < 0.15] = NAN  # not eligible there
    with_pe = sb.Bundle.from_arrays(*bars, timestamps=data.timestamps, factors={"pe": pe})
    return with_pe, bars, start, end, np.where(np.isnan(bars[3]), NAN, pe)


@pytest.mark.parametrize("ascending", [False, True])
def test_factor_rank_equals_the_reference(ascending):
    data, bars, start, end, pe = factor_bundle(11)
    kw = dict(top_n=2, bottom_n=1, fill="close", fees=0.001)
    bt = sb.backtest(data, "factor_rank", factor="pe", ascending=ascending, rebalance="M",
                     **kw)
    scores = -pe if ascending else pe
    ref = reference_rank_portfolio(*bars, start, end, scores,
                                   rebalance_bars(data.timestamps, "M", data.tz),
                                   periods_per_year=float(data.periods_per_year), **kw)
    assert_same(as_kernel_record(bt), ref)
    res = sb.sweep(data, "factor_rank", factor="pe", ascending=ascending, top_n=[1, 2],
                   rebalance=["M", 5])
    params = res.params(3)
    assert params["factor"] == "pe" and params["ascending"] is ascending
    again = sb.backtest(data, "factor_rank", **params)
    assert again.stats["sharpe"][0].as_py() == pytest.approx(
        res.table["sharpe"][3].as_py(), rel=1e-12, nan_ok=True)


def test_factor_rank_errors_name_the_column():
    data = factor_bundle(2)[0]
    for kw, words in ((dict(), "needs factor=, the name of a factor column of the data (pe)"),
                      (dict(factor="roe"), "factor='roe' is not a factor column"),
                      (dict(factor="pe", ascending="yes"), "ascending must be True or")):
        with pytest.raises((ValueError, TypeError)) as err:
            sb.backtest(data, "factor_rank", top_n=2, **kw)
        assert words in str(err.value)
    with pytest.raises(ValueError, match="none \\(load with factors="):
        sb.backtest(ragged_bundle(2)[0], "factor_rank", factor="pe", top_n=2)


@pytest.mark.slow
def test_the_cli_runs_factor_rank(tmp_path):
    data = factor_bundle(3)[0]
    path = tmp_path / "prices.parquet"
    data.to_parquet(path)
    out = subprocess.run(
        [sys.executable, "-m", "sweepbt", "sweep", "--data", str(path), "--factors", "pe",
         "--strategy", "factor_rank", "--param", "factor=pe", "--param", "ascending=true",
         "--param", "top_n=1,2", "--param", "rebalance=M,Q", "--no-progress"],
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "top 4 of 4 combos by sharpe (one portfolio)" in out.stdout


# --------------------------------------------------------------------------------------
# user-written rank strategies (sb.define_rank_strategy)
# --------------------------------------------------------------------------------------

EXAMPLE = "examples/trend_quality.py"


def trend_quality_reference(close, start, lookback):
    """examples/trend_quality.py's score in plain Python, from its docstring."""
    out = []
    for a, row in enumerate(close):
        scores = []
        for i in range(len(row)):
            if i - lookback < start[a] or math.isnan(row[i]):
                scores.append(NAN)
                continue
            squares = math.fsum((row[k] / row[k - 1] - 1.0) ** 2
                                for k in range(i - lookback + 1, i + 1))
            scores.append((row[i] / row[i - lookback] - 1.0) / math.sqrt(squares)
                          if squares > 0.0 else NAN)
        out.append(scores)
    return out


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_the_example_rank_strategy_equals_the_reference(fill):
    data, bars, start, end = ragged_bundle(21)
    tq = sb.load_strategy(f"{EXAMPLE}:trend_quality")
    kw = dict(top_n=2, bottom_n=1, weighting="score", fees=0.001, fill=fill)
    bt = sb.backtest(data, tq, lookback=15, rebalance="W", **kw)
    scores = trend_quality_reference(bars[3], start, 15)
    ref = reference_rank_portfolio(*bars, start, end, scores,
                                   rebalance_bars(data.timestamps, "W", data.tz),
                                   periods_per_year=float(data.periods_per_year), **kw)
    assert_same(as_kernel_record(bt), ref)
    res = sb.sweep(data, tq, lookback=[5, 15], top_n=[1, 2], rebalance=["W", 8])
    for combo in range(4):
        again = sb.backtest(data, tq, **res.params(combo))
        assert again.stats["sharpe"][0].as_py() == pytest.approx(
            res.table["sharpe"][combo].as_py(), rel=1e-12, nan_ok=True)


def test_a_score_function_sees_the_bars_up_to_r_only():
    import numba

    @numba.njit
    def last_close(close):
        return close[:, -1].copy()  # the last column it is given: bar r

    data, bars, start, end = ragged_bundle(4)
    strat = sb.define_rank_strategy("last_close", score=last_close)
    bt = sb.backtest(data, strat, top_n=2, rebalance=5, fill="close")
    ref = reference_rank_portfolio(*bars, start, end, bars[3],
                                   rebalance_bars(data.timestamps, 5, data.tz), top_n=2,
                                   fill="close", periods_per_year=float(data.periods_per_year))
    assert_same(as_kernel_record(bt), ref)
    # changing the bars after a cut changes nothing decided before it
    cut = 150
    changed = [x.copy() for x in bars]
    for x in changed:
        x[:, cut:] *= 1.5
    other = sb.backtest(sb.Bundle.from_arrays(*changed, timestamps=data.timestamps), strat,
                        top_n=2, rebalance=5, fill="close")
    np.testing.assert_array_equal(other.equity[:cut - 1], bt.equity[:cut - 1])


def test_define_rank_strategy_reports_mistakes_up_front():
    import numba

    @numba.njit
    def infinite(close, lookback):
        return close[:, -1] * np.inf

    @numba.njit
    def swapped(lookback, close):
        return close[:, -1].copy()

    @numba.njit
    def short(close):
        return close[:2, -1].copy()

    def plain(close):
        return close[:, -1]

    cases = [
        (dict(score=infinite, params={"lookback": 5}), "returned an infinite score"),
        (dict(score=swapped, params={"lookback": 5}), "must take (close, lookback)"),
        (dict(score=short), "one score per asset (6,)"),
        (dict(score=plain), "must be a numba @njit function"),
        (dict(score=short, params={"top_n": 3}), "clash with the rank parameters"),
    ]
    for kw, words in cases:
        with pytest.raises(ValueError) as err:
            sb.define_rank_strategy("mine", **kw)
        assert words in str(err.value), str(err.value)
    with pytest.raises(ValueError, match="a built-in strategy has this name"):
        sb.define_rank_strategy("momentum_rank", score=short, check=False, register=True)


@pytest.mark.slow
def test_the_cli_runs_a_rank_strategy_file():
    out = subprocess.run(
        [sys.executable, "-m", "sweepbt", "sweep", "--demo", "--strategy",
         f"{EXAMPLE}:trend_quality", "--param", "lookback=21,63", "--param", "top_n=2,3",
         "--param", "rebalance=M,Q", "--no-progress"],
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "top 8 of 8 combos by sharpe (one portfolio)" in out.stdout


def test_a_heatmap_over_the_words():
    pytest.importorskip("matplotlib")
    res = sb.sweep(ragged_bundle(8)[0], "momentum_rank", lookback=[5, 20], top_n=[1, 2],
                   rebalance=["W", "M", 9])
    fig = sb.plot.heatmap(res, "rebalance", "top_n", metric="turnover")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert sorted(labels) == ["9", "M", "W"]
