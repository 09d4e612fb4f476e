"""Compiled core of sweepbt: ``@njit`` kernels only (arrays and scalars in, arrays out).

Nothing here validates input or imports the shell; :mod:`sweepbt` does both.
"""

from sweepbt.kernels import codes
from sweepbt.kernels.indicators import atr_bank, rolling_mean_1d, sma_bank, wilder_atr_1d
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
    equity_paths,
    simulate,
    sweep_metrics,
)

__all__ = [
    "DIR_BOTH", "DIR_LONG", "DIR_SHORT", "EXIT_REASONS", "FILL_CLOSE", "FILL_NEXT_OPEN",
    "METRIC_NAMES", "N_METRICS", "N_TRADE_FIELDS", "TRADE_FIELDS",
    "atr_bank", "backtest_record", "codes", "cross_events", "equity_paths",
    "rolling_mean_1d", "simulate", "sma_bank", "sweep_metrics", "wilder_atr_1d",
]
