"""Compiled core of sweepbt: ``@njit`` kernels only (arrays and scalars in, arrays out).

Nothing here validates input or imports the shell; :mod:`sweepbt` does both.
"""

from sweepbt.kernels import codes
from sweepbt.kernels.indicators import (
    atr_bank,
    bollinger_bank,
    channel_1d,
    channel_bank,
    diff_rows_bank,
    ema_1d,
    ema_bank,
    ema_rows_bank,
    roc_1d,
    roc_bank,
    rolling_mean_1d,
    rolling_std_1d,
    rsi_bank,
    sma_bank,
    wilder_atr_1d,
    wilder_rsi_1d,
)
from sweepbt.kernels.signals import codes_to_events, cross_events, donchian_events, level_events
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
    "atr_bank", "backtest_record", "bollinger_bank", "channel_1d", "channel_bank", "codes",
    "codes_to_events", "cross_events", "diff_rows_bank", "donchian_events", "ema_1d", "ema_bank",
    "ema_rows_bank", "equity_paths", "level_events", "roc_1d", "roc_bank", "rolling_mean_1d",
    "rolling_std_1d", "rsi_bank", "simulate", "sma_bank", "sweep_metrics", "wilder_atr_1d",
    "wilder_rsi_1d",
]
