"""How the command line shows values: table cells, rates, dates, the data summary line."""

from __future__ import annotations

import math

import numpy as np


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
