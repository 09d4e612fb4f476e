"""The wording of a user strategy's errors, shared by its checks, probe, run and loading."""

from __future__ import annotations

import re

import numpy as np

from sweepbt.errors import StrategyError

CODES_HELP = ("0 (nothing) or a bit set of ENTER_LONG=1, EXIT_LONG=2, ENTER_SHORT=4, "
              "EXIT_SHORT=8 (BUY=9, SELL=6)")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strategy_error(name, message):
    """``StrategyError("strategy 'name': message")`` (a ValueError)."""
    return StrategyError(f"strategy {name!r}: {message}", name)


def qualname(fn):
    """The qualified name of a user function (of its Python version for a dispatcher)."""
    py = getattr(fn, "py_func", fn)
    return getattr(py, "__qualname__", repr(py))


def strip_ansi(message):
    """``message`` as text without terminal colour codes (numba colours its errors)."""
    return _ANSI.sub("", str(message))


def first_line(message):
    """numba's message, shortened to its first informative line (and the line it
    announces, when it ends with a colon)."""
    lines = [ln.strip() for ln in strip_ansi(message).splitlines()]
    lines = [ln for ln in lines if ln]
    for k, ln in enumerate(lines):
        if not ln.startswith(("Failed in ", "During: ", "- Resolution failure")):
            if ln.endswith(":") and k + 1 < len(lines):
                return f"{ln} {lines[k + 1]}"
            return ln
    return lines[0] if lines else ""


def describe_exc(exc):
    """``TypeName: first line of the message``."""
    text = first_line(str(exc)) if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def show(x):
    """repr of a value as the user wrote it (no numpy scalar wrapper)."""
    return repr(x.item() if isinstance(x, np.generic) else x)


def param_text(declared, values):
    """``name=value, ...`` of declared parameters, or ``no parameters``."""
    return ", ".join(f"{p.name}={show(v)}" for p, v in zip(declared, values)) \
        or "no parameters"
