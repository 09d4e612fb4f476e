"""The one plain-text table renderer (a leaf module: the standard library only)."""

from __future__ import annotations


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
