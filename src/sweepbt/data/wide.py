"""Wide tables (a time stamp column and one close column per ticker, as a pandas frame of
closes has them) as the long rows :func:`~sweepbt.data.load` reads.

:func:`as_long` melts such a table into ``(timestamp, symbol, close)`` rows, one per
present (not null, not NaN) cell, ticker by ticker in column order, and keeps each row's
row number in the wide table for error messages.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sweepbt.data.columns import ColumnSpec, numeric
from sweepbt.data.errors import DataError, RowLocator


def as_long(table: pa.Table, spec: ColumnSpec):
    """``(table, spec, rows)``: a wide ``table`` (:meth:`ColumnSpec.wide_columns`) as long
    close-only rows, the spec that reads them and each row's row in ``table``; else
    ``(table, spec, None)`` unchanged."""
    types = {f.name: f.type for f in table.schema}
    found = spec.wide_columns(table.column_names, types)
    if found is None:
        return table, spec, None
    ts_col, tickers = found
    if not tickers:
        raise DataError(f"layout='wide': no ticker column beside the time stamp column "
                        f"{ts_col!r}")
    loc = RowLocator(table.num_rows)
    rows, closes = [], []
    for name in tickers:
        try:
            x, _ = numeric(table.column(name), name, loc)  # null -> NaN: no bar
        except DataError as exc:
            raise DataError(f"wide layout: every column but the time stamp {ts_col!r} is "
                            f"a ticker's close: {exc}") from None
        keep = np.flatnonzero(~np.isnan(x))
        if keep.size == 0:
            raise DataError(f"no data: ticker column {name!r} of the wide table has only "
                            "null or NaN values")
        rows.append(keep)
        closes.append(x[keep])
    counts = [r.size for r in rows]
    code = np.repeat(np.arange(len(tickers), dtype=np.int32), counts)
    symbol = pa.DictionaryArray.from_arrays(pa.array(code), pa.array(tickers, pa.string()))
    where = np.concatenate(rows)
    long = pa.table({ts_col: table.column(ts_col).take(pa.array(where)), "symbol": symbol,
                     "close": pa.array(np.concatenate(closes))})
    return long, spec._replace(timestamp=ts_col, ohlc="close", layout="long"), where
