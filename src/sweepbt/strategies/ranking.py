"""Rank-and-rebalance strategies: the built-in scores and what a rank launch takes.

A rank strategy's ``build(bundle, values)`` returns a :class:`RankSource`: the score of
every distinct score parameter combination, the volatility of every ``vol_window`` and
the bars of every ``rebalance`` schedule of the grid, computed once (the indicator stage)
and only at the bars some schedule rebalances. :meth:`RankSource.combos` then points each
combo at its rows (docs/semantics.md, "Rank-and-rebalance strategies"; definitions in
docs/strategies.md).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sweepbt import kernels
from sweepbt._params import check_window, decode_choice
from sweepbt._schedule import rebalance_bars
from sweepbt.strategies.builtin import RANK, Param, Strategy, in_range, register

#: the parameters every rank strategy has after its score's own
RANK_PARAMS = (
    Param("top_n", "count", 10, "assets held long: the highest scores"),
    Param("bottom_n", "count", 0, "assets held short: the lowest scores of the rest"),
    Param("rebalance", "choice", "M", "'W', 'M', 'Q', 'Y' (the last bar of each calendar "
          "period in the data) or a number of bars n (bars n-1, 2n-1, ...)"),
    Param("weighting", "choice", "equal", "'equal', 'inverse_vol' (1 / vol) or 'score' "
          "(distance from the worst eligible score)"),
    Param("position_limit", "float", 1.0, "cap on each |weight|, fraction of equity; what "
          "it removes stays in cash", in_range(0.0, 1.0, low_open=True)),
    Param("vol_window", "window", 63, "returns in the volatility of inverse_vol weighting "
          "(and of low_volatility_rank's score), bars; checked against the data only "
          "where used", in_range(2.0)),
)


def _product_index(values, columns, names):
    """Row of each combo in the C-order product of the axes ``values[name]``."""
    if not names:
        return np.zeros(len(next(iter(columns.values()))), np.int64)
    positions = []
    for name in names:
        axis = np.atleast_1d(values[name])
        lookup = {v: k for k, v in enumerate(axis.tolist())}
        positions.append(np.array([lookup[v] for v in columns[name].tolist()], np.int64))
    shape = tuple(np.atleast_1d(values[n]).size for n in names)
    return np.ravel_multi_index(positions, shape)


class RankSource:
    """The Scores of a rank grid on one Bundle (built once; windows share it).

    ``score_rows(close, start, end, bars, values)`` is the strategy's score bank writer:
    ``(n_rows, bars.size, n_assets)`` for the C-order product of its score parameters'
    axes. Volatility rows are made for every ``vol_window`` when a combo needs them.
    """

    def __init__(self, bundle, values, score_names, score_rows):
        self.values, self.score_names = values, score_names
        self.rebalance = [int(v) for v in np.atleast_1d(values["rebalance"])]
        schedules = [rebalance_bars(bundle.timestamps, decode_choice("rebalance", code),
                                    bundle.tz) for code in self.rebalance]
        n_bars = bundle.n_bars
        bars = np.unique(np.concatenate(schedules)) if schedules else np.empty(0, np.int64)
        bars = bars.astype(np.int64)
        key = np.full(n_bars, -1, np.int64)
        key[bars] = np.arange(bars.size)
        mask = np.zeros((len(schedules), n_bars), np.bool_)
        for j, rows in enumerate(schedules):
            mask[j, rows] = True
        self.windows = np.atleast_1d(values["vol_window"]).astype(np.int64)
        wants_vol = (kernels.Weighting.inverse_vol in
                     np.atleast_1d(values["weighting"]).tolist())
        vol = np.empty((self.windows.size if wants_vol else 0, bars.size, bundle.n_assets))
        if wants_vol:
            kernels.volatility_bank(bundle.close, bundle.start, bundle.end, self.windows,
                                    bars, vol)
        score = score_rows(bundle, bars, values)
        self.scores = kernels.Scores(score=score, vol=vol, key=key, rebalance=mask)

    def combos(self, columns):
        """The RankCombos of the per-combo ``columns`` (as ``Grid.columns_at`` gives)."""
        n = len(columns["top_n"])
        uses_vol = columns["weighting"] == kernels.Weighting.inverse_vol
        vol_row = _product_index({"vol_window": self.windows}, columns, ["vol_window"])
        rank = np.empty((n, kernels.N_RANK))
        rank[:, kernels.RankRule.top_n] = columns["top_n"]
        rank[:, kernels.RankRule.bottom_n] = columns["bottom_n"]
        rank[:, kernels.RankRule.weighting] = columns["weighting"]
        rank[:, kernels.RankRule.position_limit] = columns["position_limit"]
        return dict(
            score_idx=_product_index(self.values, columns, self.score_names),
            vol_idx=np.where(uses_vol, vol_row, -1).astype(np.int64),
            schedule_idx=_product_index({"rebalance": np.array(self.rebalance)}, columns,
                                        ["rebalance"]),
            rank=rank)


def _momentum_rows(sign, skip_name):
    def rows(bundle, bars, values):
        lookback = np.atleast_1d(values["lookback"]).astype(np.int64)
        skip = (np.atleast_1d(values[skip_name]).astype(np.int64) if skip_name
                else np.zeros(1, np.int64))
        grid = np.meshgrid(lookback, skip, indexing="ij")
        out = np.empty((grid[0].size, bars.size, bundle.n_assets))
        kernels.momentum_score_bank(bundle.close, bundle.start, bundle.end,
                                    grid[0].ravel(), grid[1].ravel(), sign, bars, out)
        return out
    return rows


def _low_volatility_rows(bundle, bars, values):
    windows = np.atleast_1d(values["vol_window"]).astype(np.int64)
    out = np.empty((windows.size, bars.size, bundle.n_assets))
    kernels.volatility_bank(bundle.close, bundle.start, bundle.end, windows, bars, out)
    return np.negative(out, out=out)


def _factor_rows(bundle, bars, values):
    """The factor column ``values["factor"]`` at ``bars``, negated when ``ascending``."""
    rows = bundle.factors[values["factor"]][:, bars].T[None]
    return np.ascontiguousarray(-rows if values["ascending"] else rows)


def rank_strategy(name, score_params, score_rows, doc, settings=(), origin=RANK):
    """A rank Strategy: its score's own Params, then RANK_PARAMS; ``score_rows(bundle,
    bars, values)`` writes the score bank (see RankSource); ``origin`` as
    ``Strategy.origin``."""
    score_names = tuple(p.name for p in score_params)
    if "vol_window" in score_names:  # low_volatility_rank: its window is the rank one
        score_params = ()

    def build(bundle, values):
        return RankSource(bundle, values, score_names, score_rows)
    return Strategy(name=name, params=score_params + RANK_PARAMS, build=build, doc=doc,
                    score_params=score_names, settings=settings, origin=origin)


def user_score_rows(score, inputs, names):
    """The score bank writer of a user score function (custom.define_rank_strategy): one
    call per distinct parameter combination and rebalance bar ``r``, given read-only
    views of the ``inputs`` series up to ``r`` (it cannot read a later bar)."""
    def rows(bundle, bars, values):
        axes = np.meshgrid(*(np.atleast_1d(values[n]) for n in names), indexing="ij")
        combos = list(zip(*(a.ravel().tolist() for a in axes))) if names else [()]
        series = [getattr(bundle, x) for x in inputs]
        out = np.empty((len(combos), bars.size, bundle.n_assets))
        for j, params in enumerate(combos):
            for k, r in enumerate(bars.tolist()):
                out[j, k] = checked_scores(score, _views(series, r), params,
                                           bundle.n_assets, r)
        return out
    return rows


def _views(series, r):
    views = []
    for x in series:
        v = x[:, :r + 1]
        v.flags.writeable = False
        views.append(v)
    return views


def checked_scores(score, views, params, n_assets, r):
    """``score(*views, *params)`` checked: a float array of ``n_assets`` finite or NaN
    values; ValueError naming the bar and the parameters otherwise."""
    got = score(*views, *params)
    where = f"at bar {r} with parameters {params}"
    if not isinstance(got, np.ndarray) or got.shape != (n_assets,):
        raise ValueError(f"score function {getattr(score, '__name__', score)} returned "
                         f"{type(got).__name__} {getattr(got, 'shape', '')} {where}; it must "
                         f"return a float array of one score per asset ({n_assets},)")
    got = got.astype(np.float64, copy=False)
    if np.isinf(got).any():
        raise ValueError(f"score function {getattr(score, '__name__', score)} returned an "
                         f"infinite score {where} (asset {int(np.argmax(np.isinf(got)))}); "
                         "return NaN for an asset that is not eligible")
    return got


def _rank_strategy(name, score_params, score_rows, doc, settings=()):
    return register(rank_strategy(name, score_params, score_rows, doc, settings))


_rank_strategy(
    "momentum_rank",
    (Param("lookback", "window", 252, "return measured over this many bars"),
     Param("skip", "count", 0, "most recent bars left out of the return")),
    _momentum_rows(1.0, "skip"),
    "Holds the top_n assets by momentum close[i-skip]/close[i-skip-lookback] - 1 (and "
    "shorts the bottom_n), rebalanced on a schedule.")

_rank_strategy(
    "reversal_rank",
    (Param("lookback", "window", 21, "return measured over this many bars"),),
    _momentum_rows(-1.0, None),
    "Holds the top_n assets by reversal: minus the return close[i]/close[i-lookback] - 1 "
    "(the biggest losers first).")

_rank_strategy(
    "factor_rank", (), _factor_rows,
    "Holds the top_n assets by a factor column loaded with the data (sb.load(..., "
    "factors=[...])): the highest values, or with ascending=True the lowest; NaN is not "
    "eligible. factor= names the column (not swept).",
    settings=("factor", "ascending"))

_rank_strategy(
    "low_volatility_rank",
    (RANK_PARAMS[-1],), _low_volatility_rows,
    "Holds the top_n assets with the lowest volatility (sample std of the vol_window "
    "returns ending at the rebalance bar).")


#: the sweepable options a rank strategy has no use for (it sizes by weight, holds
#: top_n + bottom_n positions, and its stops are percent levels from the average cost)
NOT_FOR_RANK = ("stop_atr", "take_atr", "trailing_atr", "atr_window", "size",
                "max_positions")


def unbounded_windows(strategy):
    """The windows ``build_grid`` leaves unchecked against the data for ``strategy``: a
    rank strategy's ``vol_window`` when its score does not use it (inverse_vol weighting
    alone does: :func:`check_rank_call` checks it then)."""
    return ("vol_window",) if strategy.is_rank and \
        "vol_window" not in strategy.score_params else ()


def check_rank_call(strategy, grid, params, direction, n_assets, longest_span):
    """ValueError for what a rank strategy cannot take: an option of NOT_FOR_RANK, a
    ``direction`` (its sides are ``top_n`` and ``bottom_n``), ``top_n + bottom_n`` of 0 or
    more than the universe of ``n_assets``, a ``vol_window`` longer than ``longest_span``
    bars when ``weighting="inverse_vol"`` is in the grid."""
    given = [name for name in NOT_FOR_RANK if name in params]
    if given:
        raise ValueError(f"{', '.join(given)} do(es) not apply to the rank strategy "
                         f"{strategy.name!r}: it sizes each holding by its target weight "
                         "(weighting=, position_limit=) and holds top_n + bottom_n assets; "
                         "its risk rules are stop_loss, take_profit, trailing_stop and "
                         "max_bars")
    if direction != "long":
        raise ValueError(f"direction={direction!r} does not apply to the rank strategy "
                         f"{strategy.name!r}: it goes long with top_n and short with "
                         "bottom_n")
    top = np.atleast_1d(grid.values["top_n"])
    bottom = np.atleast_1d(grid.values["bottom_n"])
    held = top[:, None] + bottom[None, :]
    if held.min() < 1:
        raise ValueError("top_n + bottom_n must be at least 1 (top_n=0 with bottom_n=0 "
                         "holds nothing)")
    if held.max() > n_assets:
        raise ValueError(f"top_n + bottom_n = {held.max()} is more than the {n_assets} "
                         f"assets of the data; pick at most {n_assets} in all")
    if kernels.Weighting.inverse_vol in np.atleast_1d(grid.values["weighting"]).tolist() \
            and "vol_window" in unbounded_windows(strategy):
        for w in np.atleast_1d(grid.values["vol_window"]).tolist():
            check_window("vol_window", w, " (inverse_vol weighting)", longest_span)


def _stamps(bundle, bars):
    """The time stamps of ``bars`` as an Arrow UTC timestamp array."""
    ts = bundle.timestamps[np.minimum(bars, bundle.n_bars - 1)].astype(np.int64)
    return pa.array(ts).cast(pa.timestamp("ns", tz="UTC"))


def _rebalance_rows(result, name):
    """A recorded portfolio's kernels.Holdings; AttributeError when it has none."""
    if result.rebalance_rows is None:
        raise AttributeError(f"{name} belongs to rank strategies; {result.strategy!r} "
                             "does not rebalance")
    return result.bundle, result.rebalance_rows


def rebalances_table(result, next_open):
    """One row per rebalance of a recorded rank backtest that took place: ``rebalance``
    (the bar whose close set the targets), ``fill`` (the bar they traded at: the next one
    with ``next_open``), ``n_long``, ``n_short`` and ``turnover`` (traded notional /
    equity; 0 when nothing traded, as when the equity was <= 0)."""
    bundle, holdings = _rebalance_rows(result, "rebalances")
    w = holdings.weights
    return pa.table({"rebalance": _stamps(bundle, holdings.bar),
                     "fill": _stamps(bundle, holdings.bar + int(next_open)),
                     "n_long": pa.array((w > 0.0).sum(axis=1)),
                     "n_short": pa.array((w < 0.0).sum(axis=1)),
                     "turnover": pa.array(holdings.turnover)})


def holdings_table(result):
    """One row per rebalance of a recorded rank backtest and chosen asset: ``rebalance``
    (its bar's time stamp), ``symbol`` and ``weight`` (the signed target, a fraction of
    equity)."""
    bundle, holdings = _rebalance_rows(result, "holdings")
    row, asset = np.nonzero(holdings.weights)
    symbols = pa.array(list(bundle.symbols), pa.string())
    return pa.table({"rebalance": _stamps(bundle, holdings.bar[row]),
                     "symbol": symbols.take(pa.array(asset, pa.int64())),
                     "weight": pa.array(holdings.weights[row, asset])})


def check_settings(strategy, given, bundle):
    """A rank strategy's keyword settings (``Strategy.settings``) checked against the
    data: ``factor_rank`` needs ``factor``, one of ``bundle.factors``, and takes
    ``ascending`` (True or False, default False)."""
    if not strategy.settings:
        return {}
    names = list(bundle.factors)
    factor = given.get("factor")
    if factor is None:
        raise ValueError(f"{strategy.name} needs factor=, the name of a factor column of the "
                         f"data ({', '.join(names) if names else 'it has none: load it with '}"
                         f"{'' if names else 'sb.load(..., factors=[...])'})")
    if not isinstance(factor, str) or factor not in names:
        raise ValueError(f"factor={factor!r} is not a factor column of the data; its factors: "
                         f"{', '.join(names) if names else 'none (load with factors=[...])'}")
    ascending = given.get("ascending", False)
    if not isinstance(ascending, (bool, np.bool_)):
        raise TypeError(f"ascending must be True or False (not swept), got {ascending!r}")
    return {"factor": factor, "ascending": bool(ascending)}

