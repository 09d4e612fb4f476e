"""The internal grid API (sweepbt._plan), result sinks and pickling: grid ids label rows, so
chunks run in any order, or on different sinks merged afterwards, give identical results."""

import os
import pickle
import random

import numpy as np
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
from sweepbt import _plan as plan_module
from sweepbt._plan import prepare
from sweepbt._sinks import KeepAll, KeepTop, ParquetParts, SharpeMoments

GRID = dict(fast=[3, 5, 8], slow=[10, 20, 30], stop_loss=[None, 0.03, 0.06],
            fees=[0.0, 0.001])


@pytest.fixture(scope="module")
def data(demo):
    return demo


def _plan(data, **kwargs):
    return prepare(data, "sma_cross", dict(GRID), constraint=kwargs.pop("constraint", None),
                   fill="next_open", direction="both", init_cash=10_000.0,
                   periods_per_year=None, threads=None, **kwargs)


def _sinks(p):
    names = p.grid.names
    return [KeepAll(names), KeepTop(7, "sharpe", p.n_assets, names),
            KeepTop(5, "max_drawdown", p.n_assets, names), SharpeMoments(p.n_assets)]


def _finished(sinks):
    return [s.finish() for s in sinks]


def _assert_same(a, b):
    for x, y in zip(a, b):
        if isinstance(x, tuple):
            assert x == y
            continue
        np.testing.assert_array_equal(x.ids, y.ids)
        np.testing.assert_array_equal(x.metrics, y.metrics)
        for name in x.params:
            np.testing.assert_array_equal(x.params[name], y.params[name])


def _results(p, chunks):
    return [r for r in (p.run_chunk(ids) for ids in chunks) if r is not None]


@pytest.mark.parametrize("constraint", [None, "fast * 3 < slow"])
def test_chunk_order_and_merging_do_not_change_results(data, monkeypatch, constraint):
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 4 * data.n_bars * 7)
    p = _plan(data, constraint=constraint)
    chunks = list(p.chunks())
    assert len(chunks) > 5
    results = _results(p, chunks)
    in_order = _sinks(p)
    for r in results:
        for s in in_order:
            s.add(r)
    expected = _finished(in_order)

    for order in (results[::-1], random.Random(7).sample(results, len(results))):
        sinks = _sinks(p)
        for r in order:
            for s in sinks:
                s.add(r)
        _assert_same(_finished(sinks), expected)

    # two workers, each with its own sinks, merged afterwards (either way round)
    shuffled = random.Random(3).sample(results, len(results))
    left, right = _sinks(p), _sinks(p)
    for k, r in enumerate(shuffled):
        for s in (left if k % 2 else right):
            s.add(r)
    for a, b in zip(right, left):
        a.merge(b)
    _assert_same(_finished(right), expected)


def test_run_chunk_labels_rows_with_grid_ids(data):
    p = _plan(data, constraint="fast * 3 < slow")
    ids = np.array([5, 20, 21, 40, 53], dtype=np.int64)
    result = p.run_chunk(ids)
    columns, _, kept = p.grid.columns_at(ids)
    np.testing.assert_array_equal(result.ids, kept)
    alone = [p.run_chunk(np.array([i], dtype=np.int64)) for i in kept]
    np.testing.assert_array_equal(result.metrics, np.concatenate([r.metrics for r in alone]))
    full = sb.sweep(data, "sma_cross", direction="both", constraint="fast * 3 < slow", **GRID)
    rows = {int(c): k for k, c in enumerate(full.combos)}
    for k, combo in enumerate(kept):
        np.testing.assert_array_equal(
            result.metrics[k * data.n_assets:(k + 1) * data.n_assets],
            full.metrics[rows[int(combo)] * data.n_assets:(rows[int(combo)] + 1)
                         * data.n_assets])


def test_parquet_parts_from_two_writers_read_back_in_grid_order(data, tmp_path,
                                                               monkeypatch):
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 4 * data.n_bars * 11)
    p = _plan(data)
    results = _results(p, list(p.chunks()))
    (tmp_path / "rows").mkdir()
    first = ParquetParts(tmp_path / "rows", p.row_symbols, "sma_cross", p.fixed)
    second = first.part_writer()
    for k, r in enumerate(results[::-1]):
        (first if k % 2 else second).add(r)
    first.merge(second)
    assert first.finish() == os.fspath(tmp_path / "rows")
    table = pq.read_table(tmp_path / "rows")
    full = sb.sweep(data, "sma_cross", direction="both", **GRID)
    assert table.column("combo").to_pylist() == full.table.column("combo").to_pylist()
    assert table.drop_columns([]).equals(full.table.replace_schema_metadata(
        table.schema.metadata))


def test_sweep_result_pickles_and_re_runs_equity(data):
    res = sb.sweep(data, "sma_cross", top=4, direction="both", **GRID)
    back = pickle.loads(pickle.dumps(res))
    assert back.best().equals(res.best())
    np.testing.assert_array_equal(back.equity(), res.equity())
    assert back.deflated_sharpe().dsr == res.deflated_sharpe().dsr


def test_backtest_result_pickles(data):
    bt = sb.backtest(data, "sma_cross", fast=5, slow=20, stop_loss=0.05)
    back = pickle.loads(pickle.dumps(bt))
    assert back.stats.equals(bt.stats) and back.trades.equals(bt.trades)
    np.testing.assert_array_equal(back.equity, bt.equity)


def test_plan_pickles_without_its_built_signals(data):
    p = _plan(data)
    p.run_chunk(np.arange(3, dtype=np.int64))  # builds signals and ATR rows
    blob = pickle.dumps(p)
    assert len(blob) < 4 * (data.close.nbytes * 5)  # prices, not the signal events
    back = pickle.loads(blob)
    assert back.strategy is sb.STRATEGIES["sma_cross"]
    ids = np.arange(10, 20, dtype=np.int64)
    np.testing.assert_array_equal(back.run_chunk(ids).metrics, p.run_chunk(ids).metrics)
