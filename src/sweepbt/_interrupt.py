"""Ctrl-C handling around compiled work."""

from __future__ import annotations

import signal
import threading


class DeferredInterrupt:
    """Holds Ctrl-C (SIGINT) until the running chunk is done, then raises it at ``check()``.

    A compiled kernel cannot stop half-way; chunks last well under a second, so the sweep
    still stops promptly, and always between chunks. Outside the main thread (where Python
    delivers signals) it does nothing.
    """

    def __enter__(self):
        self.pending = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._hold)
            except ValueError:  # pragma: no cover - embedded interpreters
                self.previous = None
        return self

    def _hold(self, signum, frame):
        self.pending = True

    def check(self):
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
