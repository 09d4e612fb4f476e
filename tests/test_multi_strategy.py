"""Sweeping several strategies at once: ``sb.sweep(data, ["sma_cross", "ema_cross"], ...)``
and ``sweepbt sweep --strategy A --strategy B`` (docs/getting-started.md, "Several
strategies in one sweep")."""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import signal
import sys
import textwrap

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
from sweepbt import cli, _engine as engine
from sweepbt import _plan as plan_module
from sweepbt._sinks import SharpeMoments
from sweepbt.strategies.builtin import STRATEGIES
from sweepbt._vocabulary import METRIC_NAMES
from helpers import StopAfter, assert_same_rows, finished_parts, stop_when

GRID = dict(fast=[5, 10], slow=[50, 100], stop_loss=[None, 0.05], fees=0.001)


@pytest.fixture(scope="module")
def data(demo_abc):
    return demo_abc


@pytest.fixture(scope="module")
def singles(data):
    return [sb.sweep(data, name, **GRID) for name in ("sma_cross", "ema_cross")]


@pytest.fixture(scope="module")
def res(data):
    return sb.sweep(data, ["sma_cross", "ema_cross"], **GRID)


def _without_strategy(table):
    return table.drop_columns(["strategy"]).replace_schema_metadata(None)


def test_two_strategies_equal_two_single_sweeps_row_for_row(res, singles):
    sma, ema = singles
    assert res.n_combos == sma.n_combos + ema.n_combos == 16
    assert res.strategies == ("sma_cross", "ema_cross")
    table = res.table
    assert table.column_names[:6] == ["combo", "strategy", "fast", "slow", "stop_loss",
                                      "fees"]
    n = sma.table.num_rows
    assert table["strategy"].to_pylist() == ["sma_cross"] * n + ["ema_cross"] * n
    first = _without_strategy(table.slice(0, n))
    assert first.equals(sma.table.replace_schema_metadata(None))
    second = _without_strategy(table.slice(n))
    offset = sma.plan.grid.n_total
    assert second["combo"].to_pylist() == [c + offset for c in ema.table["combo"].to_pylist()]
    assert second.drop_columns(["combo"]).equals(
        ema.table.replace_schema_metadata(None).drop_columns(["combo"]))
    np.testing.assert_array_equal(res.metrics, np.concatenate([sma.metrics, ema.metrics]))
    assert len(set(table["combo"].to_pylist())) == res.n_combos


def test_best_ranks_every_strategy_and_deflated_sharpe_counts_all_trials(res, singles):
    sma, ema = singles
    best = res.best("sharpe", k=20)
    assert best.num_rows == 16 and best["rank"].to_pylist() == list(range(1, 17))
    sharpe = best["sharpe"].to_pylist()
    assert sharpe == sorted(sharpe, reverse=True)
    by_strategy = {name: part.best("sharpe", k=20) for name, part in
                   (("sma_cross", sma), ("ema_cross", ema))}
    for row in best.to_pylist():
        mine = by_strategy[row["strategy"]]
        local = row["combo"] - (8 if row["strategy"] == "ema_cross" else 0)
        i = mine["combo"].to_pylist().index(local)
        assert row["sharpe"] == mine["sharpe"][i].as_py()
    dsr = res.deflated_sharpe()
    assert dsr.n_trials == 16 == res.n_combos
    assert dsr.combo == best["combo"][0].as_py()
    # the variance of the Sharpe ratios is over all 16 combos of both strategies
    _, per_combo = res.aggregate()
    sr = per_combo[:, METRIC_NAMES.index("sharpe")]
    ppy = res.fixed["periods_per_year"]
    assert math.isclose(dsr.var_sr, np.var(sr, ddof=1) / ppy, rel_tol=1e-9)


def test_best_row_round_trips_through_backtest(data, res):
    for row in res.best("sharpe", k=16).to_pylist()[::5]:
        bt = sb.backtest(data, **row)
        want = res.table.filter(pc.equal(res.table["combo"], row["combo"]))
        assert bt.stats["sharpe"].to_pylist() == want["sharpe"].to_pylist()
        again = res.backtest(row)
        assert again.strategy == row["strategy"]
        assert again.stats["sharpe"].to_pylist() == want["sharpe"].to_pylist()


def test_backtest_of_a_combo_of_the_second_strategy(data, res, singles):
    ema = singles[1]
    combo = 8 + 5  # ema_cross's combo 5
    assert res.params(combo) == {"strategy": "ema_cross", **ema.params(5)}
    bt = res.backtest(combo)
    assert bt.strategy == "ema_cross" and bt.params == ema.params(5)
    assert bt.stats["sharpe"].to_pylist() == ema.backtest(5).stats["sharpe"].to_pylist()
    np.testing.assert_array_equal(res.equity([combo, 1]),
                                  np.stack([ema.equity([5])[0], singles[0].equity([1])[0]]))
    with pytest.raises(ValueError, match=r"combo 16 is not in this sweep's grids \(ids 0..15"):
        res.backtest(16)


def test_top_keeps_the_best_over_all_strategies(data, res):
    top = sb.sweep(data, ["sma_cross", "ema_cross"], top=3, metric="sortino", **GRID)
    assert top.n_combos == 16 and top.combos.size == 3
    want = res.best("sortino", k=3)
    assert top.best("sortino", k=3).equals(want)
    assert sorted(top.table["combo"].to_pylist()[::3]) == sorted(want["combo"].to_pylist())
    assert top.deflated_sharpe().n_trials == 16
    assert top.sharpe_moments == res.sharpe_moments


def test_dict_form_gives_each_strategy_its_own_grid(data):
    res = sb.sweep(data, {"sma_cross": {"fast": [5, 10], "slow": [50, 100],
                                         "constraint": "fast * 10 <= slow"},
                          "momentum": {"lookback": [20, 60]}},
                   stop_loss=[None, 0.05])
    assert res.strategies == ("sma_cross", "momentum")
    # sma_cross: 2 x 2 x 2 = 8 ids, 6 pass its own constraint; momentum: 2 x 2
    assert res.n_combos == 6 + 4
    table = res.table
    assert table.column_names[:7] == ["combo", "strategy", "fast", "slow", "stop_loss",
                                      "lookback", "threshold"]
    rows = table.to_pylist()
    assert {r["lookback"] for r in rows if r["strategy"] == "sma_cross"} == {None}
    assert {r["fast"] for r in rows if r["strategy"] == "momentum"} == {None}
    assert {r["combo"] for r in rows if r["strategy"] == "momentum"} == set(range(8, 12))
    momentum = sb.sweep(data, "momentum", lookback=[20, 60], stop_loss=[None, 0.05])
    np.testing.assert_array_equal(res.metrics[6 * 3:], momentum.metrics)
    # a row of either strategy, nulls of the other's parameters included, runs whole
    for row in res.best("sharpe", k=10).to_pylist():
        bt = sb.backtest(data, **row)
        assert bt.strategy == row["strategy"]
        assert bt.stats["sharpe"].to_pylist() == [
            r["sharpe"] for r in rows if r["combo"] == row["combo"]]
    # where= naming a parameter one strategy lacks keeps none of that strategy's combos
    assert set(res.best(k=10, where="lookback > 30")["strategy"].to_pylist()) == {"momentum"}


def test_shared_keyword_goes_to_every_strategy_that_has_it(data):
    res = sb.sweep(data, ["sma_cross", "momentum"], fast=[5, 10], lookback=30)
    assert [p.n_combos for p in res.parts] == [2, 1]
    assert res.parts[0].params(1)["fast"] == 10
    assert res.parts[1].params(0)["lookback"] == 30


def test_strategy_objects_and_pickle(data, res):
    ema = STRATEGIES["ema_cross"]
    same = sb.sweep(data, ("sma_cross", ema), **GRID)
    assert same.table.equals(res.table)
    back = pickle.loads(pickle.dumps(res))
    assert back.best(k=3).equals(res.best(k=3))


@pytest.mark.parametrize("strategies, params, error, match", [
    ([], {}, ValueError, "strategy is an empty list"),
    ({}, {}, ValueError, "strategy is an empty list"),
    (["sma_cross", "sma_cross"], {}, ValueError, "'sma_cross' is listed twice"),
    (["sma_cross", "nope"], {}, ValueError, "unknown strategy 'nope'"),
    (["sma_cross", "ema_cross"], {"lookback": 5}, TypeError,
     r"unknown parameter 'lookback': none of the strategies swept takes it \(sma_cross: "
     r"fast, slow; ema_cross: fast, slow\)"),
    ({"sma_cross": {"lookback": 5}}, {}, TypeError,
     r"strategy 'sma_cross': unknown parameter\(s\) lookback"),
    ({"sma_cross": [5]}, {}, TypeError, "strategy 'sma_cross': its grid must be a dict"),
    (["sma_cross", "momentum"], {"constraint": "fast < slow"}, ValueError,
     "strategy 'momentum': constraint 'fast < slow'"),
    ({"sma_cross": {}, "momentum_rank": {"top_n": 1}}, {}, ValueError,
     "momentum_rank always run.s. as one portfolio .* while sma_cross run.s. per asset"),
])
def test_errors_name_what_is_wrong(data, strategies, params, error, match):
    with pytest.raises(error, match=match):
        sb.sweep(data, strategies, **params)


def test_rank_and_signal_strategies_mix_as_portfolios(data):
    res = sb.sweep(data, {"sma_cross": {"fast": [5, 10]},
                          "momentum_rank": {"lookback": [21, 63], "top_n": 1}},
                   portfolio=True)
    assert res.symbols == ("portfolio",) and res.n_combos == 4
    assert "turnover" in res.table.column_names
    rank_rows = [r for r in res.table.to_pylist() if r["strategy"] == "momentum_rank"]
    assert len(rank_rows) == 2 and all(r["turnover"] is not None for r in rank_rows)
    assert res.backtest(3).strategy == "momentum_rank"


def test_estimate_adds_the_strategies(data):
    both = sb.estimate(data, ["sma_cross", "ema_cross"], **GRID)
    one = sb.estimate(data, "sma_cross", **GRID)
    assert both.n_combos == 2 * one.n_combos and both.n_backtests == 2 * one.n_backtests


def test_cli_repeated_strategy_and_qualified_param(capsys):
    argv = ["sweep", "--demo", "--symbols", "ALPHA,BRAVO", "--strategy", "sma_cross",
            "--strategy", "ema_cross", "--param", "fast=5:20:5", "--param", "slow=50",
            "--param", "ema_cross.fast=3,5", "--no-progress"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "strategy: sma_cross, ema_cross" in out
    assert "top 6 of 6 combos by sharpe" in out
    header = next(line for line in out.splitlines() if line.startswith("rank"))
    assert header.split()[:4] == ["rank", "combo", "strategy", "fast"]
    rows = [line.split() for line in out.splitlines()
            if line[:4].strip().isdigit() and len(line.split()) > 4]
    fast = {(r[2], int(r[3])) for r in rows}
    assert fast == {("sma_cross", f) for f in (5, 10, 15, 20)} | {
        ("ema_cross", 3), ("ema_cross", 5)}
    assert "best of 6 unskilled trials" in out


@pytest.mark.parametrize("argv, message", [
    (["--strategy", "sma_cross", "--param", "ema_cross.fast=3"],
     "--param ema_cross.fast: 'ema_cross' is not a --strategy of this command (sma_cross)"),
    (["--strategy", "sma_cross", "--strategy", "ema_cross", "--param", "nope=3"],
     "unknown parameter 'nope': none of the strategies swept takes it"),
])
def test_cli_multi_strategy_errors(argv, message, capsys):
    assert cli.main(["sweep", "--demo", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_backtest_refuses_a_second_strategy(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["backtest", "--demo", "--strategy", "sma_cross", "--strategy",
                  "ema_cross"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--strategy given twice" in err and "only 'sweep' takes several strategies" in err


def test_cli_backtest_takes_a_qualified_param_of_its_strategy(capsys):
    argv = ["backtest", "--demo", "--symbols", "ALPHA", "--param", "sma_cross.fast=10",
            "--param", "slow=50", "--trades", "0"]
    assert cli.main(argv) == 0
    assert "strategy: sma_cross(fast=10, slow=50" in capsys.readouterr().out


def test_backtest_and_walk_forward_take_one_strategy(data):
    with pytest.raises(TypeError, match=r"got a list; only sweep\(\) and estimate\(\) take"):
        sb.backtest(data, ["sma_cross", "ema_cross"])
    with pytest.raises(TypeError, match=r"got a dict; only sweep\(\) and estimate\(\) take"):
        sb.walk_forward(data, {"sma_cross": {}}, train=2000, test=1000)


def test_displays_show_the_strategy(res):
    assert repr(res).startswith("<SweepResult sma_cross, ema_cross: 16 combos x 3 assets")
    html = res._repr_html_()
    assert ">strategy<" in html and ">ema_cross<" in html
    pd = pytest.importorskip("pandas")
    frame = res.to_pandas()
    assert frame.index.names == ["strategy", "combo", "symbol"]
    assert isinstance(frame, pd.DataFrame) and len(frame) == res.table.num_rows


def test_an_option_one_strategy_sweeps_is_at_its_default_for_the_others(data):
    res = sb.sweep(data, {"sma_cross": {"fast": [5, 10], "size": [0.5, 1.0]},
                          "momentum_rank": {"lookback": [21, 63], "top_n": 1}},
                   portfolio=True, stop_loss=[None, 0.1])
    rows = res.table.to_pylist()
    assert {r["size"] for r in rows if r["strategy"] == "sma_cross"} == {0.5, 1.0}
    # a rank strategy takes no size: null in its rows, and its rows still run whole
    assert {r["size"] for r in rows if r["strategy"] == "momentum_rank"} == {None}
    for row in rows:
        bt = sb.backtest(data, **row, portfolio=True)
        assert bt.strategy == row["strategy"]
        assert bt.stats["sharpe"][0].as_py() == row["sharpe"]
    res = sb.sweep(data, {"sma_cross": {"fees": [0.0, 0.001]}, "ema_cross": {}})
    assert {r["fees"] for r in res.table.to_pylist() if r["strategy"] == "ema_cross"} == {0.0}


# --- out= folders of several strategies: dir/<strategy>/ each, and dir/_strategies.json ---

BOTH = ["sma_cross", "ema_cross"]


@pytest.fixture
def small_chunks(data, monkeypatch):
    """About 2 combos per chunk (3 assets): each strategy's 8 combos are 4 or more chunks."""
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 3 * data.n_bars * 2)


def _index(path):
    with open(os.path.join(path, "_strategies.json"), encoding="utf-8") as f:
        return json.load(f)


def _manifest(path):
    with open(os.path.join(path, "_manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def _stopped(monkeypatch, data, path, strategy, k, **kwargs):
    """A sweep of BOTH into ``path`` stopped by Ctrl-C after strategy number ``strategy``
    (0 or 1) saw ``k`` chunks; the message."""
    made = []

    def moments(n):
        made.append(n)
        return StopAfter(n, k) if len(made) == strategy + 1 else SharpeMoments(n)

    monkeypatch.setattr(engine, "SharpeMoments", moments)
    with pytest.raises(KeyboardInterrupt) as stopped:
        sb.sweep(data, BOTH, out=path, **kwargs, **GRID)
    monkeypatch.setattr(engine, "SharpeMoments", SharpeMoments)
    return str(stopped.value)


def assert_same_result(a, b):
    """Two multi-strategy results hold the same rows, ids and deflated Sharpe."""
    assert_same_rows(a.table, b.table)
    assert a.table.schema.metadata == b.table.schema.metadata
    assert a.n_combos == b.n_combos and a.sharpe_moments == b.sharpe_moments
    assert str(a.deflated_sharpe()) == str(b.deflated_sharpe())
    assert_same_rows(a.best("sharpe", k=20), b.best("sharpe", k=20))


def test_out_folder_holds_a_sweep_folder_per_strategy_and_equals_the_in_memory_sweep(
        data, res, singles, tmp_path):
    path = tmp_path / "both"
    out = sb.sweep(data, BOTH, out=path, **GRID)
    assert out.path == str(path) and out.metrics is None  # rows are read from the folder
    assert sorted(os.listdir(path)) == ["_strategies.json", "ema_cross", "sma_cross"]
    assert _index(path) == {"format": 1, "complete": True, "strategies": [
        {"name": "sma_cross", "n_combos": 8}, {"name": "ema_cross", "n_combos": 8}]}
    for name, single in zip(BOTH, singles):  # each an ordinary out= folder, its own ids
        assert _manifest(path / name)["complete"] and _manifest(path / name)["strategy"] == {
            "name": name}
        assert not os.path.exists(path / name / "_partial")
        assert_same_rows(pq.read_table(path / name), single.table)
    assert_same_result(out, res)
    with pytest.raises(ValueError, match="kept no rows in memory"):
        out.equity([9])
    top = sb.sweep(data, BOTH, out=tmp_path / "top", top=3, **GRID)
    assert_same_result(top, sb.sweep(data, BOTH, top=3, **GRID))
    assert top.equity([top.combos[0]]).shape[:2] == (1, 3)


def test_ctrl_c_in_the_second_strategy_keeps_the_first_and_resumes_to_the_same_result(
        data, tmp_path, small_chunks, monkeypatch):
    path = tmp_path / "both"
    message = _stopped(monkeypatch, data, path, 1, 2)
    assert "(strategy 'ema_cross', 2 of 2)" in message
    assert ("strategies finished and kept: sma_cross; ema_cross stopped (its finished "
            f"chunks are kept); all in {str(path)!r}: run the same sweep with resume=True "
            "(CLI: --resume) to continue") in message
    assert _index(path)["complete"] is False
    assert _manifest(path / "sma_cross")["complete"]
    assert not _manifest(path / "ema_cross")["complete"]
    kept = sorted(os.listdir(path / "ema_cross" / "_partial"))
    assert len(kept) == 2
    resumed = sb.sweep(data, BOTH, out=path, resume=True, **GRID)
    assert _index(path)["complete"] is True
    whole = sb.sweep(data, BOTH, **GRID)  # chunked alike (small_chunks)
    assert_same_result(resumed, whole)
    assert set(kept) <= set(os.listdir(path / "ema_cross"))  # the kept parts were not rerun
    again = sb.sweep(data, BOTH, out=path, resume=True, **GRID)  # complete: at once
    assert_same_result(again, whole)


SWEEP_SCRIPT = """
import sys
import sweepbt as sb
from sweepbt import _plan as plan
plan.CHUNK_BAR_EVALUATIONS = 1  # one combo per chunk: many chunks
sb.sweep(sb.demo(), ["sma_cross", "ema_cross"], out=sys.argv[1], fast=list(range(2, 42)),
         slow=[50, 100, 150])
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_in_another_process_then_resume_equals_an_uninterrupted_run(tmp_path,
                                                                         monkeypatch):
    path = tmp_path / "both"
    status, err = stop_when([sys.executable, "-c", textwrap.dedent(SWEEP_SCRIPT), str(path)],
                            lambda: len(finished_parts(path / "ema_cross" / "_partial")) >= 3,
                            signal.SIGINT)
    assert status != 0 and "KeyboardInterrupt: sweep interrupted after" in err
    assert ("(strategy 'ema_cross', 2 of 2); strategies finished and kept: sma_cross; "
            "ema_cross stopped (its finished chunks are kept)") in err
    assert _manifest(path / "sma_cross")["complete"] and not _index(path)["complete"]
    grid = dict(fast=list(range(2, 42)), slow=[50, 100, 150])
    res = sb.sweep(sb.demo(), BOTH, out=path, resume=True, **grid)
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 1)  # chunked alike
    whole = sb.sweep(sb.demo(), BOTH, **grid)
    assert_same_result(res, whole)
    assert np.array_equal(np.unique(res.table["combo"].to_numpy()), np.arange(240))


def test_a_lost_strategy_folder_is_run_again_on_resume(data, res, tmp_path):
    path = tmp_path / "both"
    sb.sweep(data, BOTH, out=path, **GRID)
    for part in os.listdir(path / "ema_cross"):
        os.remove(path / "ema_cross" / part)
    os.rmdir(path / "ema_cross")
    with pytest.raises(ValueError, match="holds a sweep of other strategies"):
        sb.sweep(data, ["sma_cross"], out=path, resume=True, **GRID)
    assert _index(path)["complete"] is True  # a refused call changes nothing
    assert_same_result(sb.sweep(data, BOTH, out=path, resume=True, **GRID), res)
    assert _index(path)["complete"] is True
    assert _manifest(path / "ema_cross")["complete"]


def test_ctrl_c_before_anything_finished_leaves_no_folder(data, tmp_path, monkeypatch):
    path = tmp_path / "both"
    message = _stopped(monkeypatch, data, path, 0, 0)
    assert message.endswith("(strategy 'sma_cross', 1 of 2); nothing was written")
    assert os.listdir(tmp_path) == []
    message = _stopped(monkeypatch, data, path, 1, 0)  # the first finished: kept
    assert message.endswith("strategies finished and kept: sma_cross; not run yet: "
                            f"ema_cross; all in {str(path)!r}: run the same sweep with "
                            "resume=True (CLI: --resume) to continue")
    assert sorted(os.listdir(path)) == ["_strategies.json", "sma_cross"]


@pytest.mark.parametrize("strategies, grid, error, match", [
    (["ema_cross", "sma_cross"], GRID, ValueError,
     r"cannot resume out='.*': it holds a sweep of other strategies \(the same strategies "
     r"in another order\): sma_cross \(8 combos\), ema_cross \(8 combos\) in the folder, "
     r"ema_cross \(8 combos\), sma_cross \(8 combos\) now"),
    (["sma_cross"], GRID, ValueError, "holds a sweep of other strategies"),
    (["sma_cross", "ema_cross", "momentum"], GRID, ValueError,
     "holds a sweep of other strategies: sma_cross .8 combos., ema_cross .8 combos. in "
     "the folder, sma_cross .8 combos., ema_cross .8 combos., momentum"),
    ({"sma_cross": None, "ema_cross": {"fast": [5, 11]}}, GRID, ValueError,
     r"cannot resume out='.*ema_cross': it holds another sweep: the grid differs "
     r"\(values.fast: \[5, 10\] in the folder, \[5, 11\] now\)"),
])
def test_a_resume_with_other_strategies_is_refused(data, tmp_path, strategies, grid, error,
                                                   match):
    path = tmp_path / "both"
    sb.sweep(data, BOTH, out=path, **GRID)
    with pytest.raises(error, match=match):
        sb.sweep(data, strategies, out=path, resume=True, **grid)
    assert _index(path)["complete"] is True  # untouched


def test_out_folder_errors(data, tmp_path):
    path = tmp_path / "both"
    sb.sweep(data, BOTH, out=path, **GRID)
    with pytest.raises(FileExistsError, match="already exists; pass resume=True"):
        sb.sweep(data, BOTH, out=path, **GRID)
    single = tmp_path / "single"
    sb.sweep(data, "sma_cross", out=single, **GRID)
    with pytest.raises(FileExistsError, match="is a single-strategy sweep folder"):
        sb.sweep(data, BOTH, out=single, resume=True, **GRID)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sb.sweep(data, BOTH, out=tmp_path / "no" / "such", **GRID)
    with pytest.raises(ValueError, match="resume=True continues an out= folder"):
        sb.sweep(data, BOTH, resume=True, **GRID)


def test_cli_out_dir_with_two_strategies(tmp_path, capsys):
    path = tmp_path / "both"
    argv = ["sweep", "--demo", "--symbols", "ALPHA,BRAVO", "--strategy", "sma_cross",
            "--strategy", "ema_cross", "--param", "fast=5,10", "--param", "slow=50",
            "--no-progress", "--out-dir", str(path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert (f"wrote 8 rows to {path} (a Parquet dataset per strategy: sma_cross/, "
            "ema_cross/)") in out
    assert pq.read_table(path / "ema_cross").num_rows == 4
    table = out[out.index("top 4"):out.index("wrote")]
    assert cli.main(argv) == 2
    assert "--resume continues the sweep it holds" in capsys.readouterr().err
    assert cli.main(argv + ["--resume"]) == 0
    again = capsys.readouterr().out
    assert again[again.index("top 4"):again.index("wrote")].split("\n")[:6] == \
        table.split("\n")[:6]


def _rows(res):
    """{(combo, symbol): the row} of a (multi-strategy) result's table."""
    return {(r["combo"], r["symbol"]): r for r in res.table.to_pylist()}


def test_sample_draws_distinct_combos_from_the_joined_grid(data, res):
    kwargs = dict(constraint="fast < slow", sample=5, seed=3)
    one = sb.sweep(data, ["sma_cross", "ema_cross"], **GRID, **kwargs)
    ids = one.held()[0]
    assert one.n_combos == 5 and ids.size == 5 and np.unique(ids).size == 5
    assert one.fixed["sample"] == 5 and one.fixed["seed"] == 3
    assert one.deflated_sharpe().n_trials == 5  # the combos sampled, as for one strategy
    assert sb.estimate(data, ["sma_cross", "ema_cross"], **GRID, sample=5).n_combos == 5
    again = sb.sweep(data, ["sma_cross", "ema_cross"], **GRID, **kwargs)
    np.testing.assert_array_equal(again.held()[0], ids)
    full = _rows(res)
    rows = _rows(one)
    assert len(rows) == 5 * 3
    for key, row in rows.items():  # the same joined id, the same row as the full sweep
        assert row == full[key]
        assert row["fast"] < row["slow"]
    for k, part in enumerate(one.parts):  # each strategy ran its share of the joined ids
        np.testing.assert_array_equal(part.held()[0] + one.offsets[k],
                                      ids[(ids >= one.offsets[k]) & (
                                          ids < one.offsets[k] + part.plan.grid.n_total)])
    other = sb.sweep(data, ["sma_cross", "ema_cross"], **GRID, sample=5, seed=4)
    assert not np.array_equal(other.held()[0], ids)


def test_sample_of_at_least_the_joined_grid_runs_it_all(data, res):
    every = sb.sweep(data, ["sma_cross", "ema_cross"], **GRID, sample=100, seed=0)
    assert every.n_combos == res.n_combos == 16
    assert _rows(every) == _rows(res)


def test_a_strategy_with_no_sampled_combo_gives_no_rows(data):
    grids = {"sma_cross": {"fast": [5]}, "ema_cross": {"fast": [5, 10]}}
    full = sb.sweep(data, grids, slow=[50, 100])
    seed = next(s for s in range(50) if (sb.sweep(
        data, grids, slow=[50, 100], sample=1, seed=s).held()[0] >= 2).all())
    one = sb.sweep(data, grids, slow=[50, 100], sample=1, seed=seed)
    assert one.strategies == ("sma_cross", "ema_cross")
    assert [p.n_combos for p in one.parts] == [0, 1] and one.n_combos == 1
    assert {r["strategy"] for r in one.table.to_pylist()} == {"ema_cross"}
    (key, row), = ((k, r) for k, r in _rows(one).items() if k[1] == "ALPHA")
    assert row == _rows(full)[key]
    assert one.best().num_rows == 1 and one.best()["combo"][0].as_py() == key[0]


def test_sample_too_few_passing_is_refused(data, monkeypatch):
    from sweepbt import _multi as multi
    monkeypatch.setattr(multi, "EXACT_COUNT_LIMIT", 0)  # draw without counting first
    with pytest.raises(ValueError, match=r"sample=5: the constraints \(sma_cross: "
                       r"'fast > 5 and slow > 50'; ema_cross: 'fast > 5 and slow > 50'\) "
                       r"kept only 4 distinct combos in .* random draws from a grid of 16"):
        sb.sweep(data, ["sma_cross", "ema_cross"], **GRID, sample=5, seed=0,
                 constraint="fast > 5 and slow > 50")


def test_sample_out_folder_resumes(data, tmp_path):
    kwargs = dict(**GRID, sample=6, seed=2, out=tmp_path / "run")
    first = sb.sweep(data, ["sma_cross", "ema_cross"], **kwargs)
    shutil.rmtree(tmp_path / "run" / "ema_cross")  # as if stopped before ema_cross ran
    again = sb.sweep(data, ["sma_cross", "ema_cross"], **kwargs, resume=True)
    np.testing.assert_array_equal(again.held()[0], first.held()[0])
    assert _rows(again) == _rows(first)
    with pytest.raises(ValueError, match=r"cannot resume .* sample: \d combos, sha256"):
        sb.sweep(data, ["sma_cross", "ema_cross"], **{**kwargs, "seed": 5}, resume=True)


def test_cli_sample_of_several_strategies(capsys):
    argv = ["sweep", "--demo", "--symbols", "ALPHA,BRAVO", "--strategy", "sma_cross",
            "--strategy", "ema_cross", "--param", "fast=5:20:5", "--param", "slow=50:100:10",
            "--sample", "20", "--seed", "1", "--top", "20", "--no-progress"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "random sample: 20 combos, seed 1, from a grid of 48" in out
    rows = [line.split() for line in out.splitlines()
            if line[:4].strip().isdigit() and len(line.split()) > 4]
    assert len(rows) == 20 and len({int(r[1]) for r in rows}) == 20
    assert {r[2] for r in rows} <= {"sma_cross", "ema_cross"}
    assert cli.main(argv) == 0
    assert [line.split() for line in capsys.readouterr().out.splitlines()
            if line[:4].strip().isdigit() and len(line.split()) > 4] == rows


class Terminal:
    """A stderr that says it is a terminal, so the progress bar draws into it."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_one_progress_bar_runs_over_every_strategy(data, monkeypatch):
    from sweepbt import _progress

    screen = Terminal()
    monkeypatch.setattr(engine, "ProgressBar",
                        lambda total: _progress.ProgressBar(total, screen))
    res = sb.sweep(data, ["sma_cross", "ema_cross"], fast=[5, 10], slow=[30, 60],
                   progress=True)
    drawn = [line for line in screen.text.split("\r") if line]
    counts = [int(line.split("] ")[1].split()[1].split("/")[0].replace(",", ""))
              for line in drawn]
    totals = {line.split("/")[1].split()[0] for line in drawn}
    assert totals == {f"{res.n_backtests:,}"}  # one bar: the total of both strategies
    assert counts == [12, 24] and res.n_backtests == 24  # each strategy drew its stretch
    assert screen.text.count("\n") == 1  # closed once, at the end
