"""One case per built-in strategy: the tests that cover every built-in read this table, so
a new built-in strategy is one entry here (test_strategies.py checks that the table covers
exactly the built-ins of ``sb.STRATEGIES``).

A case holds:

* ``params``: a small valid parameter set, windows of at most 5 bars (short test data);
* ``grid``: a small grid, every combination valid (signal events combo by combo);
* ``sweep_grid``: a small grid for sweeps, with ``constraint`` where some combos are
  invalid;
* ``draw(rng)``: random valid parameters with small windows;
* ``signals(o, h, l, c, params)``: the per-bar codes of the pure-Python reference
  (tests/reference.py), from lists of floats; :meth:`Case.reference_signals` takes arrays;
* ``vectorbt``: parameters for the whole-backtest comparison with vectorbt's
  ``Portfolio.from_signals`` (test_vectorbt.py) where the signals are plain crossings
  (BUY/SELL codes only: vectorbt's entries and exits); None where there is no such
  equivalent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import reference as ref


@dataclass(frozen=True, kw_only=True)
class Case:
    name: str
    params: dict
    grid: dict
    sweep_grid: dict
    constraint: str | None = None
    draw: Callable
    signals: Callable
    vectorbt: dict | None = None

    def reference_signals(self, o, h, l, c, params):
        """Per-bar signal codes from the pure-Python reference, for price arrays."""
        o, h, l, c = (list(map(float, x)) for x in (o, h, l, c))
        return self.signals(o, h, l, c, params)


def _draw_cross(rng):
    fast = int(rng.integers(1, 10))
    return dict(fast=fast, slow=int(rng.integers(fast + 1, fast + 20)))


def _draw_rsi(rng):
    lower = float(rng.uniform(20.0, 50.0))
    return dict(rsi_window=int(rng.integers(1, 20)), lower=lower,
                upper=float(rng.uniform(lower + 1.0, 80.0)))


def _draw_bollinger(rng):
    return dict(bb_window=int(rng.integers(2, 25)), k=float(rng.uniform(0.3, 2.5)))


def _draw_donchian(rng):
    return dict(entry_window=int(rng.integers(1, 25)), exit_window=int(rng.integers(1, 25)))


def _draw_macd(rng):
    fast = int(rng.integers(1, 8))
    return dict(fast=fast, slow=int(rng.integers(fast + 1, fast + 15)),
                signal=int(rng.integers(1, 10)))


def _draw_momentum(rng):
    threshold = 0.0 if rng.random() < 0.3 else float(rng.uniform(0.0, 0.05))
    return dict(lookback=int(rng.integers(1, 25)), threshold=threshold)


_CROSS_GRID = dict(fast=[2, 5], slow=[4, 9, 13])
_CROSS_SWEEP = dict(fast=[3, 5], slow=[10, 20])
_BOLLINGER_GRID = dict(bb_window=[2, 10, 20], k=[0.5, 1.5])
_BOLLINGER_SWEEP = dict(bb_window=[5, 20], k=[1.0, 2.0])

CASES = {c.name: c for c in (
    Case(name="sma_cross", params=dict(fast=2, slow=5), grid=_CROSS_GRID,
         sweep_grid=_CROSS_SWEEP, draw=_draw_cross,
         signals=lambda o, h, l, c, p: ref.cross_codes(ref.sma(c, p["fast"]),
                                                       ref.sma(c, p["slow"])),
         vectorbt=dict(fast=5, slow=20)),
    Case(name="ema_cross", params=dict(fast=3, slow=5), grid=_CROSS_GRID,
         sweep_grid=_CROSS_SWEEP, draw=_draw_cross,
         signals=lambda o, h, l, c, p: ref.ema_cross_signals(c, p["fast"], p["slow"]),
         vectorbt=dict(fast=5, slow=20)),
    Case(name="rsi_reversion", params=dict(rsi_window=5, lower=30.0, upper=70.0),
         grid=dict(rsi_window=[3, 14], lower=[25.0, 40.0], upper=[55.0, 70.0]),
         sweep_grid=dict(rsi_window=[5, 14], lower=[30, 45], upper=[40, 70]),
         constraint="lower < upper", draw=_draw_rsi,
         signals=lambda o, h, l, c, p: ref.rsi_reversion_signals(
             c, p["rsi_window"], p["lower"], p["upper"])),
    Case(name="bollinger_reversion", params=dict(bb_window=4, k=1.0), grid=_BOLLINGER_GRID,
         sweep_grid=_BOLLINGER_SWEEP, draw=_draw_bollinger,
         signals=lambda o, h, l, c, p: ref.bollinger_reversion_signals(
             c, p["bb_window"], p["k"])),
    Case(name="bollinger_breakout", params=dict(bb_window=4, k=1.0), grid=_BOLLINGER_GRID,
         sweep_grid=_BOLLINGER_SWEEP, draw=_draw_bollinger,
         signals=lambda o, h, l, c, p: ref.bollinger_breakout_signals(
             c, p["bb_window"], p["k"])),
    Case(name="donchian_breakout", params=dict(entry_window=5, exit_window=3),
         grid=dict(entry_window=[1, 5, 20], exit_window=[3, 10]),
         sweep_grid=dict(entry_window=[5, 20], exit_window=[3, 10]), draw=_draw_donchian,
         signals=lambda o, h, l, c, p: ref.donchian_breakout_signals(
             h, l, c, p["entry_window"], p["exit_window"])),
    Case(name="macd_cross", params=dict(fast=2, slow=4, signal=3),
         grid=dict(fast=[2, 4], slow=[6, 12], signal=[1, 3, 9]),
         sweep_grid=dict(fast=[3, 12], slow=[8, 26], signal=[3, 9]),
         constraint="fast < slow", draw=_draw_macd,
         signals=lambda o, h, l, c, p: ref.macd_cross_signals(
             c, p["fast"], p["slow"], p["signal"]),
         vectorbt=dict(fast=5, slow=20, signal=9)),
    Case(name="momentum", params=dict(lookback=3, threshold=0.0),
         grid=dict(lookback=[1, 5, 20], threshold=[0.0, 0.02]),
         sweep_grid=dict(lookback=[5, 20], threshold=[0.0, 0.03]), draw=_draw_momentum,
         signals=lambda o, h, l, c, p: ref.momentum_signals(c, p["lookback"],
                                                            p["threshold"])),
)}
