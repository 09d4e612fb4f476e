"""Walk-forward optimization: sweep on a training span, trade the winner on the next span.

For each window the grid is swept on the training bars (indicators warm up on every bar
before them; nothing after them is read), the best combo by the objective is picked, and
that combo alone is traded on the test bars that follow. The test spans are chained into
one out-of-sample equity curve per asset. The indicator and signal stage runs once for the
whole walk-forward (every indicator is causal, so a window only ever reads bars before its
end); each window's sweep is one pass of the compiled kernel over the grid. See
docs/walk-forward.md for every definition.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from sweepbt import _display as display, _frames as frames, _html_report as html_report
from sweepbt import kernels
from sweepbt._compiling import notice
from sweepbt._executors import executor_for, run_chunks
from sweepbt._plan import check_resume, no_combination, prepare, sampled_combos
from sweepbt._training import (RESULT_FILES, BestPerWindow, TrainWindows, WalkForwardDir,
                              active_rows, defined_mean)
from sweepbt._results import param_arrays
from sweepbt._windows import window_spans
from sweepbt._series import equity_metrics, returns_from_equity
from sweepbt._format import unsigned_zero
from sweepbt._table import fit_columns, render_table
from sweepbt._threading import kernel_threads
from sweepbt._options import AUTO_PROGRESS_BAR_EVALUATIONS, DEFAULTS as D
from sweepbt._params import user_value
from sweepbt._vocabulary import LOWER_IS_BETTER, N_METRICS, metric_index

__all__ = ["WalkForwardResult", "format_walk_forward", "walk_forward", "window_spans"]

#: the chained out-of-sample series' statistics (columns of ``WalkForwardResult.stats``)
STAT_NAMES = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
              "calmar", "skew", "kurtosis", "n_trades", "exposure")
_WINDOW_COLUMNS = ("window", "train_start", "train_end", "test_start", "test_end",
                   "train_first", "train_last", "test_first", "test_last", "combo",
                   "objective", "efficiency")


@dataclass
class WalkForwardResult:
    """The outcome of :func:`walk_forward`.

    ``windows``: one row per window (spans, chosen parameters, in-sample and
    out-of-sample metrics); ``equity``: float64 ``(n_assets, n_bars)`` (``(1, n_bars)``
    for a portfolio), the chained out-of-sample equity, NaN outside the test spans;
    ``stats``: one row per asset (or the portfolio) of statistics of that chained series; ``efficiency``: the walk-forward efficiency (mean
    over windows of out-of-sample CAGR / in-sample CAGR, windows with in-sample CAGR > 0).
    ``is_metrics`` ``(n_windows, N_METRICS)``: the chosen combo's training metrics (each
    the mean over the assets with bars in the training span where it is defined);
    ``oos_metrics`` ``(n_windows, n_assets, N_METRICS)``: its test metrics per asset (NaN
    for an asset with no bar in the test span).
    """

    bundle: object
    strategy: str
    fixed: dict
    names: tuple
    axes: tuple
    n_combos: int
    spans: list
    chosen: list
    windows: pa.Table
    equity: np.ndarray
    stats: pa.Table
    efficiency: float
    is_metrics: np.ndarray
    oos_metrics: np.ndarray
    elapsed: float
    options: object = field(repr=False)  # the run's options.RunOptions, checked
    objective: object = field(default="sharpe", repr=False)
    path: str | None = None

    @property
    def n_windows(self) -> int:
        return len(self.spans)

    @property
    def returns(self) -> np.ndarray:
        """Per-bar returns of :attr:`equity` ``(n_assets, n_bars)``, NaN outside test spans.

        Each return is measured against the previous out-of-sample bar (``init_cash``
        before the first), so the first bar of a test span compares with the end of the
        previous one.
        """
        return _chained_returns(self.equity, self.options.init_cash)

    def __str__(self):
        return format_walk_forward(self)

    def __repr__(self):
        return display.walk_forward_repr(self)

    def _repr_html_(self):
        return display.walk_forward_html(self)

    def to_pandas(self):
        """The chained out-of-sample ``equity`` and its ``drawdown`` per bar: a pandas
        DataFrame with a UTC DatetimeIndex and columns ``(series, symbol)``; the windows:
        ``wf.windows.to_pandas()``."""
        return frames.series_pandas(self.bundle, {"equity": self.equity},
                                    self.options.init_cash, "WalkForwardResult.to_pandas()")

    def to_arrow(self) -> pa.Table:
        """The chained out-of-sample equity and drawdown as an Arrow table: ``timestamp,
        symbol, equity, drawdown`` per asset and test bar (a portfolio: ``timestamp,
        equity, drawdown``); an out= folder's ``equity.parquet``."""
        return frames.series_arrow(self.bundle, {"equity": self.equity},
                                   self.options.init_cash)

    def to_polars(self):
        """:meth:`to_arrow` as a Polars frame."""
        return frames.table_polars(self.to_arrow(), "WalkForwardResult.to_polars()")

    def report(self, path=None, **options):
        """The HTML report (:func:`sweepbt.report`, same options): written to ``path``
        when given (the path is returned), else returned as text."""
        return html_report.report(self, path, **options)


def _chained_returns(equity, init_cash):
    out = np.full(equity.shape, np.nan)
    for a in range(equity.shape[0]):
        idx = np.flatnonzero(~np.isnan(equity[a]))
        out[a, idx] = returns_from_equity(equity[a, idx], init_cash)
    return out


def walk_forward(data, strategy=D.strategy, *, train, test, step=D.step,
                 anchored=D.anchored, objective=D.objective, partial=D.partial,
                 constraint=D.constraint, fill=D.fill, direction=D.direction,
                 init_cash=D.init_cash, periods_per_year=D.periods_per_year, threads=D.threads,
                 sample=D.sample, seed=D.seed, portfolio=D.portfolio, size_type=D.size_type,
                 commission=D.commission, scheduler=D.scheduler, out=D.out,
                 resume=D.resume, progress=D.progress, **params) -> WalkForwardResult:
    """Walk-forward optimization of ``strategy``'s grid ``params`` over ``data``.

    ``train``, ``test``, ``step``: bar counts (int) or calendar durations (``"2Y"``,
    ``"6M"``, ``"4W"``, ``"90D"``), all of one kind; ``step`` defaults to ``test`` (test
    spans follow each other with no gap and no overlap; a step shorter than ``test`` is
    refused). Rolling training windows by default; ``anchored=True`` makes each one start
    at the first bar (expanding). See :func:`window_spans` for the exact spans and
    ``partial``.

    ``objective`` picks each window's combo from the training sweep: a metric name (the
    mean over the assets that have bars in the training span; higher is better, except
    ``max_drawdown`` and ``volatility``; ties go to the first combo in grid order). A combo
    whose metric is undefined (NaN) on some of those assets ranks after every combo where
    it is defined on all of them, by its mean over the assets where it is defined; a combo
    undefined everywhere ranks last. Or a callable ``objective(m) -> scores``: ``m`` maps
    every metric name (per-combo means over those assets, NaN where undefined on any) and
    every parameter name (per-combo values in kernel form: NaN or 0 = rule off) to 1-D
    arrays over a block of combos; it returns one score per combo, higher is better, NaN
    worst. It is called on blocks of the grid, so a score must depend on its own combo's
    values only (no ranking across combos).

    The other arguments are those of :func:`sweepbt.sweep` (``sample``/``seed``: the same
    random subset of the grid is searched in every window). With ``portfolio=True`` every
    window trades one portfolio (one result row, symbol ``"portfolio"``), the asset spans
    cut to the window. ``scheduler``: the training sweeps run on that Dask cluster, every
    window of a chunk in one task.

    ``out``: a new folder that keeps each finished chunk's best combo per training window
    as it runs, and the result's tables (windows, stats, equity) once done;
    ``resume=True`` continues the walk-forward that folder holds (the same call), running
    only the chunks it lacks, to the identical result (docs/walk-forward.md).
    ``progress``: a progress bar with an ETA over the training backtests (default: when
    they have more than ``AUTO_PROGRESS_BAR_EVALUATIONS`` bar-evaluations), as for
    :func:`sweepbt.sweep`.
    """
    t0 = time.perf_counter()
    options = replace(D, strategy=strategy, train=train, test=test, step=step,
                      anchored=anchored, objective=_objective_label(objective),
                      partial=partial, constraint=constraint, fill=fill,
                      direction=direction, init_cash=init_cash,
                      periods_per_year=periods_per_year, threads=threads, sample=sample,
                      seed=seed, portfolio=portfolio, size_type=size_type,
                      commission=commission)
    plan = prepare(data, strategy, params, options)
    bundle, grid = plan.bundle, plan.grid
    _check_objective(objective)
    spans = _spans(bundle, train, test, step, anchored, partial)
    sample, seed = plan.options.sample, plan.options.seed
    if grid.count_or_estimate() == (0, 0.0):
        raise no_combination(grid)
    check_resume(resume, out, sample, seed)
    sampled = sampled_combos(grid, sample, seed)

    training = TrainWindows(plan, [(lo, hi) for lo, hi, _, _ in spans])
    with notice(plan, ("metrics", "equity")):
        best, n_combos, folder = _train(training, sampled, objective, scheduler, out, resume,
                                        progress)
    try:
        with notice(plan, ("equity",)):
            tested = _test(plan, spans, best, objective)
        result = WalkForwardResult(
            bundle=bundle, strategy=plan.strategy.name, fixed=plan.fixed, names=grid.names,
            axes=grid.axes, n_combos=n_combos, spans=spans, **tested,
            elapsed=time.perf_counter() - t0, options=plan.options, objective=objective)
        if folder is not None:
            result.path = folder.save(dict(zip(RESULT_FILES, (
                result.windows, result.stats, result.to_arrow()))))
    except KeyboardInterrupt:
        if folder is None:
            raise
        raise KeyboardInterrupt(f"walk-forward interrupted after its training sweeps; "
                                f"{folder.stopped_note()}") from None
    return result


def _test(plan, spans, best, objective):
    """Each window's winner (``best``, as BestPerWindow.finish() gives it) traded on its
    test span: the WalkForwardResult fields chosen, windows, equity, stats, efficiency,
    is_metrics and oos_metrics."""
    test_plans = [plan.with_window(lo, hi) for _, _, lo, hi in spans]
    with kernel_threads(plan.settings.threads):
        chosen, oos, equity = _out_of_sample(plan, spans, test_plans, [b.combo for b in best])
    is_metrics = np.array([b.metrics for b in best])
    test_set = [p.settings for p in test_plans]
    windows = _windows_table(plan.bundle, spans, plan.grid.names, chosen, best, is_metrics,
                             oos, [active_rows(s) for s in test_set],
                             objective if isinstance(objective, str) else None,
                             plan.engine.metric_names)
    eff = windows["efficiency"].to_numpy(zero_copy_only=False)
    return dict(
        chosen=[{n: user_value(n, v) for n, v in c.items()} for c in chosen],
        windows=windows, equity=equity,
        stats=_stats_table(plan.bundle, plan.row_symbols, equity, oos, test_set,
                           plan.settings),
        efficiency=float(np.nanmean(eff)) if np.any(~np.isnan(eff)) else math.nan,
        is_metrics=is_metrics, oos_metrics=oos)


def _train(windows, sampled, objective, scheduler, out, resume, progress):
    """Run every chunk of ``sampled`` (None: the grid) in every training window of
    ``windows``; returns (each window's best, as BestPerWindow.finish() gives it, the
    number of combos run, the out= folder or None)."""
    plan = windows.plan
    best = BestPerWindow(objective, plan.grid.names, windows.active, plan.n_rows)
    executor = executor_for(scheduler)
    folder = None if out is None else (
        lambda: WalkForwardDir.open(out, windows, sampled, resume, best))
    per_combo = plan.n_rows * len(windows.spans)
    n_planned = plan.grid.count_or_estimate()[0] if sampled is None else sampled.size
    if progress is None:
        progress = n_planned * sum(p.settings.bars_per_combo for p in windows.plans) > \
            AUTO_PROGRESS_BAR_EVALUATIONS
    n_combos, folder = run_chunks(windows, sampled, [best], executor, folder, progress,
                                  n_planned * per_combo, per_combo, "walk-forward")
    return best.finish(), n_combos, folder


def _check_objective(objective):
    if isinstance(objective, str):
        metric_index(objective)
    elif not callable(objective):
        raise TypeError(f"objective must be a metric name or a callable, got {objective!r}")


def _objective_label(objective):
    return (objective if isinstance(objective, str)
            else getattr(objective, "__name__", type(objective).__name__))


def _spans(bundle, train, test, step, anchored, partial):
    """The window spans; ValueError when none fits in the data."""
    spans = window_spans(bundle.timestamps, train, test, step, anchored, partial)
    if not spans:
        raise ValueError(f"no walk-forward window fits in {bundle.n_bars} bars "
                         f"({bundle.timestamps[0]} .. {bundle.timestamps[-1]}) with "
                         f"train={train!r}, test={test!r}"
                         + ("" if partial else "; partial=True keeps a last, shorter window"))
    return spans


def _out_of_sample(plan, spans, test_plans, chosen_ids):
    """Each window's chosen combo run on its test span: (chosen params, oos metrics
    ``(n_windows, n_rows, N_METRICS)``, chained equity ``(n_rows, n_bars)``; a row per
    asset, or the portfolio's)."""
    init_cash, n_rows = plan.settings.init_cash, plan.n_rows
    oos = np.full((len(spans), n_rows, N_METRICS), np.nan)
    equity = np.full((n_rows, plan.bundle.n_bars), np.nan)
    running = np.full(n_rows, init_cash)
    chosen = []
    for w, (tplan, combo) in enumerate(zip(test_plans, chosen_ids)):
        ids = np.array([combo], dtype=np.int64)
        result = tplan.run_chunk(ids)
        chosen.append({n: result.params[n][0] for n in plan.grid.names})
        row_end = tplan.settings.row_spans()[1]
        active = active_rows(tplan.settings)
        oos[w] = result.metrics
        oos[w, ~active] = np.nan
        path = tplan.equity(ids)[0]
        _, _, te_lo, te_hi = spans[w]
        seg = path[:, te_lo:te_hi] * (running / init_cash)[:, None]
        bust = running <= 0.0  # ruined in an earlier window: no more trading
        seg[bust] = np.where(np.isnan(seg[bust]), np.nan, running[bust, None])
        equity[:, te_lo:te_hi] = seg
        for a in np.flatnonzero(active & ~bust):
            running[a] = seg[a, row_end[a] - 1 - te_lo]
    return chosen, oos, equity


def _timestamps(bundle, bars):
    ts = pa.timestamp("ns", tz="UTC")
    return pa.array(bundle.timestamps[np.asarray(bars, dtype=np.int64)].astype(np.int64)) \
        .cast(ts)


def _windows_table(bundle, spans, names, chosen, best, is_metrics, oos, test_active,
                   objective, metrics):
    sp = np.array(spans, dtype=np.int64).reshape(-1, 4)
    # the mean over the assets with bars in the test span where each metric is defined
    oos_mean = np.array([defined_mean(oos[w, test_active[w]]) for w in range(len(spans))]) \
        .reshape(len(spans), kernels.N_METRICS)
    cagr = metric_index("cagr")
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = np.where(is_metrics[:, cagr] > 0, oos_mean[:, cagr] / is_metrics[:, cagr],
                       np.nan)
    cols = {
        "window": pa.array(np.arange(len(spans), dtype=np.int64)),
        "train_start": pa.array(sp[:, 0]), "train_end": pa.array(sp[:, 1]),
        "test_start": pa.array(sp[:, 2]), "test_end": pa.array(sp[:, 3]),
        "train_first": _timestamps(bundle, sp[:, 0]),
        "train_last": _timestamps(bundle, sp[:, 1] - 1),
        "test_first": _timestamps(bundle, sp[:, 2]),
        "test_last": _timestamps(bundle, sp[:, 3] - 1),
    }
    chosen_arrays = param_arrays({n: np.array([c[n] for c in chosen]) for n in names})
    for n in names:
        cols[n if n not in _WINDOW_COLUMNS else f"param_{n}"] = chosen_arrays[n]
    cols["combo"] = pa.array(np.array([b.combo for b in best], dtype=np.int64))
    sign = -1.0 if objective in LOWER_IS_BETTER else 1.0  # back to the metric's own units
    cols["objective"] = pa.array(np.array([sign * b.score if b.tier > 0 else math.nan
                                           for b in best]))
    for j, m in enumerate(metrics):
        cols[f"is_{m}"] = pa.array(is_metrics[:, j])
    for j, m in enumerate(metrics):
        cols[f"oos_{m}"] = pa.array(oos_mean[:, j])
    cols["efficiency"] = pa.array(eff)
    return display.mark_table(pa.table(cols))


def _stats_table(bundle, symbols, equity, oos, test_set, settings):
    rows = []
    n_trades_j, exposure_j = metric_index("n_trades"), metric_index("exposure")
    bars = np.array([np.subtract(*s.row_spans()[::-1]) for s in test_set]).reshape(
        len(test_set), -1)
    for a in range(len(symbols)):
        idx = np.flatnonzero(~np.isnan(equity[a]))
        row = equity_metrics(equity[a, idx], settings.init_cash, settings.periods_per_year)
        traded = bars[:, a] > 0
        row["n_trades"] = float(np.sum(oos[traded, a, n_trades_j]))
        row["exposure"] = (float(np.sum(oos[traded, a, exposure_j] * bars[traded, a])
                                 / idx.size) if idx.size else math.nan)
        rows.append((idx, row))
    cols = {"symbol": pa.array(list(symbols), pa.string()),
            "n_bars": pa.array(np.array([idx.size for idx, _ in rows], dtype=np.int64))}
    ts = pa.timestamp("ns", tz="UTC")
    for key, pick in (("first", 0), ("last", -1)):
        cols[key] = pa.array([int(bundle.timestamps[idx[pick]].astype(np.int64))
                              if idx.size else None for idx, _ in rows], pa.int64()).cast(ts)
    for name in STAT_NAMES:
        values = np.array([r[name] for _, r in rows])
        cols[name] = pa.array(values.astype(np.int64) if name == "n_trades" else values)
    return display.mark_table(pa.table(cols))


def _fmt(x, pct=False):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    return unsigned_zero(f"{x:.1%}" if pct else f"{x:.2f}")


def _fmt_param(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_walk_forward(result, objective_label=None, width=None) -> str:
    """A readable text report: one line per window (``IS sharpe``, then ``OOS maxDD``, left
    out where it would be wider than ``width``, if given, and a note saying so), then the
    chained OOS stats."""
    w, o = result.windows, result.options
    params = list(result.axes) or list(result.names)
    label = objective_label or o.objective
    if len(label) > 12:
        label = "objective"
    show_objective = label != "sharpe"
    header = (["win", "train", "test"] + params + [f"IS {label}"] * show_objective
              + ["IS sharpe", "OOS sharpe", "OOS return", "OOS maxDD"])
    lines = []
    day = "datetime64[D]"

    def date(col, i):
        return str(np.datetime64(w[col][i].value, "ns").astype(day))

    for i in range(w.num_rows):
        row = [str(i),
               f"{date('train_first', i)}..{date('train_last', i)}",
               f"{date('test_first', i)}..{date('test_last', i)}"]
        row += [_fmt_param(result.chosen[i][n]) for n in params]
        row += [_fmt(w["objective"][i].as_py())] * show_objective
        row += [_fmt(w["is_sharpe"][i].as_py()),
                _fmt(w["oos_sharpe"][i].as_py()), _fmt(w["oos_total_return"][i].as_py(), True),
                _fmt(w["oos_max_drawdown"][i].as_py(), True)]
        lines.append(row)
    keep, dropped = fit_columns(header, lines, width or math.inf,
                                [len(header) - 4, len(header) - 1])
    out = [f"walk-forward: {result.strategy}, {result.n_windows} windows, "
           f"{result.n_combos:,} combos per training sweep, train={o.train!r} "
           f"test={o.test!r} step={o.test if o.step is None else o.step!r} "
           f"({'anchored' if o.anchored else 'rolling'}), objective={o.objective}",
           render_table([header[j] for j in keep], [[r[j] for j in keep] for r in lines],
                        rule=False)]
    if dropped:
        out.append(f"({' and '.join(header[j] for j in dropped)} left out to fit {width} "
                   "characters; every column: wf.windows, or --out FILE)")
    out.append("")
    out.append("chained out-of-sample equity, per asset:")
    s = result.stats
    sh = ["symbol", "bars", "total_return", "cagr", "sharpe", "max_drawdown", "trades"]
    srows = []
    for i in range(s.num_rows):
        srows.append([s["symbol"][i].as_py(), str(s["n_bars"][i].as_py()),
                      _fmt(s["total_return"][i].as_py(), True), _fmt(s["cagr"][i].as_py(), True),
                      _fmt(s["sharpe"][i].as_py()), _fmt(s["max_drawdown"][i].as_py(), True),
                      str(s["n_trades"][i].as_py())])
    out.append(render_table(sh, srows, rule=False))
    out.append("")
    out.append(f"walk-forward efficiency (mean OOS CAGR / IS CAGR): {_fmt(result.efficiency)}")
    return "\n".join(out)
