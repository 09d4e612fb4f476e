"""Compiled core of sweepbt: ``@njit`` kernels only (arrays and scalars in, arrays out).

Nothing here validates input or imports the shell; :mod:`sweepbt` does both. The kernels'
arguments are grouped by name in the NamedTuples of :mod:`sweepbt.kernels.enums`, which
also names every constant the shell and the kernels share.
"""

from sweepbt.kernels import codes
from sweepbt.kernels.commission import COMMISSION_SIGNATURE, commission_callback
from sweepbt.kernels.enums import (
    Bars,
    Combos,
    Direction,
    EXIT_REASONS,
    Events,
    ExitReason,
    FillMode,
    Holdings,
    METRIC_NAMES,
    Market,
    Metric,
    N_METRICS,
    N_RANK,
    N_RULES,
    Outputs,
    RANK_COLUMNS,
    RULE_COLUMNS,
    RankCombos,
    RankRule,
    Rule,
    Scores,
    Scratch,
    Signals,
    SimSettings,
    SizeType,
    TRADE_DTYPE,
    WEIGHTINGS,
    Weighting,
)
from sweepbt.kernels.indicators import (
    atr_bank,
    bollinger_bank,
    channel_1d,
    channel_bank,
    diff_rows_bank,
    ema_1d,
    ema_bank,
    ema_rows_bank,
    momentum_score_bank,
    roc_1d,
    roc_bank,
    rolling_mean_1d,
    rolling_std_1d,
    rsi_bank,
    sma_bank,
    volatility_bank,
    wilder_atr_1d,
    wilder_rsi_1d,
)
from sweepbt.kernels.signals import (
    codes_to_events,
    cross_events,
    donchian_events,
    level_events,
)
from sweepbt.kernels._core import NOISE
from sweepbt.kernels.asset import (
    backtest_record,
    equity_paths,
    simulate_asset,
    sweep_metrics,
)
from sweepbt.kernels.portfolio import (
    portfolio_equity_paths,
    portfolio_metrics,
    portfolio_record,
    simulate_portfolio,
)
from sweepbt.kernels.rank import rank_equity_paths, rank_metrics, rank_record, simulate_rank

__all__ = [
    "COMMISSION_SIGNATURE", "EXIT_REASONS", "METRIC_NAMES", "N_METRICS", "NOISE", "N_RANK", "N_RULES", "RANK_COLUMNS",
    "RULE_COLUMNS", "TRADE_DTYPE", "WEIGHTINGS", "Bars", "Combos", "Direction", "Events",
    "ExitReason", "FillMode", "Holdings", "Market", "Metric", "Outputs", "RankCombos",
    "RankRule", "Rule", "Scores", "Scratch", "Signals", "SimSettings", "SizeType",
    "Weighting", "atr_bank", "commission_callback", "backtest_record", "bollinger_bank", "channel_1d",
    "channel_bank", "codes", "codes_to_events", "cross_events", "diff_rows_bank",
    "donchian_events", "ema_1d", "ema_bank", "ema_rows_bank",
    "equity_paths", "level_events", "momentum_score_bank", "portfolio_equity_paths", "portfolio_metrics",
    "portfolio_record", "rank_equity_paths", "rank_metrics", "rank_record", "roc_1d",
    "roc_bank", "rolling_mean_1d", "rolling_std_1d", "rsi_bank", "simulate_asset",
    "simulate_portfolio", "simulate_rank", "sma_bank", "sweep_metrics", "volatility_bank",
    "wilder_atr_1d", "wilder_rsi_1d",
]
