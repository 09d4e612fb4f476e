"""Ctrl-C (SIGINT) and SIGTERM, handled in one place (a leaf module: the standard library only).

One core, :class:`_SignalScope`, installs signal handlers for the length of a ``with``
block (in the main thread, where Python delivers signals) and restores the previous ones
after. On it:

* :class:`CommandStart`: while ``python -m sweepbt`` or the ``sweepbt`` command starts
  (the heavy imports), Ctrl-C exits with 130 and one line instead of a traceback;
* :class:`CommandGuard`: while a command runs, Ctrl-C raises KeyboardInterrupt and SIGTERM
  does the same (as :class:`Terminated`), so one cleanup path serves both; an interrupt
  swallowed by a callback is raised again at :func:`checkpoint`;
* :class:`DeferredInterrupt`: holds Ctrl-C until the running chunk of compiled work is
  done, then raises it at ``check()``.

:func:`stopped` reports an interrupt (exit status 130, or 143 for SIGTERM);
:func:`start_up_interrupted` does it for a Ctrl-C that lands before any of the above is in
place (``except KeyboardInterrupt`` around the first imports). This module is imported
before numpy, pyarrow and numba load, so it must stay light.
"""

from __future__ import annotations

import os
import signal
import sys

#: exit status after Ctrl-C (128 + SIGINT) and after SIGTERM (128 + SIGTERM)
INTERRUPTED, TERMINATED = 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup path for an interrupt runs."""


class InterruptedRun:
    """How far an interrupted run got: the argument of the KeyboardInterrupt it raises
    (``exc.args[0]``; :func:`interrupted_run`), which reads as that exception's message.
    ``what`` ("sweep", "walk-forward") stopped after ``done`` of ``total`` backtests
    (None: not counted); ``where`` (may be empty) which part of it ran; ``note`` what is
    kept."""

    def __init__(self, what, done, total, note, where=""):
        self.what, self.done, self.total, self.note, self.where = (what, done, total, note,
                                                                   where)

    def __str__(self):
        after = "" if self.done is None else \
            f" after {self.done:,} of {self.total:,} backtests"
        where = f" ({self.where})" if self.where else ""
        return f"{self.what} interrupted{after}{where}; {self.note}"


def interrupted_run(exc):
    """The :class:`InterruptedRun` of KeyboardInterrupt ``exc``; None for a bare one."""
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, InterruptedRun) else None


class _SignalScope:
    """The shared core: ``handlers()`` installed on enter, the previous handlers restored
    on exit. Outside the main thread (where Python delivers signals) nothing is installed.
    """

    def __init__(self):
        self.previous = {}

    def handlers(self):
        """``{signum: handler}`` to install; subclasses say which (none here)."""
        return {}

    def __enter__(self):
        for signum, handler in self.handlers().items():
            try:
                self.previous[signum] = signal.signal(signum, handler)
            except (ValueError, OSError):  # not the main thread; embedded interpreters
                pass
        return self

    def __exit__(self, *exc):
        for signum, previous in self.previous.items():
            if previous is not None:  # None: installed outside Python, cannot be restored
                signal.signal(signum, previous)
        self.previous.clear()
        return False


class _Recorder(_SignalScope):
    """Ctrl-C raises KeyboardInterrupt and is recorded (``seen``), also when it lands in
    code that swallows exceptions (a callback inside numba's compiler or C code, which
    would only print "Exception ignored in ..."): that report is not printed. C code it
    lands in may also turn the KeyboardInterrupt into another exception; ``seen`` tells.
    """

    def __init__(self):
        super().__init__()
        self.seen = False
        self.previous_hook = None

    def handlers(self):
        return {signal.SIGINT: self._on_sigint}

    def _on_sigint(self, signum, frame):
        self.seen = True
        raise KeyboardInterrupt

    def _unraisable(self, unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            self.seen = True
            return
        self.previous_hook(unraisable)

    def __enter__(self):
        super().__enter__()
        self.previous_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        return self

    def __exit__(self, *exc):
        sys.unraisablehook = self.previous_hook
        return super().__exit__(*exc)


def running_as_command():
    """Whether this process is ``python -m sweepbt`` or the ``sweepbt`` command."""
    argv = sys.argv
    # argv[0] is "-m" while `python -m` locates its module (importing the package)
    script = os.path.basename(argv[0]) if argv and argv[0] else ""
    return argv[:1] == ["-m"] or os.path.splitext(script)[0] in ("sweepbt", "sweepbt-script")


def start_up_interrupted(command=None):
    """For ``except KeyboardInterrupt:`` around start-up code that runs before a
    CommandStart or CommandGuard is in place: when this process is the command
    (``command``; by default :func:`running_as_command`), one line and exit status 130 at
    once; otherwise it returns, and the caller re-raises."""
    if running_as_command() if command is None else command:
        stopped(exit_now=True)


class CommandStart(_Recorder):
    """Ctrl-C while the command starts: one line and exit status 130, as anywhere else in
    the command (:func:`sweepbt.cli.main`), instead of a traceback. It acts only when this
    process is the command (:func:`running_as_command`): imported by any other program,
    nothing changes.
    """

    def __init__(self):
        super().__init__()
        self.active = running_as_command()

    def __enter__(self):
        if self.active:
            super().__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.active:
            super().__exit__(exc_type, exc, tb)
            if self.seen or (exc_type is not None and issubclass(exc_type, KeyboardInterrupt)):
                stopped(exit_now=True)
        return False


class CommandGuard(_Recorder):
    """Ctrl-C (SIGINT) and SIGTERM during a command: never lost, always cleaned up after.

    SIGINT raises KeyboardInterrupt as usual; SIGTERM is handled exactly like it, so that
    the cleanup written for Ctrl-C (the sweep's parts directory, temporary output files)
    runs for both: it raises :class:`Terminated`, a KeyboardInterrupt, or, while code such
    as a running sweep chunk holds Ctrl-C back (:class:`DeferredInterrupt`), is passed to
    that code's SIGINT handler. Only the first SIGTERM acts: a second one does not cut the
    cleanup short.

    Both are also recorded (``seen``; ``terminated`` for SIGTERM): when one lands in code
    that swallows exceptions, :func:`checkpoint` raises it again. The guard in use is
    ``CommandGuard.active``. Outside the main thread only the swallowed-exception part
    applies.
    """

    active = None

    def __init__(self):
        super().__init__()
        self.terminated = False

    def handlers(self):
        handlers = super().handlers()
        sigterm = getattr(signal, "SIGTERM", None)
        if sigterm is not None:  # pragma: no branch - no SIGTERM on some platforms
            handlers[sigterm] = self._on_sigterm
        return handlers

    def __enter__(self):
        super().__enter__()
        CommandGuard.active = self
        return self

    def _on_sigterm(self, signum, frame):
        first = not self.terminated
        self.seen = self.terminated = True
        if not first:
            return
        current = signal.getsignal(signal.SIGINT)
        if callable(current) and current != self._on_sigint:
            # Someone holds Ctrl-C for now (the sweep, until its running chunk is done:
            # an exception raised inside compiled code's callbacks can crash the process);
            # SIGTERM waits the same way, and the KeyboardInterrupt comes from there.
            current(signal.SIGINT, frame)
            return
        raise Terminated

    def __exit__(self, *exc):
        CommandGuard.active = None
        return super().__exit__(*exc)


def checkpoint():
    """Raise KeyboardInterrupt if a Ctrl-C was swallowed since the command started."""
    guard = CommandGuard.active
    if guard is not None and guard.seen:
        raise KeyboardInterrupt


class DeferredInterrupt(_SignalScope):
    """Holds Ctrl-C (SIGINT) until the running chunk is done, then raises it at ``check()``.

    A compiled kernel cannot stop half-way; chunks last well under a second, so the sweep
    still stops promptly, and always between chunks. Outside the main thread (where Python
    delivers signals) it does nothing.
    """

    def __init__(self):
        super().__init__()
        self.pending = False

    def handlers(self):
        return {signal.SIGINT: self._hold}

    def __enter__(self):
        self.pending = False
        return super().__enter__()

    def _hold(self, signum, frame):
        self.pending = True

    def check(self):
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


def flush_quietly():
    """Flush stdout and stderr, ignoring a closed or broken stream."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def stopped(terminated=False, exit_now=False):
    """Report an interrupt with one line on stderr; returns the exit status, 130 for Ctrl-C,
    143 for SIGTERM (``terminated``).

    ``exit_now``: the process exits with it at once, ignoring any further signal (a Ctrl-C
    that hit C code called from Python can leave the interpreter set to kill itself with
    SIGINT at exit). Nothing half-written is left: output files are written atomically and
    removed on an interrupt.
    """
    if exit_now:
        for name in ("SIGINT", "SIGTERM"):
            try:
                signal.signal(getattr(signal, name), signal.SIG_IGN)
            except (AttributeError, ValueError, OSError):  # pragma: no cover
                pass
    if sys.stderr.isatty() and not terminated:
        sys.stderr.write("\n")  # after the terminal's "^C"
    sys.stderr.write("sweepbt: terminated\n" if terminated else "sweepbt: interrupted\n")
    status = TERMINATED if terminated else INTERRUPTED
    if exit_now:
        flush_quietly()
        os._exit(status)
    return status
