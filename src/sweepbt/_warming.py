"""``sb.warmup()`` and ``sweepbt warmup``: compile every kernel ahead of time.

numba compiles each kernel on its first call in a machine and keeps the machine code in its
disk cache; a first run on a cold cache therefore spends minutes compiling. ``warmup``
runs tiny real backtests of every built-in strategy in every mode the engine has (per
asset, ``portfolio=True``, rank-and-rebalance), each a one-combo sweep, one re-run equity
path and one recorded backtest, so every kernel specialization the engine uses is compiled
and cached: for images and CI (run it once with ``NUMBA_CACHE_DIR`` set). Settings (fill,
direction, sizing, windows) are runtime values of one compiled kernel, so they need no
separate runs. User-written strategies compile on their first use (docs/custom-strategies.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from sweepbt._compiling import watch
from sweepbt.data import Bundle
from sweepbt._engine import sweep
from sweepbt._engines import ENGINES, engine_for
from sweepbt.strategies.builtin import STRATEGIES

#: the built-in strategies warmed, with what their default parameters need besides
BUILT_IN = {
    "sma_cross": {}, "ema_cross": {}, "rsi_reversion": {}, "bollinger_reversion": {},
    "bollinger_breakout": {}, "donchian_breakout": {}, "macd_cross": {}, "momentum": {},
    "momentum_rank": {"rebalance": 21}, "reversal_rank": {"rebalance": 21},
    "factor_rank": {"factor": "value", "rebalance": 21},
    "low_volatility_rank": {"rebalance": 21},
}
#: assets and bars of the data warmed on (the rank strategies' default top_n is 10 assets,
#: momentum_rank's lookback 252 bars)
N_ASSETS, N_BARS = 10, 400
_KERNELS = "sweepbt.kernels."
#: the engine modes: ``sb.warmup(mode=...)``
MODES = tuple(ENGINES)


def modes_of(mode):
    """``mode`` (None: every mode; a mode's name; a sequence of them) as a tuple of names
    of :data:`MODES`, in their order; a clear error for an unknown one."""
    names = tuple(MODES) if mode is None else (mode,) if isinstance(mode, str) else tuple(mode)
    unknown = [m for m in names if m not in MODES]
    if unknown or not names:
        raise ValueError(f"mode must be one or more of {', '.join(MODES)} (or None: all), "
                         f"got {mode!r}")
    return tuple(m for m in MODES if m in names)


def kernels_of_modes(modes):
    """The big kernels a warm-up of ``modes`` compiles (the record kernels reuse the
    equity paths' loops)."""
    return tuple(k for m in modes for k in ENGINES[m].kernel_names(("metrics", "equity")))


@dataclass(frozen=True)
class Warmup:
    """What :func:`warmup` did: ``seconds`` in all, ``compile_seconds`` of them compiling,
    ``compiled`` the names of the sweepbt kernels and helpers compiled (empty when
    everything was cached already) and ``runs`` the strategy (and mode) of each run."""

    seconds: float
    compile_seconds: float
    compiled: tuple
    runs: tuple

    def __str__(self):
        if not self.compiled:
            return (f"every kernel was already compiled or cached: {len(self.runs)} warm-up "
                    f"runs in {self.seconds:.1f} s")
        public = {n for n in self.compiled if not n.rpartition(".")[2].startswith("_")}
        return (f"compiled {len(self.compiled)} functions ({len(public)} kernels and their "
                f"helpers) in {self.compile_seconds:.1f} s; {len(self.runs)} warm-up runs in "
                f"{self.seconds:.1f} s")


def warmup_data():
    """The small seeded Bundle the warm-up runs on, with a factor column ``value``."""
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, (N_ASSETS, N_BARS)), axis=1))
    spread = 1 + np.abs(rng.normal(0, 0.005, close.shape))
    return Bundle.from_arrays(close, close * spread, close / spread, close,
                              factors={"value": rng.normal(size=close.shape)})


def warmup(announce=None, mode=None) -> Warmup:
    """Compile (or load from numba's cache) every kernel of every built-in strategy in
    every mode: per asset, ``portfolio=True`` and rank, each with a recorded backtest and
    an equity path. Returns a :class:`Warmup` (seconds, compile seconds, what compiled).

    ``mode`` warms only what some modes need: ``"asset"``, ``"portfolio"``, ``"rank"`` or
    a sequence of them (default None: all three). ``announce``, when given, is called with
    each run's label (``"sma_cross (portfolio)"``) before it runs. A cold cache takes
    minutes (docs/performance.md); a warm one about a second.
    """
    modes = modes_of(mode)
    t0 = time.perf_counter()
    data = warmup_data()
    runs = []
    with watch(kernels_of_modes(modes)) as compiling:
        for name, extra in BUILT_IN.items():
            rank = STRATEGIES[name].is_rank
            for portfolio in (False,) if rank else (False, True):
                if engine_for(rank, portfolio).name not in modes:
                    continue
                label = name + (" (portfolio)" if portfolio else "")
                if announce is not None:
                    announce(label)
                _run(data, name, extra, portfolio)
                runs.append(label)
    return Warmup(seconds=time.perf_counter() - t0, compile_seconds=compiling.seconds,
                  compiled=tuple(n[len(_KERNELS):] for n in compiling.compiled
                                 if n.startswith(_KERNELS)), runs=tuple(runs))


def _run(data, name, extra, portfolio):
    """One one-combo sweep (default parameters), its equity path and its backtest."""
    options = {"portfolio": True} if portfolio else {}
    result = sweep(data, name, progress=False, **options, **extra)
    combo = int(result.combos[0])
    result.equity([combo])
    result.backtest(combo)
