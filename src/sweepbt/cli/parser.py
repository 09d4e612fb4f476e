"""The argument parser of the ``sweepbt`` command (the run flags come from sweepbt.cli.flags)."""

from __future__ import annotations

import argparse

from sweepbt import __version__
from sweepbt.cli.common import DEFAULT_CONSTRAINT, DEFAULT_GRID
from sweepbt.cli.flags import add_run_flags


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line: ``sweepbt: error: ...`` (status 2)."""

    def error(self, message):
        hint = f" (see '{self.prog} --help')"
        self.exit(2, f"sweepbt: error: {message}{hint}\n")


def _add_data_flags(p):
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--demo", action="store_true",
                     help="use the packaged demo data (sweepbt.demo())")
    src.add_argument("--data", metavar="FILE",
                     help="price data: .parquet, .feather/.arrow or .csv (see docs/data.md)")
    p.add_argument("--symbols", metavar="A,B,...",
                   help="only these assets (for single-asset files: the asset's name)")
    p.add_argument("--gaps", choices=("error", "ffill"), default="error",
                   help="a bar missing inside an asset's span: error (default) or ffill "
                        "(a flat bar at the previous close)")
    p.add_argument("--timestamp-column", metavar="NAME",
                   help="name of the time stamp column (default: timestamp/datetime/date/time)")


def _add_force_flag(p, flag):
    p.add_argument("--report", metavar="FILE.html",
                   help="write a self-contained HTML report with charts to a new file "
                        "(needs matplotlib: pip install 'sweepbt[report]')")
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
                           "path is always refused, --force or not")
    _add_force_flag(sw, "--out")
    sw.add_argument("--no-progress", action="store_true",
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
    wf.add_argument("--out", metavar="FILE.parquet",
                    help="write the window table to a new Parquet file (an existing file is "
                         "refused unless --force)")
    _add_force_flag(wf, "--out")


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
               "  sweepbt strategies",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sweepbt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    _add_sweep(sub)
    _add_backtest(sub)
    _add_walk_forward(sub)
    sub.add_parser("strategies", help="list the registered strategies and their parameters",
                   description="List the registered strategies, their parameters and the "
                               "risk/cost options every strategy takes.")
    return parser
