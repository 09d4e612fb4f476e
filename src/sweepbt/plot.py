"""Charts as matplotlib figures: ``sb.plot.equity(bt)``, ``sb.plot.heatmap(res, "fast",
"slow")`` and the rest (docs/report.md).

matplotlib is an optional extra (:data:`INSTALL`), imported only when a
chart is drawn. Each chart has an array-level function (time stamps, a 1-D equity row, a
trades table) and most a result-level one that picks those arrays from a result. Figures
are ``matplotlib.figure.Figure`` objects (no pyplot, no global state). Every plotted series
carries a ``gid`` of ``series-NAME``, its id in the SVG. Long series are decimated to at
most :data:`MAX_POINTS` points (each bucket's minimum and maximum kept, so drawdowns and
peaks survive).
"""

from __future__ import annotations

import functools
import io

import numpy as np

from sweepbt._backtest_stats import buy_and_hold, drawdown as drawdown_curve
from sweepbt._params import CHOICE_PARAMS, decode_choice, is_null
from sweepbt._vocabulary import LOWER_IS_BETTER, metric_index

__all__ = ["MAX_POINTS", "distribution", "drawdown", "equity", "equity_curve", "equity_curves",
           "heatmap", "heatmap_grid", "sensitivity", "to_png", "to_svg", "trades", "trades_on_price",
           "underwater", "walk_forward"]

#: the most points one line is drawn with
MAX_POINTS = 500
#: the most trades marked on a price chart (the first ones; the title says so)
MAX_TRADE_MARKERS = 300
#: how to install matplotlib, said by every error that needs it
INSTALL = "pip install matplotlib (from a sweepbt checkout: pip install '.[report]')"


def _figure(rows=1, height=3.2):
    """A new Figure (and its axes), or an ImportError naming the extra to install."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"sweepbt's charts and reports need matplotlib, which is not "
                          f"installed: {INSTALL}") from None
    fig = Figure(figsize=(9, height * rows), layout="constrained")
    # a bare Figure (no pyplot) shows in Jupyter through this (IPython's _repr_png_ hook)
    fig._repr_png_ = functools.partial(to_png, fig)
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, axes


def to_png(fig, dpi=80):
    """``fig`` as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def to_svg(fig):
    """``fig`` as SVG text (no XML prolog, text kept as text, no date stamp)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "sweepbt"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def decimate(values, max_points=MAX_POINTS):
    """Indices of ``values`` to draw: every non-NaN one when few, else the first, the last
    and the minimum and maximum of each of ``max_points // 2`` buckets."""
    idx = np.flatnonzero(~np.isnan(values))
    if idx.size <= max_points:
        return idx
    keep = [idx[0], idx[-1]]
    for bucket in np.array_split(idx, max_points // 2):
        v = values[bucket]
        keep += [bucket[np.argmin(v)], bucket[np.argmax(v)]]
    return np.unique(keep)


def _line(ax, timestamps, values, name, **style):
    values = np.asarray(values, dtype=np.float64)
    idx = decimate(values)
    return ax.plot(timestamps[idx], values[idx], label=name, gid=f"series-{name}",
                   linewidth=1.0, **style)


# -- array level ---------------------------------------------------------------------------

def equity_curve(timestamps, equity, benchmark=None, *, log=False, title="equity",
                 label="strategy"):
    """Equity over time, with ``benchmark`` (e.g. buy-and-hold) when given; ``log``: a
    logarithmic y axis."""
    fig, (ax,) = _figure()
    _line(ax, timestamps, equity, label, color="#1f77b4")
    if benchmark is not None:
        _line(ax, timestamps, benchmark, "buy_and_hold", color="#999999")
    if log:
        ax.set_yscale("log")
    ax.set_title(title + (" (log scale)" if log else ""))
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def equity_curves(timestamps, rows, labels, *, log=False, title="equity"):
    """Several equity rows (``(n, n_bars)``, one line each, named by ``labels``)."""
    fig, (ax,) = _figure()
    for row, label in zip(rows, labels):
        _line(ax, timestamps, row, label)
    if log:
        ax.set_yscale("log")
    ax.set_title(title + (" (log scale)" if log else ""))
    ax.legend(loc="upper left", fontsize="small", ncol=2)
    ax.grid(alpha=0.3)
    return fig


def underwater(timestamps, equity, init_cash, *, title="drawdown"):
    """The drawdown below the running peak (``init_cash`` included), as a negative
    percentage."""
    fig, (ax,) = _figure(height=2.4)
    dd = -100.0 * drawdown_curve(equity, init_cash)
    idx = decimate(dd)
    ax.fill_between(timestamps[idx], dd[idx], 0.0, color="#d62728", alpha=0.35,
                    gid="series-drawdown")
    ax.set_ylabel("%")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig


def trades_on_price(timestamps, close, trades, *, title="trades"):
    """The close with each trade's entry (triangle up: long, down: short) and exit (x)
    marked at its fill price. ``trades``: a table (pyarrow or a dict of columns) with
    ``entry_bar, exit_bar, entry_price, exit_price, direction``."""
    fig, (ax,) = _figure()
    _line(ax, timestamps, close, "close", color="#444444")
    cols = {n: np.asarray(trades[n] if isinstance(trades, dict) else
                          trades.column(n).to_numpy(zero_copy_only=False))
            for n in ("entry_bar", "exit_bar", "entry_price", "exit_price", "direction")}
    n = len(cols["entry_bar"])
    shown = min(n, MAX_TRADE_MARKERS)
    long_ = cols["direction"][:shown] == "long"
    for mask, name, marker, color in ((long_, "long_entry", "^", "#2ca02c"),
                                      (~long_, "short_entry", "v", "#d62728")):
        ax.scatter(timestamps[cols["entry_bar"][:shown][mask]],
                   cols["entry_price"][:shown][mask], marker=marker, color=color, s=22,
                   label=name, gid=f"series-{name}", zorder=3)
    ax.scatter(timestamps[cols["exit_bar"][:shown]], cols["exit_price"][:shown], marker="x",
               color="#000000", s=18, label="exit", gid="series-exit", zorder=3)
    ax.set_title(title + (f" (first {shown} of {n} trades marked)" if shown < n else ""))
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


# -- backtest level ------------------------------------------------------------------------

def asset_row(result, asset, symbols=None):
    """(label, position) of ``asset`` (an index or a symbol) among ``symbols`` (default:
    the result's bundle's)."""
    symbols = list(result.bundle.symbols) if symbols is None else list(symbols)
    if isinstance(asset, str):
        if asset not in symbols:
            raise ValueError(f"unknown asset {asset!r}; assets: {', '.join(symbols)}")
        return asset, symbols.index(asset)
    if not 0 <= asset < len(symbols):
        raise ValueError(f"asset {asset} out of range: {len(symbols)} assets")
    return symbols[asset], int(asset)


def _picked(result, asset):
    """(label, equity row, close row or None): a per-asset result's row ``asset``, or a
    portfolio's one equity curve (1-D ``equity``; no single price to compare with)."""
    if np.ndim(result.equity) == 1:
        return "portfolio", result.equity, None
    label, a = asset_row(result, asset)
    return label, result.equity[a], result.bundle.close[a]


def equity(result, asset=0, *, log=False, benchmark=True):
    """Equity of one asset of a backtest (or a portfolio) against buy-and-hold."""
    label, row, close = _picked(result, asset)
    init_cash = result.options.init_cash
    bench = buy_and_hold(close, row, init_cash) if benchmark and close is not None else None
    return equity_curve(result.bundle.timestamps, row, bench, log=log,
                        title=f"equity: {label}")


def drawdown(result, asset=0):
    """The underwater chart of one asset of a backtest (or a portfolio)."""
    label, row, _ = _picked(result, asset)
    return underwater(result.bundle.timestamps, row, result.options.init_cash,
                      title=f"drawdown: {label}")


def trades(result, asset=0):
    """One asset's trades marked on its close."""
    label, a = asset_row(result, asset)
    table = result.trades
    mine = table.filter(table.column("symbol").to_numpy(zero_copy_only=False) == label)
    return trades_on_price(result.bundle.timestamps, result.bundle.close[a], mine,
                           title=f"trades: {label}")


# -- sweep level ---------------------------------------------------------------------------

def _labels(name, values):
    off = is_null(name, values)
    if name in CHOICE_PARAMS:  # a rank strategy's words: "M", "inverse_vol", 21
        return [str(decode_choice(name, v)) for v in values]
    return ["off" if off is not None and off[i] else f"{v:g}" for i, v in enumerate(values)]


def _axis_values(name, column):
    """Distinct values of a parameter column, rules that are off last; a NaN of a
    parameter that is not a rule (a strategy of a several-strategy sweep without it) is
    no value: those combos are left out."""
    off = is_null(name, column)
    if off is None:
        return np.unique(column[~np.isnan(column)])
    on = np.unique(column[~off & ~np.isnan(column)])
    return np.concatenate([on, column[off][:1]]) if off.any() else on


def _same(column, value):
    return np.isnan(column) if np.isnan(value) else column == value


def heatmap_grid(result, x, y, metric="sharpe", how="mean"):
    """``(x values, y values, cells)`` of a sweep: ``cells[j, i]`` is the ``how`` (mean or
    median) of ``metric`` over the held combos with ``x = xs[i]`` and ``y = ys[j]``, each
    combo's metric aggregated over assets as ``best(how=how)`` does; NaN combos are left
    out, an empty cell is NaN."""
    for name in (x, y):
        if name not in result.names:
            raise ValueError(f"{name!r} is not a parameter of this sweep; parameters: "
                             f"{', '.join(result.names)}")
    combos, per_combo = result.aggregate(how)
    _, params, _ = result.held()
    value = per_combo[:, metric_index(metric)]
    px, py = (np.asarray(params[n], dtype=np.float64) for n in (x, y))
    xs, ys = _axis_values(x, px), _axis_values(y, py)
    reduce = np.nanmean if how == "mean" else np.nanmedian
    cells = np.full((ys.size, xs.size), np.nan)
    for i, vx in enumerate(xs):
        in_x = _same(px, vx)
        for j, vy in enumerate(ys):
            v = value[in_x & _same(py, vy)]
            if np.any(~np.isnan(v)):
                cells[j, i] = reduce(v)
    return xs, ys, cells


def heatmap(result, x, y, metric="sharpe", how="mean"):
    """A sweep's ``metric`` over two parameters (colour), the other parameters aggregated
    (:func:`heatmap_grid`); NaN cells are blank."""
    xs, ys, cells = heatmap_grid(result, x, y, metric, how)
    fig, (ax,) = _figure(height=4.2)
    image = ax.imshow(cells, origin="lower", aspect="auto", gid="series-heatmap",
                      cmap="RdYlGn_r" if metric in LOWER_IS_BETTER else "RdYlGn")
    ax.set_xticks(range(xs.size), _labels(x, xs), rotation=90 if xs.size > 12 else 0)
    ax.set_yticks(range(ys.size), _labels(y, ys))
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{metric} ({how} over the other parameters)")
    fig.colorbar(image, ax=ax, label=metric)
    return fig


def sensitivity(result, param, metric="sharpe", how="mean"):
    """``metric`` against one parameter: the ``how`` over the other parameters' combos,
    with their minimum and maximum as a band."""
    xs, _, cells = heatmap_grid(result, param, param, metric, how)
    centre = np.diagonal(cells)
    _, per_combo = result.aggregate(how)
    _, params, _ = result.held()
    column = np.asarray(params[param], dtype=np.float64)
    value = per_combo[:, metric_index(metric)]
    groups = [value[_same(column, v)] for v in xs]
    low, high = (np.array([f(g) if np.any(~np.isnan(g)) else np.nan for g in groups])
                 for f in (np.nanmin, np.nanmax))
    fig, (ax,) = _figure(height=2.6)
    pos = np.arange(xs.size)
    ax.fill_between(pos, low, high, color="#1f77b4", alpha=0.15, gid="series-range")
    ax.plot(pos, centre, marker="o", color="#1f77b4", gid=f"series-{metric}")
    ax.set_xticks(pos, _labels(param, xs))
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    have = sum(g.size for g in groups)
    ax.set_title(f"{metric} by {param} ({how}; band: min..max over the other parameters)"
                 + (f"; {have:,} of {column.size:,} combos have it" if have < column.size
                    else ""))
    ax.grid(alpha=0.3)
    return fig


def distribution(result, metric="sharpe", how="mean"):
    """Histogram of ``metric`` over the held combos; for ``sharpe``, the deflated-Sharpe
    threshold (the expected best Sharpe of as many trials by chance, annualized: ``sr0``
    of :meth:`SweepResult.deflated_sharpe`) is marked."""
    _, per_combo = result.aggregate(how)
    value = per_combo[:, metric_index(metric)]
    value = value[np.isfinite(value)]
    fig, (ax,) = _figure(height=2.8)
    ax.hist(value, bins=min(60, max(10, int(np.sqrt(max(value.size, 1))))), color="#1f77b4",
            alpha=0.8, gid="series-histogram")
    if metric == "sharpe" and value.size > 1:
        threshold = result.deflated_sharpe().sr0_annual
        ax.axvline(threshold, color="#d62728", linestyle="--", gid="series-dsr_threshold",
                   label=f"DSR threshold (expected max by chance): {threshold:.2f}")
        ax.legend(loc="upper left")
    ax.set_xlabel(metric)
    ax.set_ylabel("combos")
    ax.set_title(f"{metric} over {value.size:,} combos ({how} over assets)")
    return fig


# -- walk-forward --------------------------------------------------------------------------

def walk_forward(result, asset=0):
    """The chained out-of-sample equity of one asset, or of the portfolio (the first
    training span shaded), and per window the chosen combo's in-sample against
    out-of-sample Sharpe."""
    label, a = asset_row(result, asset, result.stats.column("symbol").to_pylist())
    fig, (top, bottom) = _figure(rows=2)
    ts = result.bundle.timestamps
    _line(top, ts, result.equity[a], "oos_equity", color="#1f77b4")
    lo, hi = result.spans[0][:2]
    top.axvspan(ts[lo], ts[hi - 1], color="#999999", alpha=0.15, label="first training span")
    top.set_title(f"chained out-of-sample equity: {label}")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    w = result.windows
    pos = np.arange(w.num_rows)
    bottom.bar(pos - 0.2, w.column("is_sharpe").to_numpy(), width=0.4, label="in-sample",
               color="#999999", gid="series-in_sample")
    bottom.bar(pos + 0.2, w.column("oos_sharpe").to_numpy(), width=0.4,
               label="out-of-sample", color="#1f77b4", gid="series-out_of_sample")
    bottom.axhline(0.0, color="#000000", linewidth=0.6)
    bottom.set_xlabel("window")
    bottom.set_ylabel("sharpe")
    bottom.set_title("sharpe per window (mean over assets)")
    bottom.legend(loc="upper left")
    return fig
