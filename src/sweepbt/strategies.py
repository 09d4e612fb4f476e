"""Strategy registry: each strategy declares its parameters and builds its feature cache.

A strategy turns a Bundle and the per-combo values of its parameters into sparse signal
events (see :mod:`sweepbt.kernels.signals`): each distinct indicator parameter is computed
once per asset (the indicator stage), then each distinct signal once per asset, and every
combo points at its signal's events. Adding a strategy is one indicator kernel plus one
``register`` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from sweepbt import kernels


@dataclass(frozen=True)
class Param:
    """A strategy parameter: ``kind`` is ``"window"`` (integer bars >= 1) or ``"float"``."""

    name: str
    kind: str
    default: object
    doc: str


@dataclass(frozen=True)
class Strategy:
    """A registered strategy.

    ``build(bundle, values)`` gets each parameter's axis values (``values[name]``, an
    array) and returns :class:`Signals` with one signal per combination of them, in C order
    over ``params`` (the last parameter varies fastest).
    """

    name: str
    params: tuple
    build: Callable
    doc: str

    @property
    def param_names(self):
        return tuple(p.name for p in self.params)


@dataclass(frozen=True)
class Signals:
    """Signal events in CSR form: signal ``s`` on asset ``a`` is row ``s * n_assets + a``."""

    ptr: np.ndarray
    event_bar: np.ndarray
    event_sign: np.ndarray

    def of(self, signal, asset, n_assets):
        """(event_bar, event_sign) of one signal on one asset."""
        row = signal * n_assets + asset
        lo, hi = self.ptr[row], self.ptr[row + 1]
        return self.event_bar[lo:hi], self.event_sign[lo:hi]


STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add ``strategy`` to the registry under its name."""
    STRATEGIES[strategy.name] = strategy
    return strategy


def get_strategy(name) -> Strategy:
    """The registered strategy called ``name``; ValueError listing the known ones otherwise."""
    if isinstance(name, Strategy):
        return name
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown strategy {name!r}; known strategies: {known}") from None


def _window_bank(bundle, windows, compute_bank):
    """Compute ``compute_bank`` once per distinct window: (bank, index of each window)."""
    distinct = np.unique(windows).astype(np.int64)
    bank = np.empty((bundle.n_assets, distinct.size, bundle.n_bars))
    compute_bank(bundle.close, bundle.start, bundle.end, distinct, bank)
    return bank, np.searchsorted(distinct, windows).astype(np.int64)


def _cross_signals(bundle, bank, a_rows, b_rows):
    """Events of feature row ``a_rows[s]`` crossing ``b_rows[s]`` for every signal ``s``."""
    ptr, event_bar, event_sign = kernels.cross_events(
        bank, bundle.start, bundle.end, a_rows, b_rows)
    return Signals(ptr, event_bar, event_sign)


def _build_sma_cross(bundle, values):
    fast, slow = values["fast"], values["slow"]
    bank, rows = _window_bank(bundle, np.concatenate([fast, slow]), kernels.sma_bank)
    fast_rows, slow_rows = np.meshgrid(rows[:fast.size], rows[fast.size:], indexing="ij")
    return _cross_signals(bundle, bank, fast_rows.ravel(), slow_rows.ravel())


register(Strategy(
    name="sma_cross",
    params=(
        Param("fast", "window", 10, "fast simple moving average window, bars"),
        Param("slow", "window", 50, "slow simple moving average window, bars"),
    ),
    build=_build_sma_cross,
    doc="Bullish when SMA(fast) of close crosses above SMA(slow); bearish when it crosses below.",
))
