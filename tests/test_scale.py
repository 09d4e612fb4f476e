"""Large grids: chunking, top-k streaming, Parquet datasets, memory bounds, interruption."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pyarrow.parquet as pq
import pytest

import sweepbt as sb
from sweepbt import _params as params, _plan as plan

GRID = dict(fast=range(2, 12), slow=range(5, 40, 3), stop_loss=[None, 0.03, 0.06],
            take_profit=[None, 0.05], constraint="fast < slow", fees=0.001)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n = 400
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, (3, n)), axis=1))
    open_ = close * np.exp(rng.normal(0, 0.004, (3, n)))
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    return sb.Bundle.from_arrays(open_, high, low, close)


def assert_tables_equal(a, b):
    """Same columns, same values (NaN equal to NaN), same types; metadata aside."""
    assert a.schema.remove_metadata() == b.schema.remove_metadata()
    for name in a.column_names:
        x = a[name].to_numpy(zero_copy_only=False)
        y = b[name].to_numpy(zero_copy_only=False)
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=name)  # treats NaN == NaN
        else:
            assert (x == y).all(), name


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of a few combos, so every code path crosses many chunk borders."""
    monkeypatch.setattr(plan, "CHUNK_BAR_EVALUATIONS", 5_000)


def test_chunked_sweep_equals_single_chunk(data, tiny_chunks):
    many = sb.sweep(data, **GRID)
    plan.CHUNK_BAR_EVALUATIONS = 10**12
    one = sb.sweep(data, **GRID)
    assert_tables_equal(many.table, one.table)
    assert many.n_combos == one.n_combos == sb.estimate(data, **GRID).n_combos


def test_top_k_streaming_equals_full_ranking(data, tiny_chunks):
    full = sb.sweep(data, **GRID)
    for metric in ("sharpe", "max_drawdown", "profit_factor"):
        top = sb.sweep(data, top=9, metric=metric, **GRID)
        assert top.table.num_rows == 9 * data.n_assets
        assert_tables_equal(top.best(metric, 9), full.best(metric, 9))
        kept = set(top.table["combo"].to_pylist())
        assert kept == set(full.best(metric, 9)["combo"].to_pylist())


def test_parquet_dataset_holds_every_row(data, tiny_chunks, tmp_path):
    full = sb.sweep(data, **GRID)
    res = sb.sweep(data, out=tmp_path / "res", **GRID)
    parts = sorted(os.listdir(tmp_path / "res"))
    assert parts[0] == "_manifest.json"  # skipped by Parquet readers, as "_partial/" is
    assert len(parts) > 2 and all(p.endswith(".parquet") for p in parts[1:])
    assert os.listdir(tmp_path) == ["res"]  # no temporary directory left behind
    table = pq.read_table(tmp_path / "res").sort_by("combo")
    assert_tables_equal(table, full.table.sort_by("combo"))
    assert_tables_equal(res.best("sharpe", 5), full.best("sharpe", 5))
    with pytest.raises(FileExistsError, match="already exists"):
        sb.sweep(data, out=tmp_path / "res", **GRID)


def test_interrupted_sweep_keeps_its_finished_chunks(data, tiny_chunks, tmp_path,
                                                     monkeypatch):
    calls = []
    real = plan.Plan.run_chunk

    def interrupt_on_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(plan.Plan, "run_chunk", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt, match="interrupted after .* backtests; 2 finished "
                                                "chunks are kept .* resume=True"):
        sb.sweep(data, out=tmp_path / "res", **GRID)
    assert os.listdir(tmp_path) == ["res"]
    assert len(os.listdir(tmp_path / "res" / "_partial")) == 2


def _peak_traced(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_top_k_memory_does_not_grow_with_the_grid(data, monkeypatch):
    """Peak Python-side memory of a top-k sweep is flat in the grid size; keep-all is not."""
    monkeypatch.setattr(plan, "CHUNK_BAR_EVALUATIONS", 1_000_000)
    monkeypatch.setattr(params, "COUNT_BLOCK", 5_000)
    big = dict(GRID, stop_loss=list(np.linspace(0.01, 0.1, 10)),
               take_profit=list(np.linspace(0.01, 0.2, 4)))
    huge = dict(GRID, stop_loss=list(np.linspace(0.01, 0.1, 10)),
                take_profit=list(np.linspace(0.01, 0.2, 40)))
    sb.sweep(data, top=5, **big)  # warm up
    peak_big = _peak_traced(lambda: sb.sweep(data, top=5, **big))
    peak_huge = _peak_traced(lambda: sb.sweep(data, top=5, **huge))
    peak_huge_all = _peak_traced(lambda: sb.sweep(data, **huge))
    assert sb.estimate(data, **huge).n_combos == 10 * sb.estimate(data, **big).n_combos
    assert peak_huge < 1.5 * peak_big
    assert peak_huge_all > 4 * peak_huge  # the check above can see growth


def test_estimate_and_refusal(data):
    est = sb.estimate(data, **GRID)
    assert est.n_backtests == est.n_combos * data.n_assets
    assert est.bar_evaluations == est.n_combos * int((data.end - data.start).sum())
    assert est.result_bytes > 0 and "backtests" in str(est)
    with pytest.raises(sb.SweepTooLarge, match="top=K .* out="):
        sb.sweep(data, max_memory=1_000, **GRID)
    res = sb.sweep(data, max_memory=1_000, top=3, **GRID)  # streaming is always allowed
    assert res.table.num_rows == 3 * data.n_assets


@pytest.mark.slow
def test_ctrl_c_stops_a_long_sweep_quickly(tmp_path):
    """A real SIGINT: the sweep stops within a second; its out= folder keeps the finished
    chunks (docs/distributed.md, resuming), or is removed when it holds none."""
    script = textwrap.dedent(f"""
        import sys, sweepbt as sb
        data = sb.demo()
        sb.sweep(data, fast=[5], slow=[20], top=1)  # compile before announcing
        print("started", flush=True)
        try:
            sb.sweep(data, fast=range(2, 80), slow=range(5, 300), stop_loss=[None, .02, .04, .06],
                     take_profit=[None, .05, .1], constraint="fast < slow",
                     out={str(tmp_path / "res")!r})
        except KeyboardInterrupt as exc:
            print("caught:", exc, flush=True)
            sys.exit(3)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started"
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    stopped_after = time.monotonic() - sent
    assert proc.returncode == 3, out
    assert "interrupted after" in out
    if os.listdir(tmp_path):
        assert os.listdir(tmp_path) == ["res"] and "resume=True" in out
        assert os.listdir(tmp_path / "res" / "_partial")
    assert stopped_after < 5.0  # generous bound for a loaded CI machine; typically < 0.2 s
