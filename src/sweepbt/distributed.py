"""What a sweep on a Dask cluster sends and runs (:class:`sweepbt.executors.Dask`).

The Bundle and the plan without it are sent to every worker once
(``scatter(broadcast=True)``); each task (:func:`run_task`) then carries a chunk's grid ids
and returns its rows (a ``ChunkResult``), which the client feeds to the sinks as they arrive.
Rows carry grid ids, so the result equals a local run's whatever worker ran what, in
whatever order. A worker keeps the plan it unpacked, so the strategy's signals are built
once per worker. Built-in strategies travel by name; a user strategy travels as the text
of its file and its name (:class:`sweepbt.custom_files.StrategySource`), so workers need
no shared file system; it is compiled and disk-cached on each worker.

Dask is optional (``pip install "sweepbt[distributed]"``): it is imported only when
``scheduler=`` is used. A task lost with its worker is run again by Dask elsewhere; a
result is fed to the sinks once, when its task completes. See docs/distributed.md.
"""

from __future__ import annotations

import io
import pickle
import threading
from dataclasses import dataclass

from sweepbt._threading import kernel_threads
from sweepbt.custom_files import StrategySource, strategy_source

#: the extra that installs Dask
EXTRA = "sweepbt[distributed]"
#: plans a worker keeps unpacked (the latest runs)
_KEPT_RUNNERS = 4

_runners = {}  # on a worker: run token -> unpacked plan, its signals built once
_runners_lock = threading.Lock()


def dask_distributed():
    """The ``distributed`` package; ImportError naming the extra when it is missing."""
    try:
        import distributed
    except ImportError:
        raise ImportError(f"scheduler= runs sweeps on Dask, which is not installed; install "
                          f"it with: pip install \"{EXTRA}\"") from None
    return distributed


def connect(scheduler):
    """``(client, owned)``: the Client ``scheduler`` is, or a new one connected to the
    address ``scheduler`` is (``owned``: close it after)."""
    if isinstance(scheduler, str):
        return dask_distributed().Client(scheduler), True
    if callable(getattr(scheduler, "submit", None)) and callable(
            getattr(scheduler, "scatter", None)):
        return scheduler, False
    raise TypeError(f"scheduler must be a dask.distributed.Client or a scheduler address "
                    f"such as 'tcp://host:8786', got {scheduler!r}")


@dataclass(frozen=True)
class Detached:
    """A plan as it travels: pickled without its Bundle, and a user strategy's file."""

    blob: bytes
    source: StrategySource | None


class _Detacher(pickle.Pickler):
    """Pickles a plan with its Bundle and user strategy left out (as references)."""

    def __init__(self, file, bundle, strategy):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.bundle, self.strategy = bundle, strategy

    def persistent_id(self, obj):
        if obj is self.bundle:
            return "bundle"
        if self.strategy is not None and obj is self.strategy:
            return "strategy"
        return None


class _Attacher(pickle.Unpickler):
    """Unpickles a detached plan with the worker's Bundle and strategy put back."""

    def __init__(self, file, bundle, strategy):
        super().__init__(file)
        self.bundle, self.strategy = bundle, strategy

    def persistent_load(self, pid):
        return self.bundle if pid == "bundle" else self.strategy


def detach(runner):
    """``(Bundle, Detached)`` of a plan (anything with ``bundle``, ``strategy`` and
    ``run_chunk``); ValueError for a user strategy that no file defines."""
    strategy = runner.strategy
    source = strategy_source(strategy)
    if source is None and (hasattr(strategy.build, "spec")
                           or hasattr(strategy.build, "user_score")):
        raise ValueError(f"strategy {strategy.name!r}: scheduler= sends a user strategy to "
                         "the workers as its file, and no file defines this one; define it "
                         "at module level in a .py file (docs/distributed.md)")
    buffer = io.BytesIO()
    _Detacher(buffer, runner.bundle, strategy if source is not None else None).dump(runner)
    return runner.bundle, Detached(buffer.getvalue(), source)


def attach(bundle, detached):
    """The plan of ``detached`` with ``bundle`` (on a worker)."""
    strategy = detached.source.load() if detached.source is not None else None
    return _Attacher(io.BytesIO(detached.blob), bundle, strategy).load()


def run_task(token, bundle, detached, ids):
    """A Dask task: the rows of chunk ``ids`` (the plan is unpacked once per worker)."""
    with _runners_lock:
        runner = _runners.get(token)
        if runner is None:
            runner = attach(bundle, detached)
            with kernel_threads(runner.settings.threads):
                runner.built()
            while len(_runners) >= _KEPT_RUNNERS:
                _runners.pop(next(iter(_runners)))
            _runners[token] = runner
    with kernel_threads(runner.settings.threads):
        return runner.run_chunk(ids)
