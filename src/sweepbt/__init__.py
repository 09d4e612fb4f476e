"""sweepbt: Numba-accelerated vectorized backtesting for large parameter sweeps.

The shell (this package) validates input and orchestrates; the compiled kernels live in
:mod:`sweepbt.kernels` and only compute.
"""

# Ctrl-C while the command starts (the imports below: numpy, pyarrow, numba are most of the
# start-up): one line and exit status 130, no traceback (sweepbt/_interrupt.py, standard
# library only, so it loads first and fast).
try:
    from sweepbt import _interrupt

    with _interrupt.CommandStart():
        # First, before anything imports sweepbt.kernels: importing it makes numba's disk cache
        # robust (a read-only cache is used, no writable cache means no disk cache and one warning,
        # entries recorded under another module name load); see sweepbt/_numba_cache.py.
        from sweepbt import _numba_cache  # noqa: F401 - installs itself when imported
        from sweepbt import stats  # noqa: F401 - sb.stats: the overfitting statistics
        from sweepbt import plot  # noqa: F401 - sb.plot: charts (matplotlib when called)
        from sweepbt.data import Bundle, demo, load
        from sweepbt.strategies import (BUY, ENTER_LONG, ENTER_SHORT, EXIT_LONG, EXIT_SHORT,
                                        SELL, STRATEGIES, define_rank_strategy, define_strategy,
                                        load_strategy)
        from sweepbt._engine import SweepEstimate, SweepTooLarge, backtest, estimate, sweep
        from sweepbt.errors import StrategyError, SweepbtError
        from sweepbt._results import BacktestResult, PortfolioResult, SweepResult
        from sweepbt._html_report import report
        from sweepbt._multi import MultiSweepResult
        from sweepbt.walkforward import WalkForwardResult, walk_forward
        from sweepbt._warming import Warmup, warmup
        from sweepbt import _display
        from sweepbt._display import show

        _display.show_tables_in_notebooks()  # in Jupyter: result tables draw as HTML tables
except KeyboardInterrupt:  # landed before CommandStart took over
    from sweepbt._interrupt import start_up_interrupted

    start_up_interrupted()
    raise

__all__ = [
    "BUY",
    "Bundle",
    "BacktestResult",
    "PortfolioResult",
    "ENTER_LONG",
    "ENTER_SHORT",
    "EXIT_LONG",
    "EXIT_SHORT",
    "MultiSweepResult",
    "SELL",
    "STRATEGIES",
    "StrategyError",
    "SweepEstimate",
    "SweepResult",
    "SweepTooLarge",
    "SweepbtError",
    "WalkForwardResult",
    "Warmup",
    "backtest",
    "define_rank_strategy",
    "define_strategy",
    "demo",
    "estimate",
    "load",
    "load_strategy",
    "plot",
    "report",
    "show",
    "sweep",
    "walk_forward",
    "warmup",
]
__version__ = "0.1.0"
