"""``sweepbt demo --out FILE``: the demo data set written to a file, to start from."""

from __future__ import annotations

import os

import sweepbt as sb
from sweepbt._files import write_parquet
from sweepbt.cli.formatting import data_line
from sweepbt.cli.outputs import check_out_path, write_output
from sweepbt.cli.parsing import CliError

#: the output formats
_SUFFIXES = (".parquet", ".csv")


def _write_csv(table, path):
    import pyarrow.csv as pcsv

    pcsv.write_csv(table, path)


def cmd_demo(args, out):
    suffix = os.path.splitext(args.out)[1].lower()
    if suffix not in _SUFFIXES:
        raise CliError(f"--out: {args.out!r} must end in .parquet or .csv")
    check_out_path(args.out, "--out", args.force)
    bundle = sb.demo()
    write = write_parquet if suffix == ".parquet" else _write_csv
    write_output(args.out, "--out", args.force, lambda tmp: write(bundle.to_table(), tmp))
    print(data_line(bundle, "demo"), file=out)
    print(f"wrote {bundle.n_assets} assets x {bundle.n_bars:,} bars (long format: timestamp, "
          f"symbol, open, high, low, close, volume) to {args.out}", file=out)
    return 0
