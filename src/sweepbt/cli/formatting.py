"""How the command line shows values: table cells, rates, dates, the data summary line."""

from __future__ import annotations

import math
import os
import textwrap

import numpy as np

from sweepbt._format import COUNT_METRICS
from sweepbt._table import TABLE_WIDTH, fit_columns, render_table


def human_rate(x):
    """``1234567.0`` -> ``"1.2M"``; ``"n/a"`` when not finite."""
    if not math.isfinite(x):
        return "n/a"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:,.1f}{unit}"
    return f"{x:,.0f}"


def data_line(bundle, source):
    """``data: SOURCE: N asset(s) x M bars, FIRST .. LAST``."""
    span = np.datetime_as_string(bundle.timestamps[[0, -1]], unit="D")
    return (f"data: {source}: {bundle.n_assets} asset(s) x {bundle.n_bars:,} bars, "
            f"{span[0]} .. {span[1]}")


def indent(text, pad="  "):
    """Every line of ``text`` indented by ``pad``."""
    return "\n".join(pad + line for line in text.splitlines())


#: metrics given per year: their headers say so (``sharpe/yr``)
ANNUALIZED = frozenset({"sharpe", "sortino", "volatility"})


def table_width(out):
    """The characters a default table may take: :data:`TABLE_WIDTH`, or fewer where the
    ``COLUMNS`` variable or the terminal that ``out`` writes to is narrower."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(out.fileno()).columns if out.isatty() else 0
        except (AttributeError, OSError, ValueError):  # not a file, or not a terminal
            columns = 0
    return min(TABLE_WIDTH, columns) if columns > 0 else TABLE_WIDTH


def metric_header(name, mean=False):
    """A metric's column header: ``sharpe/yr`` for an annualized metric, ``mean n_trades``
    for a count that is a mean over assets (``mean``), else the name itself."""
    if name in ANNUALIZED:
        return f"{name}/yr"
    return f"mean {name}" if mean and name in COUNT_METRICS else name


def wrapped(text, out):
    """``text`` as lines that fit :func:`table_width` of ``out``."""
    return "\n".join(textwrap.wrap(text, table_width(out), break_on_hyphens=False))


def fitted_table(header, rows, out, droppable, names, left=(),
                 hint="--columns picks them"):
    """The table of ``header`` and ``rows`` fitted to :func:`table_width` of ``out``
    (:func:`fit_columns`), and a note naming the columns left out ('' when none were):
    ``names`` are the columns' names for it, ``hint`` how to see them."""
    width = table_width(out)
    kept, dropped = fit_columns(header, rows, width, droppable)
    table = render_table([header[j] for j in kept], [[r[j] for j in kept] for r in rows],
                         left=left)
    note = wrapped(f"(left out to fit {width} characters: "
                   f"{', '.join(names[j] for j in dropped)}; {hint})",
                   out) if dropped else ""
    return table, note
