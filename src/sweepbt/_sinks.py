"""Result sinks: where the rows of a sweep's chunks go.

Every sink is a :class:`sweepbt.protocols.Sink`: ``add(chunk)`` (one
:class:`sweepbt._plan.ChunkResult`), ``merge(other)`` (fold in a sink of the same kind that
saw other chunks, e.g. on another worker) and ``finish()``. A sink that can be filled where
the chunks run has ``spawn()`` (a ``SpawningSink``): an empty sink of its kind (small,
picklable) that a Dask worker fills and returns for ``merge``, so the chunk's rows need not
travel (:mod:`sweepbt.distributed`); one writing files has a ``directory`` (a
``FileSink``). Rows are labelled by grid id,
so what a sink finishes with does not depend on how the grid was cut into chunks nor on
the order they ran or were merged in.
"""

from __future__ import annotations

import os

import numpy as np

from sweepbt._files import write_part
from sweepbt._plan import ChunkResult
from sweepbt._results import sweep_table
from sweepbt._vocabulary import N_METRICS, mean_over_assets, metric_index, rank_order


def _concat(chunks, names):
    """One ChunkResult of the rows of ``chunks`` (distinct ids), in grid order."""
    if not chunks:
        return ChunkResult(np.empty(0, np.int64), {n: np.empty(0) for n in names},
                           np.empty((0, N_METRICS)))
    chunks = sorted(chunks, key=lambda c: int(c.ids[0]))
    ids = np.concatenate([c.ids for c in chunks])
    params = {n: np.concatenate([c.params[n] for c in chunks]) for n in names}
    metrics = np.concatenate([c.metrics for c in chunks])
    if np.any(ids[1:] < ids[:-1]):  # interleaved id ranges (kept top rows and a chunk)
        order = np.argsort(ids, kind="stable")
        ids, params = ids[order], {n: v[order] for n, v in params.items()}
        metrics = metrics.reshape(order.size, -1, N_METRICS)[order].reshape(-1, N_METRICS)
    return ChunkResult(ids, params, metrics)


class KeepAll:
    """Every (combo, asset) row; ``finish()`` gives one ChunkResult in grid order."""

    def __init__(self, names):
        self.names = tuple(names)
        self.chunks = []

    def add(self, chunk):
        self.chunks.append(chunk)

    def merge(self, other):
        self.chunks.extend(other.chunks)

    def finish(self):
        return _concat(self.chunks, self.names)


class KeepTop:
    """The ``k`` best combos by ``metric`` (mean over assets, ``ruined`` on any asset
    ranks last, ties by grid id) of every chunk seen; ``finish()`` gives them in grid
    order."""

    def __init__(self, k, metric, n_rows, names):
        self.k, self.metric, self.n_rows, self.names = k, metric, n_rows, tuple(names)
        metric_index(metric)
        self.best = None

    def spawn(self):
        return KeepTop(self.k, self.metric, self.n_rows, self.names)

    def add(self, chunk):
        both = chunk if self.best is None else _concat([self.best, chunk], self.names)
        per_asset = both.metrics.reshape(both.ids.size, self.n_rows, N_METRICS)
        order = np.sort(rank_order(mean_over_assets(per_asset), both.ids,
                                   self.metric)[:self.k])
        self.best = ChunkResult(both.ids[order], {n: v[order] for n, v in both.params.items()},
                                per_asset[order].reshape(-1, N_METRICS))

    def merge(self, other):
        if other.best is not None:
            self.add(other.best)

    def finish(self):
        return self.best if self.best is not None else _concat([], self.names)


class SharpeMoments:
    """(count, mean, M2) of every combo's Sharpe (mean over assets), NaN excluded.

    Each chunk's moments are kept by its first grid id and merged in grid order (Chan et
    al.'s update) at ``finish()``, so the deflated Sharpe ratio sees the spread of all
    combos tried even when ``top=`` keeps few, identically for any chunk order.
    """

    def __init__(self, n_rows):
        self.n_rows = n_rows
        self.parts = {}

    def spawn(self):
        return SharpeMoments(self.n_rows)

    def add(self, chunk):
        sharpe = chunk.metrics[:, metric_index("sharpe")].reshape(chunk.ids.size,
                                                                 self.n_rows).mean(axis=1)
        sharpe = sharpe[~np.isnan(sharpe)]
        if sharpe.size:
            mean = float(sharpe.mean())
            self.parts[int(chunk.ids[0])] = (sharpe.size, mean,
                                             float(((sharpe - mean) ** 2).sum()))

    def merge(self, other):
        self.parts.update(other.parts)

    def finish(self):
        count, mean, m2 = 0, 0.0, 0.0
        for key in sorted(self.parts):
            n_b, mean_b, m2_b = self.parts[key]
            total = count + n_b
            delta = mean_b - mean
            m2 += m2_b + delta * delta * count * n_b / total
            mean += delta * n_b / total
            count = total
        return count, mean, m2


class ParquetParts:
    """Writes each chunk's rows as one file of a Parquet dataset, into ``directory`` (which
    exists).

    A part is named by its chunk's first grid id (``part-<id>.parquet``, so the dataset
    reads back in grid order) and written atomically; ``records`` holds each part's record
    (rows, SHA-256: ``_files.write_part``), merged back from the sinks ``spawn()`` made,
    and ``on_part()`` (not sent to workers) is called after each part arrives.
    Sinks made by ``part_writer()`` (``spawn()``) write into the same directory, e.g. on a
    Dask worker that sees it; ``finish()`` gives the directory. :mod:`sweepbt._outdir`
    keeps the parts in a ``_partial/`` folder until the sweep completes.
    """

    def __init__(self, directory, symbols, strategy, fixed, on_part=None):
        self.directory = os.path.abspath(directory)
        self.symbols, self.strategy, self.fixed = symbols, strategy, fixed
        self.records, self.on_part = {}, on_part

    def part_writer(self):
        """Another sink writing parts into this one's directory (merge it back after)."""
        return ParquetParts(self.directory, self.symbols, self.strategy, self.fixed)

    spawn = part_writer

    def add(self, chunk):
        table = sweep_table(self.symbols, self.strategy, self.fixed, chunk.ids, chunk.params,
                            chunk.metrics)
        write_part(table, os.path.join(self.directory, part_name(int(chunk.ids[0]))),
                   self.records)
        self._recorded()

    def merge(self, other):
        self.records.update(other.records)
        self._recorded()

    def _recorded(self):
        if self.on_part is not None:
            self.on_part()

    def finish(self):
        return self.directory


def part_name(first_id):
    """The file name of the part whose first row is grid combo ``first_id``."""
    return f"part-{first_id:019d}.parquet"
