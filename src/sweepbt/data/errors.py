""":class:`DataError` and what its messages need: naming the bad row and finding it.

Every data problem raises a :class:`DataError` naming the symbol, the row (0-based row number
of the user's input, and its timestamp) and the column. :class:`RowLocator` describes a row
of long-format input, :class:`GridLocator` a bar of 2-D input; :func:`first_true` and
:func:`first_failing` find the first offending position.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sweepbt.errors import SweepbtError


class DataError(SweepbtError, ValueError):
    """Invalid input data. A ``ValueError`` whose message names symbol, row and column."""


def fmt_ts(ns, suffix="Z") -> str:
    """Format an int64 nanosecond UTC timestamp as ISO-8601 with a ``Z`` (or ``suffix``)."""
    ns = int(ns)
    unit = "s" if ns % 1_000_000_000 == 0 else "ns"
    return np.datetime_as_string(np.datetime64(ns, "ns"), unit=unit) + suffix


def first_true(mask: np.ndarray) -> int:
    """Index of the first True in a 1-D (or flattened) bool array, or -1."""
    flat = mask.reshape(-1)
    if flat.size == 0:
        return -1
    i = int(np.argmax(flat))
    return i if flat[i] else -1


def first_failing(n: int, fails) -> int:
    """Smallest index ``k`` such that ``fails(0, k + 1)`` is True (given ``fails(0, n)``)."""
    lo, hi = 0, n  # invariant: fails(0, hi) is True, fails(0, lo) is False
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fails(0, mid):
            hi = mid
        else:
            lo = mid
    return hi - 1


def slice_fails(arr: pa.Array, op):
    """``fails(a, b)``: whether ``op(arr[a:b])`` raises an Arrow error."""
    def fails(a: int, b: int) -> bool:
        try:
            op(arr.slice(a, b - a))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return True
        return False

    return fails


def first_cast_failure(arr: pa.Array, typ: pa.DataType) -> int:
    """Index of the first value of ``arr`` that does not cast to ``typ`` (given that the
    whole array does not)."""
    return first_failing(len(arr), slice_fails(arr, lambda part: pc.cast(part, typ)))


def some(names, limit: int = 20) -> str:
    """``names`` as a list for a message, the first ``limit`` of them when there are more."""
    names = list(names)
    if len(names) <= limit:
        return repr(names)
    return f"{repr(names[:limit])[:-1]}, ...] ({len(names)} in all)"


class RowLocator:
    """Describes a row of the (possibly filtered) long input for error messages."""

    def __init__(self, n: int, rows=None, ts=None, codes=None, names=None, single=None):
        self.n = n
        self.rows = rows  # filtered row -> original row number, or None (identity)
        self.ts = ts  # int64 ns per row, once parsed
        self.codes = codes  # symbol code per row, once encoded
        self.names = names
        self.single = single  # symbol name of single-asset input

    def row(self, i: int) -> int:
        """The user's row number of (filtered) row ``i``."""
        return int(self.rows[i]) if self.rows is not None else int(i)

    def symbol(self, i: int):
        if self.single is not None:
            return self.single
        if self.codes is not None:
            return self.names[int(self.codes[i])]
        return None

    def where(self, i: int, column=None) -> str:
        parts = []
        sym = self.symbol(i)
        if sym is not None:
            parts.append(f"symbol {sym!r}")
        loc = f"row {self.row(i)}"
        if self.ts is not None:
            loc += f" (timestamp {fmt_ts(self.ts[i])})"
        parts.append(loc)
        if column is not None:
            parts.append(f"column {column!r}")
        return ", ".join(parts)


class GridLocator:
    """Describes bar ``i`` of asset ``a`` for 2-D input (``from_arrays``)."""

    def __init__(self, symbols, ts, n_bars):
        self.symbols = symbols
        self.ts = ts
        self.n_bars = n_bars

    def where(self, flat: int, column=None) -> str:
        a, i = divmod(int(flat), self.n_bars)
        s = f"symbol {self.symbols[a]!r}, row {i} (bar {i}, timestamp {fmt_ts(self.ts[i])})"
        if column is not None:
            s += f", column {column!r}"
        return s
