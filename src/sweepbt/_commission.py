"""``commission=``: a user's commission function, checked (docs/semantics.md, Costs).

The function is an ``@njit f(units, price, is_buy) -> float``: the commission in cash of
one fill of ``units > 0`` at the fill ``price`` (slippage included), ``is_buy`` True for a
buy. It replaces the commission line of the cost formula (``fees``, ``fees_per_share``,
``min_fees``, ``max_fees``); ``fixed_fees``, ``slippage``, ``tax`` and ``lot_size`` still
apply. The kernels call it through a compiled callback (sweepbt.kernels.commission).
"""

from __future__ import annotations

import math

import numpy as np
from numba.core.dispatcher import Dispatcher

from sweepbt import kernels
from sweepbt._combo_options import OPTIONS
from sweepbt.strategies.custom_cache import source_key
from sweepbt.strategies.custom_files import is_file_spec, load_function
from sweepbt.errors import StrategyError

#: the commission options a commission function replaces: a grid must leave them at 0
REPLACED = ("fees", "fees_per_share", "min_fees", "max_fees")
#: the fills the function is tried on when given: units from 1e-6 to 1e9 (with the
#: round sizes brokers' tiers start at and their neighbours), at prices from 0.01 to 1e5
PROBE_UNITS = np.unique(np.concatenate([
    np.geomspace(1e-6, 1e9, 61),
    [k * 10.0 ** e + d for e in range(0, 7) for k in (1, 2, 5) for d in (-1.0, 0.0, 1.0)]]))
PROBE_UNITS = PROBE_UNITS[PROBE_UNITS > 0.0]
PROBE_PRICES = (0.01, 1.0, 37.5, 100.0, 1e5)


def check_commission(commission, values):
    """The ``@njit`` commission function of ``commission=`` (a function or
    ``"file.py:name"``), or None; ``values``: the grid's option axes (Grid.values), whose
    commission options must be 0 beside it. Compiles its callback and tries it on
    PROBE_UNITS x PROBE_PRICES: it must return a finite commission >= 0 that never
    decreases as units grow (sizing searches the largest order a budget pays for)."""
    if commission is None:
        return None
    if is_file_spec(commission):
        commission = load_function(commission, "commission")
    if not isinstance(commission, Dispatcher) or not hasattr(commission, "py_func"):
        raise TypeError(f"commission= must be an @njit function f(units, price, is_buy) -> "
                        f"float (decorated with numba.njit), got {commission!r}")
    name = commission.py_func.__qualname__
    for option in REPLACED:
        axis = np.atleast_1d(values.get(option, OPTIONS[option].default)).astype(float)
        if np.any(axis != 0.0):
            raise ValueError(
                f"commission={name} replaces {', '.join(REPLACED)}; leave {option} at 0 "
                f"(the grid holds {option}={axis[axis != 0.0][0]:g})")
    try:
        callback = kernels.commission_callback(commission)
    except Exception as exc:  # numba's typing errors: many classes, long texts
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StrategyError(f"commission={name} does not compile as f(units: float, price: "
                            f"float, is_buy: bool) -> float: {first}") from exc
    _probe(name, lambda units, price, is_buy: callback.ctypes(units, price,
                                                              1.0 if is_buy else -1.0))
    return commission


def _probe(name, f):
    """Raise StrategyError when ``f`` returns a non-finite or negative commission, or one
    that drops as units grow, on the probe fills."""
    for price in PROBE_PRICES:
        for is_buy in (True, False):
            prev_units, prev = None, -math.inf
            for units in PROBE_UNITS:
                c = f(float(units), float(price), is_buy)
                at = f"{name}({units:g}, {price:g}, {is_buy})"
                if not 0.0 <= c < math.inf:
                    raise StrategyError(f"commission={name} must return a finite commission "
                                        f">= 0, but {at} = {c!r}")
                if c < prev - 1e-12 * prev:
                    raise StrategyError(
                        f"commission={name} must not decrease as units grow (sizing finds "
                        f"the largest order a budget pays for): {at} = {c:g} but "
                        f"{name}({prev_units:g}, {price:g}, {is_buy}) = {prev:g}")
                prev_units, prev = units, c


def commission_record(commission):
    """The metadata of a run's commission function: its module, name and the hash of its
    source (a resumed run with a changed function is refused), or None."""
    if commission is None:
        return None
    py = commission.py_func
    return f"{py.__module__}:{py.__qualname__} sha256:{source_key(commission)}"
