"""What a resume trusts in an out= folder (docs/distributed.md, "What a resume trusts"):
the manifest records each part (rows, SHA-256) under a checksum of its own; a part that is
missing or differs from its record runs again (said on stderr), a damaged manifest is
refused naming it, a file that Parquet readers would read but that is not a part is
refused naming it, an interrupted new folder loses only sweepbt's own files, and a complete
folder is read back without a write."""

import hashlib
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sweepbt as sb
from sweepbt import _engine as engine, _outdir as outdir
from sweepbt import _plan as plan_module
from sweepbt._sinks import SharpeMoments
from helpers import StopAfter, assert_same_rows, assert_same_walk_forward

GRID = dict(fast=[3, 5, 8], slow=[10, 20, 30], stop_loss=[None, 0.05])  # 18 combos
WINDOWS = dict(train=504, test=252)


@pytest.fixture(scope="module")
def data(demo_abc):
    return demo_abc


@pytest.fixture
def one_combo_chunks(monkeypatch):
    """One combo per chunk: a sweep of GRID has 18 parts."""
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 1)


@pytest.fixture
def in_memory(data, one_combo_chunks):
    """The uninterrupted in-memory sweep, chunked alike."""
    return sb.sweep(data, "sma_cross", **GRID)


def _sweep(data, path, **kwargs):
    return sb.sweep(data, "sma_cross", out=path, **kwargs, **GRID)


def _stopped(data, path, k, monkeypatch):
    """A sweep into ``path`` stopped by Ctrl-C after ``k`` chunks."""
    monkeypatch.setattr(engine, "SharpeMoments", lambda n: StopAfter(n, k))
    with pytest.raises(KeyboardInterrupt):
        _sweep(data, path)
    monkeypatch.setattr(engine, "SharpeMoments", SharpeMoments)


def _parts(folder):
    return sorted(p for p in os.listdir(folder) if p.startswith("part-"))


def _flip(file, position):
    content = bytearray(file.read_bytes())
    content[position % len(content)] ^= 0xFF
    file.write_bytes(bytes(content))


def assert_same_sweep(res, expected):
    """``res`` (read back from its folder) holds ``expected``'s rows and moments, and
    every view agrees: the table, the folder read as a dataset, best() and the DSR."""
    assert_same_rows(res.table, expected.table)
    assert_same_rows(pq.read_table(res.path), expected.table)
    assert_same_rows(res.best(k=5), expected.best(k=5))
    assert res.n_combos == expected.n_combos
    assert res.sharpe_moments == expected.sharpe_moments
    assert res.deflated_sharpe().dsr == expected.deflated_sharpe().dsr


def _manifest(path):
    return json.loads((path / "_manifest.json").read_text())


def test_a_complete_folder_records_every_part(data, tmp_path, in_memory):
    path = tmp_path / "res"
    res = _sweep(data, path)
    manifest = _manifest(path)
    assert sorted(manifest["parts"]) == _parts(path) and len(_parts(path)) == 18
    assert {r["rows"] for r in manifest["parts"].values()} == {3}  # one combo, 3 assets
    assert sorted(os.listdir(path)) == ["_manifest.json"] + _parts(path)  # nothing else
    assert_same_sweep(res, in_memory)


def test_a_deleted_part_of_a_complete_sweep_runs_again(data, tmp_path, in_memory, capsys):
    path = tmp_path / "res"
    _sweep(data, path)
    part = _parts(path)[7]
    os.remove(path / part)
    capsys.readouterr()
    res = _sweep(data, path, resume=True)
    assert f"{part} is missing; its chunk runs again" in capsys.readouterr().err
    assert res.table.num_rows == 54
    assert_same_sweep(res, in_memory)
    assert _manifest(path)["complete"] and len(_parts(path)) == 18
    assert not os.path.exists(path / "_partial")


@pytest.mark.parametrize("where", [0.5, -10], ids=["a data page", "the footer"])
def test_a_flipped_byte_in_a_part_runs_its_chunk_again(data, tmp_path, in_memory, capsys,
                                                       where):
    path = tmp_path / "res"
    _sweep(data, path)
    part = _parts(path)[3]
    size = (path / part).stat().st_size
    _flip(path / part, int(size * where) if where > 0 else size + where)
    capsys.readouterr()
    res = _sweep(data, path, resume=True)
    assert f"{part} is damaged (its SHA-256 differs from the manifest's); its chunk runs " \
           "again" in capsys.readouterr().err
    assert_same_sweep(res, in_memory)


def test_a_truncated_part_of_a_stopped_sweep_runs_again(data, tmp_path, in_memory,
                                                        monkeypatch, capsys):
    path = tmp_path / "res"
    _stopped(data, path, 5, monkeypatch)
    part = _parts(path / "_partial")[2]
    (path / "_partial" / part).write_bytes((path / "_partial" / part).read_bytes()[:100])
    res = _sweep(data, path, resume=True)
    assert f"{part} is damaged" in capsys.readouterr().err
    assert_same_sweep(res, in_memory)


def test_a_stray_copy_of_a_part_is_refused_naming_it(data, tmp_path, in_memory):
    path = tmp_path / "res"
    _sweep(data, path)
    part = _parts(path)[0]
    copy = part.replace(".parquet", " (1).parquet")  # a sync tool's "conflicted copy"
    shutil.copy(path / part, path / copy)
    with pytest.raises(ValueError, match=rf"out='.*' holds '{re.escape(copy)}', not part "
                                         r"of the sweep: Parquet readers of the folder"):
        _sweep(data, path, resume=True)
    (path / copy).rename(tmp_path / copy)
    assert_same_sweep(_sweep(data, path, resume=True), in_memory)


def test_files_in_partial_that_are_not_recorded_parts_are_ignored(
        data, tmp_path, in_memory, monkeypatch):
    path = tmp_path / "res"
    _stopped(data, path, 4, monkeypatch)
    partial = path / "_partial"
    part = _parts(partial)[0]
    shutil.copy(partial / part, partial / part.replace(".parquet", " (1).parquet"))
    shutil.copy(partial / part, partial / "part-9999999999999999999.parquet")  # > int64
    res = _sweep(data, path, resume=True)
    assert_same_sweep(res, in_memory)
    # not sweepbt's: left in _partial/, which readers skip
    assert sorted(os.listdir(partial)) == [part.replace(".parquet", " (1).parquet")]


def test_a_part_name_past_int64_in_the_folder_is_refused_naming_it(data, tmp_path):
    path = tmp_path / "res"
    _sweep(data, path)
    shutil.copy(path / _parts(path)[0], path / "part-9999999999999999999.parquet")
    with pytest.raises(ValueError, match="holds 'part-9999999999999999999.parquet', not "
                                         "part of the sweep"):
        _sweep(data, path, resume=True)


@pytest.mark.parametrize("damage, message", [
    (lambda text: text[:len(text) // 2], r"_manifest.json is damaged \(not the JSON object "
                                         r"sweepbt wrote: "),
    (lambda text: text.replace('"chunk_size": 1', '"chunk_size": 2'),
     r"_manifest.json is damaged \(its content does not match its checksum\)"),
    (lambda text: "[]", r"_manifest.json is damaged \(not the JSON object"),
], ids=["truncated", "edited", "not an object"])
def test_a_damaged_manifest_is_refused_naming_it(data, tmp_path, one_combo_chunks, damage,
                                                 message):
    path = tmp_path / "res"
    _sweep(data, path)
    manifest = path / "_manifest.json"
    manifest.write_text(damage(manifest.read_text()))
    with pytest.raises(ValueError, match=rf"out='{path}': {message}"):
        _sweep(data, path, resume=True)


def test_an_interrupt_right_after_a_part_appears_keeps_it_recorded(
        data, tmp_path, in_memory, monkeypatch):
    """SIGTERM is not held between chunks as Ctrl-C is: it may land anywhere, e.g. just
    after a part is renamed into place, before any bookkeeping of the sink's caller."""
    path = tmp_path / "res"
    record = outdir.OutDir.record

    def stop(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(outdir.OutDir, "record", stop)
    with pytest.raises(KeyboardInterrupt, match="1 finished chunks are kept"):
        _sweep(data, path)
    monkeypatch.setattr(outdir.OutDir, "record", record)
    (part,) = _parts(path / "_partial")
    assert list(_manifest(path)["parts"]) == [part]
    assert_same_sweep(_sweep(data, path, resume=True), in_memory)


def test_an_interrupted_new_folder_loses_only_sweepbts_files(data, tmp_path, monkeypatch,
                                                            one_combo_chunks):
    path = tmp_path / "res"

    class NotesThenStop(SharpeMoments):  # the user saves notes, then presses Ctrl-C
        def add(self, chunk):
            (path / "my_notes.txt").write_text("fast < slow looks best")
            (path / "_partial" / "scratch.txt").write_text("mine too")
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "SharpeMoments", NotesThenStop)
    with pytest.raises(KeyboardInterrupt, match="nothing was written"):
        _sweep(data, path)
    assert sorted(os.listdir(path)) == ["_partial", "my_notes.txt"]
    assert os.listdir(path / "_partial") == ["scratch.txt"]
    assert (path / "my_notes.txt").read_text() == "fast < slow looks best"


def test_an_interrupted_new_folder_of_several_strategies_keeps_a_users_file(
        data, tmp_path, monkeypatch, one_combo_chunks):
    path = tmp_path / "both"

    class NotesThenStop(SharpeMoments):
        def add(self, chunk):
            (path / "my_notes.txt").write_text("notes")
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "SharpeMoments", NotesThenStop)
    with pytest.raises(KeyboardInterrupt, match="nothing was written"):
        sb.sweep(data, ["sma_cross", "ema_cross"], out=path, **GRID)
    assert os.listdir(path) == ["my_notes.txt"]


@pytest.fixture
def small_wf_chunks(data, monkeypatch):
    """2 combos per walk-forward chunk: 9 training parts."""
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 2 * data.n_assets * 504)


def test_a_deleted_training_part_of_a_complete_walk_forward_runs_again(
        data, tmp_path, small_wf_chunks, capsys):
    whole = sb.walk_forward(data, "sma_cross", **WINDOWS, **GRID)
    path = tmp_path / "wf"
    sb.walk_forward(data, "sma_cross", out=path, **WINDOWS, **GRID)
    winner = whole.windows["combo"][0].as_py()
    training = path / "_training"
    (part,) = [p for p in _parts(training)  # the part holding window 0's winner
               if winner in pq.read_table(training / p)["combo"].to_pylist()]
    os.remove(training / part)
    capsys.readouterr()
    res = sb.walk_forward(data, "sma_cross", out=path, resume=True, **WINDOWS, **GRID)
    assert f"{part} is missing; its chunk runs again" in capsys.readouterr().err
    assert_same_walk_forward(res, whole)
    assert _manifest(path)["complete"] and len(_parts(training)) == 9
    assert sorted(_manifest(path)["parts"]) == _parts(training)
    assert sorted(os.listdir(training)) == _parts(training)  # nothing else left there


def _tree(path):
    """Every entry under ``path`` with what a write would change: inode, size, mtime
    (a directory's mtime changes when an entry is made, renamed or removed in it)."""
    found = {}
    for root, dirs, files in os.walk(path):
        for name in [""] + dirs + files:
            stat = os.stat(os.path.join(root, name))
            found[os.path.join(root, name)] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return found


def _immutable(path, on):
    """``chattr +i`` (or ``-i``) on every entry under ``path``: read-only even for root,
    which permission bits are not (the tests may run as root). False where the file
    system or the container does not allow it."""
    entries = [os.path.join(root, n) for root, dirs, files in os.walk(path)
               for n in dirs + files] + [os.fspath(path)]
    try:
        return subprocess.run(["chattr", "+i" if on else "-i", *entries],
                              capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def _read_only(path, call):
    """``call()`` with the folder ``path`` read-only: permission bits (which bind a user
    other than root) and, where chattr works, the immutable flag (which binds root too;
    the tests may run as root). Asserts that nothing under ``path`` changed; returns the
    result."""
    before = _tree(path)
    for root, dirs, files in os.walk(path):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        os.chmod(root, 0o555)
    immutable = _immutable(path, True)
    try:
        if not immutable and os.geteuid() == 0:
            pytest.skip("running as root without chattr: nothing here is read-only")
        result = call()
    finally:
        _immutable(path, False)
        for root, dirs, files in os.walk(path):
            os.chmod(root, 0o755)
    assert _tree(path) == before  # nothing was written, renamed or removed
    return result


def test_a_complete_walk_forward_reads_back_from_read_only_storage(
        data, tmp_path, small_wf_chunks):
    path = tmp_path / "wf"
    made = sb.walk_forward(data, "sma_cross", out=path, **WINDOWS, **GRID)
    res = _read_only(path, lambda: sb.walk_forward(data, "sma_cross", out=path, resume=True,
                                                   **WINDOWS, **GRID))
    assert_same_walk_forward(res, made)


def test_a_complete_sweep_reads_back_from_read_only_storage(data, tmp_path, in_memory):
    path = tmp_path / "res"
    _sweep(data, path)
    res = _read_only(path, lambda: _sweep(data, path, resume=True, top=5))
    assert_same_rows(res.best(k=5), in_memory.best(k=5))
    assert res.sharpe_moments == in_memory.sharpe_moments
    assert_same_rows(pq.read_table(path), in_memory.table)


def test_a_damaged_result_table_of_a_complete_walk_forward_is_written_again(
        data, tmp_path, small_wf_chunks):
    path = tmp_path / "wf"
    made = sb.walk_forward(data, "sma_cross", out=path, **WINDOWS, **GRID)
    stats = (path / "stats.parquet").read_bytes()
    _flip(path / "stats.parquet", len(stats) // 2)
    res = sb.walk_forward(data, "sma_cross", out=path, resume=True, **WINDOWS, **GRID)
    assert_same_walk_forward(res, made)
    assert (path / "stats.parquet").read_bytes() == stats


# ---- any single damage is detected: rerun to the same result, or refused naming a file

@pytest.fixture(scope="module")
def folders(data, tmp_path_factory):
    """A complete and a stopped sweep folder (one combo per chunk), a complete
    walk-forward folder (2 combos per chunk), and the results they must give."""
    root = tmp_path_factory.mktemp("folders")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 1)
        expected = sb.sweep(data, "sma_cross", **GRID)
        _sweep(data, root / "complete")
        _stopped(data, root / "stopped", 7, patch)
        patch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 2 * data.n_assets * 504)
        walk = sb.walk_forward(data, "sma_cross", out=root / "wf", **WINDOWS, **GRID)
    return root, expected, walk


def _files(path):
    return sorted(os.path.relpath(os.path.join(root, n), path)
                  for root, _, names in os.walk(path) for n in names)


def _damage(source, target, pick, position, delete):
    """Copy ``source`` to ``target`` and damage one of its files: delete it, or flip
    the bits of one byte; returns the file's name."""
    shutil.copytree(source, target)
    files = _files(target)
    name = files[pick % len(files)]
    if delete:
        os.remove(target / name)
    else:
        _flip(target / name, position)
    return name


def _refused(call, name):
    """Run ``call``; only a damaged or deleted manifest may be refused, and the error
    names it (a part or a result table reruns or is written again)."""
    try:
        return call()
    except (ValueError, FileExistsError) as exc:
        assert name == "_manifest.json" and name in str(exc)
        return None


@settings(max_examples=24, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["complete", "stopped"]), pick=st.integers(0, 10**6),
       position=st.integers(0, 10**6), delete=st.booleans())
def test_any_single_damage_to_a_sweep_folder_reruns_to_the_same_result_or_is_refused(
        folders, tmp_path_factory, monkeypatch, which, pick, position, delete):
    root, expected, _ = folders
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 1)  # as the folders were cut
    target = tmp_path_factory.mktemp("damaged") / which
    name = _damage(root / which, target, pick, position, delete)
    res = _refused(lambda: _sweep(expected.plan.bundle, target, resume=True), name)
    if res is not None:
        assert_same_sweep(res, expected)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**6), position=st.integers(0, 10**6), delete=st.booleans())
def test_any_single_damage_to_a_walk_forward_folder_reruns_to_the_same_result_or_is_refused(
        folders, tmp_path_factory, monkeypatch, pick, position, delete):
    root, _, walk = folders
    monkeypatch.setattr(plan_module, "CHUNK_BAR_EVALUATIONS", 2 * walk.bundle.n_assets * 504)
    target = tmp_path_factory.mktemp("damaged") / "wf"
    name = _damage(root / "wf", target, pick, position, delete)
    res = _refused(lambda: sb.walk_forward(walk.bundle, "sma_cross", out=target,
                                           resume=True, **WINDOWS, **GRID), name)
    if res is not None:
        assert_same_walk_forward(res, walk)
        np.testing.assert_array_equal(pq.read_table(target / "windows.parquet")["combo"],
                                      walk.windows["combo"])


@pytest.mark.slow
def test_parts_written_by_dask_workers_are_recorded_by_the_client(data, tmp_path, in_memory,
                                                                  capsys):
    distributed = pytest.importorskip("distributed")
    path = tmp_path / "res"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        res = _sweep(data, path, scheduler=client)
    parts = _manifest(path)["parts"]
    assert sorted(parts) == _parts(path) and len(parts) == 18
    for name, record in parts.items():
        assert record["sha256"] == hashlib.sha256((path / name).read_bytes()).hexdigest()
    assert_same_sweep(res, in_memory)
    _flip(path / _parts(path)[5], 100)
    capsys.readouterr()
    assert_same_sweep(_sweep(data, path, resume=True), in_memory)
    assert f"{_parts(path)[5]} is damaged" in capsys.readouterr().err
