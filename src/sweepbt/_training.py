"""The training half of a walk-forward: every chunk of the grid run in every training
window, the best combo per window kept, and the out= folder that makes it resumable.

:class:`TrainWindows` runs a chunk in each window (the executors' runner interface, so
the one chunk loop and Dask run it); :class:`BestPerWindow` keeps each window's best combo
by the objective; with ``out=`` it also writes each chunk's best combo per window as one
small Parquet part, and :class:`WalkForwardDir` (an
:class:`~sweepbt._outdir.OutDir`) replays them on ``resume``, so an interrupted
walk-forward keeps every finished chunk. See docs/walk-forward.md.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import os
import types
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from sweepbt import kernels
from sweepbt._files import parquet_bytes, write_if_changed, write_part
from sweepbt._outdir import OutDir, describe, remove_own
from sweepbt._sinks import part_name
from sweepbt._vocabulary import LOWER_IS_BETTER, metric_index

#: the sub-folder of a walk-forward's out= folder holding the training parts
TRAINING = "_training"
#: the tables a finished walk-forward writes into its out= folder
RESULT_FILES = ("windows.parquet", "stats.parquet", "equity.parquet")


def _objective_scores(objective, per_asset, agg, columns, names):
    """(tier, score) of each combo of a chunk: higher tier first, then higher score.

    A metric name: tier 2 when the metric is defined on every active asset (score: the
    mean), tier 1 when only on some (score: the mean over those), tier 0 when on none or
    when the combo is ruined on any asset.
    A callable: its score, tier 2 (tier 0 where it is NaN).
    """
    if isinstance(objective, str):
        j = metric_index(objective)
        full = agg[:, j]
        some = per_asset[:, :, j]
        defined = ~np.isnan(some)
        n = defined.sum(axis=1)
        part = np.where(n > 0, np.where(defined, some, 0.0).sum(axis=1) / np.maximum(n, 1),
                        np.nan)
        score = np.where(np.isnan(full), part, full)
        tier = np.where(~np.isnan(full), 2, np.where(n > 0, 1, 0))
        tier[np.any(per_asset[:, :, metric_index("ruined")] != 0, axis=1)] = 0
        return tier, (-score if objective in LOWER_IS_BETTER else score)
    view = {m: agg[:, j] for j, m in enumerate(kernels.METRIC_NAMES)}
    for name in names:
        view.setdefault(name, columns[name])
    score = np.asarray(objective(view), dtype=np.float64)
    if score.size != agg.shape[0]:
        raise ValueError(f"objective must return one score per combo ({agg.shape[0]} here), "
                         f"got an array of shape {score.shape}")
    score = score.reshape(agg.shape[0])
    return np.where(np.isnan(score), 0, 2), score


class Candidate(NamedTuple):
    """A training window's best combo so far: its ``tier`` (2: objective defined on every
    row, 1: on some, 0: nowhere; -1: none yet), ``score`` (higher is better), grid id
    ``combo`` and ``metrics`` (the mean over the window's active rows)."""

    tier: int
    score: float
    combo: int
    metrics: object


#: no candidate yet
NO_CANDIDATE = Candidate(-1, -math.inf, -1, None)


def _best_of(tier, score):
    """(tier, score, position) of the best combo: highest tier, then highest score, then
    the first."""
    top = int(tier.max())
    candidates = tier == top
    if top == 0:
        return 0, math.nan, 0
    filled = np.where(candidates, score, -np.inf)
    i = int(np.argmax(filled))
    if not candidates[i]:  # every candidate scores -inf: the first of them
        i = int(np.flatnonzero(candidates)[0])
    return top, float(score[i]), i


@dataclass(frozen=True)
class WindowChunks:
    """One chunk's rows in every training window: ``per_window[w]`` a ChunkResult."""

    ids: np.ndarray
    per_window: list


class TrainWindows:
    """The training windows ``(lo, hi)`` of a walk-forward of ``plan``, run as one plan:
    each chunk of the grid is selected once and run in every window. It is a
    ``protocols.Runner`` like a Plan: an executor runs its chunks (``run_chunk``). It
    pickles as the plan and the spans; the windows share one build of the signals wherever
    it lands."""

    def __init__(self, plan, spans):
        self.plan, self.spans = plan, list(spans)
        self.plans = [plan.with_window(lo, hi) for lo, hi in self.spans]
        self.settings = self.plans[0].settings
        self.active = [active_rows(p.settings) for p in self.plans]
        self.mean_span = float(np.mean([hi - lo for lo, hi in self.spans]))

    def __getstate__(self):
        return {"plan": self.plan, "spans": self.spans}

    def __setstate__(self, state):
        self.__init__(state["plan"], state["spans"])

    @property
    def bundle(self):
        return self.plan.bundle

    @property
    def strategy(self):
        return self.plan.strategy

    @property
    def grid(self):
        return self.plan.grid

    @property
    def fixed(self):
        return self.plan.fixed

    def chunk_size(self):
        """Combos per chunk, sized by the mean training span (each chunk runs in every
        window)."""
        return self.plan.chunk_size(mean_span=self.mean_span)

    def chunks(self, ids=None, size=None):
        """As ``Plan.chunks``, sized by :meth:`chunk_size`."""
        return self.plan.chunks(ids, size=self.chunk_size() if size is None else size)

    def built(self):
        return self.plans[0].built()

    def run_chunk(self, ids):
        selection = self.plans[0].grid.columns_at(np.asarray(ids, dtype=np.int64))
        if selection[2].size == 0:
            return None
        return WindowChunks(selection[2], [p.run_selection(selection) for p in self.plans])


class BestPerWindow:
    """Result sink of a walk-forward: per training window, the best combo by the objective
    as ``(tier, score, grid id, metrics averaged over the window's assets)``. Ties go to
    the lower grid id, so chunk order does not matter.

    With a ``directory`` (an out= folder's ``_training/``), each chunk's best per window is
    also written there atomically as one Parquet part (:func:`candidates_table`) named by
    the chunk's first grid id; ``records`` and ``on_part`` as for
    :class:`~sweepbt._sinks.ParquetParts`. A spawn writes into the same directory (a Dask
    worker that sees it)."""

    def __init__(self, objective, names, active, n_rows, directory=None):
        self.objective, self.names, self.active = objective, names, active
        self.n_rows, self.directory = n_rows, directory
        self.best = [NO_CANDIDATE] * len(active)
        self.records, self.on_part = {}, None

    def spawn(self):
        """An empty sink judging as this one (merge it back after), e.g. on a Dask
        worker."""
        return BestPerWindow(self.objective, self.names, self.active, self.n_rows,
                             self.directory)

    def add(self, chunk):
        candidates = [self._best_in(w, result) for w, result in enumerate(chunk.per_window)]
        if self.directory is not None:
            write_part(candidates_table(candidates, chunk.ids.size),
                       os.path.join(self.directory, part_name(int(chunk.ids[0]))),
                       self.records)
            self._recorded()
        for w, candidate in enumerate(candidates):
            self._offer(w, candidate)

    def _recorded(self):
        if self.on_part is not None:
            self.on_part()

    def _best_in(self, w, result):
        """The best combo of one chunk's ``result`` (a ChunkResult) in window ``w``."""
        rows = result.metrics.reshape(result.ids.size, self.n_rows, -1)
        per_asset = rows[:, self.active[w]]
        tier, score, i = _best_of(*_objective_scores(
            self.objective, per_asset, per_asset.mean(axis=1), result.params, self.names))
        return Candidate(tier, score, int(result.ids[i]), defined_mean(per_asset[i]))

    def _offer(self, w, candidate):
        old, (tier, score, combo, _) = self.best[w], candidate
        if old.combo < 0 or tier > old.tier or (tier == old.tier and (
                score > old.score or (not score < old.score and combo < old.combo))):
            self.best[w] = candidate

    def merge(self, other):
        for w, candidate in enumerate(other.best):
            if candidate.combo >= 0:
                self._offer(w, candidate)
        if other.records:
            self.records.update(other.records)
            self._recorded()

    def finish(self):
        return self.best


def active_rows(settings):
    """Which result rows (assets, or the portfolio) have bars in ``settings``' span."""
    start, end = settings.row_spans()
    return end > start


def defined_mean(rows):
    """Column means of ``rows`` (assets x metrics) over the non-NaN entries; NaN if none."""
    defined = ~np.isnan(rows)
    n = defined.sum(axis=0)
    return np.where(n > 0, np.where(defined, rows, 0.0).sum(axis=0) / np.maximum(n, 1),
                    np.nan)


def candidates_table(best, n_combos):
    """A Parquet part's table of ``best`` (BestPerWindow.best) for a chunk of ``n_combos``
    combos."""
    n_metrics = kernels.N_METRICS
    metrics = np.array([b.metrics for b in best])
    return pa.table({
        "window": pa.array(np.arange(len(best)), pa.int32()),
        "tier": pa.array([b.tier for b in best], pa.int8()),
        "score": pa.array([b.score for b in best], pa.float64()),
        "combo": pa.array([b.combo for b in best], pa.int64()),
        "metrics": pa.FixedSizeListArray.from_arrays(pa.array(metrics.reshape(-1)), n_metrics),
    }, metadata={"n_combos": str(n_combos)})


def candidates_of(table):
    """(BestPerWindow.best entries, combos run) of a part a BestPerWindow wrote."""
    metrics = table.column("metrics").combine_chunks().flatten().to_numpy()
    metrics = metrics.reshape(table.num_rows, -1)
    best = [Candidate(int(t), float(s), int(c), metrics[k].copy())
            for k, (t, s, c) in enumerate(zip(
                table.column("tier").to_pylist(), table.column("score").to_pylist(),
                table.column("combo").to_pylist()))]
    return best, int(table.schema.metadata[b"n_combos"])


def objective_identity(objective):
    """What a walk-forward's out= folder records of its objective beyond its name (which
    the fixed options hold): nothing for a metric; for a callable a SHA-256 over what
    decides its scores (:class:`_Fingerprint`). ValueError when that cannot be read (e.g.
    a lambda typed at an interactive prompt)."""
    if isinstance(objective, str):
        return None
    try:
        digest = _Fingerprint(objective).digest
    except (OSError, TypeError) as exc:
        raise ValueError(f"out= needs an objective it can identify on resume, and "
                         f"{objective!r} cannot be: {exc}. Define it in a file, or use a "
                         "metric name") from None
    return {"sha256": digest}


class _Fingerprint:
    """SHA-256 over what decides a callable objective's scores, read from the objective's
    own module: a function's source, defaults, closure and the module globals it names
    (functions of that module followed in turn); a partial's function and arguments; a
    callable object's class, ``__call__`` and attributes; plain values by content.
    Functions and classes of other modules (numpy, a library) count by name. OSError or
    TypeError where something cannot be read."""

    def __init__(self, objective):
        func = getattr(objective, "func", objective)  # a partial's function
        self.module = getattr(func, "__module__", None) or type(func).__module__
        self.hash, self.seen = hashlib.sha256(), set()
        self.add(objective)
        self.digest = self.hash.hexdigest()

    def own(self, value):
        return getattr(value, "__module__", None) == self.module

    def add(self, value):
        if id(value) in self.seen:
            return
        self.seen.add(id(value))
        if isinstance(value, functools.partial):
            self.add_all((value.func, value.args, value.keywords))
        elif isinstance(value, (types.FunctionType, types.MethodType)):
            self.add_function(value)
        elif isinstance(value, dict):
            for key in sorted(value, key=repr):
                self.hash.update(repr(key).encode())
                self.add(value[key])
        elif isinstance(value, (list, tuple)):
            self.add_all(value)
        elif isinstance(value, np.ndarray):
            self.hash.update(f"{value.dtype.str}{value.shape}".encode())
            self.hash.update(np.ascontiguousarray(value).tobytes())
        elif value is None or isinstance(value, (str, bytes, int, float, complex,
                                                  np.generic)):
            self.hash.update(repr(value).encode())
        else:
            self.add_object(value)

    def add_all(self, values):
        for value in values:
            self.add(value)

    def add_function(self, value):
        function = getattr(value, "__func__", value)
        if not self.own(function):
            self.hash.update(f"{function.__module__}.{function.__qualname__}".encode())
            return
        self.hash.update(inspect.getsource(function).encode())
        names = [n for n in function.__code__.co_names if n in function.__globals__]
        self.add_all((function.__defaults__, function.__kwdefaults__,
                      [c.cell_contents for c in function.__closure__ or ()],
                      {n: function.__globals__[n] for n in names
                       if not isinstance(function.__globals__[n], types.ModuleType)},
                      getattr(value, "__self__", None)))

    def add_object(self, value):
        kind = value if isinstance(value, type) else type(value)
        self.hash.update(f"{kind.__module__}.{kind.__qualname__}".encode())
        if isinstance(value, type) or not self.own(kind):
            self.hash.update(getattr(value, "__name__", "").encode())  # a library's
            return
        if not hasattr(value, "__dict__"):
            raise TypeError(f"its {kind.__name__} value {value!r} cannot be compared")
        if callable(value):
            self.add(kind.__call__)
        self.add(vars(value))


class WalkForwardDir(OutDir):
    """A walk-forward's ``out=`` folder: the sweep folder's manifest, checks and chunk
    bookkeeping (:class:`~sweepbt._outdir.OutDir`), with each chunk's best combo per
    training window as its parts (in ``_training/``) and, once finished, the result's
    tables (:data:`RESULT_FILES`)."""

    KIND = "walk-forward"
    SUBFOLDER = TRAINING
    DATASET = False  # its parts stay in _training/; nothing reads the folder as rows
    CHECKED = {**OutDir.CHECKED, "windows": "the windows or the objective differ"}

    @classmethod
    def open(cls, path, windows, ids, resume, judge):
        """The folder ``path`` for the training ``windows`` (TrainWindows) run on ``ids``
        and judged by ``judge`` (BestPerWindow): new, or with ``resume`` an existing one
        made by the same walk-forward."""
        wanted = {**describe(windows), "windows": {
            "train_spans": [list(span) for span in windows.spans],
            "objective": objective_identity(judge.objective)}}
        folder = cls.open_described(path, wanted, windows.chunk_size(), ids, resume)
        folder.judge = judge
        return folder

    def feed(self, windows, table, sinks):
        """Merge one part's bests into ``sinks`` (BestPerWindow); returns the number of
        combos its chunk ran."""
        best, n_combos = candidates_of(table)
        for sink in sinks:
            restored = sink.spawn()
            restored.best = best
            sink.merge(restored)
        return n_combos

    def writer(self, windows):
        """None: from now on the judge (the BestPerWindow given to :meth:`open`) writes
        each chunk's part into ``_training/`` as it judges the chunk, so no other sink
        judges it again; the manifest records its parts (:meth:`record`)."""
        os.makedirs(self.partial, exist_ok=True)
        self.judge.directory = os.path.abspath(self.partial)
        self.judge.on_part, self.new = self.record, self.judge.records

    def finish(self):
        """The folder (the training parts stay; :meth:`save` completes it)."""
        return self

    def save(self, tables):
        """Write the result's tables ({file name: pyarrow Table}, :data:`RESULT_FILES`)
        where the folder does not hold them byte for byte already, and complete the
        folder: its parts recorded in the manifest, sweepbt's other files in
        ``_training/`` removed. Returns its path; a complete folder whose tables are
        intact is not written to."""
        for name, table in tables.items():
            write_if_changed(os.path.join(self.path, name), parquet_bytes(table))
        if not self.complete:
            self.manifest["complete"] = True
            self.write_records()
            remove_own(self.partial, keep=self.records())
        return self.path
