"""``sweepbt strategies``: the registered strategies, their parameters, the risk/cost options."""

from __future__ import annotations

import sweepbt as sb
from sweepbt._table import render_table
from sweepbt._format import format_value
from sweepbt.cli.formatting import indent
from sweepbt._params import FIXED_OPTIONS, OPTIONS


def _table(first, items):
    """``first`` (param/option), kind, default, doc of each of ``items``, indented."""
    rows = [[x.name, x.kind, format_value(x.name, x.default), x.doc] for x in items]
    return indent(render_table([first, "kind", "default", "doc"], rows,
                               left={first, "kind", "doc"}))


def cmd_strategies(args, out):
    for name in sorted(sb.STRATEGIES):
        strat = sb.STRATEGIES[name]
        print(f"{name}: {strat.doc}", file=out)
        print(_table("param", strat.params), file=out)
        print(file=out)
    print("risk/cost options (every strategy; any of them can be a grid axis):", file=out)
    print(_table("option", OPTIONS.values()), file=out)
    print(f"fixed options (not sweepable): {', '.join(FIXED_OPTIONS)}", file=out)
    return 0
