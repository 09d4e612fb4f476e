"""The run options of the public calls, defined once: names, defaults, meaning, CLI flags.

``RunOptions`` is the one place that says what ``backtest``, ``sweep``, ``estimate`` and
``walk_forward`` accept besides the data and the sweepable parameters, and what each
defaults to. The public signatures take their defaults from ``DEFAULTS`` and build one
frozen ``RunOptions`` per call (``replace(DEFAULTS, ...)``), which ``plan.prepare`` checks
into the ``Plan`` (its ``fixed`` metadata is written from it); the CLI builds its flags
from the fields' metadata; :mod:`sweepbt._params` reserves every name here so no
strategy parameter can shadow one. The sweepable risk/cost options live in
``sweepbt._params.OPTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from sweepbt import kernels

#: ``fill=`` names and their kernel codes (docs/semantics.md, Fills)
FILL_MODES = kernels.FillMode._asdict()
#: ``direction=`` names and their kernel codes
DIRECTIONS = kernels.Direction._asdict()
#: ``size_type=`` names and their kernel codes
SIZE_TYPES = kernels.SizeType._asdict()

_ALL = ("backtest", "sweep", "estimate", "walk_forward")
#: ``progress=None`` draws the bar for runs with more bar-evaluations than this (a few
#: seconds of work on one core at the kernel's usual 10^8-10^9 per second)
AUTO_PROGRESS_BAR_EVALUATIONS = 500_000_000
_GRIDS = ("sweep", "estimate", "walk_forward")


def _option(default, calls, doc, *, flag=True, recorded=False, choices=None, metavar=None,
            required=False, help=None):
    """A RunOptions field. ``calls``: the public functions that take it. ``flag``: whether
    the CLI has a ``--name`` flag for it (built from this metadata). ``recorded``: whether
    a result's metadata (``Plan.fixed``, written with its tables) holds it. ``help``: the
    flag's help text (argparse's: ``%(default)s`` is the default); a dict gives one per
    command (by call name) where they differ."""
    return field(default=default, metadata={
        "calls": calls, "doc": doc, "flag": flag, "recorded": recorded, "choices": choices,
        "metavar": metavar, "required": required, "help": help})


@dataclass(frozen=True)
class RunOptions:
    """Every non-sweepable option of a run, with its default."""

    strategy: object = _option(
        "sma_cross", _ALL, "a registered strategy name, a Strategy, or 'file.py:name'",
        metavar="STRATEGY", help={call: "a registered strategy (see 'sweepbt strategies'; "
        "default %(default)s) or a user strategy file: path/to/file.py:name "
        "(docs/custom-strategies.md)" + ("; repeat it to sweep several strategies, each with "
                                         "its own grid" if call == "sweep" else "")
        for call in _ALL})
    fill: str = _option("next_open", _ALL, "fill a signal at the next bar's open or at this "
                        "bar's close", choices=tuple(FILL_MODES),
                        help="fill a signal at the next bar's open (default) or this bar's "
                        "close", recorded=True)
    direction: str = _option("long", _ALL, "trade direction", choices=tuple(DIRECTIONS),
                             help="trade direction (default %(default)s)", recorded=True)
    init_cash: float = _option(10_000.0, _ALL, "starting equity per backtest, in cash",
                               metavar="CASH",
                               help="starting equity per backtest (default %(default)g)",
                               recorded=True)
    periods_per_year: float | None = _option(
        None, _ALL, "bars per year for annualized metrics (default: inferred from the "
        "time stamps)", metavar="N",
        help="bars per year for annualized metrics (default: inferred)", recorded=True)
    portfolio: bool = _option(
        False, _ALL, "one backtest per combo over every asset, sharing one cash balance",
        help="portfolio backtests: one per combo over every asset, sharing one cash balance "
        "(docs/semantics.md, Portfolio backtests)", recorded=True)
    size_type: str = _option(
        "equity", _ALL, "portfolio: size is a fraction of equity ('equity') or a cash amount "
        "per entry ('value')", choices=tuple(SIZE_TYPES),
        help="with --portfolio: --size is a fraction of equity (default) or a cash amount "
        "per entry (value)", recorded=True)
    commission: object = _option(
        None, _ALL, "an @njit f(units, price, is_buy) -> float giving the commission in "
        "cash of one fill (or 'file.py:name'); it replaces fees, fees_per_share, min_fees "
        "and max_fees", metavar="FILE.py:NAME",
        help="a commission function: an @njit f(units, price, is_buy) -> float in a file "
        "(docs/semantics.md, Costs); it replaces --fees, --fees-per-share, --min-fees and "
        "--max-fees")
    threads: int | None = _option(None, ("backtest", "sweep", "walk_forward"),
                                  "kernel threads (default: numba's, all cores)", metavar="N",
                                  help="kernel threads (default: numba's default, all cores)")
    window: tuple | None = _option(
        None, ("backtest", "sweep", "estimate"), "(start_bar, stop_bar): trade only inside "
        "those bars, indicators warmed up on the bars before", flag=False, recorded=True)
    constraint: str | None = _option(None, _GRIDS, "keep only combos where this expression "
                                     "holds, e.g. 'fast < slow'", metavar="EXPR",
                                     help="keep only combos where EXPR holds, e.g. 'fast < "
                                     "slow'", recorded=True)
    sample: int | None = _option(
        None, _GRIDS, "run N combos drawn uniformly from the constrained grid", metavar="N",
        help={"sweep": "random search: run N combos drawn uniformly from the (constrained) "
                       "grid instead of all of them",
              "walk_forward": "random search: N combos drawn uniformly from the grid per "
                              "window"}, recorded=True)
    seed: int | None = _option(
        None, ("sweep", "walk_forward"), "random seed for sample", metavar="S",
        help={"sweep": "random seed for --sample (same seed, same combos)",
              "walk_forward": "random seed for --sample"}, recorded=True)
    top: int | None = _option(None, ("sweep",), "keep only the best K combos by metric",
                              metavar="K", help="print the best K combos (default %(default)s)")
    metric: str = _option("sharpe", ("sweep",), "rank combos by this metric, mean over "
                          "assets", metavar="METRIC",
                          help="rank combos by this metric, averaged over assets (default "
                          "%(default)s)")
    out: object = _option(None, ("sweep", "walk_forward"), "a new folder kept up to date "
                          "as chunks finish, to resume: a sweep's rows as a Parquet dataset; "
                          "a walk-forward's training parts, then its tables", flag=False)
    resume: bool = _option(False, ("sweep", "walk_forward"), "continue the run whose out= "
                           "folder this is (its finished chunks are kept)",
                           help={"sweep": "continue the sweep whose --out-dir folder exists: "
                                 "its finished chunks are kept, the rest run (the folder's "
                                 "manifest must match this command)",
                                 "walk_forward": "continue the walk-forward whose --out-dir "
                                 "folder exists: its finished chunks are kept, the rest run "
                                 "(the folder's manifest must match this command)"})
    scheduler: object = _option(None, ("sweep", "walk_forward"), "run the chunks on this "
                                "Dask cluster (a dask.distributed.Client or an address) or "
                                "with this executor (any object with run(runner, chunks, "
                                "sinks, on_progress) and done: sweepbt.protocols.Executor)",
                                metavar="ADDRESS",
                                help="run on a Dask cluster: the scheduler's address, e.g. "
                                "tcp://host:8786 (pip install 'sweepbt[distributed]')")
    max_memory: int | None = _option(None, ("sweep",), "refuse a sweep keeping more bytes "
                                     "of rows (default: half the available memory)",
                                     flag=False)
    progress: bool | None = _option(None, ("sweep", "walk_forward"), "draw a progress bar "
                                    "with an ETA on a terminal or in Jupyter (default: when "
                                    "the run has more than AUTO_PROGRESS_BAR_EVALUATIONS "
                                    "bar-evaluations)", flag=False)
    train: object = _option(None, ("walk_forward",), "training window: bars or a duration "
                            "such as 3Y, 6M, 20D", metavar="SPAN", required=True,
                            help="training span: bars (e.g. 756) or a duration (3Y, 18M, 26W, "
                            "90D)", recorded=True)
    test: object = _option(None, ("walk_forward",), "test window after each training window",
                           metavar="SPAN", required=True,
                           help="test span after each training span: bars or a duration",
                           recorded=True)
    step: object = _option(None, ("walk_forward",), "distance between windows (default: "
                           "test)", metavar="SPAN",
                           help="distance between windows (default: --test)", recorded=True)
    anchored: bool = _option(False, ("walk_forward",), "every training window starts at the "
                             "first bar",
                             help="expanding training windows that all start at the first bar",
                             recorded=True)
    objective: str = _option("sharpe", ("walk_forward",), "metric that picks each window's "
                             "combo", metavar="METRIC",
                             help="metric that picks each window's combo, mean over assets "
                             "(default %(default)s)", recorded=True)
    partial: bool = _option(False, ("walk_forward",), "keep a last test window shorter than "
                            "test",
                            help="keep a last window whose test span is cut short by the data",
                            recorded=True)


#: the defaults, read by the public signatures (``fill=DEFAULTS.fill``)
DEFAULTS = RunOptions()


def options_of(call):
    """The RunOptions fields that the public function named ``call`` takes."""
    return tuple(f for f in fields(RunOptions) if call in f.metadata["calls"])


#: every run option name (reserved: no strategy parameter may take one)
RUN_OPTION_NAMES = frozenset(f.name for f in fields(RunOptions))
