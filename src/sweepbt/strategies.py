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
    array), runs the indicator stage, and returns a signal source whose
    ``events(lo, hi)`` gives :class:`Signals` for signals ``lo..hi-1``; signal ``s`` is
    combination ``s`` of the parameter values in C order over ``params`` (the last
    parameter varies fastest).
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
    event_code: np.ndarray

    def of(self, signal, asset, n_assets):
        """(event_bar, event_code) of one signal on one asset."""
        row = signal * n_assets + asset
        lo, hi = self.ptr[row], self.ptr[row + 1]
        return self.event_bar[lo:hi], self.event_code[lo:hi]


@dataclass
class CrossSignals:
    """Signals "feature row A crosses feature row B", computed on demand by signal range.

    ``bank`` is the indicator cache ``(n_assets, n_features, n_bars)`` (the indicator
    stage, done once); signal ``s`` compares rows ``a_rows[s]`` and ``b_rows[s]``. A sweep
    asks for the signals of one chunk of combos at a time, so the events in memory never
    grow with the grid; the last range is kept, since consecutive chunks often share it.
    """

    bundle: object
    bank: np.ndarray
    a_rows: np.ndarray
    b_rows: np.ndarray
    _last: tuple = None

    def events(self, lo, hi) -> Signals:
        """Events of signals ``lo <= s < hi``, as rows ``(s - lo) * n_assets + a``."""
        if self._last is not None and self._last[0] == (lo, hi):
            return self._last[1]
        signals = Signals(*kernels.cross_events(
            self.bank, self.bundle.start, self.bundle.end, self.a_rows[lo:hi],
            self.b_rows[lo:hi]))
        self._last = ((lo, hi), signals)
        return signals


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


def _build_sma_cross(bundle, values):
    fast, slow = values["fast"], values["slow"]
    bank, rows = _window_bank(bundle, np.concatenate([fast, slow]), kernels.sma_bank)
    fast_rows, slow_rows = np.meshgrid(rows[:fast.size], rows[fast.size:], indexing="ij")
    return CrossSignals(bundle, bank, fast_rows.ravel(), slow_rows.ravel())


register(Strategy(
    name="sma_cross",
    params=(
        Param("fast", "window", 10, "fast simple moving average window, bars"),
        Param("slow", "window", 50, "slow simple moving average window, bars"),
    ),
    build=_build_sma_cross,
    doc="Bullish when SMA(fast) of close crosses above SMA(slow); bearish when it crosses below.",
))
