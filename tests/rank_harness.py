"""Run the compiled rank kernel on the inputs of the pure-Python reference
(tests/rank_reference.py): scores and volatilities given per bar, a schedule as bar indices.
Shared by the kernel tests; it builds the kernel's argument tuples and nothing else."""

import numpy as np

from sweepbt import kernels
from sweepbt.kernels import (N_RANK, N_RULES, TRADE_DTYPE, Holdings, Market, Outputs,
                             RankCombos, RankRule, Rule, Scores, SimSettings, Weighting)

FILLS = {"next_open": 0, "close": 1}


def _nan(x):
    return np.nan if x is None else float(x)


def kernel_inputs(bars, start, end, scores, rebalance_bars, vol=None, **kw):
    """(market, Scores, RankCombos, SimSettings) for one combo, as the reference's
    keyword arguments say."""
    o, h, lo, c = (np.ascontiguousarray(x, dtype=np.float64) for x in bars)
    n_assets, n_bars = c.shape
    market = Market(open=o, high=h, low=lo, close=c, start=np.asarray(start, np.int64),
                    end=np.asarray(end, np.int64))
    keys = np.unique(np.asarray(rebalance_bars, np.int64))
    keys = keys[(keys >= 0) & (keys < n_bars)]
    key = np.full(n_bars, -1, np.int64)
    key[keys] = np.arange(keys.size)
    mask = np.zeros((1, n_bars), np.bool_)
    mask[0, keys] = True
    score_bank = np.ascontiguousarray(np.asarray(scores, np.float64)[:, keys].T)[None]
    weighting = kw.get("weighting", "equal")
    if vol is not None:
        vol_bank = np.ascontiguousarray(np.asarray(vol, np.float64)[:, keys].T)[None]
    else:
        vol_bank = np.empty((0, keys.size, n_assets))
    rules = np.full((1, N_RULES), np.nan)
    for name in ("stop_loss", "take_profit", "trailing_stop"):
        rules[0, getattr(Rule, name)] = _nan(kw.get(name))
    for name in ("stop_atr", "take_atr", "trailing_atr"):
        rules[0, getattr(Rule, name)] = np.nan
    rules[0, Rule.max_bars] = kw.get("max_bars") or 0
    for name in ("fees", "fixed_fees", "slippage", "tax", "fees_per_share", "min_fees",
                 "max_fees", "lot_size"):
        rules[0, getattr(Rule, name)] = kw.get(name, 0.0)
    rules[0, Rule.size] = 1.0
    rules[0, Rule.max_positions] = 0
    rank = np.zeros((1, N_RANK))
    rank[0, RankRule.top_n] = kw["top_n"]
    rank[0, RankRule.bottom_n] = kw.get("bottom_n", 0)
    rank[0, RankRule.weighting] = getattr(Weighting, weighting)
    rank[0, RankRule.position_limit] = _nan(kw.get("position_limit"))
    combos = RankCombos(score_idx=np.zeros(1, np.int64),
                        vol_idx=np.array([0 if vol is not None else -1], np.int64),
                        schedule_idx=np.zeros(1, np.int64), rules=rules, rank=rank)
    settings = SimSettings.of(FILLS[kw.get("fill", "next_open")], 0,
                              kw.get("init_cash", 10_000.0), kw.get("periods_per_year", 252.0))
    return market, Scores(score=score_bank, vol=vol_bank, key=key, rebalance=mask), combos, \
        settings


def run_kernel(bars, start, end, scores, rebalance_bars, vol=None, **kw):
    """The kernel's record of one combo: a dict like the reference's (metrics by name,
    equity, cash, units, trades as a structured array, rebalances)."""
    market, scores_, combos, settings = kernel_inputs(bars, start, end, scores,
                                                      rebalance_bars, vol, **kw)
    n_assets, n_bars = market.close.shape
    metrics = np.empty((1, kernels.N_METRICS))
    kernels.rank_metrics(market, scores_, combos, settings, 1, metrics)
    n_trades = int(metrics[0, kernels.Metric.n_trades])
    out = Outputs(metrics=np.empty(kernels.N_METRICS), equity=np.full(n_bars, np.nan),
                  cash=np.full(n_bars, np.nan), units=np.full((n_assets, n_bars), np.nan),
                  trades=np.empty(n_trades, TRADE_DTYPE))
    n_keys = scores_.key.max() + 1 if n_bars else 0
    holdings = Holdings(bar=np.empty(n_keys, np.int64), weights=np.empty((n_keys, n_assets)),
                        turnover=np.empty(n_keys))
    count = kernels.rank_record(market, scores_, combos, settings, 0, out, holdings)
    used = holdings.bar >= 0
    return {"metrics": dict(zip(kernels.METRIC_NAMES, out.metrics)),
            "sweep_metrics": dict(zip(kernels.METRIC_NAMES, metrics[0])),
            "equity": out.equity, "cash": out.cash, "units": out.units,
            "trades": out.trades[:count], "holdings": (holdings.bar[used],
                                                       holdings.weights[used],
                                                       holdings.turnover[used])}
