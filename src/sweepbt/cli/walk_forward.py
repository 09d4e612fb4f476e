"""``sweepbt walk-forward``: sweep each training span, test the winner on the next span."""

from __future__ import annotations

import sys

import sweepbt as sb
from sweepbt._files import write_parquet
from sweepbt._interrupt import checkpoint
from sweepbt.cli.common import (call_options, check_cluster_flags, check_int_flags,
                                compiling, data_header, grid_params, load_data, scheduler_of)
from sweepbt.cli.outputs import (check_out_path, check_report, check_resume_flags,
                                 input_files, kept_on_interrupt, write_output, write_report)
from sweepbt.cli.formatting import table_width
from sweepbt.cli.parsing import qualified
from sweepbt.walkforward import format_walk_forward

#: the options that take a span: all digits = bars, anything else a duration
SPANS = ("train", "test", "step")


def _span(text):
    return int(text) if text is not None and text.isdigit() else text


def cmd_walk_forward(args, out):
    check_int_flags(args)
    check_cluster_flags(args)
    if args.out is not None:
        check_out_path(args.out, "--out", args.force, input_files(args))
    check_resume_flags(args)
    check_report(args)
    params, constraint, _ = grid_params(args)
    bundle = load_data(args)
    checkpoint()
    print(data_header(bundle, args), file=out)
    out.flush()
    strategy, options = call_options(args, "walk_forward")
    strategy, params = qualified(strategy, params)
    options.update({name: _span(options[name]) for name in SPANS}, constraint=constraint)
    if args.out_dir is not None:
        options["out"] = args.out_dir
    with kept_on_interrupt(args.out_dir), scheduler_of(args, options), \
            compiling(strategy, options, ("metrics", "equity")):
        wf = sb.walk_forward(bundle, strategy,
                             progress=(not args.no_progress) and sys.stderr.isatty(),
                             **options, **params)
    checkpoint()
    print(format_walk_forward(wf, width=table_width(out)), file=out)
    if args.out is not None:
        write_output(args.out, "--out", args.force, lambda tmp: write_parquet(wf.windows, tmp))
        print(f"wrote {wf.windows.num_rows} windows to {args.out}", file=out)
    if args.out_dir is not None:
        print(f"wrote the training parts and the result's tables to {args.out_dir}", file=out)
    write_report(args, wf, out)
    return 0
