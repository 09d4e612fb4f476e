"""The ``sweepbt`` command line: ``sweep``, ``backtest`` and ``strategies``.

``sweepbt sweep --demo`` runs a default parameter grid on the packaged demo data and prints
the best combinations; ``--data FILE`` runs on your own prices. Errors in the input are one
line on stderr (``sweepbt: error: ...``) and exit status 2 (set ``SWEEPBT_DEBUG=1`` for the
traceback instead); Ctrl-C exits with 130, SIGTERM with 143, and neither leaves output.

Output files (``--out``, ``--trades-out``) are written atomically and never over an existing
path unless ``--force``; ``--out-dir`` always needs a new path; an input file is never an
output (docs/getting-started.md, "Output files").

Grid values on the command line (``--param NAME=SPEC`` and the risk/cost flags):

* ``10`` or ``0.05``: one value (fixed, not an axis);
* ``5,10,20``: a list (a grid axis); ``none`` in a risk rule's list means "rule off";
* ``5:50:5``: ``start:stop:step``, from ``start`` up to and *including* ``stop`` when it lands
  on the grid (``5:50:5`` is 5, 10, ..., 50; ``5:52:5`` stops at 50); ``start:stop`` steps
  by 1. Integers stay integers; with a decimal point anywhere the values are floats, rounded
  to 12 significant digits (``0.01:0.05:0.01`` is 0.01, 0.02, 0.03, 0.04, 0.05).
"""

from __future__ import annotations

# Only light modules here: until main() has set up its Ctrl-C handling, an interrupt would
# be a traceback. argparse, shutil and everything heavy (numpy, pyarrow, numba) are
# imported inside main().
import math
import os
import re
import signal
import sys
import threading

#: the most values one range may expand to (a typo like ``0:1:1e-9`` fails fast)
MAX_RANGE_VALUES = 1_000_000

#: the grid ``sweep`` runs when no grid flag is given (sma_cross)
DEFAULT_GRID = {
    "fast": "5:50:5",
    "slow": "20:200:20",
    "stop_loss": "0.02,0.05,0.08,none",
    "take_profit": "0.05,0.1,0.2,none",
    "fees": "0.001",
}
DEFAULT_CONSTRAINT = "fast < slow"

#: metric columns printed by default (the ranking metric is always added)
SWEEP_COLUMNS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar",
                 "win_rate", "n_trades", "exposure")
STATS_COLUMNS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
                 "calmar", "n_trades", "win_rate", "profit_factor", "exposure")

PERCENT_METRICS = frozenset({"total_return", "cagr", "volatility", "max_drawdown",
                             "win_rate", "avg_trade", "exposure", "return", "mfe", "mae"})
RATIO_METRICS = frozenset({"sharpe", "sortino", "calmar", "profit_factor", "skew",
                           "kurtosis"})
COUNT_METRICS = frozenset({"n_trades", "n_stop", "n_take", "n_trail", "n_time", "n_signal"})

_INT_RE = re.compile(r"^[+-]?\d+$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CliError(ValueError):
    """A command-line input error (reported as one line, exit status 2)."""


# ----------------------------------------------------------------------------------------
# parsing helpers (pure functions, unit-tested in-process)


def parse_number(text, name="value"):
    """``"10"`` -> 10, ``"0.05"`` / ``"1e-3"`` -> float. CliError otherwise."""
    s = text.strip()
    if _INT_RE.match(s):
        return int(s)
    try:
        x = float(s)
    except ValueError:
        raise CliError(f"{name}: {text!r} is not a number") from None
    if not math.isfinite(x):
        raise CliError(f"{name}: {text!r} is not a finite number")
    return x


def _parse_scalar(text, name):
    s = text.strip()
    if s.lower() == "none":
        return None
    return parse_number(s, name)


def parse_range(text, name="value"):
    """``"start:stop[:step]"`` -> list, inclusive of ``stop`` when it lands on the grid."""
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (2, 3) or not all(parts):
        raise CliError(f"{name}: bad range {text!r}; expected start:stop or start:stop:step")
    nums = [parse_number(p, name) for p in parts]
    start, stop = nums[0], nums[1]
    step = nums[2] if len(nums) == 3 else 1
    if step <= 0:
        raise CliError(f"{name}: range {text!r} needs a step > 0")
    if stop < start:
        raise CliError(f"{name}: range {text!r} has stop < start")
    if all(isinstance(x, int) for x in nums):
        n = (stop - start) // step + 1
        if n > MAX_RANGE_VALUES:
            raise CliError(f"{name}: range {text!r} has {n:,} values, more than "
                           f"{MAX_RANGE_VALUES:,}")
        return list(range(start, stop + 1, step))
    span = (stop - start) / step
    n = math.floor(span + 1e-9) + 1  # stop counts when within rounding of the grid
    if n > MAX_RANGE_VALUES:
        raise CliError(f"{name}: range {text!r} has {n:,} values, more than "
                       f"{MAX_RANGE_VALUES:,}")
    return [float(f"{start + i * step:.12g}") for i in range(n)]


def parse_values(text, name="value"):
    """A flag value: one value (a scalar), a comma list or a range (a list = a grid axis).

    ``none`` (any case) is None, meaning "rule off" for the risk rules.
    """
    if not isinstance(text, str) or not text.strip():
        raise CliError(f"{name}: empty value")
    s = text.strip()
    if "," in s:
        items = [p.strip() for p in s.split(",")]
        if not all(items):
            raise CliError(f"{name}: empty item in list {text!r}")
        values = []
        for item in items:
            if ":" in item:
                values.extend(parse_range(item, name))
            else:
                values.append(_parse_scalar(item, name))
        return values
    if ":" in s:
        return parse_range(s, name)
    return _parse_scalar(s, name)


def parse_param(text):
    """``"NAME=SPEC"`` -> ``(name, value)`` where value is what :func:`parse_values` gives."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep:
        raise CliError(f"--param {text!r}: expected NAME=VALUE, e.g. fast=10 or "
                       "fast=5:50:5 or fast=5,10,20")
    if not _NAME_RE.match(name):
        raise CliError(f"--param {text!r}: {name!r} is not a parameter name")
    return name, parse_values(spec, name)


def collect_params(param_texts, risk_texts):
    """Merge ``--param`` items and the risk/cost flags into ``sweep()`` keyword arguments.

    ``risk_texts`` maps option name -> flag text (or None when the flag was not given).
    """
    params = {}
    for text in param_texts or ():
        name, value = parse_param(text)
        if name in params:
            raise CliError(f"parameter {name!r} given twice")
        params[name] = value
    for name, text in risk_texts.items():
        if text is None:
            continue
        if name in params:
            raise CliError(f"{name} given twice (--param {name}=... and {_flag(name)})")
        params[name] = parse_values(text, _flag(name))
    return params


def parse_columns(text, known):
    """``"a,b,c"`` -> tuple of metric names, each checked against ``known``."""
    cols = tuple(c.strip() for c in text.split(",") if c.strip())
    if not cols:
        raise CliError("--columns: give at least one metric name")
    bad = [c for c in cols if c not in known]
    if bad:
        raise CliError(f"--columns: unknown metric(s) {', '.join(bad)}; metrics: "
                       f"{', '.join(known)}")
    return cols


# ----------------------------------------------------------------------------------------
# formatting


def format_value(name, value, counts_are_means=False):
    """One table cell: percentages for returns/drawdowns, 2 decimals for ratios, '-' for null."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, str):
        return value
    if name in PERCENT_METRICS:
        return f"{value * 100:,.2f}%"
    if name in RATIO_METRICS:
        return f"{value:,.2f}"
    if name in COUNT_METRICS:
        return f"{value:,.1f}" if counts_are_means else f"{int(value):,}"
    if name == "avg_bars_held":
        return f"{value:,.1f}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if name == "pnl":
            return f"{value:,.2f}"
        if name in ("entry_price", "exit_price", "entry_quote", "exit_quote"):
            return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.2f}"
        if name == "units":
            return f"{value:,.4f}"
        return f"{value:g}"
    return str(value)


def render_table(columns, rows, left=()):
    """An aligned text table: ``columns`` header names, ``rows`` lists of str cells.

    Cells are right-aligned (numbers) except in the columns named in ``left``.
    """
    left = set(left)
    widths = [len(c) for c in columns]
    for row in rows:
        for j, cell in enumerate(row):
            widths[j] = max(widths[j], len(cell))

    def line(cells):
        out = []
        for j, cell in enumerate(cells):
            out.append(cell.ljust(widths[j]) if columns[j] in left else cell.rjust(widths[j]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(columns), sep] + [line(r) for r in rows])


def _human_rate(x):
    if not math.isfinite(x):
        return "n/a"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:,.1f}{unit}"
    return f"{x:,.0f}"


def _format_time(ns_values, timestamps):
    """ISO dates when every stamp is midnight, else minutes."""
    import numpy as np

    day = np.int64(86_400_000_000_000)
    all_days = bool((timestamps.astype("datetime64[ns]").astype(np.int64) % day == 0).all())
    unit = "D" if all_days else "m"
    return [str(v) for v in np.datetime_as_string(ns_values, unit=unit)]


# ----------------------------------------------------------------------------------------
# argument parser


def _parser_class():
    import argparse

    class _Parser(argparse.ArgumentParser):
        """argparse that reports errors as one line: ``sweepbt: error: ...`` (status 2)."""

        def error(self, message):
            hint = f" (see '{self.prog} --help')"
            self.exit(2, f"sweepbt: error: {message}{hint}\n")

    return _Parser


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


def _add_run_flags(p, sweeping):
    p.add_argument("--strategy", default="sma_cross",
                   help="a registered strategy (see 'sweepbt strategies'; default sma_cross) "
                        "or a user strategy file: path/to/file.py:name "
                        "(docs/custom-strategies.md)")
    what = ("NAME=VALUE, NAME=A,B,C or NAME=START:STOP:STEP (stop included when on the grid)"
            if sweeping else "NAME=VALUE")
    p.add_argument("--param", action="append", default=[], metavar="NAME=SPEC",
                   help=f"a strategy parameter (or any option below), repeatable: {what}")
    for name, option in _options().items():
        none = "; none = off" if option.allow_none else ""
        extra = "; a comma list or range is a grid axis" if sweeping else ""
        default = "" if option.default is None else f" (default {option.default:g})"
        p.add_argument(_flag(name), dest=name, metavar="V",
                       help=f"{option.doc}{default}{none}{extra}")
    from sweepbt.params import DIRECTIONS, FILL_MODES

    p.add_argument("--fill", choices=tuple(FILL_MODES), default="next_open",
                   help="fill a signal at the next bar's open (default) or this bar's close")
    p.add_argument("--direction", choices=tuple(DIRECTIONS), default="long",
                   help="trade direction (default long)")
    p.add_argument("--init-cash", type=float, default=10_000.0, metavar="CASH",
                   help="starting equity per backtest (default 10000)")
    p.add_argument("--periods-per-year", type=float, metavar="N",
                   help="bars per year for annualized metrics (default: inferred)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="kernel threads (default: numba's default, all cores)")
    p.add_argument("--columns", metavar="M1,M2,...",
                   help="metric columns to print (default: a readable selection)")


def _add_force_flag(p, flag):
    p.add_argument("--force", action="store_true",
                   help=f"replace an existing {flag} file (atomically, once the new one is "
                        "complete); never a directory, and never an input file")


def build_parser():
    import argparse

    from sweepbt import __version__

    parser_class = _parser_class()
    parser = parser_class(
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
                                parser_class=parser_class)

    sw = sub.add_parser(
        "sweep", help="backtest every combination of a parameter grid on every asset",
        description="Backtest every combination of a parameter grid on every asset and "
                    "print the best combinations. Without any grid flag (--param, a "
                    "risk/cost flag or --constraint) the default grid runs: "
                    + " ".join(f"{k}={v}" for k, v in DEFAULT_GRID.items())
                    + f" with constraint '{DEFAULT_CONSTRAINT}'.")
    _add_data_flags(sw)
    _add_run_flags(sw, sweeping=True)
    sw.add_argument("--constraint", metavar="EXPR",
                    help="keep only combos where EXPR holds, e.g. 'fast < slow'")
    sw.add_argument("--sample", type=int, metavar="N",
                    help="random search: run N combos drawn uniformly from the (constrained) "
                         "grid instead of all of them")
    sw.add_argument("--seed", type=int, metavar="S",
                    help="random seed for --sample (same seed, same combos)")
    sw.add_argument("--metric", default="sharpe",
                    help="rank combos by this metric, averaged over assets (default sharpe)")
    sw.add_argument("--top", type=int, default=10, metavar="K",
                    help="print the best K combos (default 10)")
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

    bt = sub.add_parser(
        "backtest", help="run one parameter combination and show stats and trades",
        description="Run one combination on every asset; print per-asset stats and trades.")
    _add_data_flags(bt)
    _add_run_flags(bt, sweeping=False)
    bt.add_argument("--trades", type=int, default=20, metavar="N",
                    help="print the first N trades (default 20; 0 for none)")
    bt.add_argument("--trades-out", metavar="FILE.parquet",
                    help="write all trades to a new Parquet file (an existing file is "
                         "refused unless --force)")
    _add_force_flag(bt, "--trades-out")

    wf = sub.add_parser(
        "walk-forward", help="walk-forward optimization: sweep each train span, test the winner",
        description="Walk-forward optimization: for each window, sweep the grid on the "
                    "training span, pick the best combo by --objective (mean over assets), "
                    "and run it on the following test span (indicators warm up before it). "
                    "Prints the window table and the chained out-of-sample metrics "
                    "(docs/walk-forward.md).")
    _add_data_flags(wf)
    _add_run_flags(wf, sweeping=True)
    wf.add_argument("--constraint", metavar="EXPR",
                    help="keep only combos where EXPR holds, e.g. 'fast < slow'")
    wf.add_argument("--train", required=True, metavar="SPAN",
                    help="training span: bars (e.g. 756) or a duration (3Y, 18M, 26W, 90D)")
    wf.add_argument("--test", required=True, metavar="SPAN",
                    help="test span after each training span: bars or a duration")
    wf.add_argument("--step", metavar="SPAN",
                    help="distance between windows (default: --test)")
    wf.add_argument("--anchored", action="store_true",
                    help="expanding training windows that all start at the first bar")
    wf.add_argument("--objective", default="sharpe", metavar="METRIC",
                    help="metric that picks each window's combo, mean over assets "
                         "(default sharpe)")
    wf.add_argument("--partial", action="store_true",
                    help="keep a last window whose test span is cut short by the data")
    wf.add_argument("--sample", type=int, metavar="N",
                    help="random search: N combos drawn uniformly from the grid per window")
    wf.add_argument("--seed", type=int, metavar="S", help="random seed for --sample")
    wf.add_argument("--out", metavar="FILE.parquet",
                    help="write the window table to a new Parquet file (an existing file is "
                         "refused unless --force)")
    _add_force_flag(wf, "--out")

    sub.add_parser("strategies", help="list the registered strategies and their parameters",
                   description="List the registered strategies, their parameters and the "
                               "risk/cost options every strategy takes.")
    return parser


# ----------------------------------------------------------------------------------------
# commands


def _load_data(args):
    import sweepbt as sb

    symbols = None
    if args.symbols:
        symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
        if not symbols:
            raise CliError("--symbols: give at least one symbol")
        if len(symbols) == 1:
            symbols = symbols[0]
    if args.demo:
        if args.timestamp_column:
            raise CliError("--timestamp-column applies to --data only")
        data = sb.demo()
        return sb.load(data, symbol=symbols) if symbols is not None else data
    if os.path.isdir(args.data):
        raise CliError(f"--data: {args.data!r} is a directory; give one .parquet, "
                       ".feather/.arrow or .csv file")
    return sb.load(args.data, gaps=args.gaps, timestamp=args.timestamp_column, symbol=symbols)


def _options():
    """The sweepable risk/cost options (each one gets a flag): name -> Option."""
    from sweepbt.params import OPTIONS

    return OPTIONS


def _flag(name):
    return "--" + name.replace("_", "-")


def _risk_texts(args):
    return {name: getattr(args, name) for name in _options()}


def _strategy_file(spec):
    """The file a ``--strategy FILE.py[:NAME]`` reads, or None for a registered name."""
    if not spec or ".py" not in spec:
        return None
    path, sep, attr = spec.rpartition(":")
    if not sep or not attr.isidentifier() or not path:
        path = spec
    path = os.path.expanduser(path)
    return path if os.path.isfile(path) else None


def _input_files(args):
    """``(flag, path)`` of each file the command reads: ``--data`` and a strategy file."""
    found = []
    if getattr(args, "data", None):
        found.append(("--data", args.data))
    strategy = _strategy_file(getattr(args, "strategy", None))
    if strategy is not None:
        found.append(("--strategy", strategy))
    return found


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (symlinks and hard links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare the resolved paths
        return (os.path.normcase(os.path.realpath(a))
                == os.path.normcase(os.path.realpath(b)))


def _check_parent(path, flag):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(f"{flag}: directory {directory!r} does not exist")
    if not os.access(directory, os.W_OK):
        raise CliError(f"{flag}: directory {directory!r} is not writable")


def _check_out_path(path, flag, force, inputs=()):
    """Fail fast, before any work, when output file ``path`` cannot or must not be written.

    An existing path is refused unless ``force``; a directory and an input file
    (``inputs``: ``(flag, path)`` pairs) are refused even with ``force``.
    """
    if not path:
        raise CliError(f"{flag}: empty path")
    _check_parent(path, flag)
    for in_flag, in_path in inputs:
        if _same_file(path, in_path):
            raise CliError(f"{flag}: {path!r} is the {in_flag} input file; an input is "
                           "never written over, --force or not")
    if os.path.isdir(path):
        raise CliError(f"{flag}: {path!r} is a directory")
    if os.path.lexists(path) and not force:
        raise CliError(f"{flag}: {path!r} already exists; pass --force to replace it, or "
                       "pick a new path")


def _check_out_dir(path, force):
    """``--out-dir`` must name a path that does not exist yet (``--force`` or not)."""
    if not path:
        raise CliError("--out-dir: empty path")
    _check_parent(path, "--out-dir")
    if os.path.lexists(path):
        hint = (" (--force replaces files only, never a directory)" if force
                else "")
        raise CliError(f"--out-dir: {path!r} already exists; results are never written "
                       f"over{hint}")


def _partial_dir(out_dir):
    """The hidden directory where ``sweep(out=out_dir)`` of this process writes its parts."""
    path = os.fspath(out_dir)
    parent = os.path.dirname(os.path.abspath(path))
    return os.path.join(parent, f".{os.path.basename(path)}.partial-{os.getpid()}")


def _write_atomic(path, flag, force, write):
    """``write(tmp)`` to a temporary file next to ``path``, then move it to ``path``.

    Nothing is left behind on any failure or interrupt: ``path`` is either untouched or
    the complete new file. Without ``force`` an existing ``path`` is never replaced, even
    one that appeared while the command ran (the move is a hard link, which fails on an
    existing name; where hard links are not supported, a check just before a rename).
    """
    from sweepbt._files import write_atomic

    try:
        write_atomic(path, write, replace=force)
    except FileExistsError:
        raise CliError(f"{flag}: {os.fspath(path)!r} was created while this command ran; "
                       "not replaced (pass --force to replace it)") from None


def _thread_limit():
    import numba

    return numba.config.NUMBA_NUM_THREADS


def _check_int_flags(args):
    """The integer flags, each checked here so that the message names the flag."""
    top = getattr(args, "top", None)
    if top is not None and top < 1:
        raise CliError(f"--top must be >= 1, got {top}")
    sample = getattr(args, "sample", None)
    if sample is not None and sample < 1:
        raise CliError(f"--sample must be >= 1, got {sample}")
    seed = getattr(args, "seed", None)
    if seed is not None:
        if sample is None:
            raise CliError("--seed applies to --sample only")
        if seed < 0:
            raise CliError(f"--seed must be >= 0, got {seed}")
    trades = getattr(args, "trades", None)
    if trades is not None and trades < 0:
        raise CliError(f"--trades must be >= 0, got {trades}")
    threads = getattr(args, "threads", None)
    if threads is not None:
        limit = _thread_limit()
        if not 1 <= threads <= limit:
            raise CliError(f"--threads must be between 1 and {limit} (the most threads "
                           f"numba can use here), got {threads}")


def _metric_columns(args, known, default, first=None):
    cols = parse_columns(args.columns, known) if args.columns else tuple(default)
    if first is not None and first not in cols:
        cols = (first,) + cols
    return cols


def _data_line(bundle, source):
    import numpy as np

    span = np.datetime_as_string(bundle.timestamps[[0, -1]], unit="D")
    return (f"data: {source}: {bundle.n_assets} asset(s) x {bundle.n_bars:,} bars, "
            f"{span[0]} .. {span[1]}")


def cmd_sweep(args, out):
    import shutil

    import sweepbt as sb
    from sweepbt import kernels

    if args.metric not in kernels.METRIC_NAMES:
        raise CliError(f"--metric: unknown metric {args.metric!r}; metrics: "
                       f"{', '.join(kernels.METRIC_NAMES)}")
    _check_int_flags(args)
    columns = _metric_columns(args, kernels.METRIC_NAMES, SWEEP_COLUMNS, args.metric)
    if args.out is not None:
        _check_out_path(args.out, "--out", args.force, _input_files(args))
    if args.out_dir is not None:
        _check_out_dir(args.out_dir, args.force)
    risk = _risk_texts(args)
    params = collect_params(args.param, risk)
    constraint = args.constraint
    default_grid = (not params and constraint is None and args.strategy == "sma_cross")
    if default_grid:
        params = {name: parse_values(text, name) for name, text in DEFAULT_GRID.items()}
        constraint = DEFAULT_CONSTRAINT

    bundle = _load_data(args)
    _checkpoint()
    ppy = bundle.periods_per_year if args.periods_per_year is None else args.periods_per_year
    print(_data_line(bundle, "demo" if args.demo else args.data), file=out)
    print(f"strategy: {args.strategy}" + (" (default grid)" if default_grid else ""), file=out)
    axes = [f"{n} ({len(v)})" for n, v in params.items() if isinstance(v, list)]
    fixed = [f"{n}={format_value(n, v)}" for n, v in params.items() if not isinstance(v, list)]
    if axes:
        print("axes: " + ", ".join(axes), file=out)
    if fixed:
        print("fixed: " + ", ".join(fixed), file=out)
    if constraint is not None:
        print(f"constraint: {constraint}", file=out)
    print(f"settings: fill={args.fill}, direction={args.direction}, "
          f"init_cash={args.init_cash:g}, periods_per_year={ppy:g}", file=out)
    out.flush()

    # Without --out only the best --top combos are kept (bounded memory at any grid size);
    # --out-dir streams every row to disk; --out keeps every row to write one file.
    keep = {} if args.out is not None else {"top": args.top, "metric": args.metric}
    if args.out_dir is not None:
        keep["out"] = args.out_dir
    if args.sample is not None:
        keep["sample"] = args.sample
    if args.seed is not None:
        keep["seed"] = args.seed
    res = None
    try:
        res = sb.sweep(
            bundle, args.strategy, constraint=constraint, fill=args.fill,
            direction=args.direction, init_cash=args.init_cash,
            periods_per_year=args.periods_per_year, threads=args.threads,
            progress=(not args.no_progress) and sys.stderr.isatty(), **keep, **params)
        _checkpoint()
    except sb.SweepTooLarge as exc:
        raise CliError(f"{str(exc).split('; pass top=')[0]}; use --out-dir DIR to stream "
                       "every row to disk, or drop --out to keep only the --top best") from None
    except BaseException:
        if args.out_dir is not None:
            # sweep() removes its parts directory itself; this also covers an interrupt
            # landing before its cleanup is armed. A completed directory is removed only
            # when this run made it (res is set): interrupted means no output.
            shutil.rmtree(_partial_dir(args.out_dir), ignore_errors=True)
            if res is not None:
                shutil.rmtree(args.out_dir, ignore_errors=True)
        raise
    n_total = math.prod(len(v) for v in params.values() if isinstance(v, list))
    if args.sample is not None:
        seed = "" if args.seed is None else f", seed {args.seed}"
        print(f"random sample: {res.n_combos:,} combos{seed}, from a grid of {n_total:,}"
              + (" before the constraint" if constraint is not None else ""), file=out)
    elif constraint is not None:
        print(f"constraint keeps {res.n_combos:,} of {n_total:,} combos", file=out)

    if args.out is not None:
        _write_atomic(args.out, "--out", args.force, res.to_parquet)

    best = res.best(args.metric, args.top)
    shown_params = [n for n, v in params.items() if isinstance(v, list)] or [
        n for n in best.column_names
        if n not in ("rank", "combo") and n not in kernels.METRIC_NAMES]
    header = ["rank"] + shown_params + list(columns)
    data = best.to_pydict()
    rows = []
    for i in range(best.num_rows):
        row = [str(data["rank"][i])]
        row += [format_value(n, data[n][i]) for n in shown_params]
        row += [format_value(n, data[n][i], counts_are_means=True) for n in columns]
        rows.append(row)
    how = "mean over assets" if bundle.n_assets > 1 else "one asset"
    print(file=out)
    print(f"top {best.num_rows} of {res.n_combos:,} combos by {args.metric} ({how}):",
          file=out)
    print(render_table(header, rows), file=out)
    print(file=out)
    print(f"{res.n_backtests:,} backtests ({res.n_combos:,} combos x {bundle.n_assets} "
          f"assets), {res.bar_evaluations:,} bar-evaluations in {res.elapsed:.2f} s: "
          f"{_human_rate(res.throughput)} bar-evaluations/s", file=out)
    if args.out is not None:
        print(f"wrote {res.n_backtests:,} rows to {args.out}", file=out)
    if args.out_dir is not None:
        print(f"wrote {res.n_backtests:,} rows to {args.out_dir} (Parquet dataset)", file=out)
    if res.metrics is not None and res.n_combos > 1:
        print(f"overfitting check, best by sharpe: {res.deflated_sharpe()}", file=out)
    return 0


def _span(text):
    """A --train/--test/--step value: all digits = bars, anything else a duration."""
    return int(text) if text is not None and text.isdigit() else text


def cmd_walk_forward(args, out):
    import sweepbt as sb
    from sweepbt.walkforward import format_walk_forward

    _check_int_flags(args)
    if args.out is not None:
        _check_out_path(args.out, "--out", args.force, _input_files(args))
    params = collect_params(args.param, _risk_texts(args))
    constraint = args.constraint
    if not params and constraint is None and args.strategy == "sma_cross":
        params = {name: parse_values(text, name) for name, text in DEFAULT_GRID.items()}
        constraint = DEFAULT_CONSTRAINT
    bundle = _load_data(args)
    _checkpoint()
    print(_data_line(bundle, "demo" if args.demo else args.data), file=out)
    out.flush()
    extra = {} if args.sample is None else {"sample": args.sample, "seed": args.seed}
    wf = sb.walk_forward(
        bundle, args.strategy, train=_span(args.train), test=_span(args.test),
        step=_span(args.step), anchored=args.anchored, objective=args.objective,
        partial=args.partial, constraint=constraint, fill=args.fill,
        direction=args.direction, init_cash=args.init_cash,
        periods_per_year=args.periods_per_year, threads=args.threads, **extra, **params)
    _checkpoint()
    print(format_walk_forward(wf), file=out)
    if args.out is not None:
        from sweepbt._files import write_parquet

        _write_atomic(args.out, "--out", args.force,
                      lambda tmp: write_parquet(wf.windows, tmp))
        print(f"wrote {wf.windows.num_rows} windows to {args.out}", file=out)
    return 0


def cmd_backtest(args, out):
    import sweepbt as sb
    from sweepbt._files import write_parquet
    from sweepbt import kernels

    _check_int_flags(args)
    columns = _metric_columns(args, kernels.METRIC_NAMES, STATS_COLUMNS)
    if args.trades_out is not None:
        _check_out_path(args.trades_out, "--trades-out", args.force, _input_files(args))
    params = collect_params(args.param, _risk_texts(args))
    for name, value in params.items():
        if isinstance(value, list):
            raise CliError(f"{name}: backtest runs one combination; give one value "
                           "(use 'sweepbt sweep' for lists and ranges)")
    bundle = _load_data(args)
    bt = sb.backtest(bundle, args.strategy, fill=args.fill, direction=args.direction,
                     init_cash=args.init_cash, periods_per_year=args.periods_per_year,
                     threads=args.threads, **params)
    _checkpoint()

    bt_ppy = (bundle.periods_per_year if args.periods_per_year is None
              else args.periods_per_year)
    print(_data_line(bundle, "demo" if args.demo else args.data), file=out)
    shown = ", ".join(f"{k}={format_value(k, v)}" for k, v in bt.params.items())
    print(f"strategy: {bt.strategy}({shown})", file=out)
    print(f"settings: fill={args.fill}, direction={args.direction}, "
          f"init_cash={args.init_cash:g}, "
          f"periods_per_year={bt_ppy:g}", file=out)
    print(file=out)

    stats = bt.stats.to_pydict()
    header = ["symbol"] + list(columns)
    rows = [[stats["symbol"][i]] + [format_value(c, stats[c][i]) for c in columns]
            for i in range(bt.stats.num_rows)]
    print("stats per asset:", file=out)
    print(render_table(header, rows, left={"symbol"}), file=out)

    trades = bt.trades
    if args.trades_out is not None:
        _write_atomic(args.trades_out, "--trades-out", args.force,
                      lambda tmp: write_parquet(trades, tmp))
    if args.trades > 0:
        first = trades.slice(0, min(args.trades, trades.num_rows))
        print(file=out)
        print(f"trades: first {first.num_rows} of {trades.num_rows:,}:"
              if first.num_rows < trades.num_rows else f"trades ({trades.num_rows:,}):",
              file=out)
        if first.num_rows:
            t = first.to_pydict()
            entry_bar = first.column("entry_bar").to_numpy()
            exit_bar = first.column("exit_bar").to_numpy()
            entry_time = _format_time(bundle.timestamps[entry_bar], bundle.timestamps)
            exit_time = _format_time(bundle.timestamps[exit_bar], bundle.timestamps)
            names = ["symbol", "direction", "entry_time", "exit_time", "bars", "entry_price",
                     "exit_price", "units", "pnl", "return", "exit_reason", "mfe", "mae"]
            rows = []
            for i in range(first.num_rows):
                rows.append([
                    t["symbol"][i], t["direction"][i], entry_time[i], exit_time[i],
                    str(int(exit_bar[i] - entry_bar[i])),
                    *(format_value(n, t[n][i]) for n in ("entry_price", "exit_price",
                                                          "units", "pnl", "return")),
                    t["exit_reason"][i],
                    format_value("mfe", t["mfe"][i]), format_value("mae", t["mae"][i]),
                ])
            print(render_table(names, rows, left={"symbol", "direction", "entry_time",
                                                   "exit_time", "exit_reason"}), file=out)
    if args.trades_out is not None:
        print(f"\nwrote {trades.num_rows:,} trades to {args.trades_out}", file=out)
    return 0


def cmd_strategies(args, out):
    import sweepbt as sb
    from sweepbt.params import FIXED_OPTIONS, OPTIONS

    for name in sorted(sb.STRATEGIES):
        strat = sb.STRATEGIES[name]
        print(f"{name}: {strat.doc}", file=out)
        rows = [[p.name, p.kind, format_value(p.name, p.default), p.doc] for p in strat.params]
        print(_indent(render_table(["param", "kind", "default", "doc"], rows,
                                   left={"param", "kind", "doc"})), file=out)
        print(file=out)
    print("risk/cost options (every strategy; any of them can be a grid axis):", file=out)
    rows = [[o.name, o.kind, format_value(o.name, o.default), o.doc] for o in OPTIONS.values()]
    print(_indent(render_table(["option", "kind", "default", "doc"], rows,
                               left={"option", "kind", "doc"})), file=out)
    print(f"fixed options (not sweepable): {', '.join(FIXED_OPTIONS)}", file=out)
    return 0


def _indent(text, pad="  "):
    return "\n".join(pad + line for line in text.splitlines())


COMMANDS = {"sweep": cmd_sweep, "backtest": cmd_backtest, "walk-forward": cmd_walk_forward,
            "strategies": cmd_strategies}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup path for an interrupt runs."""


class _InterruptGuard:
    """Ctrl-C (SIGINT) and SIGTERM during a command: never lost, always cleaned up after.

    SIGINT raises KeyboardInterrupt as usual; SIGTERM is handled exactly like it, so that
    the cleanup written for Ctrl-C (the sweep's parts directory, temporary output files)
    runs for both: it raises :class:`Terminated`, a KeyboardInterrupt, or, while code such
    as a running sweep chunk holds Ctrl-C back, is passed to that code's SIGINT handler.
    Only the first SIGTERM acts: a second one does not cut the cleanup short.

    Both are also recorded: when one lands in code that swallows exceptions (a callback
    inside numba's compiler or cache loader, which only prints "Exception ignored in ..."),
    :func:`_checkpoint` raises it again, and the "ignored" report is not printed. The
    previous handlers are restored on exit. Outside the main thread (where Python delivers
    signals) only the swallowed-exception part applies.
    """

    active = None

    def __init__(self):
        self.seen = False
        self.terminated = False
        self.previous = {}
        self.previous_hook = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum, handler in ((signal.SIGINT, self._on_sigint),
                                    (getattr(signal, "SIGTERM", None), self._on_sigterm)):
                if signum is None:  # pragma: no cover - no SIGTERM on this platform
                    continue
                try:
                    self.previous[signum] = signal.signal(signum, handler)
                except (ValueError, OSError):  # pragma: no cover - embedded interpreters
                    pass
        self.previous_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        _InterruptGuard.active = self
        return self

    def _on_sigint(self, signum, frame):
        self.seen = True
        raise KeyboardInterrupt

    def _on_sigterm(self, signum, frame):
        first = not self.terminated
        self.seen = self.terminated = True
        if not first:
            return
        current = signal.getsignal(signal.SIGINT)
        if callable(current) and current != self._on_sigint:
            # Someone holds Ctrl-C for now (the sweep, until its running chunk is done:
            # an exception raised inside compiled code's callbacks can crash the process);
            # SIGTERM waits the same way, and the KeyboardInterrupt comes from there.
            current(signal.SIGINT, frame)
            return
        raise Terminated

    def _unraisable(self, unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            self.seen = True
            return
        self.previous_hook(unraisable)

    def __exit__(self, *exc):
        _InterruptGuard.active = None
        sys.unraisablehook = self.previous_hook
        for signum, previous in self.previous.items():
            if previous is not None:  # None: installed outside Python, cannot be restored
                signal.signal(signum, previous)
        self.previous.clear()
        return False


def _checkpoint():
    """Raise KeyboardInterrupt if a Ctrl-C was swallowed since the command started."""
    guard = _InterruptGuard.active
    if guard is not None and guard.seen:
        raise KeyboardInterrupt


def _error(message):
    message = " ".join(str(message).split())  # one line, whatever the exception held
    sys.stderr.write(f"sweepbt: error: {message}\n")
    sys.stderr.flush()
    return 2


def _flush_quietly():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _run(args):
    """Run the command; a ``sys.exit()`` in code it runs (a strategy file) is an error."""
    try:
        return COMMANDS[args.command](args, sys.stdout)
    except SystemExit as exc:
        by = (f"--strategy {args.strategy}: the strategy file"
              if _strategy_file(getattr(args, "strategy", None)) else "code run by sweepbt")
        raise CliError(f"{by} called sys.exit({exc.code!r}) during '{args.command}'; "
                       "no output was written (raise an exception instead)") from None


def _stopped(guard, argv):
    """Report an interrupt: 130 for Ctrl-C, 143 (128 + SIGTERM) for SIGTERM."""
    terminated = guard is not None and guard.terminated
    if argv is None:
        # Run as the program: nothing may interrupt the exit any more.
        for name in ("SIGINT", "SIGTERM"):
            try:
                signal.signal(getattr(signal, name), signal.SIG_IGN)
            except (AttributeError, ValueError, OSError):  # pragma: no cover
                pass
    if sys.stderr.isatty() and not terminated:
        sys.stderr.write("\n")
    sys.stderr.write("sweepbt: terminated\n" if terminated else "sweepbt: interrupted\n")
    status = 143 if terminated else 130
    if argv is None:
        # Exit now. (A Ctrl-C that hit C code called from Python can leave the interpreter
        # set to kill itself with SIGINT at exit.) Nothing half-written is left: output
        # files are written atomically and removed on an interrupt.
        _flush_quietly()
        os._exit(status)
    return status


def main(argv=None):
    """Entry point of the ``sweepbt`` command; returns the exit status.

    The interrupt handling is set up first: a Ctrl-C at any point after this module was
    imported, even while the heavy modules (numpy, pyarrow, numba) load, exits with 130
    and one line, no traceback.
    """
    guard = None
    try:
        guard = _InterruptGuard()
        with guard:
            parser = build_parser()
            args = parser.parse_args(argv)
            return _run(args)
    except KeyboardInterrupt:
        return _stopped(guard, argv)
    except Exception as exc:
        if guard is not None and guard.seen:
            # The interrupt surfaced as another exception: C code it landed in turned it
            # into one (numpy's import raises ImportError), or cleanup failed after it.
            return _stopped(guard, argv)
        if isinstance(exc, BrokenPipeError):
            # the reader went away (e.g. `| head`): stop quietly
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except OSError:
                pass
            return 141
        if isinstance(exc, (ValueError, TypeError, OSError)) and not os.environ.get(
                "SWEEPBT_DEBUG"):
            return _error(exc)
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
