"""A one-line text progress bar on stderr (drawn only on a terminal)."""

from __future__ import annotations

import math
import sys
import time


class ProgressBar:
    """``update(done)`` redraws the bar for ``done`` of ``total`` backtests."""

    def __init__(self, total, stream=None):
        self.total = total
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done):
        if not self.live:
            return
        frac = done / self.total
        width = 30
        filled = int(width * frac)
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else math.nan
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {frac:6.1%} "
            f"{done:,}/{self.total:,} backtests {elapsed:6.1f}s {rate:,.0f}/s")
        self.stream.flush()

    def close(self):
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
