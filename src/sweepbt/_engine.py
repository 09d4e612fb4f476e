"""The public calls that run grids: ``backtest``, ``sweep`` and ``estimate``.

Each validates its arguments into a :class:`sweepbt._plan.Plan`, then runs the plan's
chunks through an executor (:mod:`sweepbt._executors`) into result sinks
(:mod:`sweepbt._sinks`). Two compiled stages run per sweep: the strategy's indicator and
signal stage (each distinct indicator parameter once per asset, each distinct signal once
per asset), then the fused simulation kernel, one ``prange`` over (combo, asset) pairs,
reducing every backtest straight to its metrics row. The grid is enumerated lazily in
chunks, so progress can be shown, Ctrl-C is honoured between chunks (well under a second
apart), and with ``top=`` or ``out=`` memory stays bounded however large the grid is.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace

import numpy as np

from sweepbt._compiling import notice
from sweepbt._format import format_bytes
from sweepbt._interrupt import DeferredInterrupt, InterruptedRun, interrupted_run
from sweepbt._progress import ProgressBar
from sweepbt._validate import check_count
from sweepbt.errors import SweepTooLarge
from sweepbt._executors import executor_for, run_chunks
from sweepbt._multi import (MultiOutDir, MultiSweepResult, plan_several, sampled_several,
                           several)
from sweepbt._options import AUTO_PROGRESS_BAR_EVALUATIONS, DEFAULTS as D
from sweepbt._params import ESTIMATE_DRAWS, drop_result_columns
from sweepbt._plan import (check_resume, check_sample, no_combination, prepare,
                          sampled_combos)
from sweepbt._outdir import OutDir
from sweepbt._results import SweepResult, record_backtest
from sweepbt._sinks import KeepAll, KeepTop, SharpeMoments
from sweepbt.strategies.lookup import get_strategy
from sweepbt._vocabulary import N_METRICS

#: by default a sweep that keeps every row may use at most this share of available memory
MEMORY_SHARE = 0.5
#: bytes per (combo, asset) row kept in memory: metrics, their Arrow table, combo, symbol
_BYTES_PER_ROW = N_METRICS * 8 * 2 + 8 + 4
_BYTES_PER_PARAM = 8 * 2


def backtest(data, strategy=D.strategy, *, fill=D.fill, direction=D.direction,
             init_cash=D.init_cash, periods_per_year=D.periods_per_year, threads=D.threads,
             window=D.window, portfolio=D.portfolio, size_type=D.size_type,
             commission=D.commission, **params):
    """Run one backtest per asset and record everything: stats, trades, equity.

    ``data`` is a Bundle or anything :func:`sweepbt.load` takes. ``params`` are the
    strategy's parameters and the risk/cost options (``stop_loss``, ``take_profit``,
    ``trailing_stop``, ``max_bars``, ``fees``, ``fixed_fees``, ``slippage``, ``size``), all
    scalars; see docs/semantics.md for what each means. ``window=(start_bar, stop_bar)``
    trades only inside those bars, with indicators warmed up on the bars before.

    ``portfolio=True`` runs one backtest over every asset with one shared cash balance
    (``size`` per ``size_type``, ``max_positions``; docs/semantics.md, Portfolio
    backtests) and returns a :class:`~sweepbt._results.PortfolioResult`.

    A row of a sweep's ``best()`` or ``table`` may be passed whole (``**row``): its result
    columns (``rank``, ``combo``, ``symbol``, the metrics) are ignored, its parameters run
    (docs/report.md).
    """
    strategy = get_strategy(strategy)
    params = drop_result_columns(strategy, params)
    for name, value in params.items():
        if isinstance(value, (list, tuple, range, np.ndarray)) and np.ndim(value) > 0:
            raise ValueError(
                f"{name} is a sequence; backtest() runs one combination: use sweep() to "
                f"sweep {name}")
    options = replace(D, strategy=strategy.name, fill=fill, direction=direction,
                      init_cash=init_cash, periods_per_year=periods_per_year,
                      threads=threads, window=window, portfolio=portfolio,
                      size_type=size_type, commission=commission)
    return record_backtest(prepare(data, strategy, params, options))


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
                f"{format_bytes(self.result_bytes)} (available: "
                f"{format_bytes(self.available_bytes)})")


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


def _estimate(plan, sample=None):
    grid = plan.grid
    n_combos, error = grid.count_or_estimate()
    if n_combos == 0 and error == 0:
        raise no_combination(grid)
    if sample is not None and n_combos - 3 * error >= sample:
        n_combos, error = sample, 0.0  # certainly (3 standard errors) enough to sample from
    elif sample is not None:
        n_combos = min(n_combos, sample)
    n_backtests = n_combos * plan.n_rows
    result_bytes = n_backtests * (_BYTES_PER_ROW + _BYTES_PER_PARAM * len(grid.names))
    return SweepEstimate(
        n_combos=n_combos, n_backtests=n_backtests,
        bar_evaluations=int(n_combos * plan.settings.bars_per_combo),
        result_bytes=int(result_bytes), available_bytes=_available_memory(),
        n_combos_error=error)


def estimate(data, strategy=D.strategy, *, constraint=D.constraint, fill=D.fill,
             direction=D.direction, init_cash=D.init_cash,
             periods_per_year=D.periods_per_year, window=D.window, sample=D.sample,
             portfolio=D.portfolio, size_type=D.size_type, commission=D.commission,
             **params):
    """Size a sweep without running it: combos, backtests, bar-evaluations, memory."""
    options = replace(D, strategy=strategy, constraint=constraint, fill=fill,
                      direction=direction, init_cash=init_cash,
                      periods_per_year=periods_per_year, window=window, sample=sample,
                      portfolio=portfolio, size_type=size_type, commission=commission)
    if several(strategy):
        plans = plan_several(data, strategy, params, options)
        return _total(_sizes(plans, sampled_several(plans, check_sample(sample, None)[0],
                                                    None)))
    plan = prepare(data, strategy, params, options)
    return _estimate(plan, plan.options.sample)


def _sizes(plans, ids):
    """The estimate of each of ``plans`` run on its ``ids`` (None: its whole grid)."""
    return [_estimate(plan, None if i is None else i.size) for plan, i in zip(plans, ids)]


def _total(sizes):
    """The estimate of several sweeps run one after the other (several strategies)."""
    return replace(sizes[0], n_combos_error=float(np.hypot.reduce(
        [s.n_combos_error for s in sizes])), **{k: sum(getattr(s, k) for s in sizes) for k in (
            "n_combos", "n_backtests", "bar_evaluations", "result_bytes")})


def sweep(data, strategy=D.strategy, *, constraint=D.constraint, fill=D.fill,
          direction=D.direction, init_cash=D.init_cash, periods_per_year=D.periods_per_year,
          threads=D.threads, progress=D.progress, top=D.top, metric=D.metric, out=D.out,
          resume=D.resume, max_memory=D.max_memory, sample=D.sample, seed=D.seed,
          window=D.window, portfolio=D.portfolio, size_type=D.size_type,
          commission=D.commission, scheduler=D.scheduler, **params):
    """Backtest every combination of the parameter grid on every asset.

    Any strategy parameter or risk/cost option given as a sequence is a grid axis (cartesian
    product, filtered by ``constraint``, e.g. ``"fast < slow"``); ``None`` in a risk rule's
    list means "rule off". ``threads`` sets the kernel thread count for this call (numba's
    default otherwise); ``progress=True`` draws a progress bar with an ETA (on a terminal's
    stderr, or in Jupyter), ``False`` never; by default it is drawn when the sweep has more
    than ``AUTO_PROGRESS_BAR_EVALUATIONS`` bar-evaluations (a few seconds of work). A
    first run that compiles kernels says so on stderr ("compiling kernels (first run
    only, about N s)"), progress bar or not. The result's ``compile_seconds``
    is that compile time, apart from ``elapsed`` (the run) and so from ``throughput``;
    :func:`sweepbt.warmup` compiles everything ahead of time.

    ``sample=N`` runs N combos drawn uniformly (without replacement, reproducibly with
    ``seed``) from the constrained grid, never materializing it; all of them if the grid
    has no more than N. ``window=(start_bar, stop_bar)`` trades only inside those bars, with
    indicators warmed up on the bars before.

    Memory: by default every (combo, asset) row is kept, and a sweep whose rows would need
    more than ``max_memory`` bytes (default: half the available memory) is refused before it
    starts. ``top=k`` keeps only the ``k`` best combos by ``metric`` (mean over assets)
    while streaming; ``out="dir"`` writes every row to a Parquet dataset directory, chunk by
    chunk. With either, memory stays bounded however large the grid is.

    ``portfolio=True`` makes each combo one backtest over every asset with one shared
    cash balance: one row per combo, symbol ``"portfolio"`` (docs/semantics.md).

    ``strategy`` may list several strategies (a list or tuple of names or Strategy
    objects, or a dict ``{strategy: {param: values}}`` giving each its own grid): each
    runs its own grid, one after the other, into one
    :class:`~sweepbt._multi.MultiSweepResult` with a ``strategy`` column and combo ids
    unique across strategies (docs/getting-started.md, "Several strategies in one sweep";
    ``sample=`` draws from their joined grid);
    their ``out=`` folder holds an out= folder per strategy (docs/distributed.md).

    ``out=`` folders resume: a stopped sweep keeps its finished chunks, and the same call
    with ``resume=True`` runs only the missing ones (the folder's manifest must describe the
    same data, strategy, grid and options); the result equals an uninterrupted run's.
    ``scheduler=`` (a ``dask.distributed.Client`` or an address such as
    ``"tcp://host:8786"``) runs the chunks on a Dask cluster, with the same result
    (``pip install "sweepbt[distributed]"``). See docs/distributed.md.
    """
    run = replace(D, strategy=strategy, constraint=constraint, fill=fill,
                  direction=direction, init_cash=init_cash,
                  periods_per_year=periods_per_year, threads=threads, progress=progress,
                  top=top, metric=metric, out=out, resume=resume, max_memory=max_memory,
                  sample=sample, seed=seed, window=window, portfolio=portfolio,
                  size_type=size_type, commission=commission, scheduler=scheduler)
    if several(strategy):
        return _sweep_several(plan_several(data, strategy, params, run), run)
    return _sweep_plan(prepare(data, strategy, params, run), None, run)


def _sweep_several(plans, run):
    """:func:`sweep` of several strategies' plans, one after the other; with ``out=`` into
    a :class:`~sweepbt._multi.MultiOutDir` (a folder per strategy: one that is complete
    returns at once, an interrupted one resumes)."""
    sample, seed = check_sample(run.sample, run.seed)
    check_resume(run.resume, run.out, sample, seed)
    ids = sampled_several(plans, sample, seed)
    sizes = _sizes(plans, ids)
    total = _total(sizes)
    progress = run.progress
    if progress is None:
        progress = total.bar_evaluations > AUTO_PROGRESS_BAR_EVALUATIONS
    bar = ProgressBar(total.n_backtests) if progress else None  # one bar for them all
    done = [0]  # backtests run by the strategies before

    def part(k, out):
        if ids[k] is not None and ids[k].size == 0:  # none of its combos was drawn
            return _no_rows(plans[k])
        stretch = False if bar is None else bar.stretch(done[0])
        res = _sweep_plan(plans[k], sizes[k], replace(run, out=out, progress=stretch), total,
                          ids[k])
        done[0] += res.n_combos * plans[k].n_rows
        return res

    try:
        return _run_several(plans, run, ids, part)
    finally:
        if bar is not None:
            bar.close()


def _run_several(plans, run, ids, part):
    """The strategies' results, ``part(k, out)`` each, joined; with ``out=`` in a
    MultiOutDir."""
    if run.out is None:
        return MultiSweepResult.of([part(k, None) for k in range(len(plans))], run.top,
                                   run.metric)
    folder, parts = None, []
    try:
        with DeferredInterrupt() as held:  # made and named as one step (see run_chunks)
            folder = MultiOutDir.open(run.out, plans, run.resume, ids)
        held.check()
        for k, plan in enumerate(plans):
            parts.append(part(k, folder.sub(plan)))
        return MultiSweepResult.of(parts, run.top, run.metric, folder.finish())
    except KeyboardInterrupt as exc:
        if folder is None:
            raise
        k = len(parts)
        got = interrupted_run(exc) or InterruptedRun("sweep", None, None, "")
        where = (f"strategy {plans[k].strategy.name!r}, {k + 1} of {len(plans)}"
                 if k < len(plans) else "every strategy finished")
        raise KeyboardInterrupt(InterruptedRun(got.what, got.done, got.total,
                                               folder.stopped_note(k), where)) from None
    finally:
        if folder is not None and not folder.index["complete"]:
            folder.discard_if_new_and_empty()


def _sweep_plan(plan, size, run, memory_size=None, ids=...):
    """:func:`sweep` of one prepared plan (``run``: the call's options.RunOptions);
    ``size`` its estimate (None: made here); ``memory_size`` the estimate the memory limit
    is checked against (default ``size``: a multi-strategy sweep checks their total);
    ``ids`` the grid ids to run (None: all; default: the plan's sample)."""
    sample, seed = plan.options.sample, plan.options.seed
    out, resume, progress = run.out, run.resume, run.progress
    check_resume(resume, out, sample, seed)
    size = _estimate(plan, sample) if size is None else size
    keep = _keeper(plan, size if memory_size is None else memory_size, run.top,
                   run.metric, out, run.max_memory)
    t0 = time.perf_counter()
    moments = SharpeMoments(plan.n_rows)
    if progress is None:
        progress = size.bar_evaluations > AUTO_PROGRESS_BAR_EVALUATIONS
    executor = executor_for(run.scheduler)
    with notice(plan) as compiling:
        ids = sampled_combos(plan.grid, sample, seed) if ids is ... else ids
        folder = None if out is None else lambda: OutDir.open(out, plan, ids, resume)
        done, path = run_chunks(plan, ids, [moments, keep], executor, folder, progress,
                                size.n_backtests, plan.n_rows)
    kept = keep.finish() if keep is not None else None
    return SweepResult(
        bundle=plan.bundle, symbols=plan.row_symbols, strategy=plan.strategy.name,
        fixed=plan.fixed, names=plan.grid.names, axes=plan.grid.axes, n_combos=done,
        combos=None if kept is None else kept.ids,
        param_columns=None if kept is None else kept.params,
        metrics=None if kept is None else kept.metrics,
        elapsed=time.perf_counter() - t0 - compiling.seconds,
        bar_evaluations=executor.done * plan.settings.bars_per_combo, path=path,
        compile_seconds=compiling.seconds, sharpe_moments=moments.finish(), plan=plan)


def _no_rows(plan):
    """The result of a strategy of a sampled multi-strategy sweep none of whose combos
    was drawn: no rows (it keeps its place, so the joined combo ids stay the same)."""
    names = plan.grid.names
    return SweepResult(
        bundle=plan.bundle, symbols=plan.row_symbols, strategy=plan.strategy.name,
        fixed=plan.fixed, names=names, axes=plan.grid.axes, n_combos=0,
        combos=np.empty(0, np.int64),
        param_columns={n: np.empty(0, plan.grid.values[n].dtype) for n in names},
        metrics=np.empty((0, N_METRICS)), elapsed=0.0, bar_evaluations=0, path=None,
        compile_seconds=0.0, sharpe_moments=SharpeMoments(plan.n_rows).finish(), plan=plan)


def _keeper(plan, size, top, metric, out, max_memory):
    """The sink of the rows a sweep keeps in memory: the top ``top`` combos, every row
    (if they fit in ``max_memory``), or none (``out=`` alone)."""
    if top is not None:
        return KeepTop(check_count("top", top), metric, plan.n_rows, plan.grid.names)
    if out is not None:
        return None
    limit = MEMORY_SHARE * size.available_bytes if max_memory is None else max_memory
    if size.result_bytes > limit:
        raise SweepTooLarge(size.n_backtests, size.result_bytes, int(limit))
    return KeepAll(plan.grid.names)

