"""The sweepable per-combo options: the risk rules and the costs (docs/semantics.md).

Each :class:`Option` is one column of the kernels' rule matrix (``kernels.RULE_COLUMNS``,
by name): its default, its bounds and its one-line doc, from which the CLI builds its flag
and ``sweepbt strategies`` its table. :func:`check_costs` refuses cost values that cannot
work together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Option:
    """A sweepable risk/cost option: bounds are (low, high, low_open, high_open)."""

    name: str
    default: object
    kind: str  # "float" or "int"
    bounds: tuple
    allow_none: bool
    doc: str


OPTIONS = {o.name: o for o in (
    Option("stop_loss", None, "float", (0.0, 1.0, True, True), True,
           "stop at entry_price*(1-s) for a long, fraction"),
    Option("take_profit", None, "float", (0.0, math.inf, True, True), True,
           "take profit at entry_price*(1+t) for a long, fraction"),
    Option("trailing_stop", None, "float", (0.0, 1.0, True, True), True,
           "stop at peak*(1-r) for a long, fraction"),
    Option("stop_atr", None, "float", (0.0, math.inf, True, True), True,
           "stop at entry_price - m*ATR for a long, ATR(atr_window) at the signal bar"),
    Option("take_atr", None, "float", (0.0, math.inf, True, True), True,
           "take profit at entry_price + m*ATR for a long"),
    Option("trailing_atr", None, "float", (0.0, math.inf, True, True), True,
           "stop at peak - m*ATR for a long, ATR fixed at entry"),
    Option("atr_window", 14, "int", (1, math.inf, False, True), False,
           "Wilder ATR window for the *_atr rules, bars"),
    Option("max_bars", None, "int", (1, 2 ** 53, False, False), True,
           "exit at the close of bar entry_bar+n"),
    Option("fees", 0.0, "float", (0.0, 1.0, False, True), False,
           "fraction of traded notional, each fill"),
    Option("fixed_fees", 0.0, "float", (0.0, math.inf, False, True), False,
           "cash per fill"),
    Option("slippage", 0.0, "float", (0.0, 1.0, False, True), False,
           "fraction of price, against the trader"),
    Option("size", 1.0, "float", (0.0, math.inf, True, True), False,
           "per entry: a fraction of equity in (0, 1], or with portfolio size_type='value' "
           "a cash amount"),
    Option("max_positions", None, "int", (1, 2 ** 53, False, False), True,
           "portfolio: open positions at most"),
    Option("tax", 0.0, "float", (0.0, 1.0, False, True), False,
           "fraction of every sale's notional (closing a long, opening or adding to a short)"),
    Option("fees_per_share", 0.0, "float", (0.0, math.inf, False, True), False,
           "cash per unit traded, each fill"),
    Option("min_fees", 0.0, "float", (0.0, math.inf, False, True), False,
           "the commission's minimum per fill, cash (0: none)"),
    Option("max_fees", 0.0, "float", (0.0, 1.0, False, True), False,
           "the commission's cap per fill, fraction of its notional (0: none)"),
    Option("lot_size", 0.0, "float", (0.0, math.inf, False, True), False,
           "units trade in whole multiples of it (0: fractional, 1: whole shares)"),
)}


def check_costs(values, init_cash):
    """ValueError for costs that cannot work together in any combo of a grid (``values``:
    option name -> its axis values, as ``Grid.values``): ``fees + tax >= 1`` (a sale would
    pay to sell), and a ``min_fees`` that no order up to ``init_cash`` reaches under a
    ``max_fees`` cap (the cap applies after the minimum, so that minimum never holds)."""

    def axis(name):
        return np.atleast_1d(values.get(name, OPTIONS[name].default)).astype(float)

    fees, tax = float(axis("fees").max()), float(axis("tax").max())
    if fees + tax >= 1.0:
        raise ValueError(f"fees + tax must be < 1 (a sale pays fees and tax on its "
                         f"notional), but the grid holds fees={fees:g} with tax={tax:g}")
    low_cap = axis("max_fees")
    low_cap = low_cap[low_cap > 0.0]
    high_min = float(axis("min_fees").max())
    if low_cap.size and high_min > low_cap.min() * init_cash:
        cap = float(low_cap.min())
        raise ValueError(
            f"min_fees={high_min:g} can never apply with max_fees={cap:g}: the cap of "
            f"{cap:g} x the order's value is below min_fees for every order up to "
            f"init_cash={init_cash:g} (only orders of at least {high_min / cap:,.0f} would "
            "pay it); lower min_fees, raise max_fees or drop one of them")
