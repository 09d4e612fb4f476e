"""The run flags, built from data: ``sweepbt._options.RunOptions`` (``--strategy``, ``--fill``,
``--sample``, ``--train`` ...) and the sweepable risk/cost options ``sweepbt._params.OPTIONS``
(``--stop-loss``, ``--fees`` ...), so that each default and help text is written once.
"""

from __future__ import annotations

import argparse

from sweepbt.cli.parsing import flag_name
from sweepbt._options import options_of
from sweepbt._params import OPTIONS

#: where the command line's default differs from the API's: ``sweep`` prints the best 10
#: combos (``sweepbt.sweep()`` keeps every combo unless ``top=`` is given)
DISPLAY_DEFAULTS = {"top": 10}

#: the places of ``--param`` with the risk/cost flags, and of ``--columns``, in ORDER
PARAMS, COLUMNS = "--param", "--columns"

#: the order of the run flags in a command's ``--help``: RunOptions field names and the
#: two places above. A flagged RunOptions field not named here comes last.
ORDER = ("strategy", PARAMS, "fill", "direction", "init_cash", "periods_per_year", "threads",
         COLUMNS, "constraint", "train", "test", "step", "anchored", "objective", "partial",
         "sample", "seed", "metric", "top")

_TYPES = {"int": int, "float": float}


class StoreOnce(argparse.Action):
    """``store``, but a flag given twice is an error rather than the last one winning
    (``--strategy a --strategy b`` would otherwise silently run only ``b``)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_flags_given", {})
        if self.dest in given:
            also = ("; only 'sweep' takes several strategies (--strategy A --strategy B)"
                    if self.dest == "strategy" else "")
            parser.error(f"{option_string} given twice ({given[self.dest]!r}, then "
                         f"{values!r}): give it once{also}")
        given[self.dest] = values
        setattr(namespace, self.dest, values)


class Repeatable(argparse.Action):
    """``--strategy`` of ``sweep``: given once, the name; repeated, the list of the names
    given, in order (a sweep of several strategies)."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_flags_given", {})
        if self.dest in given:
            before = getattr(namespace, self.dest)
            values = [*(before if isinstance(before, list) else [before]), values]
        given[self.dest] = values
        setattr(namespace, self.dest, values)


def flagged_options(call):
    """The RunOptions fields that the command for public function ``call`` has flags for."""
    return {f.name: f for f in options_of(call) if f.metadata["flag"]}


def _base_type(field):
    """The first type name of the field's annotation: ``"int | None"`` -> ``"int"``."""
    kind = field.type if isinstance(field.type, str) else getattr(
        field.type, "__name__", str(field.type))
    return kind.split("|")[0].strip()


def _option_kwargs(field, call):
    """``add_argument`` keywords for the flag of RunOptions ``field`` in command ``call``."""
    meta = field.metadata
    text = meta["help"]
    kwargs = {"help": text[call] if isinstance(text, dict) else text}
    kind = _base_type(field)
    if kind == "bool":
        return {"action": "store_true", **kwargs}
    kwargs["action"] = Repeatable if (call, field.name) == ("sweep", "strategy") else StoreOnce
    if kind in _TYPES:
        kwargs["type"] = _TYPES[kind]
    for key in ("choices", "metavar", "required"):
        if meta[key]:
            kwargs[key] = meta[key]
    default = DISPLAY_DEFAULTS.get(field.name, field.default)
    if default is not None:
        kwargs["default"] = default
    return kwargs


def _add_param_flags(p, grid):
    what = ("NAME=VALUE, NAME=A,B,C or NAME=START:STOP:STEP (stop included when on the grid)"
            if grid else "NAME=VALUE")
    also = ("; with several --strategy, NAME applies to each strategy that has it, and "
            "STRATEGY.NAME=SPEC to that strategy only" if grid else "")
    p.add_argument("--param", action="append", default=[], metavar="NAME=SPEC",
                   help=f"a strategy parameter (or any option below), repeatable: {what}"
                        f"{also}")
    for name, option in OPTIONS.items():
        none = "; none = off" if option.allow_none else ""
        extra = "; a comma list or range is a grid axis" if grid else ""
        default = "" if option.default is None else f" (default {option.default:g})"
        p.add_argument(flag_name(name), dest=name, metavar="V", action=StoreOnce,
                       help=f"{option.doc}{default}{none}{extra}")


def add_run_flags(p, call, grid):
    """The flags of the options of public function ``call`` (RunOptions), ``--param`` with
    the risk/cost flags, and ``--columns``; ``grid``: the command takes lists and ranges."""
    options = flagged_options(call)
    names = [n for n in ORDER if n in options or n in (PARAMS, COLUMNS)]
    names += [n for n in options if n not in ORDER]
    for name in names:
        if name == PARAMS:
            _add_param_flags(p, grid)
        elif name == COLUMNS:
            p.add_argument("--columns", metavar="M1,M2,...",
                           help="metric columns to print (default: a readable selection)")
        else:
            p.add_argument(flag_name(name), dest=name, **_option_kwargs(options[name], call))


def risk_texts(args):
    """The risk/cost flags' texts, None where not given: option name -> text."""
    return {name: getattr(args, name) for name in OPTIONS}
