"""The metric vocabulary: names, which way is better, and how combos are ranked.

Every module that names, aggregates or ranks metrics takes it from here; the names and
their column order are the kernels' (``sweepbt.kernels.METRIC_NAMES``): a metrics block
has the kernels' ``N_METRICS`` columns, and every engine's tables show them all.
"""

from __future__ import annotations

import numpy as np

from sweepbt import kernels
from sweepbt.kernels import N_METRICS

__all__ = ["COUNT_METRICS", "LOWER_IS_BETTER", "METRIC_NAMES", "N_METRICS",
           "mean_over_assets", "metric_index", "rank_order"]

#: the metrics of every backtest, in column order
METRIC_NAMES = kernels.METRIC_NAMES

#: metrics where a lower value is better (ranking sorts these ascending); turnover and the
#: costs are costs, so the least trading ranks first
LOWER_IS_BETTER = frozenset({"max_drawdown", "volatility", "turnover", "costs", "cost_rate"})
#: metrics that count trades (int64 in tables)
COUNT_METRICS = frozenset({"n_trades", "n_stop", "n_take", "n_trail", "n_time", "n_signal"})


def metric_index(metric):
    """Column of ``metric`` in a metrics block; ValueError listing the metrics otherwise."""
    try:
        return kernels.METRIC_NAMES.index(metric)
    except ValueError:
        raise ValueError(f"unknown metric {metric!r}; metrics: "
                         f"{', '.join(kernels.METRIC_NAMES)}") from None


def rank_order(per_combo, combo_ids, metric):
    """Row order best-first by ``metric``: ties by combo id; NaN, and combos ruined on any
    asset (``ruined`` > 0 after aggregation), after all others whatever the metric."""
    key = per_combo[:, metric_index(metric)]
    last = np.isnan(key) | (per_combo[:, metric_index("ruined")] != 0)
    signed = np.where(last, 0.0, key if metric in LOWER_IS_BETTER else -key)
    return np.lexsort((combo_ids, signed, last))


def mean_over_assets(per_asset):
    """Per-combo metrics from ``(n_combos, n_assets, N_METRICS)``: the mean over assets
    (NaN on any asset gives NaN), except ``ruined``: 1 when ruined on any asset."""
    out = per_asset.mean(axis=1)
    ruined = metric_index("ruined")
    out[:, ruined] = per_asset[:, :, ruined].max(axis=1)
    return out
