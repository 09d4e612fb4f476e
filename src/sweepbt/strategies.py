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

    ``build(bundle, values)`` gets the per-combo parameter arrays (``values[name]`` has one
    entry per combo) and returns :class:`Signals`.
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
    """Signal events in CSR form (row ``s * n_assets + a``) and each combo's row ``s``."""

    ptr: np.ndarray
    event_bar: np.ndarray
    event_sign: np.ndarray
    signal_idx: np.ndarray


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


def _window_bank(bundle, windows_per_combo, compute_bank):
    """Compute ``compute_bank`` once per distinct window; return (bank, index per combo)."""
    distinct = np.unique(np.concatenate(windows_per_combo)).astype(np.int64)
    bank = np.empty((bundle.n_assets, distinct.size, bundle.n_bars))
    compute_bank(bundle.close, bundle.start, bundle.end, distinct, bank)
    return bank, [np.searchsorted(distinct, w).astype(np.int64) for w in windows_per_combo]


def _cross_signals(bundle, bank, a_idx, b_idx):
    """Events of feature ``a`` crossing feature ``b``, once per distinct (a, b) pair."""
    n_features = bank.shape[1]
    keys, signal_idx = np.unique(a_idx * n_features + b_idx, return_inverse=True)
    ptr, event_bar, event_sign = kernels.cross_events(
        bank, bundle.start, bundle.end, keys // n_features, keys % n_features)
    return Signals(ptr, event_bar, event_sign, signal_idx.astype(np.int64))


def _build_sma_cross(bundle, values):
    bank, (fast_idx, slow_idx) = _window_bank(
        bundle, [values["fast"], values["slow"]], kernels.sma_bank)
    return _cross_signals(bundle, bank, fast_idx, slow_idx)


register(Strategy(
    name="sma_cross",
    params=(
        Param("fast", "window", 10, "fast simple moving average window, bars"),
        Param("slow", "window", 50, "slow simple moving average window, bars"),
    ),
    build=_build_sma_cross,
    doc="Bullish when SMA(fast) of close crosses above SMA(slow); bearish when it crosses below.",
))
