"""The argument parser of the ``sweepbt`` command (the run flags come from sweepbt.cli.flags)."""

from __future__ import annotations

import argparse

from sweepbt import __version__
from sweepbt.cli.common import (ADJUST_CHOICES, DEFAULT_CONSTRAINT, DEFAULT_GRID,
                                LAYOUT_CHOICES, OHLC_CHOICES, TIME_UNIT_CHOICES)
from sweepbt.cli.flags import StoreOnce, add_run_flags


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line: ``sweepbt: error: ...`` (status 2)."""

    def error(self, message):
        hint = f" (see '{self.prog} --help')"
        self.exit(2, f"sweepbt: error: {message}{hint}\n")


def _add_data_flags(p):
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--demo", action="store_true",
                     help="use the packaged demo data (sweepbt.demo())")
    src.add_argument("--data", action=StoreOnce, metavar="FILE",
                     help="price data: .parquet, .feather/.arrow or .csv (see docs/data.md)")
    p.add_argument("--symbols", action=StoreOnce, metavar="A,B,...",
                   help="only these assets (for single-asset files: the asset's name)")
    p.add_argument("--gaps", action=StoreOnce, choices=("error", "ffill"), default="error",
                   help="a bar missing inside an asset's span: error (default) or ffill "
                        "(a flat bar at the previous close)")
    p.add_argument("--timestamp-column", action=StoreOnce, metavar="NAME",
                   help="name of the time stamp column (default: timestamp/datetime/date/time)")
    p.add_argument("--tz", action=StoreOnce, metavar="ZONE",
                   help="the zone of naive time stamps (no offset), e.g. America/New_York or "
                        "+09:00 (default: UTC); zoned time stamps keep their instants")
    p.add_argument("--time-unit", action=StoreOnce, choices=TIME_UNIT_CHOICES,
                   help="the time stamps are epoch numbers in this unit (Binance klines: ms)")
    p.add_argument("--ohlc", action=StoreOnce, choices=OHLC_CHOICES, default="ohlc",
                   help="ohlc (default): open, high, low and close required; close: a close "
                        "only, open, high and low equal it (stops fill at the close)")
    p.add_argument("--adjust", action=StoreOnce, choices=ADJUST_CHOICES,
                   help="adj_close: scale open, high and low by adj_close / close and use "
                        "the adjusted close (Yahoo's 'Adj Close')")
    p.add_argument("--dropna", action="store_true",
                   help="drop rows with a missing price (default: such a row is an error)")
    p.add_argument("--factors", action=StoreOnce, metavar="F1,F2,...",
                   help="numeric columns to load as factors beside the prices (for "
                        "factor_rank; a null or NaN value: not eligible)")
    p.add_argument("--layout", action=StoreOnce, choices=LAYOUT_CHOICES,
                   help="wide: a time stamp column and one close column per ticker; long: a "
                        "row per time stamp and symbol (default: wide when the columns say "
                        "so)")


def _add_workers_flag(p):
    p.add_argument("--workers", type=int, metavar="N",
                   help="run on a local Dask cluster of N worker processes (pip install "
                        "'sweepbt[distributed]'; docs/distributed.md)")


def _add_force_flag(p, flag):
    p.add_argument("--report", metavar="FILE.html",
                   help="write a self-contained HTML report with charts to a new file "
                        "(needs matplotlib)")
    p.add_argument("--force", action="store_true",
                   help=f"replace an existing {flag} or --report file (atomically, once the "
                        "new one is complete); never a directory, and never an input file")


def _add_sweep(sub):
    sw = sub.add_parser(
        "sweep", help="backtest every combination of a parameter grid on every asset",
        description="Backtest every combination of a parameter grid on every asset and "
                    "print the best combinations. Without any grid flag (--param, a "
                    "risk/cost flag or --constraint) the default grid runs: "
                    + " ".join(f"{k}={v}" for k, v in DEFAULT_GRID.items())
                    + f" with constraint '{DEFAULT_CONSTRAINT}'.")
    _add_data_flags(sw)
    add_run_flags(sw, "sweep", grid=True)
    dest = sw.add_mutually_exclusive_group()
    dest.add_argument("--out", metavar="FILE.parquet",
                      help="write every backtest (combo x asset) to a new Parquet file (the "
                           "rows are held in memory first; an existing file is refused "
                           "unless --force)")
    dest.add_argument("--out-dir", metavar="DIR",
                      help="stream every backtest to a new Parquet dataset directory, chunk "
                           "by chunk (bounded memory, for very large grids); an existing "
                           "path is refused, --force or not, unless --resume continues it")
    _add_workers_flag(sw)
    _add_force_flag(sw, "--out")
    _add_progress_flag(sw)


def _add_progress_flag(p):
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is only drawn on a terminal anyway)")


def _add_backtest(sub):
    bt = sub.add_parser(
        "backtest", help="run one parameter combination and show stats and trades",
        description="Run one combination on every asset; print per-asset stats and trades.")
    _add_data_flags(bt)
    add_run_flags(bt, "backtest", grid=False)
    bt.add_argument("--trades", type=int, default=20, metavar="N",
                    help="print the first N trades (default %(default)s; 0 for none)")
    bt.add_argument("--trades-out", metavar="FILE.parquet",
                    help="write all trades to a new Parquet file (an existing file is "
                         "refused unless --force)")
    _add_force_flag(bt, "--trades-out")


def _add_walk_forward(sub):
    wf = sub.add_parser(
        "walk-forward", help="walk-forward optimization: sweep each train span, test the winner",
        description="Walk-forward optimization: for each window, sweep the grid on the "
                    "training span, pick the best combo by --objective (mean over assets), "
                    "and run it on the following test span (indicators warm up before it). "
                    "Prints the window table and the chained out-of-sample metrics "
                    "(docs/walk-forward.md).")
    _add_data_flags(wf)
    add_run_flags(wf, "walk_forward", grid=True)
    _add_workers_flag(wf)
    wf.add_argument("--out", metavar="FILE.parquet",
                    help="write the window table to a new Parquet file (an existing file is "
                         "refused unless --force)")
    wf.add_argument("--out-dir", metavar="DIR",
                    help="keep each finished chunk in a new directory as the walk-forward "
                         "runs, then its window, stats and equity tables; an existing path "
                         "is refused, --force or not, unless --resume continues it")
    _add_force_flag(wf, "--out")
    _add_progress_flag(wf)


def build_parser():
    parser = Parser(
        prog="sweepbt",
        description="Numba-accelerated vectorized backtesting: run parameter sweeps of "
                    "thousands of backtests in one compiled call.",
        epilog="Examples:\n"
               "  sweepbt sweep --demo\n"
               "  sweepbt sweep --data prices.parquet --param fast=5:50:5 "
               "--param slow=20:200:20 \\\n"
               "      --constraint 'fast < slow' --stop-loss 0.02,0.05,none --fees 0.001 "
               "--out results.parquet\n"
               "  sweepbt backtest --demo --param fast=10 --param slow=50 --stop-loss 0.05\n"
               "  sweepbt demo --out prices.parquet\n"
               "  sweepbt warmup\n"
               "  sweepbt strategies",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sweepbt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    _add_sweep(sub)
    _add_backtest(sub)
    _add_walk_forward(sub)
    demo = sub.add_parser(
        "demo", help="write the demo data set to a file, to start from",
        description="Write the packaged demo data (sweepbt.demo(): ten synthetic assets, "
                    "daily bars 2004-2024) to a .parquet or .csv file in long format, e.g. "
                    "'sweepbt demo --out prices.parquet'; every example that reads "
                    "prices.parquet then runs as written.")
    demo.add_argument("--out", metavar="FILE", required=True,
                      help="the file to write: .parquet (recommended) or .csv; an existing "
                           "file is refused unless --force")
    _add_force_flag(demo, "--out")
    sub.add_parser("strategies", help="list the registered strategies and their parameters",
                   description="List the registered strategies, their parameters and the "
                               "risk/cost options every strategy takes.")
    warmup = sub.add_parser(
        "warmup", help="compile every kernel ahead of time (images, CI)",
        description="Compile (or load from numba's disk cache) every kernel of every "
                    "built-in strategy, per asset, portfolio and rank (or only the modes "
                    "--mode names), so later runs start at once. Set NUMBA_CACHE_DIR to "
                    "choose where the compiled code is kept.")
    warmup.add_argument("--mode", choices=("asset", "portfolio", "rank"), action="append",
                        help="warm only this mode's kernels (repeat for several; default: "
                             "all three)")
    return parser
