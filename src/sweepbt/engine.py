"""Orchestration of backtests and sweeps: validate, build signals, call the kernels.

Two stages per sweep: the strategy's indicator and signal stage (each distinct indicator
parameter once per asset, each distinct signal once per asset), then the fused simulation
kernel, one ``prange`` over (combo, asset) pairs, reducing every backtest straight to its
metrics row. The grid is enumerated lazily in chunks, so progress can be shown, Ctrl-C is
honoured between chunks (well under a second apart), and with ``top=`` or ``out=`` memory
stays bounded however large the grid is.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from sweepbt import kernels
from sweepbt._threading import check_threads, kernel_threads, n_threads, single_thread
from sweepbt.bundle import Bundle, load
from sweepbt._files import write_parquet
from sweepbt._validate import check_count
from sweepbt.options import DEFAULTS as D
from sweepbt.params import (
    ESTIMATE_DRAWS, EXACT_COUNT_LIMIT, OPTIONS, build_grid, check_fixed, is_null)
from sweepbt.results import (
    BacktestResult, SweepResult, metric_index, rank_order, sweep_table)
from sweepbt.strategy_lookup import get_strategy

#: a chunk of a sweep aims at this many bar-evaluations (tens of milliseconds of kernel time)
CHUNK_BAR_EVALUATIONS = 50_000_000
#: launches with less work than this run on the calling thread alone: waking a thread pool
#: costs more than it saves, and much more on a busy machine
SERIAL_BAR_EVALUATIONS = 2_000_000
#: a sample= run gives up after this many random draws per combo wanted (constraint too tight)
SAMPLE_DRAWS_PER_COMBO = 256
#: by default a sweep that keeps every row may use at most this share of available memory
MEMORY_SHARE = 0.5
ATR_RULES = ("stop_atr", "take_atr", "trailing_atr")
#: bytes per (combo, asset) row kept in memory: metrics, their Arrow table, combo, symbol
_BYTES_PER_ROW = kernels.N_METRICS * 8 * 2 + 8 + 4
_BYTES_PER_PARAM = 8 * 2


class SweepTooLarge(MemoryError):
    """A sweep whose full results would not fit in memory."""


def _as_bundle(data):
    return data if isinstance(data, Bundle) else load(data)


def _prepare(data, strategy, params, constraint, fill, direction, init_cash,
             periods_per_year, threads, window=None):
    bundle = _as_bundle(data)
    strat = get_strategy(strategy)
    fill_code, dir_code, cash, ppy = check_fixed(fill, direction, init_cash, periods_per_year)
    threads = check_threads(threads)
    window = _check_window(window, bundle.n_bars)
    start, end = _trade_span(bundle, window)
    longest_span = int((bundle.end - bundle.start).max())
    grid = build_grid(strat, params, longest_span, constraint)
    if ppy is None:
        ppy = float(bundle.periods_per_year)
    settings = _Settings(fill_code, dir_code, cash, ppy, threads, start, end)
    fixed = {"fill": fill, "direction": direction, "init_cash": cash,
             "periods_per_year": ppy, "constraint": constraint}
    if window is not None:
        fixed["window"] = list(window)  # as asked, not as each asset's span cuts it
    return bundle, strat, grid, settings, fixed


def _check_window(window, n_bars):
    """``window``: None, or a ``(start_bar, stop_bar)`` pair of integer bar indices with
    ``0 <= start_bar < stop_bar <= n_bars``; returned as a tuple of Python ints."""
    if window is None:
        return None
    if isinstance(window, (str, bytes)) or not hasattr(window, "__len__") \
            or len(window) != 2:
        raise TypeError(f"window must be a (start_bar, stop_bar) pair, got {window!r}")
    lo = check_count("window[0] (start_bar)", window[0], 0, wrong_type=TypeError)
    hi = check_count("window[1] (stop_bar)", window[1], 0, wrong_type=TypeError)
    if not lo < hi <= n_bars:
        raise ValueError(f"window=({lo}, {hi}) must satisfy 0 <= start_bar < stop_bar <= "
                         f"n_bars={n_bars}")
    return lo, hi


def _trade_span(bundle, window):
    """Per-asset bars where backtests trade: the asset's span, cut to ``window``.

    ``window=(start_bar, stop_bar)`` (checked) trades and measures only bars
    ``start_bar <= i < stop_bar``; indicators still warm up on the bars before it, and
    nothing after it is read (every indicator is causal).
    """
    if window is None:
        return bundle.start, bundle.end
    lo, hi = window
    start = np.maximum(bundle.start, lo)
    end = np.minimum(bundle.end, hi)
    return start, np.maximum(end, start)


@dataclass(frozen=True)
class _Settings:
    """The non-sweepable options in kernel form, and the per-asset trade span."""

    fill: int
    direction: int
    init_cash: float
    periods_per_year: float
    threads: object
    start: np.ndarray
    end: np.ndarray


@dataclass(frozen=True)
class _AtrCache:
    """Wilder ATR once per distinct ``atr_window`` per asset (NaN rows if no ATR rule)."""

    windows: np.ndarray
    bank: np.ndarray

    @classmethod
    def build(cls, bundle, grid):
        used = any(n in grid.values and not np.all(is_null(n, grid.values[n]))
                   for n in ATR_RULES)
        if not used:
            return cls(np.zeros(1, np.int64), np.full((bundle.n_assets, 1, bundle.n_bars),
                                                      np.nan))
        windows = np.unique(grid.values["atr_window"] if "atr_window" in grid.values
                            else np.array([OPTIONS["atr_window"].default]))
        bank = np.empty((bundle.n_assets, windows.size, bundle.n_bars))
        kernels.atr_bank(bundle.high, bundle.low, bundle.close, bundle.start, bundle.end,
                         windows, bank)
        return cls(windows, bank)

    def index(self, atr_window):
        if self.windows.size == 1:
            return np.zeros(atr_window.size, np.int64)
        return np.searchsorted(self.windows, atr_window).astype(np.int64)


def _run_chunk(bundle, source, atr, columns, signal_idx, settings, out):
    """One kernel launch: every kept combo of a chunk on every asset, into ``out``.

    ``signal_idx`` is sorted (combos come in grid order), so the chunk needs the events of
    signals ``signal_idx[0] .. signal_idx[-1]`` only.
    """
    first = int(signal_idx[0])
    signals = source.events(first, int(signal_idx[-1]) + 1)
    signal_idx = signal_idx - first
    n_pairs = signal_idx.size * bundle.n_assets
    work = signal_idx.size * int((settings.end - settings.start).sum())
    threads = 1 if work < SERIAL_BAR_EVALUATIONS else n_threads(settings.threads)
    n_tasks = max(1, min(n_pairs, 8 * threads))
    with single_thread() if threads == 1 else contextlib.nullcontext():
        kernels.sweep_metrics(
            *_kernel_inputs(bundle, signals, atr, columns, signal_idx, settings),
            0, n_pairs, n_tasks, out)


def _kernel_inputs(bundle, signals, atr, columns, signal_idx, settings):
    """The arguments shared by ``sweep_metrics`` and ``equity_paths``, in order."""
    return (bundle.open, bundle.high, bundle.low, bundle.close, settings.start, settings.end,
            signals.ptr, signals.event_bar, signals.event_code, signal_idx,
            atr.bank, atr.index(columns["atr_window"]), *_rule_columns(columns),
            settings.fill, settings.direction, settings.init_cash, settings.periods_per_year)


def _equity_paths(bundle, source, atr, grid, settings, flat):
    """Per-bar equity ``(len(flat), n_assets, n_bars)`` of the grid combos ``flat``."""
    columns, signal_idx, _ = grid.columns_at(np.asarray(flat, dtype=np.int64))
    out = np.empty((signal_idx.size * bundle.n_assets, bundle.n_bars))
    if signal_idx.size:
        first = int(signal_idx.min())
        signals = source.events(first, int(signal_idx.max()) + 1)
        with kernel_threads(settings.threads):
            kernels.equity_paths(*_kernel_inputs(bundle, signals, atr, columns,
                                                 signal_idx - first, settings), out)
    return out.reshape(signal_idx.size, bundle.n_assets, bundle.n_bars)


def _rule_columns(columns):
    """Per-combo risk and cost arrays in the kernels' argument order."""
    return tuple(columns[n] for n in (
        "stop_loss", "take_profit", "trailing_stop", "stop_atr", "take_atr", "trailing_atr",
        "max_bars", "fees", "fixed_fees", "slippage", "size"))


def backtest(data, strategy=D.strategy, *, fill=D.fill, direction=D.direction,
             init_cash=D.init_cash, periods_per_year=D.periods_per_year, threads=D.threads,
             window=D.window, **params):
    """Run one backtest per asset and record everything: stats, trades, equity.

    ``data`` is a Bundle or anything :func:`sweepbt.load` takes. ``params`` are the
    strategy's parameters and the risk/cost options (``stop_loss``, ``take_profit``,
    ``trailing_stop``, ``max_bars``, ``fees``, ``fixed_fees``, ``slippage``, ``size``), all
    scalars; see docs/semantics.md for what each means. ``window=(start_bar, stop_bar)``
    trades only inside those bars, with indicators warmed up on the bars before.
    """
    for name, value in params.items():
        if isinstance(value, (list, tuple, range, np.ndarray)) and np.ndim(value) > 0:
            raise ValueError(
                f"{name} is a sequence; backtest() runs one combination: use sweep() to "
                f"sweep {name}")
    bundle, strat, grid, settings, fixed = _prepare(
        data, strategy, params, None, fill, direction, init_cash, periods_per_year, threads,
        window)
    columns, signal_idx, _ = grid.columns_at(np.zeros(1, np.int64))
    n_assets, n_bars = bundle.n_assets, bundle.n_bars
    metrics = np.empty((n_assets, kernels.N_METRICS))
    equity = np.full((n_assets, n_bars), np.nan)
    cash = np.full((n_assets, n_bars), np.nan)
    units = np.full((n_assets, n_bars), np.nan)
    trades = []
    n_trades_col = metric_index("n_trades")
    with kernel_threads(settings.threads):  # every kernel launch of this call
        source = strat.build(bundle, grid.strategy_values)
        atr = _AtrCache.build(bundle, grid)
        signals = source.events(signal_idx[0], signal_idx[0] + 1)
        atr_row = atr.index(columns["atr_window"])[0]
        # first pass: metrics, and the trade counts that size the record buffers
        _run_chunk(bundle, source, atr, columns, signal_idx, settings, metrics)
        for a in range(n_assets):
            event_bar, event_code = signals.of(0, a, n_assets)
            rows = np.empty((int(metrics[a, n_trades_col]), kernels.N_TRADE_FIELDS))
            kernels.backtest_record(
                bundle.open[a], bundle.high[a], bundle.low[a], bundle.close[a],
                settings.start[a], settings.end[a], event_bar, event_code, atr.bank[a, atr_row],
                *(col[0] for col in _rule_columns(columns)), settings.fill,
                settings.direction, settings.init_cash, settings.periods_per_year,
                metrics[a], equity[a], cash[a], units[a], rows)
            trades.append(rows)
    params_used = {}
    for name in grid.names:
        value = columns[name][0]
        params_used[name] = None if is_null(name, value) else value.item()
    return BacktestResult(bundle=bundle, strategy=strat.name, params=params_used,
                          metrics=metrics, equity=equity, cash=cash, units=units,
                          trade_rows=trades, fixed=fixed)


@dataclass(frozen=True)
class SweepEstimate:
    """What a sweep will do before it runs: sizes, work, and memory to keep every row."""

    n_combos: int
    n_backtests: int
    bar_evaluations: int
    result_bytes: int
    available_bytes: int
    #: standard error of ``n_combos``: 0 when counted exactly; a grid of more than
    #: params.EXACT_COUNT_LIMIT combos with a constraint is estimated from a random sample
    n_combos_error: float = 0.0

    @property
    def exact(self) -> bool:
        return self.n_combos_error == 0

    def __str__(self):
        about = "" if self.exact else (
            f"about (+/- {self.n_combos_error:,.0f}, estimated from "
            f"{ESTIMATE_DRAWS:,} random combos of the grid) ")
        return (f"{about}{self.n_combos:,} combos x assets = {self.n_backtests:,} backtests, "
                f"{self.bar_evaluations:,} bar-evaluations; keeping every row needs about "
                f"{_fmt_bytes(self.result_bytes)} (available: "
                f"{_fmt_bytes(self.available_bytes)})")


def _fmt_bytes(n):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def _available_memory():
    """Bytes of memory available to this process (MemAvailable, else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 8 << 30


def _no_combination(grid):
    return ValueError(f"constraint {grid.constraint!r} leaves no combination to run")


def _estimate(bundle, grid, settings, sample=None):
    n_combos, error = grid.count_or_estimate()
    if n_combos == 0 and error == 0:
        raise _no_combination(grid)
    if sample is not None and n_combos - 3 * error >= sample:
        n_combos, error = sample, 0.0  # certainly (3 standard errors) enough to sample from
    elif sample is not None:
        n_combos = min(n_combos, sample)
    n_backtests = n_combos * bundle.n_assets
    result_bytes = n_backtests * (_BYTES_PER_ROW + _BYTES_PER_PARAM * len(grid.names))
    return SweepEstimate(
        n_combos=n_combos, n_backtests=n_backtests,
        bar_evaluations=int(n_combos * (settings.end - settings.start).sum()),
        result_bytes=int(result_bytes), available_bytes=_available_memory(),
        n_combos_error=error)


def estimate(data, strategy=D.strategy, *, constraint=D.constraint, fill=D.fill,
             direction=D.direction, init_cash=D.init_cash,
             periods_per_year=D.periods_per_year, window=D.window, sample=D.sample, **params):
    """Size a sweep without running it: combos, backtests, bar-evaluations, memory."""
    bundle, _, grid, settings, _ = _prepare(data, strategy, params, constraint, fill,
                                            direction, init_cash, periods_per_year, None,
                                            window)
    return _estimate(bundle, grid, settings, _check_sample(sample, None)[0])


class _KeepAll:
    """Collects every (combo, asset) row."""

    def __init__(self):
        self.parts = []

    def add(self, combo_ids, params, metrics):
        self.parts.append((combo_ids, params, metrics))

    def finish(self, names):
        if not self.parts:
            return (np.empty(0, np.int64), {n: np.empty(0) for n in names},
                    np.empty((0, kernels.N_METRICS)))
        combos, params, metrics = zip(*self.parts)
        return (np.concatenate(combos),
                {n: np.concatenate([p[n] for p in params]) for n in names},
                np.concatenate(metrics))


class _KeepTop:
    """Keeps the ``k`` best combos by a metric averaged over assets, as chunks stream by."""

    def __init__(self, k, metric, n_assets):
        self.k, self.metric, self.n_assets = k, metric, n_assets
        self.best = None

    def add(self, combo_ids, params, metrics):
        if self.best is not None:
            old_combos, old_params, old_metrics = self.best
            combo_ids = np.concatenate([old_combos, combo_ids])
            params = {n: np.concatenate([old_params[n], params[n]]) for n in params}
            metrics = np.concatenate([old_metrics, metrics])
        per_combo = metrics.reshape(combo_ids.size, self.n_assets, -1)
        aggregated = per_combo.mean(axis=1)
        ruined = metric_index("ruined")
        aggregated[:, ruined] = per_combo[:, :, ruined].max(axis=1)
        order = np.sort(rank_order(aggregated, combo_ids, self.metric)[:self.k])
        self.best = (combo_ids[order], {n: v[order] for n, v in params.items()},
                     per_combo[order].reshape(-1, per_combo.shape[2]))

    def finish(self, names):
        return self.best if self.best is not None else _KeepAll().finish(names)


class _ParquetParts:
    """Writes each chunk's rows as one file of a Parquet dataset directory.

    Parts go to a hidden temporary directory next to ``path``, renamed to ``path`` only
    when the sweep completes: an interrupted sweep leaves nothing that looks complete.
    """

    def __init__(self, path, bundle, strategy, fixed):
        self.path = os.fspath(path)
        if os.path.exists(self.path):
            raise FileExistsError(f"out={self.path!r} already exists; remove it or pick a "
                                  "new path (results are never written over)")
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"out={self.path!r}: directory {parent!r} does not exist")
        self.tmp = os.path.join(parent, f".{os.path.basename(self.path)}.partial-{os.getpid()}")
        os.makedirs(self.tmp)
        self.bundle, self.strategy, self.fixed = bundle, strategy, fixed
        self.n_parts = 0

    def add(self, combo_ids, params, metrics):
        table = sweep_table(self.bundle, self.strategy, self.fixed, combo_ids, params, metrics)
        write_parquet(table, os.path.join(self.tmp, f"part-{self.n_parts:05d}.parquet"))
        self.n_parts += 1

    def commit(self):
        os.replace(self.tmp, self.path)

    def abort(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def _check_sample(sample, seed):
    """``sample`` (None or a count >= 1) and ``seed`` (None or an integer >= 0)."""
    if sample is None:
        return None, None
    return (check_count("sample", sample),
            None if seed is None else check_count("seed", seed, minimum=0))


def sampled_combos(grid, n, seed):
    """The grid indices a ``sample=n`` run uses, sorted (grid order); None for every combo
    of the grid (it keeps no more than ``n``).

    ``n`` distinct indices are drawn uniformly from the combos that pass the constraint, by
    rejection sampling over the unconstrained product (never materialized, never counted
    when it is larger than EXACT_COUNT_LIMIT); duplicates are dropped keeping the first
    draw, so the sample is uniform without replacement and reproducible for a given
    ``seed``. ValueError when the constraint keeps too few combos to find ``n`` of them
    within SAMPLE_DRAWS_PER_COMBO draws per combo.
    """
    if n is None:
        return None
    if grid.constraint is None or grid.n_total <= EXACT_COUNT_LIMIT:
        if n >= grid.count():
            return None
    rng = np.random.default_rng(seed)
    chosen = np.empty(0, np.int64)
    drawn, budget = 0, SAMPLE_DRAWS_PER_COMBO * max(n, 1024)
    while chosen.size < n:
        if drawn >= budget:
            raise ValueError(
                f"sample={n}: the constraint {grid.constraint!r} kept only {chosen.size:,} "
                f"distinct combos in {drawn:,} random draws from a grid of "
                f"{grid.n_total:,}; use a smaller sample or a looser constraint")
        size = max(1024, 2 * (n - chosen.size))
        draw = rng.integers(0, grid.n_total, size=size)
        drawn += size
        merged = np.concatenate([chosen, grid.columns_at(draw)[2]])
        _, first = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first)]
    return np.sort(chosen[:n])


def sweep(data, strategy=D.strategy, *, constraint=D.constraint, fill=D.fill,
          direction=D.direction, init_cash=D.init_cash, periods_per_year=D.periods_per_year,
          threads=D.threads, progress=D.progress, top=D.top, metric=D.metric, out=D.out,
          max_memory=D.max_memory, sample=D.sample, seed=D.seed, window=D.window, **params):
    """Backtest every combination of the parameter grid on every asset.

    Any strategy parameter or risk/cost option given as a sequence is a grid axis (cartesian
    product, filtered by ``constraint``, e.g. ``"fast < slow"``); ``None`` in a risk rule's
    list means "rule off". ``threads`` sets the kernel thread count for this call (numba's
    default otherwise); ``progress=True`` draws a progress bar on stderr.

    ``sample=N`` runs N combos drawn uniformly (without replacement, reproducibly with
    ``seed``) from the constrained grid, never materializing it; all of them if the grid
    has no more than N. ``window=(start_bar, stop_bar)`` trades only inside those bars, with
    indicators warmed up on the bars before.

    Memory: by default every (combo, asset) row is kept, and a sweep whose rows would need
    more than ``max_memory`` bytes (default: half the available memory) is refused before it
    starts. ``top=k`` keeps only the ``k`` best combos by ``metric`` (mean over assets)
    while streaming; ``out="dir"`` writes every row to a Parquet dataset directory, chunk by
    chunk. With either, memory stays bounded however large the grid is.
    """
    bundle, strat, grid, settings, fixed = _prepare(
        data, strategy, params, constraint, fill, direction, init_cash, periods_per_year,
        threads, window)
    if top is not None:
        top = check_count("top", top)
        metric_index(metric)
    sample, seed = _check_sample(sample, seed)
    size = _estimate(bundle, grid, settings, sample)
    limit = MEMORY_SHARE * size.available_bytes if max_memory is None else max_memory
    if top is None and out is None and size.result_bytes > limit:
        raise SweepTooLarge(
            f"this sweep would keep {size.n_backtests:,} result rows, about "
            f"{_fmt_bytes(size.result_bytes)}, more than the {_fmt_bytes(int(limit))} allowed "
            f"(max_memory); pass top=K to keep only the best K combos, or out='results_dir' "
            f"to stream every row to a Parquet dataset")
    if sample is not None:
        fixed.update(sample=sample, seed=seed)

    t0 = time.perf_counter()
    with kernel_threads(settings.threads), _DeferredInterrupt() as interrupt:
        # Ctrl-C in compiled code waits for its end
        source = strat.build(bundle, grid.strategy_values)
        atr = _AtrCache.build(bundle, grid)
    interrupt.check()
    n_assets = bundle.n_assets
    mean_span = max(1.0, float((settings.end - settings.start).mean()))
    chunk = max(1, int(CHUNK_BAR_EVALUATIONS / (n_assets * mean_span)))
    sampled = sampled_combos(grid, sample, seed)
    n_flat = grid.n_total if sampled is None else sampled.size
    keep = _KeepTop(top, metric, n_assets) if top is not None else (
        _KeepAll() if out is None else None)
    bar = _ProgressBar(size.n_backtests) if progress else None
    sharpe_moments = _SharpeMoments()
    done = 0
    sink = None
    try:
        # inside the try: an interrupt right after its folder is made still removes it
        sink = _ParquetParts(out, bundle, strat.name, fixed) if out is not None else None
        with kernel_threads(settings.threads), _DeferredInterrupt() as interrupt:
            for lo in range(0, n_flat, chunk):
                interrupt.check()
                hi = min(n_flat, lo + chunk)
                flat = (np.arange(lo, hi, dtype=np.int64) if sampled is None
                        else sampled[lo:hi])
                columns, signal_idx, flat = grid.columns_at(flat)
                n_kept = signal_idx.size
                if n_kept == 0:
                    continue
                metrics = np.empty((n_kept * n_assets, kernels.N_METRICS))
                _run_chunk(bundle, source, atr, columns, signal_idx, settings, metrics)
                sharpe_moments.add(metrics, n_kept)
                given = {n: columns[n] for n in grid.names}
                for collector in (keep, sink):
                    if collector is not None:
                        collector.add(flat, given, metrics)
                done += n_kept
                if bar is not None:
                    bar.update(done * n_assets)
            interrupt.check()
        if done == 0:
            raise _no_combination(grid)
        if sink is not None:
            sink.commit()
    except KeyboardInterrupt:
        if sink is not None:
            sink.abort()
        raise KeyboardInterrupt(
            f"sweep interrupted after {done * n_assets:,} of {size.n_backtests:,} "
            "backtests; nothing was written") from None
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    combos = kept_params = metrics = None
    if keep is not None:
        combos, kept_params, metrics = keep.finish(grid.names)
    return SweepResult(
        bundle=bundle, strategy=strat.name, fixed=fixed, names=grid.names, axes=grid.axes,
        n_combos=done, combos=combos, params=kept_params, metrics=metrics,
        elapsed=elapsed, bar_evaluations=done * int((settings.end - settings.start).sum()),
        path=sink.path if sink is not None else None,
        sharpe_moments=sharpe_moments.value(),
        equity_of=lambda flat_ids: _equity_paths(bundle, source, atr, grid, settings,
                                                 flat_ids))


class _SharpeMoments:
    """(count, mean, M2) of every combo's Sharpe (mean over assets), NaN excluded.

    Accumulated chunk by chunk (two-pass per chunk, merged by Chan et al.'s update), so the
    deflated Sharpe ratio sees the spread of all combos tried even when ``top=`` keeps few.
    """

    def __init__(self):
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, metrics, n_combos):
        sharpe = metrics[:, metric_index("sharpe")].reshape(n_combos, -1).mean(axis=1)
        sharpe = sharpe[~np.isnan(sharpe)]
        if sharpe.size == 0:
            return
        mean = float(sharpe.mean())
        m2 = float(((sharpe - mean) ** 2).sum())
        count = self.count + sharpe.size
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * sharpe.size / count
        self.mean += delta * sharpe.size / count
        self.count = count

    def value(self):
        return (self.count, self.mean, self.m2)


class _DeferredInterrupt:
    """Holds Ctrl-C (SIGINT) until the running chunk is done, then raises it at ``check()``.

    A compiled kernel cannot stop half-way; chunks last well under a second, so the sweep
    still stops promptly, and always between chunks. Outside the main thread (where Python
    delivers signals) it does nothing.
    """

    def __enter__(self):
        self.pending = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._hold)
            except ValueError:  # pragma: no cover - embedded interpreters
                self.previous = None
        return self

    def _hold(self, signum, frame):
        self.pending = True

    def check(self):
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


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
        rate = done / elapsed if elapsed > 0 else math.nan
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {frac:6.1%} "
            f"{done:,}/{self.total:,} backtests {elapsed:6.1f}s {rate:,.0f}/s")
        self.stream.flush()

    def close(self):
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
