"""The ``sweepbt`` command line: ``sweep``, ``backtest``, ``walk-forward``, ``strategies``,
``demo`` and ``warmup``.

``sweepbt sweep --demo`` runs a default parameter grid on the packaged demo data and prints
the best combinations; ``--data FILE`` runs on your own prices. Errors in the input are one
line on stderr (``sweepbt: error: ...``) and exit status 2 (set ``SWEEPBT_DEBUG=1`` for the
traceback instead); Ctrl-C exits with 130, SIGTERM with 143, and neither leaves output.

Output files (``--out``, ``--trades-out``) are written atomically and never over an existing
path unless ``--force``; ``--out-dir`` always needs a new path; an input file is never an
output (docs/getting-started.md, "Output files"). Grid values on the command line: see
:mod:`sweepbt.cli.parsing`.

The modules: ``parser`` (the argument parser; the run flags are built in ``flags`` from
``sweepbt._options.RunOptions`` and ``sweepbt._params.OPTIONS``), ``parsing`` (flag values),
``formatting`` (table cells), ``outputs`` (output paths, atomic writes), ``common`` (what
the commands share) and one module per command.
"""

from __future__ import annotations

import os
import sys

from sweepbt._interrupt import CommandGuard, start_up_interrupted, stopped

# Only light modules here, and a Ctrl-C while they load (the `sweepbt` script) exits with
# 130 like one during main(); argparse and the commands are imported inside main().
try:
    from sweepbt._table import render_table
    from sweepbt._format import format_value
    from sweepbt.cli.outputs import strategy_file
    from sweepbt.cli.parsing import (CliError, collect_params, parse_columns, parse_number,
                                     parse_param, parse_range, parse_values)
except KeyboardInterrupt:
    start_up_interrupted()
    raise

__all__ = ["CliError", "collect_params", "format_value", "main", "parse_columns",
           "parse_number", "parse_param", "parse_range", "parse_values", "render_table"]


def _commands():
    """Command name -> function(args, out) returning the exit status."""
    from sweepbt.cli.backtest import cmd_backtest
    from sweepbt.cli.demo import cmd_demo
    from sweepbt.cli.strategies import cmd_strategies
    from sweepbt.cli.sweep import cmd_sweep
    from sweepbt.cli.walk_forward import cmd_walk_forward
    from sweepbt.cli.warmup import cmd_warmup

    return {"sweep": cmd_sweep, "backtest": cmd_backtest, "walk-forward": cmd_walk_forward,
            "strategies": cmd_strategies, "demo": cmd_demo, "warmup": cmd_warmup}


def _error(message):
    message = " ".join(str(message).split())  # one line, whatever the exception held
    sys.stderr.write(f"sweepbt: error: {message}\n")
    sys.stderr.flush()
    return 2


def _run(args):
    """Run the command; a ``sys.exit()`` in code it runs (a strategy file) is an error."""
    command = _commands()[args.command]
    try:
        return command(args, sys.stdout)
    except SystemExit as exc:
        by = (f"--strategy {args.strategy}: the strategy file"
              if strategy_file(getattr(args, "strategy", None)) else "code run by sweepbt")
        raise CliError(f"{by} called sys.exit({exc.code!r}) during '{args.command}'; "
                       "no output was written (raise an exception instead)") from None


def _quiet_broken_pipe():
    """The reader went away (e.g. ``| head``): stop quietly, exit status 141."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    return 141


def main(argv=None):
    """Entry point of the ``sweepbt`` command; returns the exit status.

    The interrupt handling is set up first: a Ctrl-C at any point of the command exits with
    130 and one line, no traceback (SIGTERM: 143), and leaves no output. Run as the program
    (``argv`` None) the process exits at once then (:func:`sweepbt._interrupt.stopped`).
    """
    guard = None
    try:
        guard = CommandGuard()
        with guard:
            from sweepbt.cli.parser import build_parser

            args = build_parser().parse_args(argv)
            return _run(args)
    except KeyboardInterrupt:
        return stopped(guard is not None and guard.terminated, exit_now=argv is None)
    except Exception as exc:
        if guard is not None and guard.seen:
            # The interrupt surfaced as another exception: C code it landed in turned it
            # into one (numpy's import raises ImportError), or cleanup failed after it.
            return stopped(guard.terminated, exit_now=argv is None)
        if isinstance(exc, BrokenPipeError):
            return _quiet_broken_pipe()
        if isinstance(exc, (ValueError, TypeError, OSError)) and not os.environ.get(
                "SWEEPBT_DEBUG"):
            return _error(exc)
        raise
