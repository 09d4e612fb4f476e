"""Readers: any accepted source as a ``pyarrow.Table`` of the needed columns.

:func:`read_source` takes a path (Parquet, Arrow IPC/Feather, CSV/TSV, optionally
compressed), a ``pyarrow.Table``/``RecordBatch``, a pandas ``DataFrame``, a mapping of
columns or any object with ``__arrow_c_stream__``. A file that cannot be read raises a
:class:`DataError` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from sweepbt.data.columns import TS_ALIASES, ColumnSpec, plain_array
from sweepbt.data.errors import DataError
from sweepbt.data.vendors import read_yfinance_csv, unstack_yfinance_frame, yfinance_header

_CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_ARROW_SUFFIXES = (".feather", ".arrow", ".ipc")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_COMPRESSION = (".gz", ".bz2", ".zst", ".lz4")
_FORMATS = {**dict.fromkeys(_CSV_SUFFIXES, "CSV"), **dict.fromkeys(_ARROW_SUFFIXES, "Arrow IPC"),
            **dict.fromkeys(_PARQUET_SUFFIXES, "Parquet")}
_EXPECTED = "expected a .parquet, .feather, .arrow, .ipc or .csv file"


def _datetimes(col, name):
    """A pandas object column of time stamps as datetime64: aware values of different zones
    or offsets are converted to UTC row by row; naive and aware values mixed are an error."""
    import pandas as pd

    try:
        return pd.to_datetime(col)
    except (ValueError, TypeError) as exc:
        aware = [getattr(v, "tzinfo", None) is not None for v in col.dropna()]
        if aware and all(aware):
            return pd.to_datetime(col, utc=True)
        raise DataError(f"column {name!r}: ambiguous time zones (naive and zoned time stamps "
                        f"mixed) or values that are not time stamps: {exc}") from exc


def _pandas_to_table(df, timestamp=None) -> pa.Table:
    import pandas as pd

    df = unstack_yfinance_frame(df)
    cands = {str(timestamp).lower()} if timestamp is not None else {"timestamp", *TS_ALIASES}
    fixed = None
    for name in df.columns:
        col = df[name]
        if str(name).lower() not in cands or getattr(col, "dtype", None) != object:
            continue
        kind = pd.api.types.infer_dtype(col, skipna=True)
        if kind in ("string", "empty", "integer", "floating", "mixed-integer-float",
                    "decimal", "boolean"):
            continue  # strings: parsed (and zone-checked) like CSV; numbers: rejected later
        conv = _datetimes(col, name)
        if fixed is None:
            fixed = df.copy(deep=False)
        fixed[name] = conv
    src = df if fixed is None else fixed
    try:
        return pa.Table.from_pandas(src, preserve_index=None)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"could not convert the DataFrame: {exc}") from exc


def _is_pandas_df(obj) -> bool:
    return (type(obj).__module__ or "").startswith("pandas") and hasattr(obj, "columns") \
        and hasattr(obj, "iloc")


def _read_csv(path: str, ext: str, wanted) -> pa.Table:
    import pyarrow.csv as pcsv

    parse = pcsv.ParseOptions(delimiter="\t") if ext == ".tsv" else pcsv.ParseOptions()
    header = yfinance_header(path, parse.delimiter)
    if header is not None:
        return read_yfinance_csv(path, parse, header)
    try:
        with pcsv.open_csv(path, parse_options=parse) as reader:
            names = reader.schema.names
    except pa.ArrowInvalid as exc:
        if "empty" in str(exc).lower():
            raise DataError(f"empty data: {path} has no rows") from exc
        raise
    roles, cols = wanted(names)
    types = {roles["timestamp"]: pa.string()}
    if roles["symbol"] is not None:
        types[roles["symbol"]] = pa.string()
    conv = pcsv.ConvertOptions(include_columns=cols, column_types=types)
    return pcsv.read_csv(path, parse_options=parse, convert_options=conv)


def _read_ipc(path: str) -> pa.Table:
    """An Arrow IPC file (Feather v1/v2, told by its magic bytes) or an IPC stream."""
    import pyarrow.feather as feather

    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"ARROW1" or magic[:4] == b"FEA1":
        return feather.read_table(path)
    with pa.OSFile(path, "rb") as f:
        return pa.ipc.open_stream(f).read_all()


def _read_path(path: str, spec: ColumnSpec):
    """Read a file into a Table (only the needed columns) and return (table, stem).

    Parquet page checksums are verified when the file has them. A file that cannot be read
    (damaged, truncated, not in its suffix's format) raises a DataError naming it."""
    p = Path(path)
    sfx = [s.lower() for s in p.suffixes]
    if sfx and sfx[-1] in _COMPRESSION:
        sfx = sfx[:-1]
    ext = sfx[-1] if sfx else ""
    stem = p.name
    for _ in range(2):  # strip e.g. ".csv.gz"
        q = Path(stem)
        if q.suffix.lower() in (*_FORMATS, *_COMPRESSION):
            stem = q.stem
    if not p.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if p.is_dir():
        raise IsADirectoryError(f"{path} is a directory, {_EXPECTED}")
    if ext not in _FORMATS:
        raise DataError(f"unsupported file type {p.name!r}: {_EXPECTED}")

    def wanted(names):
        wide = spec.wide_columns(names)
        if wide is not None:  # every column: the time stamp's, then the tickers'
            return {"timestamp": wide[0], "symbol": None}, list(names)
        roles = spec.roles(names)
        cols = [c for c in roles.values() if c is not None]
        return roles, cols + [c for c in spec.factor_columns(names, roles).values()
                              if c not in cols]

    kind = _FORMATS[ext]

    def unreadable(detail) -> DataError:
        return DataError(f"could not read {path} as a {kind} file (is it damaged or "
                         f"truncated?): {detail}")

    try:
        if kind == "Parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(path, page_checksum_verification=True) as pf:
                table = pf.read(columns=wanted(pf.schema_arrow.names)[1])
                if table.num_rows != pf.metadata.num_rows:
                    raise unreadable(f"its footer counts {pf.metadata.num_rows} rows but "
                                     f"{table.num_rows} were read")
        elif kind == "Arrow IPC":
            table = _read_ipc(path)
            table = table.select(wanted(table.column_names)[1])
        else:
            table = _read_csv(path, ext, wanted)
            table = table.select(wanted(table.column_names)[1])
        table.validate(full=True)
        for field in table.schema:  # a stored time zone that is not UTF-8 raises here
            if pa.types.is_timestamp(field.type):
                field.type.tz
    except PermissionError:
        raise
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise unreadable(exc) from exc
    return table, stem


def _without_string_views(table: pa.Table) -> pa.Table:
    """String-view columns (Polars writes them) as plain strings: Arrow cannot yet filter
    or take them."""
    for k, field in enumerate(table.schema):
        typ = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_string_view(typ):
            table = table.set_column(k, field.name, plain_array(table.column(k)))
    return table


def read_source(source, spec: ColumnSpec = ColumnSpec()):
    """(table, default single-asset symbol) for any accepted source; ``spec`` says which
    columns are needed."""
    table, name = _read_any(source, spec)
    return _without_string_views(table), name


def _read_any(source, spec: ColumnSpec):
    if isinstance(source, pa.Table):
        return source, "asset"
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source]), "asset"
    if _is_pandas_df(source):
        return _pandas_to_table(source, spec.timestamp), "asset"
    if isinstance(source, (str, os.PathLike)):
        return _read_path(os.fspath(source), spec)
    if isinstance(source, Mapping) or hasattr(source, "__arrow_c_stream__"):
        try:
            return pa.table(dict(source) if isinstance(source, Mapping) else source), "asset"
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(f"could not make a table of the {type(source).__name__}: "
                            f"{exc}") from exc
    raise TypeError(f"cannot load data from {type(source).__name__}: pass a path, a "
                    "pyarrow.Table, a pandas or Polars DataFrame, or any object with "
                    "__arrow_c_stream__")
