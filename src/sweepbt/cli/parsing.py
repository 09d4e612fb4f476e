"""Parsing the command line's values: numbers, lists, ranges, ``--param NAME=SPEC``.

Grid values on the command line (``--param NAME=SPEC`` and the risk/cost flags):

* ``10`` or ``0.05``: one value (fixed, not an axis);
* ``5,10,20``: a list (a grid axis); ``none`` in a risk rule's list means "rule off";
* ``5:50:5``: ``start:stop:step``, from ``start`` up to and *including* ``stop`` when it lands
  on the grid (``5:50:5`` is 5, 10, ..., 50; ``5:52:5`` stops at 50); ``start:stop`` steps
  by 1. Integers stay integers; with a decimal point anywhere the values are floats, rounded
  to 12 significant digits (``0.01:0.05:0.01`` is 0.01, 0.02, 0.03, 0.04, 0.05).
"""

from __future__ import annotations

import math
import re

from sweepbt.errors import SweepbtError
from sweepbt._params import CHOICE_PARAMS

#: the most values one range may expand to (a typo like ``0:1:1e-9`` fails fast)
MAX_RANGE_VALUES = 1_000_000

_INT_RE = re.compile(r"^[+-]?\d+$")
_NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$")


class CliError(SweepbtError, ValueError):
    """A command-line input error (reported as one line, exit status 2)."""


def flag_name(name):
    """The command-line flag of option ``name``: ``stop_loss`` -> ``--stop-loss``."""
    return "--" + name.replace("_", "-")


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


def _check_range_size(n, text, name):
    if n > MAX_RANGE_VALUES:
        raise CliError(f"{name}: range {text!r} has {n:,} values, more than "
                       f"{MAX_RANGE_VALUES:,}")


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
        _check_range_size((stop - start) // step + 1, text, name)
        return list(range(start, stop + 1, step))
    span = (stop - start) / step
    n = math.floor(span + 1e-9) + 1  # stop counts when within rounding of the grid
    _check_range_size(n, text, name)
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
        raise CliError(f"--param {text!r}: {name!r} is not a parameter name (NAME or "
                       "STRATEGY.NAME)")
    value = _param_value(name.rpartition(".")[2], spec)
    return name, value


def _param_value(name, spec):
    """The value of ``--param NAME=SPEC`` (``NAME`` without a strategy qualifier)."""
    if name == "factor":  # factor_rank's column name (not swept)
        return spec.strip()
    if name == "ascending":
        if spec.strip().lower() not in ("true", "false"):
            raise CliError(f"ascending: expected true or false, got {spec!r}")
        return spec.strip().lower() == "true"
    if name in CHOICE_PARAMS:  # words (rebalance=M,Q; weighting=equal,score): as given
        items = [item.strip() for item in spec.split(",")]
        if not all(items):
            raise CliError(f"{name}: empty item in {spec!r}")
        return items if len(items) > 1 else items[0]
    return parse_values(spec, name)


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
        flag = flag_name(name)
        if name in params:
            raise CliError(f"{name} given twice (--param {name}=... and {flag})")
        params[name] = parse_values(text, flag)
    return params


def strategy_label(spec):
    """How ``--param STRATEGY.NAME`` names the ``--strategy`` given as ``spec``: the name
    itself, or for a strategy file ``path/file.py:name`` its ``name``."""
    return spec.rpartition(":")[2] if ".py:" in spec else spec


def qualified(strategy, params):
    """``(strategy, params)`` for the public call, ``--param STRATEGY.NAME=SPEC`` resolved.

    ``strategy`` is one ``--strategy`` (a name) or several (a list). With several, a
    qualified parameter goes to its strategy's own grid and the call gets the dict form
    ``{strategy: {name: values}}`` (an own value replaces a shared one); with one, it must
    name that strategy and joins the others."""
    specs = strategy if isinstance(strategy, list) else [strategy]
    labels = {strategy_label(s): s for s in specs}
    shared, own = {}, {}
    for key, value in params.items():
        label, dot, name = key.rpartition(".")
        if not dot:
            shared[key] = value
        elif label not in labels:
            raise CliError(f"--param {key}: {label!r} is not a --strategy of this command "
                           f"({', '.join(labels)})")
        else:
            own.setdefault(labels[label], {})[name] = value
    if isinstance(strategy, list):
        return ({s: own.get(s, {}) for s in specs} if own else strategy), shared
    for name, value in own.get(strategy, {}).items():
        if name in shared:
            raise CliError(f"parameter {name!r} given twice ({name}= and "
                           f"{strategy_label(strategy)}.{name}=)")
        shared[name] = value
    return strategy, shared


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
