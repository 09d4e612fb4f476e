"""sweepbt: Numba-accelerated vectorized backtesting for large parameter sweeps.

The shell (this package) validates input and orchestrates; the compiled kernels live in
:mod:`sweepbt.kernels` and only compute.
"""

from sweepbt.bundle import Bundle, demo, load
from sweepbt.engine import SweepEstimate, SweepTooLarge, backtest, estimate, sweep
from sweepbt.results import BacktestResult, SweepResult
from sweepbt.strategies import STRATEGIES

__all__ = [
    "Bundle",
    "BacktestResult",
    "STRATEGIES",
    "SweepEstimate",
    "SweepResult",
    "SweepTooLarge",
    "backtest",
    "demo",
    "estimate",
    "load",
    "sweep",
]
__version__ = "0.1.0"
