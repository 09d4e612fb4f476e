"""Validation helpers shared by every layer of the shell (a leaf: imports nothing of it)."""

from __future__ import annotations

import numbers

import numpy as np


def is_integer(value):
    """Whether ``value`` is an integer (Python or numpy), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_count(name, value, minimum=1, maximum=None, wrong_type=ValueError):
    """A count option (``threads``, ``top``, ``sample``, ``seed``, ``k``): an integer (Python
    or numpy, never a bool) in ``[minimum, maximum]``, returned as a Python int.

    ``wrong_type`` (ValueError unless given) for a value that is not an integer,
    ValueError for one out of range; both name the option.
    """
    if not is_integer(value):
        raise wrong_type(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def combo_id(combo):
    """A combo id from an int or a row (a mapping or pandas Series with ``combo``)."""
    if hasattr(combo, "__getitem__") and not isinstance(combo, (str, bytes, np.ndarray)):
        try:
            combo = combo["combo"]
        except (KeyError, IndexError, TypeError):
            raise ValueError("a row given as combo must have a 'combo' entry (a row of "
                             "best() or table)") from None
    if isinstance(combo, (float, np.floating)) and float(combo).is_integer():
        combo = int(combo)  # a pandas row of mixed columns holds every value as a float
    if isinstance(combo, (bool, np.bool_)) or not isinstance(combo, (int, np.integer)):
        raise TypeError(f"combo must be a combo id (int) or a row with one, got {combo!r}")
    return int(combo)
