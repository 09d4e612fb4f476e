"""Small HTML pieces for notebook displays and reports: escaped tables, no scripts, no links.

A leaf module: cells are formatted by :func:`sweepbt._format.format_value`, every text is
escaped, and nothing refers to a network resource.
"""

from __future__ import annotations

import html

import numpy as np
import pyarrow as pa

from sweepbt._format import format_value

#: the style of every sweepbt table, sent with each one (a report or a notebook needs no
#: stylesheet of its own); a text cell has class ``t`` (left-aligned)
TABLE_STYLE = ("<style>table.sweepbt{border-collapse:collapse;font-family:ui-monospace,"
               "monospace;font-size:12px}table.sweepbt td,table.sweepbt th{padding:2px 8px;"
               "border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}table.sweepbt .t{text-align:"
               "left}</style>")


def escape(text):
    """``text`` as HTML text (``<``, ``>``, ``&`` and quotes escaped)."""
    return html.escape(str(text), quote=True)


def html_table(columns, rows, *, caption=None, max_rows=None,
               cell_style=None, cell_text=None):
    """An HTML ``<table class="sweepbt">`` of ``rows`` (lists of values, one per column).

    Values are formatted by name (percentages, ratios, counts), or by ``cell_text(column,
    value)`` when given; text is left as it is. ``max_rows`` keeps the first rows and says
    how many were left out. ``cell_style(column, value)`` may return extra CSS for a cell
    (the report's heat-map colours).
    """
    rows = list(rows)
    shown = rows if max_rows is None else rows[:max_rows]
    out = [TABLE_STYLE, '<table class="sweepbt">']
    if caption:
        out.append(f'<caption style="text-align:left;font-weight:bold">{escape(caption)}'
                   "</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns)
               + "</tr></thead><tbody>")
    for row in shown:
        cells = []
        for name, value in zip(columns, row):
            if isinstance(value, str):
                text = value
            elif cell_text is not None:
                text = cell_text(name, value)
            else:
                text = format_value(name, value)
            text_class = ' class="t"' if isinstance(value, str) else ""
            extra = cell_style(name, value) if cell_style is not None else ""
            style = f' style="{extra}"' if extra else ""
            cells.append(f"<td{text_class}{style}>{escape(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if len(shown) < len(rows):
        out.append(f"<p><i>{len(rows) - len(shown):,} more rows not shown</i></p>")
    return "".join(out)


def arrow_html(table, *, caption=None, max_rows=20, columns=None):
    """:func:`html_table` of a pyarrow Table (its first ``max_rows`` rows; ``columns``: a
    subset, default all). Time stamps show as ISO text."""
    names = list(columns) if columns is not None else list(table.column_names)
    head = table.slice(0, max_rows) if max_rows is not None else table
    data = {n: column_values(head.column(n)) for n in names}
    rows = [[data[n][i] for n in names] for i in range(head.num_rows)]
    more = table.num_rows - head.num_rows
    return html_table(names, rows, caption=caption) + (
        f"<p><i>{more:,} more rows not shown</i></p>" if more > 0 else "")


def column_values(column):
    """A pyarrow column as Python values; time stamps as ISO text (dates alone when at
    midnight) and durations as days, converted here (pyarrow would import pandas)."""
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_duration(kind):
        ints = column.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        missing = column.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_duration(kind):
            return [None if m else f"{v / 86_400e9:,.0f} days" for v, m in zip(ints, missing)]
        day = np.int64(86_400_000_000_000)
        unit = "D" if bool(np.all(ints[~missing] % day == 0)) else "m"
        text = np.datetime_as_string(ints.astype("datetime64[ns]"), unit=unit)
        return [None if m else str(t) for t, m in zip(text, missing)]
    return column.to_pylist()
