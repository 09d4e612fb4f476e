"""``sweepbt sweep``: backtest every combination of a grid, print the best combinations."""

from __future__ import annotations

import math
import sys

import sweepbt as sb
from sweepbt import kernels
from sweepbt._files import write_parquet
from sweepbt._interrupt import checkpoint
from sweepbt.cli.common import (call_options, check_cluster_flags, check_int_flags,
                                compiled_note, compiling, data_header, grid_params,
                                load_data, metric_columns, scheduler_of,
                                settings_line, strategy_text)
from sweepbt._format import format_value
from sweepbt.cli.formatting import fitted_table, human_rate, metric_header, wrapped
from sweepbt.cli.outputs import (check_out_path, check_report, check_resume_flags,
                                 input_files, kept_on_interrupt, write_output, write_report)
from sweepbt.cli.parsing import CliError, qualified

#: metric columns printed by default (the ranking metric is always added)
SWEEP_COLUMNS = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar",
                 "win_rate", "n_trades", "exposure")
#: the default columns a narrow table leaves out, least important first (never the
#: ranking metric, the rank, the combo id or the parameters)
DROP_ORDER = ("exposure", "calmar", "sortino", "win_rate", "cagr", "n_trades",
              "max_drawdown", "sharpe", "total_return")


def cmd_sweep(args, out):
    columns = _check_args(args)
    params, constraint, default_grid = grid_params(args)
    bundle = load_data(args)
    checkpoint()
    _print_setup(args, out, bundle, params, constraint, default_grid)
    res = _run_sweep(args, bundle, params, constraint)
    _print_counts(args, out, res, params, constraint)
    if args.out is not None:
        write_output(args.out, "--out", args.force, lambda tmp: write_parquet(res.table, tmp))
    _print_best(args, out, res, bundle, params, columns)
    _print_summary(args, out, res, bundle)
    write_report(args, res, out)
    return 0


def _check_args(args):
    """Every check that needs no data, before any work; returns the metric columns."""
    known = kernels.METRIC_NAMES
    if args.metric not in known:
        raise CliError(f"--metric: unknown metric {args.metric!r}; metrics of "
                       f"{strategy_text(args.strategy)}: {', '.join(known)}")
    check_int_flags(args)
    check_cluster_flags(args)
    columns = metric_columns(args, known, SWEEP_COLUMNS, args.metric)
    if args.out is not None:
        check_out_path(args.out, "--out", args.force, input_files(args))
    check_resume_flags(args)
    check_report(args)
    return columns


def _print_setup(args, out, bundle, params, constraint, default_grid):
    print(data_header(bundle, args), file=out)
    print(f"strategy: {strategy_text(args.strategy)}"
          + (" (default grid)" if default_grid else ""), file=out)
    axes = [f"{n} ({len(v)})" for n, v in params.items() if isinstance(v, list)]
    fixed = [f"{n}={format_value(n, v)}" for n, v in params.items() if not isinstance(v, list)]
    if axes:
        print("axes: " + ", ".join(axes), file=out)
    if fixed:
        print("fixed: " + ", ".join(fixed), file=out)
    if constraint is not None:
        print(f"constraint: {constraint}", file=out)
    print(settings_line(args, bundle), file=out)
    out.flush()


def _run_sweep(args, bundle, params, constraint):
    # Without --out or --report only the best --top combos are kept (bounded memory at any
    # grid size); --out-dir streams every row to disk; --out keeps every row to write one
    # file, --report to chart the whole grid.
    keep_all = args.out is not None or args.report is not None
    strategy, options = call_options(args, "sweep", omit=("top", "metric") if keep_all else ())
    options["constraint"] = constraint
    strategy, params = qualified(strategy, params)
    if args.out_dir is not None:
        options["out"] = args.out_dir
    try:
        with kept_on_interrupt(args.out_dir), scheduler_of(args, options), \
                compiling(strategy, options, ("metrics",)):
            res = sb.sweep(bundle, strategy,
                           progress=(not args.no_progress) and sys.stderr.isatty(),
                           **options, **params)
        checkpoint()
    except sb.SweepTooLarge as exc:
        raise CliError(f"{exc.reason}; use --out-dir DIR to stream "
                       "every row to disk, or drop --out and --report to keep only the --top best"
                       ) from None
    return res


def _print_counts(args, out, res, params, constraint):
    """How many combos ran, of how many: the sample or the constraint."""
    n_total = (sum(part.plan.grid.n_total for part in res.parts) if hasattr(res, "parts")
               else math.prod(len(v) for v in params.values() if isinstance(v, list)))
    if args.sample is not None:
        seed = "" if args.seed is None else f", seed {args.seed}"
        print(f"random sample: {res.n_combos:,} combos{seed}, from a grid of {n_total:,}"
              + (" before the constraint" if constraint is not None else ""), file=out)
    elif constraint is not None:
        print(f"constraint keeps {res.n_combos:,} of {n_total:,} combos", file=out)


def _print_best(args, out, res, bundle, params, columns):
    """The table of the best ``--top`` combos, fitted to the terminal, and what it shows."""
    best = res.best(args.metric, args.top)
    axes = [n.rpartition(".")[2] for n, v in params.items() if isinstance(v, list)]
    shown_params = [n for n in best.column_names if n == "strategy"] + list(
        dict.fromkeys(axes)) if axes else [
        n for n in best.column_names
        if n not in ("rank", "combo") and n not in kernels.METRIC_NAMES]
    means = len(res.symbols) > 1  # one row per asset: metrics are means over assets
    names = ["rank", "combo"] + shown_params + list(columns)
    header = names[:2] + shown_params + [metric_header(n, means) for n in columns]
    droppable = [] if args.columns else [
        names.index(n) for n in DROP_ORDER if n in columns and n != args.metric]
    table, note = fitted_table(header, _rows(best, shown_params, columns), out, droppable,
                               names)
    how = ("one portfolio" if len(res.symbols) == 1 and bundle.n_assets > 1
           else "mean over assets" if means else "one asset")
    print(file=out)
    print(f"top {best.num_rows} of {res.n_combos:,} combos by {args.metric} ({how}):",
          file=out)
    print(table, file=out)
    for text in (note, means and wrapped(_footnote(len(res.symbols)), out)):
        if text:
            print(text, file=out)


def _rows(best, shown_params, columns):
    """The cells of the best-combos table: rank, combo, parameters, metrics (means)."""
    data = best.to_pydict()
    return [[str(data["rank"][i]), str(data["combo"][i])]
            + [format_value(n, data[n][i]) for n in shown_params]
            + [format_value(n, data[n][i]) for n in columns]
            for i in range(best.num_rows)]


def _footnote(n_assets):
    """Why the table's metrics are what they are (a sweep over several assets)."""
    return (f"Metrics are means over the {n_assets} assets, each backtested alone; combo is "
            "the id the overfitting check names. Mean total_return and mean cagr can rank "
            "combos differently: a few big compounded winners (and longer histories) pull "
            "up a mean of total returns, while cagr is a rate per year of each asset.")


def _print_summary(args, out, res, bundle):
    print(file=out)
    # one book over every asset per combo (portfolio, rank) or one per asset: its engine's
    unit = "portfolios of" if res.plan.engine.one_book else "combos x"
    rate = (f"{human_rate(res.throughput)} bar-evaluations/s" if res.bar_evaluations
            else "every row was read back from the folder")
    print(f"{res.n_backtests:,} backtests ({res.n_combos:,} {unit} {bundle.n_assets} "
          f"assets), {res.bar_evaluations:,} bar-evaluations in {res.elapsed:.2f} s"
          f"{compiled_note(res.compile_seconds)}: {rate}", file=out)
    if args.out is not None:
        print(f"wrote {res.n_backtests:,} rows to {args.out}", file=out)
    if args.out_dir is not None:
        what = ("a Parquet dataset per strategy: " + ", ".join(
            f"{name}/" for name in res.strategies) if hasattr(res, "parts")
                else "Parquet dataset")
        print(f"wrote {res.n_backtests:,} rows to {args.out_dir} ({what})", file=out)
    if res.metrics is not None and res.n_combos > 1:
        print(f"overfitting check, best by sharpe: {res.deflated_sharpe()}", file=out)
