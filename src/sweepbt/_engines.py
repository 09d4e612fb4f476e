"""The engine table: one record per simulation engine (per asset, portfolio, rank).

An :class:`Engine` names its three kernels (metrics, record, equity paths), builds their
keyword arguments, records a full backtest, says how many result rows a combo gives and
which metrics they have, and names the kind of result a backtest returns (``results``
maps the kind to its class). :func:`engine_for` is the one place that picks an engine;
a ``Plan`` holds the one it runs and nothing else chooses between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from sweepbt import kernels
from sweepbt._vocabulary import METRIC_NAMES

#: the ``symbol`` of a portfolio backtest's result row
PORTFOLIO_SYMBOL = "portfolio"


def _rule_matrix(columns):
    """The per-combo risk and cost rules as the kernels take them: float64
    ``(n_combos, N_RULES)``, C order, column j the grid column ``kernels.RULE_COLUMNS[j]``
    (``max_bars`` as a float: exact, as params caps it at 2**53)."""
    return np.ascontiguousarray(
        np.column_stack([columns[n] for n in kernels.RULE_COLUMNS]), dtype=np.float64)


def signal_inputs(common, source, atr, columns, signal_idx):
    """The per-asset and portfolio kernels' arguments: ``common`` (market, settings),
    the signal events of the combos' rows ``signal_idx`` of ``source``, the ATR bank."""
    first = int(signal_idx.min())
    signals = source.events(first, int(signal_idx.max()) + 1)
    return {**common,
            "events": kernels.Events(ptr=signals.ptr, bar=signals.event_bar,
                                     code=signals.event_code),
            "atr_bank": atr.bank,
            "combos": kernels.Combos(signal_idx=signal_idx - first,
                                     atr_idx=atr.index(columns["atr_window"]),
                                     rules=_rule_matrix(columns))}


def rank_inputs(common, source, atr, columns, signal_idx):
    """The rank kernels' arguments: ``common``, the scores and the combos' schedules."""
    return {**common, "scores": source.scores,
            "combos": kernels.RankCombos(rules=_rule_matrix(columns),
                                         **source.combos(columns))}


def record_assets(inputs, metrics, bundle, settings, n_trades):
    """``backtest_record`` of combo 0 on each asset: (equity, cash, units, trades, None);
    per-bar arrays ``(n_assets, n_bars)`` NaN outside each span, a trades array each."""
    equity, cash, units = (np.full((bundle.n_assets, bundle.n_bars), np.nan)
                           for _ in range(3))
    trades = []
    for a in range(bundle.n_assets):  # pair a: the one combo on asset a
        rows = np.empty(int(n_trades[a]), kernels.TRADE_DTYPE)
        kernels.backtest_record(**inputs, pair=a, out=kernels.Outputs(
            metrics=metrics[a], equity=equity[a], cash=cash[a], units=units[a],
            trades=rows))
        trades.append(rows)
    return equity, cash, units, trades, None


def _book_outputs(metrics, bundle, settings, n_trades):
    """A portfolio record's kernels.Outputs, per-bar arrays NaN outside its span."""
    (start,), (end,) = settings.row_spans()
    equity, cash = (np.full(bundle.n_bars, np.nan) for _ in range(2))
    units = np.full((bundle.n_assets, bundle.n_bars), np.nan)
    if end > start:
        units[:, start:end] = 0.0
    return kernels.Outputs(metrics=metrics[0], equity=equity, cash=cash, units=units,
                           trades=np.empty(int(n_trades[0]), kernels.TRADE_DTYPE))


def record_portfolio(inputs, metrics, bundle, settings, n_trades):
    """``portfolio_record`` of combo 0: (equity, cash, units, trades, None)."""
    out = _book_outputs(metrics, bundle, settings, n_trades)
    kernels.portfolio_record(**inputs, combo=0, out=out)
    return out.equity, out.cash, out.units, out.trades, None


def record_rank(inputs, metrics, bundle, settings, n_trades):
    """``rank_record`` of combo 0: (equity, cash, units, trades, rebalances), the
    rebalances a kernels.Holdings of those that took place."""
    out = _book_outputs(metrics, bundle, settings, n_trades)
    n = int(inputs["scores"].rebalance[inputs["combos"].schedule_idx[0]].sum())
    holdings = kernels.Holdings(bar=np.empty(n, np.int64),
                                weights=np.empty((n, bundle.n_assets)), turnover=np.empty(n))
    kernels.rank_record(**inputs, combo=0, out=out, holdings=holdings)
    used = holdings.bar >= 0
    return (out.equity, out.cash, out.units, out.trades,
            kernels.Holdings(*(x[used] for x in holdings)))


@dataclass(frozen=True)
class Engine:
    """One simulation engine. ``metrics``, ``record``, ``equity``: its kernels' names in
    ``sweepbt.kernels``; ``inputs(common, source, atr, columns, signal_idx)`` their
    arguments; ``recorder`` a full backtest of combo 0; ``result`` the kind of result a
    backtest gives (``"backtest"`` or ``"portfolio"``); ``one_book`` whether a combo is
    one backtest over every asset (one result row) rather than one per asset;
    ``metric_names`` its metric columns; ``atr`` whether it reads the ATR bank;
    ``metadata`` the entries it adds to a result's metadata, ``recorded`` the run options
    it adds there."""

    name: str
    metrics: str
    record: str
    equity: str
    inputs: Callable
    recorder: Callable
    result: str
    one_book: bool
    metric_names: tuple
    atr: bool
    metadata: dict = field(hash=False)
    recorded: tuple = ()

    def kernel(self, use):
        """The compiled kernel for ``use`` ("metrics", "record" or "equity")."""
        return getattr(kernels, getattr(self, use))

    def kernel_names(self, uses=("metrics",)):
        """The names of the kernels of ``uses``."""
        return tuple(getattr(self, use) for use in uses)

    def n_rows(self, n_assets):
        """Result rows per combo."""
        return 1 if self.one_book else n_assets

    def row_symbols(self, symbols):
        """The ``symbol`` of each result row of a combo."""
        return (PORTFOLIO_SYMBOL,) if self.one_book else tuple(symbols)


#: every engine, by name (``sb.warmup(mode=...)`` names them too)
ENGINES = {
    "asset": Engine("asset", "sweep_metrics", "backtest_record", "equity_paths",
                    signal_inputs, record_assets, "backtest", False, METRIC_NAMES, True,
                    {}),
    "portfolio": Engine("portfolio", "portfolio_metrics", "portfolio_record",
                        "portfolio_equity_paths", signal_inputs, record_portfolio,
                        "portfolio", True, METRIC_NAMES, True, {"portfolio": True},
                        ("size_type",)),
    "rank": Engine("rank", "rank_metrics", "rank_record", "rank_equity_paths", rank_inputs,
                   record_rank, "portfolio", True, METRIC_NAMES, False,
                   {"portfolio": True, "rank": True}),
}


def engine_for(rank, portfolio):
    """The engine of a run: a rank strategy's, else the portfolio or per-asset one."""
    return ENGINES["rank" if rank else "portfolio" if portfolio else "asset"]
