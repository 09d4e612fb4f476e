"""Vendor layouts turned into long format: yfinance's wide price x ticker columns.

``yf.download(...)`` returns a DataFrame whose columns are a two-level ``(Price, Ticker)``
index; its ``to_csv()`` writes three header rows::

    Price,Adj Close,Close,High,Low,Open,Volume
    Ticker,AAPL,AAPL,AAPL,AAPL,AAPL,AAPL
    Date,,,,,,

(``Ticker`` first with ``group_by="ticker"``). Both become one row per (date, ticker) with a
``Ticker`` column; a ticker's rows with no price at all (before it lists, or a day its
exchange was closed) are left out, as the vendor pads them.
"""

from __future__ import annotations

import csv
import io
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_LEVELS = ("price", "ticker")
_TIME_NAMES = ("date", "datetime", "timestamp")
_PRICE_FIELDS = ("open", "high", "low", "close", "adj close")


class YfinanceHeader(NamedTuple):
    """The three header rows of a yfinance CSV: per data column, its field and ticker."""

    time: str
    fields: list
    tickers: list


def _first_lines(path: str, n: int, limit: int = 1 << 20) -> list:
    """The first ``n`` lines of a (possibly compressed) text file."""
    with pa.input_stream(path, compression="detect") as f:
        head = f.read(limit).decode("utf-8", errors="replace")
    return head.splitlines()[:n]


def yfinance_header(path: str, delimiter: str):
    """The :class:`YfinanceHeader` of a CSV file in yfinance's layout, else None."""
    lines = _first_lines(path, 3)
    if len(lines) < 3:
        return None
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    if len(rows) < 3 or not all(len(r) == len(rows[0]) for r in rows) or len(rows[0]) < 2:
        return None
    heads = tuple(r[0].strip().lower() for r in rows[:2])
    if sorted(heads) != list(_LEVELS) or rows[2][0].strip().lower() not in _TIME_NAMES \
            or any(c.strip() for c in rows[2][1:]):
        return None
    price, ticker = (rows[0], rows[1]) if heads[0] == "price" else (rows[1], rows[0])
    return YfinanceHeader(rows[2][0].strip(), [c.strip() for c in price[1:]],
                          [c.strip() for c in ticker[1:]])


def read_yfinance_csv(path: str, parse, header: YfinanceHeader) -> pa.Table:
    """A yfinance CSV as a long table: ``<time>, Ticker`` and one column per field."""
    import pyarrow.csv as pcsv

    names = [header.time] + [f"c{i}" for i in range(len(header.fields))]
    types = {header.time: pa.string(), **{n: pa.float64() for n in names[1:]}}
    wide = pcsv.read_csv(path, parse_options=parse,
                         read_options=pcsv.ReadOptions(skip_rows=3, column_names=names),
                         convert_options=pcsv.ConvertOptions(column_types=types))
    fields = list(dict.fromkeys(header.fields))
    parts = []
    for ticker in dict.fromkeys(header.tickers):
        cols = {f: wide.column(f"c{i}") for i, (f, t) in enumerate(
            zip(header.fields, header.tickers)) if t == ticker}
        priced = [pc.fill_null(pc.is_valid(pc.if_else(pc.is_nan(c), None, c)), False)
                  for f, c in cols.items() if f.lower() in _PRICE_FIELDS]
        keep = np.logical_or.reduce([np.asarray(m) for m in priced]) if priced else \
            np.ones(wide.num_rows, dtype=bool)
        part = {header.time: wide.column(header.time),
                "Ticker": pa.array([ticker] * wide.num_rows, pa.string())}
        for f in fields:
            part[f] = cols.get(f, pa.nulls(wide.num_rows, pa.float64()))
        parts.append(pa.table(part).filter(pa.array(keep)))
    return pa.concat_tables(parts)


def unstack_yfinance_frame(df):
    """A pandas DataFrame with yfinance's ``(Price, Ticker)`` columns as one row per
    (date, ticker); any other DataFrame unchanged."""
    import pandas as pd

    cols = df.columns
    if not isinstance(cols, pd.MultiIndex) or cols.nlevels != 2 or sorted(
            str(n).lower() for n in cols.names) != list(_LEVELS):
        return df
    ticker = [n for n in cols.names if str(n).lower() == "ticker"][0]
    try:
        long = df.stack(level=ticker, future_stack=True)
    except TypeError:  # pandas < 2.1
        long = df.stack(level=ticker, dropna=False)
    prices = [c for c in long.columns if str(c).lower() in _PRICE_FIELDS]
    if prices:
        long = long[long[prices].notna().any(axis=1)]
    return long.reset_index()
