"""What the commands share: the default grid, loading the data, checking integer flags."""

from __future__ import annotations

import contextlib
import os

import sweepbt as sb
from sweepbt._compiling import say, watch
from sweepbt.cli.flags import flagged_options, risk_texts
from sweepbt.cli.formatting import data_line
from sweepbt.cli.parsing import (CliError, collect_params, flag_name, parse_columns,
                                 parse_values)
from sweepbt.data.loading import load_with_facts
from sweepbt._engines import engine_for
from sweepbt.strategies.builtin import STRATEGIES, Strategy

#: the grid ``sweep`` and ``walk-forward`` run when no grid flag is given (sma_cross)
DEFAULT_GRID = {
    "fast": "5:50:5",
    "slow": "20:200:20",
    "stop_loss": "0.02,0.05,0.08,none",
    "take_profit": "0.05,0.1,0.2,none",
    "fees": "0.001",
}
DEFAULT_CONSTRAINT = "fast < slow"

#: the choices of the loading flags --time-unit, --ohlc, --adjust and --layout
TIME_UNIT_CHOICES = ("s", "ms", "us", "ns")
OHLC_CHOICES = ("ohlc", "close")
ADJUST_CHOICES = ("adj_close",)
LAYOUT_CHOICES = ("long", "wide")

#: the loading flags that apply to --data only: flag -> its value when not given
_FILE_ONLY = {"timestamp_column": None, "tz": None, "time_unit": None, "ohlc": "ohlc",
              "adjust": None, "dropna": False, "factors": None, "layout": None}


def grid_params(args):
    """``(params, constraint, default_grid)``: the grid given by the flags, or the default
    grid when no grid flag (``--param``, a risk/cost flag, ``--constraint``) is given for
    sma_cross."""
    params = collect_params(args.param, risk_texts(args))
    constraint = args.constraint
    if params or constraint is not None or args.strategy != "sma_cross":
        return params, constraint, False
    params = {name: parse_values(text, name) for name, text in DEFAULT_GRID.items()}
    return params, DEFAULT_CONSTRAINT, True


def _names(text, flag, what):
    """``--flag A,B``: a list of names, None when not given (or empty)."""
    if not text:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise CliError(f"{flag}: give at least one {what}")
    return names


def _symbols(text):
    """``--symbols A,B``: a list of names, one name as such, None when not given."""
    symbols = _names(text, "--symbols", "symbol")
    return symbols[0] if symbols is not None and len(symbols) == 1 else symbols


def load_data(args):
    """The Bundle of ``--demo`` or ``--data FILE`` (with the loading flags ``--symbols``,
    ``--gaps``, ``--timestamp-column``, ``--tz``, ``--time-unit``, ``--ohlc``, ``--adjust``,
    ``--dropna``, ``--factors``, ``--layout``); the header lines saying what loading assumed are
    kept in ``args.data_notes`` for :func:`data_header`. ``--symbols`` selects assets: on a
    single-asset file it must be the file's name, never a new label."""
    args.data_notes = []
    symbols = _symbols(args.symbols)
    if args.demo:
        given = [flag_name(n) for n, default in _FILE_ONLY.items()
                 if getattr(args, n, default) != default]
        if given:
            raise CliError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} "
                           "to --data only (the demo data is already loaded)")
        data = sb.demo()
        return sb.load(data, symbol=symbols) if symbols is not None else data
    if os.path.isdir(args.data):
        raise CliError(f"--data: {args.data!r} is a directory; give one .parquet, "
                       ".feather/.arrow or .csv file")
    bundle, facts = load_with_facts(
        args.data, gaps=args.gaps, timestamp=args.timestamp_column, symbol=symbols,
        tz=args.tz, time_unit=args.time_unit, ohlc=args.ohlc, adjust=args.adjust,
        dropna=args.dropna, rename_single=False,
        factors=_names(args.factors, "--factors", "column name"), layout=args.layout)
    args.data_notes = _notes(facts, args)
    if bundle.factors:
        args.data_notes.append(f"factors: {', '.join(bundle.factors)}")
    return bundle


def _notes(facts, args):
    """The header lines for what loading assumed (``times:``, ``prices:``, ``dropped:``)."""
    notes = []
    if "times" in facts:
        times = facts["times"]
        if facts.get("naive"):
            times += " (--tz)" if args.tz else "; pass --tz ZONE if they are local times"
        notes.append(f"times: {times}")
    if "prices" in facts:
        notes.append(f"prices: {facts['prices']}")
    if "unused_adj_close" in facts:
        notes.append(f"prices: as given; column {facts['unused_adj_close']!r} is not used "
                     "(--adjust adj_close uses it)")
    if facts.get("dropped"):
        notes.append(f"dropped: {facts['dropped']:,} row(s) with a missing price (--dropna)")
    return notes


def data_header(bundle, args):
    """The ``data:`` line and, below it, what loading assumed (:func:`load_data`)."""
    return "\n".join([data_line(bundle, source_name(args)), *getattr(args, "data_notes", ())])


def source_name(args):
    """The data's name in the ``data:`` line."""
    return "demo" if args.demo else args.data


def settings_line(args, bundle):
    """``settings: fill=..., direction=..., init_cash=..., periods_per_year=...``."""
    ppy = bundle.periods_per_year if args.periods_per_year is None else args.periods_per_year
    commission = getattr(args, "commission", None)
    return (f"settings: fill={args.fill}, direction={args.direction}, "
            f"init_cash={args.init_cash:g}, periods_per_year={ppy:g}"
            + ("" if commission is None else f", commission={commission}"))


def call_options(args, call, omit=()):
    """``(strategy, options)``: the RunOptions arguments of public function ``call`` as
    given on the command line, less those in ``omit``, and less ``sample`` and ``seed``
    when no ``--sample`` is given (then they are never passed)."""
    if getattr(args, "sample", None) is None:
        omit = (*omit, "sample", "seed")
    options = {name: getattr(args, name) for name in flagged_options(call)
               if name not in omit}
    return options.pop("strategy"), options


def compiling(strategy, options, uses):
    """A compile watch around a command's run: "compiling kernels (first run only, about
    N s)" on stderr when the first kernel compiles; ``.seconds`` afterwards."""
    rank = any(_is_rank(s) for s in (strategy if isinstance(strategy, list) else [strategy]))
    return watch(engine_for(rank, bool(options.get("portfolio"))).kernel_names(uses), say)


def _is_rank(strategy):
    strat = STRATEGIES.get(strategy) if isinstance(strategy, str) else strategy
    return isinstance(strat, Strategy) and strat.is_rank


def strategy_text(strategy):
    """``--strategy`` as printed: the name, or the names of several joined by commas."""
    return ", ".join(strategy) if isinstance(strategy, list) else strategy


def compiled_note(seconds):
    """`` (+ 41 s compiling, first run only)`` after a run's time, or nothing."""
    return f" (+ {seconds:.0f} s compiling, first run only)" if seconds >= 0.5 else ""


def _thread_limit():
    import numba

    return numba.config.NUMBA_NUM_THREADS


def _check_at_least(args, name, minimum):
    value = getattr(args, name, None)
    if value is not None and value < minimum:
        raise CliError(f"--{name} must be >= {minimum}, got {value}")


def check_int_flags(args):
    """The integer flags, each checked here so that the message names the flag."""
    _check_at_least(args, "top", 1)
    _check_at_least(args, "sample", 1)
    if getattr(args, "seed", None) is not None and getattr(args, "sample", None) is None:
        raise CliError("--seed applies to --sample only")
    _check_at_least(args, "seed", 0)
    _check_at_least(args, "trades", 0)
    threads = getattr(args, "threads", None)
    if threads is not None:
        limit = _thread_limit()
        if not 1 <= threads <= limit:
            raise CliError(f"--threads must be between 1 and {limit} (the most threads "
                           f"numba can use here), got {threads}")


def check_cluster_flags(args):
    """``--workers`` (>= 1) and ``--scheduler`` exclude each other."""
    _check_at_least(args, "workers", 1)
    if args.workers is not None and args.scheduler is not None:
        raise CliError("--workers starts a local cluster and --scheduler names one; give "
                       "one of them")


@contextlib.contextmanager
def scheduler_of(args, options):
    """Sets ``options["scheduler"]`` for the run: ``--scheduler ADDRESS`` as given, or with
    ``--workers N`` a Client of a local Dask cluster of N single-threaded worker processes
    (each running the kernels on its share of this machine's cores unless ``--threads``),
    closed after."""
    if args.workers is None:
        yield
        return
    from sweepbt.distributed import dask_distributed

    try:
        dd = dask_distributed()
    except ImportError as exc:
        raise CliError(f"--workers: {exc}") from None
    if args.threads is None:
        options["threads"] = max(1, _thread_limit() // args.workers)
    # dashboard_address=":0": the scheduler's web server on any free port (None still binds
    # 8787, and warns when another program has it)
    with dd.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                         dashboard_address=":0") as cluster, dd.Client(cluster) as client:
        options["scheduler"] = client
        yield


def metric_columns(args, known, default, first=None):
    """The metric columns to print: ``--columns`` or ``default``, ``first`` added in front."""
    cols = parse_columns(args.columns, known) if args.columns else tuple(default)
    if first is not None and first not in cols:
        cols = (first,) + cols
    return cols

