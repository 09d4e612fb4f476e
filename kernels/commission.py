"""User commission functions as callbacks the kernels call through a pointer.

A user's ``@njit f(units, price, is_buy) -> float`` (docs/semantics.md, Costs) is compiled
once into a C callback of :data:`COMMISSION_SIGNATURE` (a numba first-class function). The
kernels take it in ``SimSettings.commission`` typed by that signature alone, so every
commission function runs in the same compiled kernels: no kernel is compiled again for a
new function, and numba's kernel cache never holds an entry keyed by a user's function.
"""

import functools

from numba import cfunc, types

#: ``commission(units, price, is_buy) -> cash``: units > 0, the fill price (slippage
#: included), True for a buy
COMMISSION_SIGNATURE = types.float64(types.float64, types.float64, types.boolean)


def no_commission(units, price, is_buy):
    """The callback of a run without a commission function (never called: the kernels
    read ``SimSettings.user_commission`` first)."""
    return 0.0


@functools.lru_cache(maxsize=None)
def commission_callback(py_func=no_commission):
    """The compiled callback of the Python function ``py_func`` (an ``@njit`` function's
    ``py_func``), compiled once per process."""
    return cfunc(COMMISSION_SIGNATURE)(py_func)
