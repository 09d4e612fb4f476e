"""What a sweep on a Dask cluster sends and runs (:class:`sweepbt._executors.Dask`).

The Bundle and a :class:`Job` (the plan without the Bundle, and the sinks the workers fill)
are sent to every worker once (``scatter(broadcast=True)``); each task (:func:`run_task`)
then carries the grid-id ranges of a few chunks, runs them, and returns (pickled, so its
size is known) a :class:`TaskResult`: the combos run, the sinks it filled (the top ``k``,
the deflated Sharpe's moments, the ``out=`` parts it wrote), and the chunks' rows only for
the sinks the client must fill itself (every row kept in memory; ``out=`` parts when the
worker cannot see the folder). Rows carry grid ids, so the result equals a local run's
whatever worker ran what, in whatever order. A worker keeps the plan it unpacked, so the
strategy's signals are built once per worker. Built-in strategies travel by name; a user
strategy travels as the text of its file and its name
(:class:`sweepbt.strategies.custom_files.StrategySource`), so workers need no shared
file system; it is compiled and disk-cached on each worker.

Workers write ``out=`` parts themselves when they see the folder: the client writes a probe
file holding a random token into it, and a worker writes parts only if it reads that token
back there (once per sweep); otherwise it returns the rows and the client writes them.
Parts are written atomically and named by grid id, so a task run twice writes the same
part twice, harmlessly.

Dask is optional (``pip install "sweepbt[distributed]"``): it is imported only when
``scheduler=`` is used. A task lost with its worker is run again by Dask elsewhere; a
task cancelled because the cluster lost the scattered Bundle runs again after it is
scattered again (:class:`Scattered`); a result is merged once, when its task completes.
See docs/distributed.md.
"""

from __future__ import annotations

import io
import os
import pickle
import threading
from dataclasses import dataclass, field

import numpy as np

from sweepbt._files import write_atomic, write_text
from sweepbt._threading import kernel_threads
from sweepbt.strategies.custom_files import StrategySource, strategy_source
from sweepbt.protocols import SpawningSink, folder_of

#: what a user reads or catches (docs/distributed.md); the rest serves the executors
__all__ = ["RESCATTERS", "WORKERS_WRITE", "ClusterLost"]

#: the extra that installs Dask
EXTRA = "sweepbt[distributed]"
#: plans a worker keeps unpacked (the latest runs)
_KEPT_RUNNERS = 4
#: workers write ``out=`` parts when they see the folder (None: find out with a probe
#: file); False: they never do, the client writes every part
WORKERS_WRITE = None
#: the probe file's name in a folder the workers may write into, before the token
PROBE = ".sweepbt-probe-"

_runners = {}  # on a worker: run token -> unpacked plan, its signals built once
_runners_lock = threading.Lock()
_seen = {}  # on a worker: (token, folder) -> whether the folder is the client's


def dask_distributed():
    """The ``distributed`` package; ImportError naming the extra when it is missing."""
    try:
        import distributed
    except ImportError:
        raise ImportError(f"scheduler= runs sweeps on Dask, which is not installed; install "
                          f"it with: pip install \"{EXTRA}\" (from a sweepbt checkout: "
                          "pip install \".[distributed]\")") from None
    return distributed


#: times one run scatters its Bundle and job again after the cluster lost them
RESCATTERS = 3

#: tries at connecting a new Client: dask.distributed's handshake asserts that the
#: scheduler's first reply is one message, and a busy scheduler can batch a second into it
#: (an AssertionError from Client.__init__; seen once in CI), so that one failure is retried
CONNECT_TRIES = 3


def connect(scheduler):
    """``(client, owned)``: the Client ``scheduler`` is, or a new one connected to the
    address ``scheduler`` is (``owned``: close it after)."""
    if isinstance(scheduler, str):
        for attempt in range(CONNECT_TRIES):
            try:
                return dask_distributed().Client(scheduler), True
            except AssertionError:  # the handshake race above; any other error is raised
                if attempt == CONNECT_TRIES - 1:
                    raise
    if isinstance(scheduler, dask_distributed().Client):
        return scheduler, False
    raise TypeError(f"scheduler must be a dask.distributed.Client or a scheduler address "
                    f"such as 'tcp://host:8786' (or an executor: protocols.Executor), got "
                    f"{scheduler!r}")


class ClusterLost(RuntimeError):
    """The Dask cluster of a run has had no worker for too long; the message says what
    finished and what is kept."""


class Scattered:
    """Values scattered to every worker (``refs``: their futures). The cluster can lose
    them (seen once in about 30 worker kills: the tasks reading them come back cancelled,
    "already forgotten"); :meth:`renew` scatters them again under new keys.
    ``generation`` counts the scatters after the first; ``timeout`` (seconds) bounds a
    scatter's wait for a worker, after which ClusterLost says ``lost()``."""

    def __init__(self, client, values, timeout, lost):
        self.client, self.values, self.timeout, self.lost = client, values, timeout, lost
        self.generation = 0
        self.refs = self._scatter()

    def _scatter(self):
        try:
            return self.client.scatter(self.values, broadcast=True, hash=False,
                                       timeout=self.timeout)
        except TimeoutError:  # no worker to send them to
            raise ClusterLost(self.lost()) from None

    def renew(self, generation):
        """Scatter again, unless done since scatter ``generation``; RuntimeError after
        RESCATTERS times."""
        if generation != self.generation:
            return
        if self.generation >= RESCATTERS:
            raise RuntimeError(f"the Dask cluster lost the scattered Bundle and job "
                               f"{RESCATTERS + 1} times in one run; is a worker failing "
                               "again and again?")
        self.release()
        self.refs = self._scatter()
        self.generation += 1

    def release(self):
        self.client.cancel(self.refs)


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
    if source is None and strategy.is_user:
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


@dataclass(frozen=True)
class Job:
    """What every task of one sweep shares, sent to each worker once: the detached plan,
    the run's token, and ``templates``: sink index -> an empty sink (``spawn()``) that the
    worker fills; the client fills the others (``n_sinks`` in all) with returned rows."""

    token: str
    detached: Detached
    templates: dict
    n_sinks: int


@dataclass(frozen=True)
class TaskResult:
    """What a task returns: ``n`` combos run, ``sinks`` (index -> the filled sink) and
    ``rows`` (the chunks' ChunkResults, when some sink is left to the client)."""

    n: int
    sinks: dict
    rows: list = field(default_factory=list)


def job(token, detached, sinks):
    """The Job of a run: the sinks that can spawn go to the workers; a sink writing files
    (``directory``) only if WORKERS_WRITE allows, with a probe written into its folder."""
    templates = {}
    for k, sink in enumerate(sinks):
        if not isinstance(sink, SpawningSink):
            continue
        directory = folder_of(sink)
        if directory is not None:
            if WORKERS_WRITE is False:
                continue
            write_atomic(_probe(directory, token), lambda tmp: write_text(tmp, token))
        templates[k] = sink.spawn()
    return Job(token, detached, templates, len(sinks))


def remove_probes(job):
    """Remove the probe files of ``job`` (client side, when the run ends)."""
    for sink in job.templates.values():
        if folder_of(sink) is not None:
            try:
                os.remove(_probe(folder_of(sink), job.token))
            except OSError:
                pass


def _probe(directory, token):
    return os.path.join(directory, PROBE + token)


def _sees(sink, token):
    """Whether this worker may fill ``sink``: one writing files must see the client's
    folder (its probe file, with this run's token)."""
    directory = folder_of(sink)
    if directory is None:
        return True
    key = (token, directory)
    if key not in _seen:
        try:
            with open(_probe(directory, token), encoding="utf-8") as f:
                seen = f.read() == token
        except OSError:
            seen = False
        if len(_seen) >= 64:
            _seen.clear()
        _seen[key] = seen
    return _seen[key]


def compact(ids):
    """A chunk's grid ids as they travel: ``(first, stop)`` for a run of consecutive ids
    (a chunk of the whole grid), else the array (a sample's)."""
    if ids.size and int(ids[-1]) - int(ids[0]) + 1 == ids.size:
        return int(ids[0]), int(ids[-1]) + 1
    return ids


def _expand(ids):
    return np.arange(*ids, dtype=np.int64) if isinstance(ids, tuple) else ids


def _runner(token, bundle, detached):
    """The plan of run ``token`` on this worker, unpacked and built once."""
    with _runners_lock:
        runner = _runners.get(token)
        if runner is None:
            runner = attach(bundle, detached)
            with kernel_threads(runner.settings.threads):
                runner.built()
            while len(_runners) >= _KEPT_RUNNERS:
                _runners.pop(next(iter(_runners)))
            _runners[token] = runner
    return runner


def run_task(bundle, job, chunks):
    """A Dask task: run the chunks ``chunks`` (as :func:`compact` gives them) into the
    sinks this worker can fill; returns the pickled :class:`TaskResult`."""
    runner = _runner(job.token, bundle, job.detached)
    sinks = {k: t.spawn() for k, t in job.templates.items() if _sees(t, job.token)}
    keep_rows = len(sinks) < job.n_sinks
    n, rows = 0, []
    with kernel_threads(runner.settings.threads):
        for ids in chunks:
            chunk = runner.run_chunk(_expand(ids))
            if chunk is None:
                continue
            n += chunk.ids.size
            for sink in sinks.values():
                sink.add(chunk)
            if keep_rows:
                rows.append(chunk)
    result = TaskResult(n, sinks, rows)
    try:
        return pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        # a sink holding a function that came by value (a walk-forward's callable
        # objective from the client's __main__ or a lambda): cloudpickle, which Dask has
        import cloudpickle

        return cloudpickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
