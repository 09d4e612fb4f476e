"""sweepbt's own exceptions (a leaf): one base, :class:`SweepbtError`, and the data each
carries as attributes, so that no caller reads it back out of a message.

Each is also the built-in type it always was (``DataError`` and ``StrategyError`` are
ValueErrors, ``SweepTooLarge`` a MemoryError), so ``except ValueError`` still catches
them. ``data.DataError`` and ``cli.parsing.CliError`` live with their code.
"""

from __future__ import annotations

from sweepbt._format import format_bytes

__all__ = ["StrategyError", "StrategyTypeError", "SweepTooLarge", "SweepbtError"]


class SweepbtError(Exception):
    """The base of every error sweepbt raises about its input, its strategies or a run."""


class StrategyError(SweepbtError, ValueError):
    """A user strategy that cannot be defined, loaded or run; ``strategy`` is its name
    (None when the name itself is wrong)."""

    def __init__(self, message, strategy=None):
        super().__init__(message)
        self.strategy = strategy


class StrategyTypeError(StrategyError, TypeError):
    """A :class:`StrategyError` about the type of an argument (also a ``TypeError``)."""


# MemoryError first: its own __new__ must be the base's to unpickle (tblib, which Dask uses)
class SweepTooLarge(MemoryError, SweepbtError):
    """A sweep whose full results would not fit in memory: ``n_rows`` result rows, about
    ``result_bytes``, more than the ``limit_bytes`` allowed (``max_memory``)."""

    def __init__(self, n_rows, result_bytes, limit_bytes):
        super().__init__(n_rows, result_bytes, limit_bytes)
        self.n_rows, self.result_bytes, self.limit_bytes = n_rows, result_bytes, limit_bytes

    @property
    def reason(self):
        """What is too large, in words (the message without its advice)."""
        return (f"this sweep would keep {self.n_rows:,} result rows, about "
                f"{format_bytes(self.result_bytes)}, more than the "
                f"{format_bytes(self.limit_bytes)} allowed (max_memory)")

    def __str__(self):
        return (f"{self.reason}; pass top=K to keep only the best K combos, or "
                "out='results_dir' to stream every row to a Parquet dataset")
