"""A progress bar with an ETA: on a terminal (one line on stderr) and in Jupyter.

In a Jupyter kernel the bar is tqdm's (``tqdm.auto``: the notebook widget where ipywidgets
is installed) when tqdm is installed, else the same text line, redrawn in the cell's
output. Anywhere else (a pipe, a log file, a test) nothing is drawn.
"""

from __future__ import annotations

import math
import sys
import time
import warnings


def in_notebook():
    """Whether this runs in a Jupyter kernel (IPython's ZMQ shell)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(
        ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def eta_text(done, total, elapsed):
    """``ETA 12s`` (or ``ETA 3m05s``) from the rate so far; ``ETA ?`` before any work."""
    if done <= 0 or elapsed <= 0:
        return "ETA ?"
    left = (total - done) * elapsed / done
    minutes, seconds = divmod(int(round(left)), 60)
    return f"ETA {minutes}m{seconds:02d}s" if minutes else f"ETA {seconds}s"


def _tqdm(total):
    """A tqdm bar from ``tqdm.auto``, or None when tqdm is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tqdm.auto warns when ipywidgets is missing
            from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=" backtests", unit_scale=total >= 10_000, leave=True)


class ProgressBar:
    """``update(done)`` redraws the bar for ``done`` of ``total`` backtests."""

    def __init__(self, total, stream=None):
        self.total = total
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.notebook = stream is None and in_notebook()
        self.bar = _tqdm(total) if self.notebook else None
        self.live = self.notebook or (hasattr(self.stream, "isatty") and self.stream.isatty())
        self.done = 0

    def update(self, done):
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.done = done
            return
        if not self.live:
            return
        frac = done / self.total
        width = 30
        filled = int(width * frac)
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else math.nan
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {frac:6.1%} "
            f"{done:,}/{self.total:,} backtests {elapsed:6.1f}s {rate:,.0f}/s "
            f"{eta_text(done, self.total, elapsed)}  ")
        self.stream.flush()

    def stretch(self, offset):
        """A :class:`Stretch` of this bar starting at ``offset`` backtests."""
        return Stretch(self, offset)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.live:
            self.stream.write("\n")
            self.stream.flush()


class Stretch:
    """The part of a :class:`ProgressBar` that one of several runs draws, one after another
    on the same bar (the strategies of a sweep): ``update(done)`` draws ``offset + done``;
    ``close()`` leaves the bar to its owner."""

    def __init__(self, bar, offset):
        self.bar, self.offset = bar, offset

    def update(self, done):
        self.bar.update(self.offset + done)

    def close(self):
        pass
