"""Executors run a plan's chunks into sinks: the one chunk loop of sweepbt.

``InProcess`` runs the chunks one after another in this process, each chunk a parallel
kernel launch over its combos and assets (numba threads). Ctrl-C is held while a chunk's
kernel runs and honoured between chunks; ``done`` counts the combos run so far, so a
caller can say how far an interrupted run got.
"""

from __future__ import annotations

from sweepbt._interrupt import DeferredInterrupt
from sweepbt._threading import kernel_threads


class InProcess:
    """Run chunks here, in order, on numba's threads."""

    def __init__(self):
        self.done = 0

    def run(self, plan, chunks, sinks, on_progress=None):
        """Feed ``plan.run_chunk(ids)`` of every ``ids`` in ``chunks`` to every sink;
        returns the number of combos run (those the constraint kept)."""
        with kernel_threads(plan.settings.threads), DeferredInterrupt() as interrupt:
            plan.built()  # Ctrl-C while signals are built waits for them too
            interrupt.check()
            for ids in chunks:
                interrupt.check()
                result = plan.run_chunk(ids)
                if result is None:
                    continue
                for sink in sinks:
                    sink.add(result)
                self.done += result.ids.size
                if on_progress is not None:
                    on_progress(self.done)
            interrupt.check()
        return self.done
