"""Per-bar series shared by results, statistics and walk-forward: returns from equity."""

from __future__ import annotations

import numpy as np


def returns_from_equity(equity, init_cash):
    """Per-bar returns ``r_i = equity_i / equity_(i-1) - 1`` along the last axis.

    ``equity`` is NaN outside a backtest's span; the first bar of a span is measured
    against ``init_cash``. After ruin (a previous equity ``<= 0``, docs/semantics.md) the
    account no longer moves and the return is 0, never a division by zero or a sign flip.
    """
    equity = np.asarray(equity, dtype=np.float64)
    previous = np.empty_like(equity)
    previous[..., 0] = np.nan
    previous[..., 1:] = equity[..., :-1]
    previous[np.isnan(previous) & ~np.isnan(equity)] = init_cash
    out = np.full(equity.shape, np.nan)
    live = previous > 0.0
    np.divide(equity, previous, out=out, where=live)
    out[live] -= 1.0
    out[~live & ~np.isnan(equity)] = 0.0
    return out
