"""How values are shown as text (terminal tables, HTML tables, reports): one cell at a time.

A leaf module (numpy and the standard library): the CLI, the notebook displays and the
HTML report all format cells here, so a metric reads the same everywhere.
"""

from __future__ import annotations

import math

import numpy as np

PERCENT_METRICS = frozenset({"total_return", "cagr", "volatility", "max_drawdown",
                             "win_rate", "avg_trade", "exposure", "return", "mfe", "mae",
                             "buy_and_hold_return", "best_trade", "worst_trade",
                             "exposure_adjusted_return", "weight"})
RATIO_METRICS = frozenset({"sharpe", "sortino", "calmar", "profit_factor", "skew",
                           "kurtosis", "sqn", "objective", "efficiency", "turnover"})
COUNT_METRICS = frozenset({"n_trades", "n_stop", "n_take", "n_trail", "n_time", "n_signal"})
PRICE_COLUMNS = frozenset({"entry_price", "exit_price", "entry_quote", "exit_quote"})


#: lengths in bars: shown with the unit (``12 bars``)
BAR_COLUMNS = frozenset({"avg_bars_held", "max_drawdown_duration", "avg_drawdown_duration"})


def format_value(name, value):
    """One table cell: percentages for returns/drawdowns, 2 decimals for ratios, '-' for null;
    counts as whole numbers (a mean over assets that is not whole: one decimal); lengths in
    bars with their unit. A value that rounds to zero shows no sign (``0.00``, never
    ``-0.00``). A walk-forward's ``is_``/``oos_`` metric columns read as the metric."""
    return unsigned_zero(_format_cell(name, value))


def unsigned_zero(text):
    """``text`` without its minus sign when it shows a zero (``-0.0%`` -> ``0.0%``)."""
    if text[:2] in ("-0", "-.") and not any(c in "123456789" for c in text):
        return text[1:]
    return text


def _format_cell(name, value):
    for prefix in ("is_", "oos_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, str):
        return value
    if name in PERCENT_METRICS:
        return f"{value * 100:,.2f}%"
    if name in RATIO_METRICS:
        return f"{value:,.2f}"
    if name in COUNT_METRICS:
        return _whole_or_one_decimal(value)
    if name in BAR_COLUMNS:
        return f"{_whole_or_one_decimal(value)} bars"
    if isinstance(value, float):
        return _format_float(name, value)
    return str(value)


def _whole_or_one_decimal(value):
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _format_float(name, value):
    if name in ("pnl", "expectancy"):
        return f"{value:,.2f}"
    if name in PRICE_COLUMNS:
        return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.2f}"
    if name == "units":
        return f"{value:,.4f}"
    return f"{value:g}"


def format_times(ns_values, timestamps):
    """Time stamps as text: ISO dates when every stamp of ``timestamps`` is midnight, else
    minutes."""
    day = np.int64(86_400_000_000_000)
    all_days = bool((timestamps.astype("datetime64[ns]").astype(np.int64) % day == 0).all())
    unit = "D" if all_days else "m"
    return [str(v) for v in np.datetime_as_string(ns_values, unit=unit)]


def format_bytes(n):
    """A size in bytes as ``512 B``, ``1.5 MB``, ``1 GB`` (one decimal, dropped when 0)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{n:.1f}".removesuffix(".0") + f" {unit}"
        n /= 1024
