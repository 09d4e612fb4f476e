"""The one plain-text table renderer (a leaf module: the standard library only)."""

from __future__ import annotations


#: a default table fits this many characters (the CLI: fewer on a narrower terminal)
TABLE_WIDTH = 100


def render_table(columns, rows, left=(), rule=True):
    """An aligned text table: ``columns`` header names, ``rows`` lists of str cells.

    Cells are right-aligned (numbers) except in the columns named in ``left``; columns are
    two spaces apart and trailing blanks are stripped. ``rule``: a line of dashes under the
    header.
    """
    left = set(left)
    widths = [len(c) for c in columns]
    for row in rows:
        for j, cell in enumerate(row):
            widths[j] = max(widths[j], len(cell))

    def line(cells):
        out = []
        for j, cell in enumerate(cells):
            out.append(cell.ljust(widths[j]) if columns[j] in left else cell.rjust(widths[j]))
        return "  ".join(out).rstrip()

    head = [line(columns)]
    if rule:
        head.append("  ".join("-" * w for w in widths))
    return "\n".join(head + [line(r) for r in rows])


def fit_columns(header, rows, width, droppable):
    """The positions of the columns to print so that the table fits ``width`` characters:
    the columns at the positions ``droppable`` (least important first) go, one by one,
    until it fits (the others always stay); returns ``(kept positions, dropped)``."""
    sizes = [max([len(h)] + [len(r[j]) for r in rows]) for j, h in enumerate(header)]

    def fits(positions):
        return sum(sizes[i] for i in positions) + 2 * (len(positions) - 1) <= width

    kept = list(range(len(header)))
    dropped = []
    for j in droppable:
        if fits(kept):
            break
        kept.remove(j)
        dropped.append(j)
    for j in reversed(dropped[:-1]):  # put back, most important first, what fits again
        if fits(sorted(kept + [j])):
            kept = sorted(kept + [j])
            dropped.remove(j)
    return kept, dropped
