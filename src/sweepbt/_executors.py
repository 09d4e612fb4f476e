"""Executors run a plan's chunks into sinks: the one chunk loop of sweepbt.

``InProcess`` runs the chunks one after another in this process, each chunk a parallel
kernel launch over its combos and assets (numba threads). Ctrl-C is held while a chunk's
kernel runs and honoured between chunks. ``Dask`` runs them as tasks on a Dask cluster
(:mod:`sweepbt.distributed`; Dask is imported only then). Both satisfy
:class:`sweepbt.protocols.Executor`: ``done`` counts the combos run so far, so a caller
can say how far an interrupted run got. :func:`executor_for` picks one for ``scheduler=``.
"""

from __future__ import annotations

import itertools
import pickle
import time
import uuid
from concurrent.futures import CancelledError

from sweepbt._interrupt import DeferredInterrupt, InterruptedRun
from sweepbt._progress import ProgressBar, Stretch
from sweepbt._threading import kernel_threads
from sweepbt.distributed import (ClusterLost, Scattered, compact, connect, dask_distributed,
                                 detach, job, remove_probes, run_task)
from sweepbt._plan import no_combination
from sweepbt.protocols import Executor, folder_of

#: Dask tasks in flight per worker thread: enough to keep workers busy, few enough that
#: results do not pile up on the workers (memory stays flat)
IN_FLIGHT_PER_THREAD = 2
#: while waiting for a task: seconds between looks at the finished tasks, and between
#: asking the scheduler whether the cluster still has a worker
POLL_S = 0.02
WORKER_CHECK_S = 1.0
#: a Dask run gives up (ClusterLost) after this many seconds without a worker
NO_WORKERS_TIMEOUT_S = 60.0
#: local chunks per Dask task (each still its own part and Sharpe moments, so the result
#: equals a local run's): enough work per task to keep Dask's per-task overhead small
CHUNKS_PER_TASK = 1


class _Executor:
    """What every executor shares: ``done`` and handing a chunk's rows to the sinks."""

    def __init__(self):
        self.done = 0

    def deliver(self, result, sinks, on_progress):
        """Feed one chunk's rows (None: the constraint kept none) to every sink."""
        if result is None:
            return
        for sink in sinks:
            sink.add(result)
        self.done += result.ids.size
        if on_progress is not None:
            on_progress(self.done)


class InProcess(_Executor):
    """Run chunks here, in order, on numba's threads."""

    def run(self, plan, chunks, sinks, on_progress=None):
        """Feed ``plan.run_chunk(ids)`` of every ``ids`` in ``chunks`` to every sink;
        returns the number of combos run (those the constraint kept)."""
        self.done = 0
        with kernel_threads(plan.settings.threads), DeferredInterrupt() as interrupt:
            plan.built()  # Ctrl-C while signals are built waits for them too
            interrupt.check()
            for ids in chunks:
                interrupt.check()
                self.deliver(plan.run_chunk(ids), sinks, on_progress)
            interrupt.check()
        return self.done


class Dask(_Executor):
    """Run chunks as tasks on the Dask cluster of ``scheduler`` (a Client or an address),
    ``chunks_per_task`` chunks a task; ``done`` counts the combos whose results have
    arrived, ``n_tasks``, ``bytes_sent`` and ``bytes_back`` what went over the wire per
    task (its pickled arguments; its pickled result), ``rescatters`` how often the Bundle
    and the job were sent again after the cluster lost them."""

    def __init__(self, scheduler, chunks_per_task=None):
        super().__init__()
        dask_distributed()
        self.scheduler = scheduler
        self.chunks_per_task = CHUNKS_PER_TASK if chunks_per_task is None else \
            chunks_per_task
        self.n_tasks = self.bytes_sent = self.bytes_back = 0
        self.rescatters = 0

    def run(self, plan, chunks, sinks, on_progress=None):
        """Feed the results of every chunk to every sink, as tasks complete; returns the
        number of combos run. An interrupt (Ctrl-C) cancels the tasks still queued. A task
        cancelled because the cluster lost the scattered Bundle or job (a worker gone)
        runs again after they are scattered again (at most RESCATTERS times a run);
        :class:`~sweepbt.distributed.ClusterLost` when the cluster has had no worker for
        NO_WORKERS_TIMEOUT_S seconds."""
        self.done = 0
        client, owned = connect(self.scheduler)
        try:
            return self._run(client, plan, chunks, sinks, on_progress)
        finally:
            if owned:
                client.close()

    def _run(self, client, plan, chunks, sinks, on_progress):
        bundle, detached = detach(plan)
        work = job(uuid.uuid4().hex, detached, sinks)
        try:
            return self._submit(client, work, bundle, chunks, sinks, on_progress)
        finally:
            remove_probes(work)

    def _submit(self, client, work, bundle, chunks, sinks, on_progress):
        shared = Scattered(client, [bundle, work], NO_WORKERS_TIMEOUT_S,
                           lambda: self._lost(sinks))
        threads = sum(client.nthreads().values()) or 1
        chunks = iter(chunks)
        queue = dask_distributed().as_completed()
        pending = {}  # future -> (its chunks, the scatter it reads)

        def submit(group):
            refs = shared.refs
            future = client.submit(run_task, *refs, group, pure=False)
            self.n_tasks += 1
            self.bytes_sent += len(pickle.dumps((run_task, *(r.key for r in refs), group)))
            pending[future] = (group, shared.generation)
            queue.add(future)

        def submit_next():
            group = [compact(ids) for ids in itertools.islice(chunks, self.chunks_per_task)]
            if group:
                submit(group)

        try:
            for _ in range(IN_FLIGHT_PER_THREAD * threads):
                submit_next()
            while pending:
                for future in self._next_done(client, queue, sinks):
                    group, generation = pending.pop(future)
                    try:
                        payload = future.result()
                    except CancelledError:  # the cluster lost its scattered inputs
                        shared.renew(generation)
                        self.rescatters = shared.generation
                        submit(group)
                        continue
                    future.release()
                    submit_next()
                    self._merge(payload, sinks, on_progress)
        except BaseException:
            client.cancel(list(pending))
            raise
        finally:
            shared.release()
        return self.done

    def _next_done(self, client, queue, sinks):
        """The futures done (finished, failed or cancelled), waiting for the first;
        ClusterLost once the cluster has had no worker for NO_WORKERS_TIMEOUT_S."""
        checked = alone = time.monotonic()
        while True:
            done = queue.next_batch(block=False)
            if done:
                return done
            now = time.monotonic()
            if now - checked >= WORKER_CHECK_S:
                checked = now
                if client.nthreads():
                    alone = now
                elif now - alone >= NO_WORKERS_TIMEOUT_S:
                    raise ClusterLost(self._lost(sinks))
            time.sleep(POLL_S)

    def _lost(self, sinks):
        """What a run that lost its cluster says: what finished, and what is kept."""
        folders = [d for d in map(folder_of, sinks) if d]
        kept = (f"the finished chunks' parts are kept in {folders[0]} (resume=True runs "
                "only the rest)" if folders else
                "nothing is kept (out= keeps finished chunks, to resume)")
        return (f"the Dask cluster has had no worker for {NO_WORKERS_TIMEOUT_S:g} s: "
                f"{self.done:,} combos had finished; {kept}")

    def _merge(self, payload, sinks, on_progress):
        """Fold one task's pickled TaskResult into ``sinks``."""
        self.bytes_back += len(payload)
        result = pickle.loads(payload)
        for k, sink in result.sinks.items():
            sinks[k].merge(sink)
        for chunk in result.rows:
            for k, sink in enumerate(sinks):
                if k not in result.sinks:
                    sink.add(chunk)
        if result.n:
            self.done += result.n
            if on_progress is not None:
                on_progress(self.done)


def executor_for(scheduler):
    """The executor of ``scheduler=``: None runs here (:class:`InProcess`); an
    :class:`~sweepbt.protocols.Executor` (``run`` and ``done``) is used as it is;
    anything else is a Dask Client or a scheduler's address (:class:`Dask`)."""
    if scheduler is None:
        return InProcess()
    if isinstance(scheduler, Executor):
        return scheduler
    return Dask(scheduler)


def run_chunks(runner, ids, sinks, executor, open_folder, progress, n_backtests,
               per_combo, what="sweep"):
    """Run the chunks of ``ids`` (None: the whole grid) of ``runner`` (a Plan, or the
    training windows of a walk-forward) into ``sinks`` (None entries skipped) and, with
    ``open_folder`` (a callable making or reopening an out= folder, see
    :mod:`sweepbt._outdir`), into that folder; returns (combos run, the folder's
    ``finish()``: a sweep folder's path, a walk-forward's folder itself; None without).
    The folder's finished chunks (each checked against the manifest's record) are replayed
    and skipped. An interrupted or failed run keeps and records them, to resume.
    ``progress``: draw a progress bar, or a Stretch of one to draw on; ``n_backtests``
    (the whole run's) and ``per_combo`` (backtests per combo) count it. ``what`` names the
    run in the interrupt message."""
    sinks = [s for s in sinks if s is not None]
    bar = progress if isinstance(progress, Stretch) else (
        ProgressBar(n_backtests) if progress else None)
    folder, before = None, 0
    try:
        chunks = runner.chunks(ids)
        if open_folder is not None:
            with DeferredInterrupt() as held:  # made and named as one step: a Ctrl-C or
                folder = open_folder()  # SIGTERM lands after, and the finally below
            held.check()  # removes the new, empty folder
            before = folder.replay(runner, sinks)
            n_missing, chunks = folder.missing_chunks(runner, ids)
            chunks = chunks if n_missing else None  # a finished folder: nothing runs
            sinks.append(folder.writer(runner) if n_missing else None)
        done = before if chunks is None else before + executor.run(
            runner, chunks, [s for s in sinks if s is not None],
            None if bar is None else lambda n: bar.update((before + n) * per_combo))
        if done == 0:
            raise no_combination(runner.grid)
        return done, (folder.finish() if folder is not None else None)
    except KeyboardInterrupt:
        note = "nothing was written" if folder is None else folder.stopped_note()
        raise KeyboardInterrupt(InterruptedRun(
            what, (before + executor.done) * per_combo, n_backtests, note)) from None
    finally:
        if folder is not None and not folder.complete:
            folder.stop()
        if bar is not None:
            bar.close()
