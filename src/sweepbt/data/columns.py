"""Columns: finding them by role, reading them as arrays, checking their values.

:class:`ColumnSpec` maps the roles ``timestamp, symbol, open, high, low, close, volume,
adj_close`` to the user's column names (and ``factors=`` names to theirs); :func:`numeric` and
:func:`encode_symbols` turn Arrow columns into numpy arrays; :func:`check_values` validates
prices and volumes (finite, positive, consistent OHLC, non-negative volume);
:func:`symbol_list` checks a symbol-selection argument, :func:`factor_list` a ``factors=``
argument.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sweepbt.data.errors import DataError, first_cast_failure, first_true

PRICE_COLS = ("open", "high", "low", "close")
VALUE_COLS = PRICE_COLS + ("volume",)
TS_ALIASES = ("datetime", "date", "time")
#: the columns of :meth:`Bundle.to_table` besides the factors: no factor may be named so
BUNDLE_COLS = ("timestamp", "symbol") + VALUE_COLS
_SYM_ALIASES = ("ticker", "asset")


def symbol_list(symbols, param: str) -> list:
    """A symbol-selection argument (one name or a sequence of names) as a list of distinct
    names; ``TypeError``/``ValueError`` naming ``param`` otherwise."""
    if isinstance(symbols, str):
        return [symbols]
    if isinstance(symbols, (bytes, Mapping)) or not hasattr(symbols, "__iter__"):
        raise TypeError(f"{param}= must be a symbol name (str) or a list of names, got "
                        f"{type(symbols).__name__} {symbols!r}")
    names = list(symbols)
    bad = [s for s in names if not isinstance(s, str)]
    if bad:
        raise TypeError(f"{param}= must hold symbol names (str), got {type(bad[0]).__name__} "
                        f"{bad[0]!r} in {names!r}")
    if not names:
        raise ValueError(f"{param}= is empty: give at least one symbol name")
    twice = sorted(s for s, n in Counter(names).items() if n > 1)
    if twice:
        raise ValueError(f"{param}= names {twice} more than once: {names!r}")
    return names


def factor_list(factors, param: str = "factors") -> tuple:
    """A ``factors=`` argument (None, one name or a sequence of names) as a tuple of
    distinct names (case-insensitively), none of them a Bundle column's name
    (:data:`BUNDLE_COLS`); ``TypeError``/``ValueError`` naming ``param`` otherwise."""
    if factors is None:
        return ()
    if isinstance(factors, str):
        factors = [factors]
    if isinstance(factors, (bytes, Mapping)) or not hasattr(factors, "__iter__"):
        raise TypeError(f"{param}= must be a column name (str) or a list of names, got "
                        f"{type(factors).__name__} {factors!r}")
    names = list(factors)
    bad = [s for s in names if not isinstance(s, str) or not s]
    if bad:
        raise TypeError(f"{param}= must hold column names (non-empty str), got "
                        f"{type(bad[0]).__name__} {bad[0]!r} in {names!r}")
    twice = sorted(s for s, n in Counter(s.lower() for s in names).items() if n > 1)
    if twice:
        raise ValueError(f"{param}= names {twice} more than once (names are "
                         f"case-insensitive): {names!r}")
    taken = [s for s in names if s.lower() in BUNDLE_COLS]
    if taken:
        raise ValueError(f"{param}= names {taken}: a factor cannot be named like a price, "
                         f"volume, time stamp or symbol column {list(BUNDLE_COLS)}")
    return tuple(names)


# --------------------------------------------------------------------------------------
# which column is which
# --------------------------------------------------------------------------------------


def _case_insensitive(names):
    """``one(key)``: the column named ``key`` in any case, None when there is none; an
    error when several columns differ only in case."""
    lower: dict = {}
    for n in names:
        lower.setdefault(str(n).lower(), []).append(n)

    def one(key):
        hits = lower.get(key.lower(), [])
        if len(hits) > 1:
            raise DataError(f"ambiguous columns {hits}: names are case-insensitive")
        return hits[0] if hits else None

    return one


def _timestamp_column(names, one, timestamp):
    if timestamp is not None:
        col = one(str(timestamp))
        if col is None:
            raise DataError(f"missing column {timestamp!r} (timestamp=); columns are "
                            f"{list(names)}")
        return col
    col = one("timestamp")
    if col is None:
        alts = [one(a) for a in TS_ALIASES if one(a) is not None]
        if len(alts) > 1:
            raise DataError(f"no 'timestamp' column and several candidates {alts}: pass "
                            "timestamp=<column name>")
        col = alts[0] if alts else None
    if col is None and "__index_level_0__" in names:
        col = "__index_level_0__"  # an unnamed pandas index
    return col


def _symbol_column(one):
    sym = one("symbol")
    if sym is None:
        alts = [one(a) for a in _SYM_ALIASES if one(a) is not None]
        if len(alts) > 1:
            raise DataError(f"ambiguous symbol column: no 'symbol' column and several "
                            f"candidates {alts}; rename the one holding the symbols to "
                            "'symbol' (or drop the others)")
        sym = alts[0] if alts else None
    return sym


#: ``ohlc=``: which prices the input has; ``adjust=``: which adjustment to apply;
#: ``layout=``: long rows, or a wide table (None: wide when the columns say so)
OHLC_MODES = ("ohlc", "close")
ADJUSTMENTS = (None, "adj_close")
LAYOUTS = (None, "long", "wide")
_ADJ_ALIASES = ("adj_close", "adj close", "adjclose", "adjusted_close", "adjusted close")


class ColumnSpec(NamedTuple):
    """What :func:`load` looks for: the time stamp column's name (None: the usual names),
    ``ohlc`` (``"ohlc"``: open, high, low and close; ``"close"``: a close only),
    ``adjust`` (None, or ``"adj_close"``: an adjusted-close column too), ``factors``
    (the factor columns' names, checked by :func:`factor_list`) and ``layout`` (one of
    :data:`LAYOUTS`: see :meth:`wide_columns`)."""

    timestamp: object = None
    ohlc: str = "ohlc"
    adjust: object = None
    factors: tuple = ()
    layout: object = None

    def checked(self):
        if self.ohlc not in OHLC_MODES:
            raise ValueError(f"ohlc must be one of {OHLC_MODES} ('close': the data has only a "
                             f"close, which becomes open, high and low too), got {self.ohlc!r}")
        if self.adjust not in ADJUSTMENTS:
            raise ValueError(f"adjust must be None or 'adj_close' (scale open, high and low by "
                             f"adj_close / close and use the adjusted close), got "
                             f"{self.adjust!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be None (wide when the columns say so), 'long' or "
                             f"'wide' (a time stamp column and one close column per "
                             f"ticker), got {self.layout!r}")
        if self.layout == "wide" and (self.adjust is not None or self.factors):
            raise ValueError("layout='wide' holds one close per ticker and bar: adjust= and "
                             "factors= need long-format data")
        return self

    def wide_columns(self, names, types=None):
        """``(time stamp column, ticker columns)`` of a wide table, or None for long data.
        ``layout="wide"``: the time stamp column and every other column; ``None``: the
        same when unambiguous (a time stamp column, no symbol, price, volume or adjusted
        close column, at least one other column, all numeric when ``types``, the Arrow
        types by name, are given)."""
        if self.layout == "long":
            return None
        one = _case_insensitive(names)
        ts = _timestamp_column(names, one, self.timestamp)
        tickers = [n for n in names if n != ts]
        if self.layout == "wide":
            if ts is None:
                raise DataError(f"layout='wide' needs a time stamp column (timestamp=); "
                                f"columns are {list(names)}")
            return ts, tickers
        taken = [one(r) for r in (*VALUE_COLS, *_ADJ_ALIASES)] + [_symbol_column(one)]
        if ts is None or not tickers or any(c is not None for c in taken):
            return None
        if types is not None and not all(_is_number_type(types[n]) for n in tickers):
            return None
        return ts, tickers

    def roles(self, names) -> dict:
        """Map roles (timestamp, symbol, open, ..., volume, adj_close) to column names
        (None where absent or not used)."""
        one = _case_insensitive(names)
        out = {"timestamp": _timestamp_column(names, one, self.timestamp),
               "symbol": _symbol_column(one)}
        for role in VALUE_COLS:
            out[role] = one(role) if role in ("close", "volume") or self.ohlc == "ohlc" \
                else None
        adj = [one(a) for a in _ADJ_ALIASES if one(a) is not None]
        out["adj_close"] = adj[0] if adj else None
        _check_roles(out, names, self)
        return out

    def factor_columns(self, names, roles: dict) -> dict:
        """Factor name -> the column holding it (names case-insensitive); an error for a
        factor with no column, or whose column is the time stamp, symbol, a price or the
        volume (``roles``, from :meth:`roles`)."""
        one = _case_insensitive(names)
        cols = {f: one(f) for f in self.factors}
        unknown = [f for f, c in cols.items() if c is None]
        if unknown:
            raise DataError(f"unknown factor column(s) {unknown} (factors=); columns are "
                            f"{list(names)} (names are case-insensitive)")
        used = {c: r for r, c in roles.items()
                if c is not None and (r != "adj_close" or self.adjust is not None)}
        for f, c in cols.items():
            if c in used:
                raise DataError(f"factor {f!r} (factors=) is column {c!r}, which is read as "
                                f"the {used[c]}: a factor must be another column")
        return cols


def _all_numbers(names) -> bool:
    """Whether every column name is a number (a CSV without a header row)."""
    try:
        [float(str(n)) for n in names]
    except ValueError:
        return False
    return bool(names)


def _check_roles(out: dict, names, spec: ColumnSpec) -> None:
    """The error for a missing column, saying which option would help."""
    names = list(names)
    if spec.adjust == "adj_close" and out["adj_close"] is None:
        raise DataError(f"adjust='adj_close' needs an adjusted close column ('Adj Close' or "
                        f"'adj_close'); columns are {names}")
    needed = ("timestamp", "close") if spec.ohlc == "close" else ("timestamp",) + PRICE_COLS
    if spec.ohlc == "close" and spec.adjust == "adj_close":
        needed = ("timestamp",)  # the adjusted close is the close
    missing = [r for r in needed if out[r] is None]
    if not missing:
        return
    hint = ""
    if _all_numbers(names):
        hint = ("; the first line holds numbers, so the file seems to have no header row: "
                "add one (Binance klines: open_time,open,high,low,close,volume,close_time,...)")
    elif "timestamp" in missing:
        hint = "; name the time stamp column with timestamp= (--timestamp-column)"
    elif out["close"] is not None:
        hint = ("; for a close-only series (adjusted closes, index levels) pass ohlc='close' "
                "(--ohlc close): open, high and low then equal the close")
    elif out["adj_close"] is not None:
        hint = ("; for adjusted closes only pass ohlc='close', adjust='adj_close' "
                "(--ohlc close --adjust adj_close)")
    elif out["symbol"] is None and all(out[r] is None for r in VALUE_COLS):
        hint = ("; for a wide table (a time stamp column and one close column per ticker) "
                "pass layout='wide' (--layout wide)")
    raise DataError(f"missing required column(s) {missing}; columns are {names} (names are "
                    f"case-insensitive){hint}")


# --------------------------------------------------------------------------------------
# columns as arrays
# --------------------------------------------------------------------------------------


def plain_array(col):
    """One contiguous Arrow array, dictionary-encoded values decoded; strings of any
    layout (``string_view`` from Polars, ``large_string``) as plain ``string``."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        values = _plain_strings(col.dictionary)  # Arrow cannot decode string_view values
        col = pa.DictionaryArray.from_arrays(col.indices, values).dictionary_decode()
    return _plain_strings(col)


def _plain_strings(col):
    if pa.types.is_string_view(col.type) or pa.types.is_large_string(col.type):
        return pc.cast(col, pa.string())
    return col


def _is_number_type(typ) -> bool:
    if pa.types.is_dictionary(typ):
        return False
    return (pa.types.is_integer(typ) or pa.types.is_floating(typ)
            or pa.types.is_decimal(typ) or pa.types.is_null(typ))


def is_string_type(typ) -> bool:
    return (pa.types.is_string(typ) or pa.types.is_large_string(typ)
            or pa.types.is_string_view(typ))


def first_null(col) -> int:
    """Index of the first null of an Arrow array, or -1."""
    if not col.null_count:
        return -1
    return first_true(np.asarray(pc.is_null(col)))


def numeric(col, name: str, loc):
    """Arrow column -> (float64 numpy array, first null row or -1); integers are rounded
    to the nearest float64 (exact up to 2**53)."""
    col = plain_array(col)
    typ = col.type
    if not _is_number_type(typ):
        detail = ""
        if is_string_type(typ):
            try:
                pc.cast(col, pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                i = first_cast_failure(col, pa.float64())
                detail = f"; first non-numeric value {col[i].as_py()!r} at {loc.where(i)}"
        raise DataError(f"column {name!r} is not numeric (type {typ}){detail}")
    # integers beyond 2**53 round to the nearest float64, as numpy's astype does
    x = pc.cast(col, pa.float64(), safe=not pa.types.is_integer(typ))
    return np.asarray(x.to_numpy(zero_copy_only=False), dtype=np.float64), first_null(col)


def symbol_strings(col, name: str) -> pa.Array:
    """Arrow column of symbols as one string array (integers are read as their digits)."""
    col = plain_array(col)
    typ = col.type
    if pa.types.is_integer(typ):
        return pc.cast(col, pa.string())
    if not is_string_type(typ):
        raise DataError(f"column {name!r} has type {typ}; symbols must be strings")
    return col


def encode_symbols(col, name: str, loc):
    """Arrow column of symbols -> (int codes per row, list of names in order of appearance)."""
    col = symbol_strings(col, name)
    i = first_null(col)
    if i >= 0:
        raise DataError(f"missing (null) symbol: {loc.where(i, name)}")
    enc = pc.dictionary_encode(col)
    codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, [str(s) for s in enc.dictionary.to_pylist()]


# --------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------


def check_values(cols: dict, names: dict, loc, valid=None, nulls=None) -> None:
    """Validate OHLC(V) values. ``cols``: role -> float64 array (all the same shape): the
    prices given (all four, or a close only, optionally ``adj_close``) and optionally
    volume; ``names``: role -> column name shown to the user; ``valid``: bool mask of
    positions to check (None: all); ``nulls``: role -> index of the first null, or -1."""

    def fail(mask, role, problem, detail):
        if valid is not None:
            mask = mask & valid
        i = first_true(mask)
        if i >= 0:
            raise DataError(f"{problem}: {loc.where(i, names[role])}: {detail(i)}")

    prices = [r for r in (*PRICE_COLS, "adj_close") if r in cols]
    for role in cols:
        if nulls and nulls.get(role, -1) >= 0:
            i = nulls[role]
            raise DataError(
                f"missing (null) {'volume' if role == 'volume' else 'price'}: "
                f"{loc.where(i, names[role])}"
                + ("" if role == "volume" else "; pass dropna=True (--dropna) to drop rows "
                   "with a missing price")
            )
    for role in prices:
        x = cols[role]
        fail(~np.isfinite(x), role, "price is NaN or infinite",
             lambda i, x=x, r=role: f"{r}={float(x.flat[i])!r}")
    for role in prices:
        x = cols[role]
        fail(x <= 0, role, "price <= 0", lambda i, x=x, r=role: f"{r}={float(x.flat[i])!r}")
    if all(r in cols for r in PRICE_COLS):
        _check_ohlc(cols, fail)
    v = cols.get("volume")
    if v is not None:
        fail(~((v >= 0) & np.isfinite(v)), "volume", "volume is negative, NaN or infinite",
             lambda i: f"volume={float(v.flat[i])!r}")


def _check_ohlc(cols: dict, fail) -> None:
    """high >= low, and open and close inside [low, high]."""
    o, h, lo, c = (cols[r] for r in PRICE_COLS)
    fail(h < lo, "high", "high < low",
         lambda i: f"high={float(h.flat[i])!r}, low={float(lo.flat[i])!r}")
    for role, x in (("open", o), ("close", c)):
        fail((x < lo) | (x > h), role, f"{role} outside [low, high]",
             lambda i, x=x, r=role: f"{r}={float(x.flat[i])!r}, low={float(lo.flat[i])!r}, "
                                    f"high={float(h.flat[i])!r}")
