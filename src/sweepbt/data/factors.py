"""Factor columns: extra numbers per asset and bar loaded beside the prices
(``load(..., factors=["pe"])``, ``Bundle.from_arrays(..., factors={"pe": array})``), for rank
strategies to score assets by.

A factor is a float64 ``(n_assets, n_bars)`` array on the Bundle's grid, NaN outside each
asset's span and wherever the value is missing (null or NaN: "not eligible"); every other
value must be finite. :class:`FactorMap` is the Bundle's read-only mapping of them;
:func:`row_factors` reads them from long input, :func:`check_factors` checks them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sweepbt.data.columns import factor_list, numeric
from sweepbt.data.errors import DataError, first_true


class FactorMap(Mapping):
    """A read-only mapping: factor name -> float64 ``(n_assets, n_bars)`` array, in the
    order the factors were given."""

    __slots__ = ("_arrays",)

    def __init__(self, arrays=()):
        self._arrays = dict(arrays)

    def __getitem__(self, name):
        try:
            return self._arrays[name]
        except KeyError:
            raise KeyError(f"no factor {name!r}; the Bundle has factors "
                           f"{list(self._arrays)} (load(..., factors=[...]) loads them)") \
                from None

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)

    def __reduce__(self):
        return FactorMap, (self._arrays,)

    def __repr__(self):
        return f"FactorMap({list(self._arrays)})"


def mapping_names(factors) -> tuple:
    """The names of a ``factors`` mapping (name -> array; None: none), checked by
    :func:`~sweepbt.data.columns.factor_list`."""
    if factors is None:
        return ()
    if not isinstance(factors, Mapping):
        raise TypeError(f"factors= must be a mapping of factor name -> array (n_assets, "
                        f"n_bars), got {type(factors).__name__}")
    return factor_list(list(factors))


def bundle_factors(factors, shape) -> FactorMap:
    """The Bundle constructor's ``factors``: a mapping name -> array of ``shape`` as a
    :class:`FactorMap` of float64 C-contiguous arrays (copied only when needed)."""
    mapping_names(factors)
    out = {}
    for name, x in (factors or {}).items():
        a = np.ascontiguousarray(x, dtype=np.float64)
        if a.shape != tuple(shape):
            raise ValueError(f"factor {name!r} has shape {a.shape}, close has {tuple(shape)}")
        out[name] = a
    return FactorMap(out)


def check_factors(values: dict, shown: dict, loc, valid=None) -> None:
    """Factor values are finite or NaN (missing). ``values``: name -> float64 array;
    ``shown``: name -> the column name shown to the user; ``valid``: bool mask of the
    positions to check (None: all)."""
    for name, x in values.items():
        bad = np.isinf(x)
        if valid is not None:
            bad &= valid
        i = first_true(bad)
        if i >= 0:
            raise DataError(f"factor is infinite: {loc.where(i, shown[name])}: "
                            f"{name}={float(x.flat[i])!r}; a factor must be finite, or "
                            "NaN/null where the asset is not eligible")


def row_factors(table, columns: dict, loc) -> dict:
    """``load``: factor name -> float64 value per row of ``table`` (null -> NaN), checked;
    ``columns``: factor name -> the column holding it."""
    out = {}
    for name, col in columns.items():
        try:
            out[name], _ = numeric(table.column(col), col, loc)
        except DataError as exc:
            raise DataError(f"factor {exc}") from None
    check_factors(out, columns, loc)
    return out
