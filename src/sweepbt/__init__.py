"""sweepbt: Numba-accelerated vectorized backtesting for large parameter sweeps.

The shell (this package) validates input and orchestrates; the compiled kernels live in
:mod:`sweepbt.kernels` and only compute.
"""

import os as _os
import signal as _signal
import sys as _sys


class _CommandStart:
    """Ctrl-C while ``python -m sweepbt`` or the ``sweepbt`` command starts: one line and
    exit status 130, as anywhere else in the command (:func:`sweepbt.cli.main`), instead of
    a traceback. The imports below (numpy, pyarrow, numba) are most of the start-up and run
    before the command's own handling. Imported by any other program, nothing changes.
    """

    def __init__(self):
        # sys.argv[0] is "-m" while `python -m` locates its module (importing this package)
        script = _os.path.basename(_sys.argv[0]) if _sys.argv and _sys.argv[0] else ""
        self.active = (_sys.argv[:1] == ["-m"]
                       or _os.path.splitext(script)[0] in ("sweepbt", "sweepbt-script"))
        self.seen = False
        self.previous = self.previous_hook = None

    def __enter__(self):
        if self.active:
            try:
                self.previous = _signal.signal(_signal.SIGINT, self._on_sigint)
            except ValueError:  # pragma: no cover - not the main thread
                pass
            self.previous_hook = _sys.unraisablehook
            _sys.unraisablehook = self._unraisable
        return self

    def _on_sigint(self, signum, frame):
        self.seen = True  # C code it lands in may turn the exception into another one
        raise KeyboardInterrupt

    def _unraisable(self, unraisable):  # swallowed by a callback ("Exception ignored")
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            self.seen = True
            return
        self.previous_hook(unraisable)

    def __exit__(self, exc_type, exc, tb):
        if self.active:
            _sys.unraisablehook = self.previous_hook
            if self.previous is not None:
                _signal.signal(_signal.SIGINT, self.previous)
            if self.seen or (exc_type is not None and issubclass(exc_type, KeyboardInterrupt)):
                _sys.stderr.write("sweepbt: interrupted\n")
                _sys.stderr.flush()
                _os._exit(130)
        return False


with _CommandStart():
    # First, before anything imports sweepbt.kernels: importing it makes numba's disk cache
    # robust (a read-only cache is used, no writable cache means no disk cache and one warning,
    # entries recorded under another module name load); see sweepbt/_numba_cache.py.
    from sweepbt import _numba_cache  # noqa: F401 - installs itself when imported
    from sweepbt import stats  # noqa: F401 - sb.stats: the overfitting statistics
    from sweepbt.data import Bundle, demo, load
    from sweepbt.custom import (BUY, ENTER_LONG, ENTER_SHORT, EXIT_LONG, EXIT_SHORT, SELL,
                                define_strategy, load_strategy)
    from sweepbt.engine import SweepEstimate, SweepTooLarge, backtest, estimate, sweep
    from sweepbt.results import BacktestResult, SweepResult
    from sweepbt.strategies import STRATEGIES
    from sweepbt.walkforward import WalkForwardResult, walk_forward

__all__ = [
    "BUY",
    "Bundle",
    "BacktestResult",
    "ENTER_LONG",
    "ENTER_SHORT",
    "EXIT_LONG",
    "EXIT_SHORT",
    "SELL",
    "STRATEGIES",
    "SweepEstimate",
    "SweepResult",
    "SweepTooLarge",
    "WalkForwardResult",
    "backtest",
    "define_strategy",
    "demo",
    "estimate",
    "load",
    "load_strategy",
    "sweep",
    "walk_forward",
]
__version__ = "0.1.0"
