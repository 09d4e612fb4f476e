"""User commission functions as C callbacks the kernels call by address.

A user's ``@njit f(units, price, is_buy) -> float`` (docs/semantics.md, Costs) is compiled
once into a C callback of :data:`COMMISSION_SIGNATURE`; the kernels get its address, an
integer, in ``SimSettings.commission`` and call it with :func:`call_commission`. So every
commission function runs in the same compiled kernels (no kernel is compiled again for a
new function, and numba's kernel cache never holds an entry keyed by a user's function),
and the settings stay plain numbers, which numba's dispatcher types in a microsecond.
"""

import functools

from llvmlite import ir
from numba import cfunc, types
from numba.extending import intrinsic

#: the C callback: ``commission(units, price, side) -> cash``, units > 0, the fill price
#: (slippage included), side +1.0 for a buy and -1.0 for a sale
COMMISSION_SIGNATURE = types.float64(types.float64, types.float64, types.float64)


@functools.lru_cache(maxsize=None)
def commission_callback(commission):
    """The C callback (a numba ``CFunc``, kept alive here for the process) of the
    ``@njit`` function ``commission(units, price, is_buy)``, compiled once per process."""

    def callback(units, price, side):
        return commission(units, price, side > 0.0)

    return cfunc(COMMISSION_SIGNATURE)(callback)


@intrinsic
def call_commission(typingctx, address, units, price, side):
    """The commission the callback at ``address`` (:func:`commission_callback`) gives a
    fill of ``units`` at ``price`` (``side`` +1.0 buy, -1.0 sale)."""
    signature = types.float64(types.int64, types.float64, types.float64, types.float64)

    def codegen(context, builder, sig, args):
        double = ir.DoubleType()
        callback = ir.FunctionType(double, [double, double, double])
        return builder.call(builder.inttoptr(args[0], callback.as_pointer()), args[1:])

    return signature, codegen
