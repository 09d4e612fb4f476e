"""The command's output files: checked before any work, written atomically.

Output files (``--out``, ``--trades-out``, ``--report``) are never written over an existing path unless
``--force``; ``--out-dir`` always needs a new path; an input file is never an output
(docs/getting-started.md, "Output files").
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys

from sweepbt._files import write_atomic, write_text
from sweepbt.cli.parsing import CliError
from sweepbt._html_report import report_html
from sweepbt.plot import INSTALL


def strategy_file(spec):
    """The file a ``--strategy FILE.py[:NAME]`` reads, or None for a registered name."""
    if not spec or ".py" not in spec:
        return None
    path, sep, attr = spec.rpartition(":")
    if not sep or not attr.isidentifier() or not path:
        path = spec
    path = os.path.expanduser(path)
    return path if os.path.isfile(path) else None


def input_files(args):
    """``(flag, path)`` of each file the command reads: ``--data`` and a strategy file."""
    found = []
    if getattr(args, "data", None):
        found.append(("--data", args.data))
    specs = getattr(args, "strategy", None)
    for spec in specs if isinstance(specs, list) else [specs]:
        strategy = strategy_file(spec)
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
    if not path:
        raise CliError(f"{flag}: empty path")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(f"{flag}: directory {directory!r} does not exist")
    if not os.access(directory, os.W_OK):
        raise CliError(f"{flag}: directory {directory!r} is not writable")


def check_out_path(path, flag, force, inputs=()):
    """Fail fast, before any work, when output file ``path`` cannot or must not be written.

    An existing path is refused unless ``force``; a directory and an input file
    (``inputs``: ``(flag, path)`` pairs) are refused even with ``force``.
    """
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


def check_resume_flags(args):
    """``--resume`` needs ``--out-dir``; without ``--resume``, ``--out-dir`` must be new."""
    if args.resume and args.out_dir is None:
        raise CliError("--resume continues an --out-dir folder; give --out-dir DIR")
    if args.out_dir is not None and not args.resume:
        check_out_dir(args.out_dir, args.force)


@contextlib.contextmanager
def kept_on_interrupt(out_dir):
    """On Ctrl-C, say that the finished chunks are kept in ``out_dir`` when it exists (a
    run keeps its out= folder's finished chunks and removes a folder it made that holds
    none)."""
    try:
        yield
    except KeyboardInterrupt:
        if out_dir is not None and os.path.isdir(out_dir):
            sys.stderr.write(f"sweepbt: the finished chunks are kept in {out_dir}; run the "
                             "same command with --resume to continue\n")
        raise


def check_out_dir(path, force):
    """``--out-dir`` must name a path that does not exist yet (``--force`` or not); an
    existing sweep folder is continued with ``--resume`` only."""
    from sweepbt._multi import STRATEGIES_FILE  # not at import: the command starts light
    from sweepbt._outdir import MANIFEST

    _check_parent(path, "--out-dir")
    if os.path.lexists(path):
        hint = " (--force replaces files only, never a directory)" if force else ""
        if os.path.isfile(os.path.join(path, STRATEGIES_FILE)):
            hint += "; --resume continues the sweep it holds"
        elif os.path.isfile(os.path.join(path, MANIFEST)):
            hint += f"; --resume continues the {_kind_of(path)} it holds"
        raise CliError(f"--out-dir: {path!r} already exists; results are never written "
                       f"over{hint}")



def _kind_of(folder):
    """What the out= folder ``folder`` holds: its manifest's kind (a sweep if unreadable)."""
    from sweepbt._outdir import MANIFEST, OutDir

    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
            return str(json.load(f).get("kind", OutDir.KIND))
    except (OSError, ValueError, AttributeError):
        return OutDir.KIND


def write_output(path, flag, force, write):
    """``write(tmp)`` to a temporary file next to ``path``, then move it to ``path``
    (:func:`sweepbt._files.write_atomic`).

    Nothing is left behind on any failure or interrupt: ``path`` is either untouched or
    the complete new file. Without ``force`` an existing ``path`` is never replaced, even
    one that appeared while the command ran: a CliError naming ``flag`` then.
    """
    try:
        write_atomic(path, write, replace=force)
    except FileExistsError:
        raise CliError(f"{flag}: {os.fspath(path)!r} was created while this command ran; "
                       "not replaced (pass --force to replace it)") from None


def check_report(args):
    """Fail fast on a ``--report`` path that cannot or must not be written, and on a
    missing matplotlib (before any work)."""
    if getattr(args, "report", None) is None:
        return
    check_out_path(args.report, "--report", args.force, input_files(args))
    try:
        importlib.import_module("matplotlib")  # only whether the extra is installed
    except ImportError:
        raise CliError(f"--report needs matplotlib: {INSTALL}") from None


def write_report(args, result, out):
    """The HTML report of ``result`` to ``--report`` (atomically), when asked."""
    if getattr(args, "report", None) is None:
        return
    html = report_html(result)
    write_output(args.report, "--report", args.force, lambda tmp: write_text(tmp, html))
    print(f"wrote the report to {args.report}", file=out)
