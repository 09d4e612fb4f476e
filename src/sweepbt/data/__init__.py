"""The data layer: loading, validating and holding price data.

A :class:`Bundle` holds one contiguous float64 row per asset (``open, high, low, close,
volume`` of shape ``(n_assets, n_bars)``) on a shared UTC timestamp axis, plus each asset's
valid span ``start[a] <= i < end[a]``, the data's own time zone ``tz`` (whose calendar days
count for ``periods_per_year``) and any factor columns (``factors``: float64 arrays like the
prices, NaN where missing). Everything that reaches the compiled kernels comes through here
and has been validated: finite positive prices inside every span, consistent OHLC,
non-negative volume, strictly increasing timestamps, no gaps (or explicitly filled), finite
or NaN factors.

Public entry points: :func:`load`, :func:`demo`, :meth:`Bundle.from_arrays`,
:func:`infer_periods_per_year`. Every data problem raises a :class:`DataError`
(a :class:`ValueError`) naming the symbol, the row (0-based row number of the user's input,
and its timestamp) and the column.

Modules, each importing only those above it: ``errors`` (DataError, naming and finding bad
rows), ``columns`` (columns by role, as arrays, value checks), ``vendors`` (vendor layouts
such as yfinance's, made long), ``times`` (time stamps, zones, bars per year), ``factors``
(factor columns: extra numbers per asset and bar, NaN allowed), ``wide`` (a wide table of
one close column per ticker, made long), ``bundle`` (the Bundle class and its check of
arrays written after it was built), ``readers`` (files, pandas, Polars and Arrow sources), ``loading``
(:func:`load`, :func:`demo`). Also here: ``demo.parquet``, the demo data set, and
``make_demo``, which writes it.
"""

from sweepbt.data.bundle import Bundle
from sweepbt.data.errors import DataError
from sweepbt.data.loading import demo, load
from sweepbt.data.times import infer_periods_per_year

__all__ = ["Bundle", "DataError", "demo", "infer_periods_per_year", "load"]
