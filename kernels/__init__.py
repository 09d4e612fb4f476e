"""Compiled core of sweepbt: ``@njit`` kernels only (arrays and scalars in, arrays out).

Nothing here validates input or imports the shell; :mod:`sweepbt` does both.
"""

from sweepbt.kernels.indicators import rolling_mean_1d, sma_bank
from sweepbt.kernels.signals import cross_events
from sweepbt.kernels.simulate import (
    DIR_BOTH,
    DIR_LONG,
    DIR_SHORT,
    EXIT_REASONS,
    FILL_CLOSE,
    FILL_NEXT_OPEN,
    METRIC_NAMES,
    N_METRICS,
    N_TRADE_FIELDS,
    TRADE_FIELDS,
    backtest_record,
    simulate,
    sweep_metrics,
)

__all__ = [
    "DIR_BOTH", "DIR_LONG", "DIR_SHORT", "EXIT_REASONS", "FILL_CLOSE", "FILL_NEXT_OPEN",
    "METRIC_NAMES", "N_METRICS", "N_TRADE_FIELDS", "TRADE_FIELDS",
    "backtest_record", "cross_events", "rolling_mean_1d", "simulate", "sma_bank", "sweep_metrics",
]
