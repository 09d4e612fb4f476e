"""The declared interfaces between the parts of a run (a leaf: typing only).

A *runner* (:class:`sweepbt._plan.Plan`, walk-forward's ``training.TrainWindows``) cuts a
grid into chunks and runs one; an *executor* (``executors.InProcess``, ``executors.Dask``)
runs a runner's chunks somewhere and hands each chunk's rows to *sinks*
(``sinks.KeepAll``, ``KeepTop``, ``SharpeMoments``, ``ParquetParts``,
``training.BestPerWindow``); a strategy's ``build`` returns a *signal source* (a rank
strategy's: a *score source*). Any class with these members plugs in: nothing checks its
base class.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Executor", "FileSink", "Runner", "ScoreSource", "SignalSource", "Sink",
           "SpawningSink"]


@runtime_checkable
class Runner(Protocol):
    """Chunks of a grid, each run into one result of rows labelled by grid id. It pickles
    (executors run chunks anywhere)."""

    bundle: object
    strategy: object
    grid: object
    settings: object
    fixed: dict

    def chunk_size(self) -> int:
        """Combos per chunk."""

    def chunks(self, ids=None, size=None):
        """The grid ids of ``ids`` (None: the whole grid) cut into chunks."""

    def built(self):
        """Build the signals once (call inside ``kernel_threads``)."""

    def run_chunk(self, ids):
        """The rows of the combos ``ids`` (a ChunkResult or the like; None: none kept)."""


@runtime_checkable
class Sink(Protocol):
    """Where the rows of a run's chunks go. The result must not depend on how the grid
    was chunked nor on the order chunks arrive or merge in."""

    def add(self, chunk) -> None:
        """Take one chunk's rows."""

    def merge(self, other) -> None:
        """Fold in a sink of the same kind that saw other chunks."""

    def finish(self):
        """The result."""


@runtime_checkable
class SpawningSink(Sink, Protocol):
    """A sink that a Dask worker can fill where the chunks run."""

    def spawn(self) -> SpawningSink:
        """An empty sink of this kind (small, picklable), filled and merged back."""


@runtime_checkable
class FileSink(SpawningSink, Protocol):
    """A sink writing files into ``directory`` (None: it writes none); a worker fills its
    spawn only if it sees that folder."""

    directory: str | None


def folder_of(sink):
    """The folder ``sink`` writes files into, or None."""
    return sink.directory if isinstance(sink, FileSink) else None


@runtime_checkable
class Executor(Protocol):
    """Runs a runner's chunks (``run_chunk``, anywhere: runners pickle) and feeds or
    merges every chunk's rows into the sinks."""

    #: the combos the current (or last) ``run`` has run so far: an interrupted run says
    #: how far it got
    done: int

    def run(self, runner, chunks, sinks, on_progress=None) -> int:
        """Run ``chunks`` (grid id arrays) of ``runner`` into ``sinks``, calling
        ``on_progress(done)`` as combos finish; returns the combos run."""


@runtime_checkable
class SignalSource(Protocol):
    """What a signal strategy's ``build(bundle, values)`` returns."""

    def events(self, lo, hi):
        """``strategies.Signals`` of signals ``lo <= s < hi``."""


@runtime_checkable
class ScoreSource(Protocol):
    """What a rank strategy's ``build(bundle, values)`` returns (``ranking.RankSource``)."""

    scores: object

    def combos(self, columns) -> dict:
        """The per-combo inputs of the rank kernel for the combos of ``columns``."""
