"""Orchestration of backtests and sweeps: validate, build features, call the kernels.

Two stages per sweep: the strategy's indicator stage (each distinct indicator parameter once
per asset), then one ``prange`` over (combo, asset) pairs in the fused simulation kernel,
which reduces every backtest straight to its metrics row. Long sweeps run in chunks of pairs
so progress can be shown and Ctrl-C is honoured between chunks.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from sweepbt import kernels
from sweepbt._threading import check_threads, kernel_threads, n_threads
from sweepbt.bundle import Bundle, load
from sweepbt.params import build_grid, check_fixed
from sweepbt.results import BacktestResult, SweepResult
from sweepbt.strategies import get_strategy

#: a chunk of a sweep aims at this many bar-evaluations (about 0.1 s of kernel time)
CHUNK_BAR_EVALUATIONS = 50_000_000


def _as_bundle(data):
    if isinstance(data, Bundle):
        return data
    return load(data)


def _prepare(data, strategy, params, constraint, fill, direction, init_cash,
             periods_per_year, threads):
    bundle = _as_bundle(data)
    strat = get_strategy(strategy)
    fill_code, dir_code, cash, ppy = check_fixed(fill, direction, init_cash, periods_per_year)
    threads = check_threads(threads)
    longest_span = int((bundle.end - bundle.start).max())
    grid = build_grid(strat, params, longest_span, constraint)
    if ppy is None:
        ppy = float(bundle.periods_per_year)
    return bundle, strat, grid, fill_code, dir_code, cash, ppy, threads


def _option_columns(grid):
    """The per-combo risk/cost arrays in the kernels' argument order."""
    c = grid.columns
    return (c["stop_loss"], c["take_profit"], c["trailing_stop"], c["max_bars"], c["fees"],
            c["fixed_fees"], c["slippage"], c["size"])


def backtest(data, strategy="sma_cross", *, fill="next_open", direction="long",
             init_cash=10_000.0, periods_per_year=None, threads=None, **params):
    """Run one backtest per asset and record everything: stats, trades, equity.

    ``data`` is a Bundle or anything :func:`sweepbt.load` takes. ``params`` are the
    strategy's parameters and the risk/cost options (``stop_loss``, ``take_profit``,
    ``trailing_stop``, ``max_bars``, ``fees``, ``fixed_fees``, ``slippage``, ``size``), all
    scalars; see docs/semantics.md for what each means.
    """
    for name, value in params.items():
        if isinstance(value, (list, tuple, range, np.ndarray)) and np.ndim(value) > 0:
            raise ValueError(
                f"{name} is a sequence; backtest() runs one combination: use sweep() to "
                f"sweep {name}")
    bundle, strat, grid, fill_code, dir_code, cash, ppy, threads = _prepare(
        data, strategy, params, None, fill, direction, init_cash, periods_per_year, threads)
    signals = strat.build(bundle, grid.columns)
    row0 = signals.signal_idx[0] * bundle.n_assets
    risk = [col[0] for col in _option_columns(grid)]
    n_assets, n_bars = bundle.n_assets, bundle.n_bars
    metrics = np.empty((n_assets, kernels.N_METRICS))
    equity = np.full((n_assets, n_bars), np.nan)
    cash_series = np.full((n_assets, n_bars), np.nan)
    units = np.full((n_assets, n_bars), np.nan)
    trades = []
    with kernel_threads(threads):
        # first pass: metrics (and the trade count that sizes the record buffers)
        _run_pairs(bundle, grid, signals, fill_code, dir_code, cash, ppy, 0, n_assets,
                   metrics, threads)
        for a in range(n_assets):
            s, e = bundle.start[a], bundle.end[a]
            out = np.empty((int(metrics[a, kernels.METRIC_NAMES.index("n_trades")]),
                            kernels.N_TRADE_FIELDS))
            ev = slice(signals.ptr[row0 + a], signals.ptr[row0 + a + 1])
            kernels.backtest_record(
                bundle.open[a], bundle.high[a], bundle.low[a], bundle.close[a], s, e,
                signals.event_bar[ev], signals.event_sign[ev], *risk,
                fill_code, dir_code, cash, ppy, metrics[a], equity[a], cash_series[a],
                units[a], out)
            trades.append(out)
    return BacktestResult(bundle=bundle, strategy=strat.name, grid=grid, metrics=metrics,
                          equity=equity, cash=cash_series, units=units, trade_rows=trades,
                          fixed={"fill": fill, "direction": direction, "init_cash": cash,
                                 "periods_per_year": ppy})


def _run_pairs(bundle, grid, signals, fill_code, dir_code, cash, ppy, lo, hi, out, threads):
    """One kernel launch over pairs ``lo <= p < hi`` into ``out`` (hi - lo rows)."""
    n_tasks = max(1, min(hi - lo, 8 * n_threads(threads)))
    kernels.sweep_metrics(
        bundle.open, bundle.high, bundle.low, bundle.close, bundle.start, bundle.end,
        signals.ptr, signals.event_bar, signals.event_sign, signals.signal_idx,
        *_option_columns(grid), fill_code,
        dir_code, cash, ppy, lo, hi, n_tasks, out)


def sweep(data, strategy="sma_cross", *, constraint=None, fill="next_open",
          direction="long", init_cash=10_000.0, periods_per_year=None, threads=None,
          progress=False, **params):
    """Backtest every combination of the parameter grid on every asset.

    Any strategy parameter or risk/cost option given as a sequence is a grid axis (cartesian
    product, filtered by ``constraint``, e.g. ``"fast < slow"``); ``None`` in a risk rule's
    list means "rule off". ``threads`` sets the kernel thread count for this call (numba's
    default otherwise). ``progress=True`` prints a progress bar to stderr.
    """
    bundle, strat, grid, fill_code, dir_code, cash, ppy, threads = _prepare(
        data, strategy, params, constraint, fill, direction, init_cash, periods_per_year,
        threads)
    t0 = time.perf_counter()
    signals = strat.build(bundle, grid.columns)
    n_assets = bundle.n_assets
    n_pairs = grid.n_combos * n_assets
    metrics = np.empty((n_pairs, kernels.N_METRICS))
    mean_span = float((bundle.end - bundle.start).mean())
    chunk = max(1, int(CHUNK_BAR_EVALUATIONS / mean_span))
    bar = _ProgressBar(n_pairs) if progress else None
    with kernel_threads(threads):
        for lo in range(0, n_pairs, chunk):
            hi = min(n_pairs, lo + chunk)
            _run_pairs(bundle, grid, signals, fill_code, dir_code, cash, ppy, lo, hi,
                       metrics[lo:hi], threads)
            if bar is not None:
                bar.update(hi)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    bar_evaluations = int(grid.n_combos * (bundle.end - bundle.start).sum())
    return SweepResult(bundle=bundle, strategy=strat.name, grid=grid, metrics=metrics,
                       elapsed=elapsed, bar_evaluations=bar_evaluations,
                       fixed={"fill": fill, "direction": direction, "init_cash": cash,
                              "periods_per_year": ppy, "constraint": constraint})


class _ProgressBar:
    """A one-line text progress bar on stderr (drawn only on a terminal)."""

    def __init__(self, total, stream=None):
        self.total = total
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done):
        if not self.live:
            return
        frac = done / self.total
        width = 30
        filled = int(width * frac)
        elapsed = time.perf_counter() - self.t0
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {frac:6.1%} "
            f"{done:,}/{self.total:,} backtests {elapsed:6.1f}s")
        self.stream.flush()

    def close(self):
        if self.live:
            self.stream.write("\n")
            self.stream.flush()

