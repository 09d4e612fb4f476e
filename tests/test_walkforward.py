"""Walk-forward optimization against an independent, slow orchestration; look-ahead checks;
window spans (bars, durations, rolling, anchored); random search (``sample=``/``seed=``).
"""

import bisect
import calendar
import datetime as dt
import math
import statistics

import numpy as np
import pytest

import sweepbt as sb
from sweepbt.walkforward import format_walk_forward
from sweepbt._windows import parse_duration, window_spans

GRID = {"fast": [5, 10, 20], "slow": [30, 60], "stop_loss": [None, 0.05],
        "take_profit": [None, 0.1]}
FIXED = {"fees": 0.001}
CONSTRAINT = "fast < slow"
PARAMS = ("fast", "slow", "stop_loss", "take_profit", "fees")


def make_bundle(n_bars=1000, seed=3, timestamps=None):
    """Three assets; B lists at bar 150, C delists at bar 700 (so some windows lack them)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, (3, n_bars)), axis=1))
    open_ = close * np.exp(rng.normal(0, 0.004, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, close.shape)))
    for a in (open_, high, low, close):
        a[1, :150] = np.nan
        a[2, 700:] = np.nan
    return sb.Bundle.from_arrays(open_, high, low, close, timestamps=timestamps,
                                 symbols=["A", "B", "C"])


@pytest.fixture(scope="module")
def data():
    return make_bundle()


def bar_spans(n_bars, train, test, step=None, anchored=False):
    """Walk-forward spans written out plainly (bars)."""
    step = step or test
    out = []
    k = 0
    while train + k * step + test <= n_bars:
        lo = 0 if anchored else k * step
        out.append((lo, train + k * step, train + k * step, train + k * step + test))
        k += 1
    return out


def reference_walk_forward(data, spans, objective="sharpe", lower_is_better=False,
                           sweep_extra=None):
    """Slow and independent: per window, ``sb.sweep`` on ``data.slice_bars(0, train_end)``
    (nothing after the training span exists) trading ``window=(train_start, train_end)``,
    the best combo by the objective averaged over the assets that have bars in the span,
    then ``sb.backtest`` of it on ``data.slice_bars(0, test_end)`` with
    ``window=(test_start, test_end)``; test equity chained by hand."""
    ppy = data.periods_per_year
    init = 10_000.0
    running = {s: init for s in data.symbols}
    equity = np.full((data.n_assets, data.n_bars), np.nan)
    rows = []
    for tr_lo, tr_hi, te_lo, te_hi in spans:
        part = data.slice_bars(0, tr_hi)
        res = sb.sweep(part, "sma_cross", window=(tr_lo, tr_hi), periods_per_year=ppy,
                       constraint=CONSTRAINT, **{**GRID, **FIXED, **(sweep_extra or {})})
        active = {s for s, a, b in zip(part.symbols, part.start, part.end)
                  if min(b, tr_hi) > max(a, tr_lo)}
        by_combo = {}
        for row in res.table.to_pylist():
            if row["symbol"] in active:
                by_combo.setdefault(row["combo"], []).append(row)
        # rank: defined on every active asset (by the mean), then defined on some (by the
        # mean over those), then nowhere; ties: the first combo
        best, best_key = None, None
        for combo in sorted(by_combo):
            values = [r[objective] for r in by_combo[combo]]
            numbers = [v for v in values if not math.isnan(v)]
            tier = 2 if len(numbers) == len(values) else (1 if numbers else 0)
            value = statistics.fmean(numbers) if numbers else math.nan
            if lower_is_better:
                value = -value
            key = (tier, value if tier else -math.inf)
            if best is None or key > best_key:
                best, best_key = (combo, -value if lower_is_better else value), key
        chosen = by_combo[best[0]]
        params = {n: chosen[0][n] for n in PARAMS}
        is_mean = {m: defined_mean(r[m] for r in chosen)
                   for m in ("sharpe", "total_return", "cagr", "n_trades", "max_drawdown",
                             "sortino", "profit_factor", "win_rate")}
        tpart = data.slice_bars(0, te_hi)
        bt = sb.backtest(tpart, "sma_cross", window=(te_lo, te_hi), periods_per_year=ppy,
                         **params)
        oos = {}
        for a_part, stat in enumerate(bt.stats.to_pylist()):
            sym = stat["symbol"]
            s, e = tpart.start[a_part], tpart.end[a_part]
            if min(e, te_hi) <= max(s, te_lo):
                continue
            oos[sym] = stat
            a_full = data.symbols.index(sym)
            seg = bt.equity[a_part, te_lo:te_hi] * running[sym] / init
            equity[a_full, te_lo:te_hi] = seg
            running[sym] = seg[~np.isnan(seg)][-1]
        oos_mean = {m: defined_mean(st[m] for st in oos.values())
                    for m in ("sharpe", "total_return", "cagr", "n_trades", "sortino",
                              "profit_factor", "win_rate")}
        rows.append({"combo": best[0], "objective": best[1], "params": params,
                     "is": is_mean, "oos": oos_mean, "oos_assets": oos})
    return rows, equity


def defined_mean(values):
    """Mean of the values that are numbers (NaN if none): how the windows table reports
    a metric over assets."""
    numbers = [v for v in values if not math.isnan(v)]
    return statistics.fmean(numbers) if numbers else math.nan


def assert_same(a, b, rtol=1e-10):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=rtol, atol=1e-12, equal_nan=True)


def check_against_reference(wf, rows, equity, objective_sign=1.0):
    t = wf.windows.to_pylist()
    assert len(t) == len(rows)
    for got, want in zip(t, rows):
        for n in PARAMS:
            assert got[n] == want["params"][n], (got["window"], n)
        assert got["combo"] == want["combo"]
        assert_same(got["objective"], want["objective"])
        for m, v in want["is"].items():
            assert_same(got[f"is_{m}"], v)
        for m, v in want["oos"].items():
            assert_same(got[f"oos_{m}"], v)
    assert_same(wf.equity, equity)


def test_matches_reference_rolling(data):
    spans = bar_spans(data.n_bars, 200, 100)
    wf = sb.walk_forward(data, "sma_cross", train=200, test=100, constraint=CONSTRAINT,
                         **GRID, **FIXED)
    assert wf.spans == spans
    rows, equity = reference_walk_forward(data, spans)
    check_against_reference(wf, rows, equity)
    # every window's row names the bars and time stamps of its spans
    t = wf.windows
    assert t["train_start"].to_pylist() == [s[0] for s in spans]
    assert t["test_end"].to_pylist() == [s[3] for s in spans]
    first = [np.datetime64(x.value, "ns") for x in t["test_first"]]
    assert first == [data.timestamps[s[2]] for s in spans]
    last = [np.datetime64(x.value, "ns") for x in t["train_last"]]
    assert last == [data.timestamps[s[1] - 1] for s in spans]


def test_matches_reference_anchored_drawdown_objective(data):
    spans = bar_spans(data.n_bars, 300, 150, anchored=True)
    wf = sb.walk_forward(data, "sma_cross", train=300, test=150, anchored=True,
                         objective="max_drawdown", constraint=CONSTRAINT, **GRID, **FIXED)
    assert wf.spans == spans
    rows, equity = reference_walk_forward(data, spans, "max_drawdown", lower_is_better=True)
    # the windows table reports the objective in the metric's units (a drawdown, >= 0)
    assert all(x >= 0 for x in wf.windows["objective"].to_pylist())
    check_against_reference(wf, rows, equity)


def test_matches_reference_with_random_search(data):
    spans = bar_spans(data.n_bars, 250, 125)
    wf = sb.walk_forward(data, "sma_cross", train=250, test=125, constraint=CONSTRAINT,
                         sample=10, seed=11, **GRID, **FIXED)
    assert wf.n_combos == 10
    rows, equity = reference_walk_forward(data, spans, sweep_extra={"sample": 10, "seed": 11})
    check_against_reference(wf, rows, equity)


def test_callable_objective(data):
    # total_return is defined on every asset with bars, so a callable returning it picks
    # exactly what the metric name does
    base = sb.walk_forward(data, train=200, test=100, constraint=CONSTRAINT,
                           objective="total_return", **GRID, **FIXED)
    same = sb.walk_forward(data, train=200, test=100, constraint=CONSTRAINT,
                           objective=lambda m: m["total_return"], **GRID, **FIXED)
    assert base.windows["combo"].to_pylist() == same.windows["combo"].to_pylist()
    assert_same(base.equity, same.equity)
    assert_same(base.windows["objective"].to_numpy(), same.windows["objective"].to_numpy())
    # parameters are visible to the objective (kernel form: NaN = rule off)
    no_stop = sb.walk_forward(
        data, train=200, test=100, constraint=CONSTRAINT, **GRID, **FIXED,
        objective=lambda m: np.where(np.isnan(m["stop_loss"]), m["total_return"], np.nan))
    assert all(v is None for v in no_stop.windows["stop_loss"].to_pylist())
    spans = bar_spans(data.n_bars, 200, 100)
    rows, _ = reference_walk_forward(data, spans, "total_return",
                                     sweep_extra={"stop_loss": None})
    assert [r["params"]["fast"] for r in rows] == no_stop.windows["fast"].to_pylist()
    assert [r["params"]["slow"] for r in rows] == no_stop.windows["slow"].to_pylist()
    assert [r["params"]["take_profit"] for r in rows] == \
        no_stop.windows["take_profit"].to_pylist()
    with pytest.raises(ValueError, match="one score per combo"):
        sb.walk_forward(data, train=200, test=100, objective=lambda m: np.zeros(3), **GRID)


def test_no_look_ahead(data):
    """Changing any bar after a window's test span changes nothing in that window's row."""
    kwargs = dict(train=200, test=100, constraint=CONSTRAINT, **GRID, **FIXED)
    wf = sb.walk_forward(data, **kwargs)
    rng = np.random.default_rng(99)
    for w in (0, 3, 6):
        cut = wf.spans[w][3]
        arrays = [getattr(data, f).copy() for f in ("open", "high", "low", "close")]
        factor = np.exp(np.cumsum(rng.normal(0, 0.03, data.n_bars - cut)))
        for x in arrays:
            x[:, cut:] *= factor
        changed = sb.Bundle.from_arrays(*arrays, timestamps=data.timestamps,
                                        symbols=data.symbols)
        other = sb.walk_forward(changed, **kwargs)
        assert other.spans == wf.spans
        before, after = wf.windows.to_pylist(), other.windows.to_pylist()
        for a, b in zip(before[:w + 1], after[:w + 1]):
            assert a.keys() == b.keys()
            for key in a:
                if isinstance(a[key], float):
                    assert (a[key] == b[key]) or (math.isnan(a[key]) and math.isnan(b[key])), key
                else:
                    assert a[key] == b[key], key
        assert_same(wf.equity[:, :cut], other.equity[:, :cut], rtol=0)
        # and the later windows did see the change
        assert any(before[k]["oos_total_return"] != after[k]["oos_total_return"]
                   for k in range(w + 1, len(before)))


@pytest.mark.parametrize("strategy", sorted(sb.STRATEGIES))
def test_no_look_ahead_any_strategy(data, strategy):
    """Every registered strategy's indicators are causal, so no walk-forward window reads
    bars after its test span (with its default parameters and a risk-rule grid)."""
    kwargs = dict(train=150, test=100, stop_loss=[None, 0.03], take_profit=[None, 0.06])
    factors = {}
    if sb.STRATEGIES[strategy].is_rank:  # one of the 3 assets, ranked by a random factor
        kwargs.update(top_n=1, rebalance=["W", 15])
        factors = {"pe": np.random.default_rng(6).normal(15.0, 4.0, data.close.shape)}
        if strategy == "factor_rank":
            kwargs["factor"] = "pe"
    data = sb.Bundle.from_arrays(data.open, data.high, data.low, data.close,
                                 timestamps=data.timestamps, symbols=data.symbols,
                                 factors=factors)
    wf = sb.walk_forward(data, strategy, **kwargs)
    cut = wf.spans[2][3]
    arrays = [getattr(data, f).copy() for f in ("open", "high", "low", "close")]
    factor = np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.03, data.n_bars - cut)))
    for x in arrays:
        x[:, cut:] *= factor
    later = {k: v.copy() for k, v in factors.items()}
    for v in later.values():
        v[:, cut:] = np.random.default_rng(7).normal(15.0, 4.0, v[:, cut:].shape)
    changed = sb.Bundle.from_arrays(*arrays, timestamps=data.timestamps, symbols=data.symbols,
                                    factors=later)
    other = sb.walk_forward(changed, strategy, **kwargs)
    a = wf.windows.slice(0, 3).to_pylist()
    b = other.windows.slice(0, 3).to_pylist()
    assert str(a) == str(b)  # NaN-safe exact comparison
    assert_same(wf.equity[:, :cut], other.equity[:, :cut], rtol=0)


def test_stitched_equity_and_stats(data):
    wf = sb.walk_forward(data, train=200, test=100, constraint=CONSTRAINT, **GRID, **FIXED)
    init = 10_000.0
    ppy = data.periods_per_year
    stats = wf.stats.to_pylist()
    # NaN outside the test spans, and the first test span starts from init_cash
    assert np.isnan(wf.equity[:, :wf.spans[0][2]]).all()
    for a, sym in enumerate(data.symbols):
        e = [x for x in wf.equity[a] if not math.isnan(x)]
        assert stats[a]["symbol"] == sym and stats[a]["n_bars"] == len(e)
        r = [e[0] / init - 1] + [e[i] / e[i - 1] - 1 for i in range(1, len(e))]
        assert math.isclose(stats[a]["total_return"], e[-1] / init - 1, rel_tol=1e-12)
        assert math.isclose(stats[a]["cagr"], (e[-1] / init) ** (ppy / len(e)) - 1,
                            rel_tol=1e-12)
        sharpe = statistics.fmean(r) / statistics.stdev(r) * math.sqrt(ppy)
        assert math.isclose(stats[a]["sharpe"], sharpe, rel_tol=1e-9)
        peak, dd = init, 0.0
        for x in e:
            peak = max(peak, x)
            dd = max(dd, 1 - x / peak)
        assert math.isclose(stats[a]["max_drawdown"], dd, rel_tol=1e-12)
        # returns are chained across windows
        ret = wf.returns[a]
        assert_same(ret[~np.isnan(ret)], r)
    # asset C delists at bar 700: its stitched series ends there; B starts at 150
    assert np.isnan(wf.equity[2, 700:]).all() and not np.isnan(wf.equity[2, 699])
    # trade counts add up over windows
    per_window = wf.oos_metrics[:, 0, sb.kernels.METRIC_NAMES.index("n_trades")]
    assert stats[0]["n_trades"] == int(np.nansum(per_window))


def test_efficiency_definition(data):
    wf = sb.walk_forward(data, train=200, test=100, constraint=CONSTRAINT, **GRID, **FIXED)
    t = wf.windows.to_pylist()
    ratios = [r["oos_cagr"] / r["is_cagr"] for r in t if r["is_cagr"] > 0]
    assert ratios
    assert math.isclose(wf.efficiency, statistics.fmean(ratios), rel_tol=1e-12)
    for r in t:
        if r["is_cagr"] > 0:
            assert math.isclose(r["efficiency"], r["oos_cagr"] / r["is_cagr"], rel_tol=1e-12)
        else:
            assert math.isnan(r["efficiency"])


def test_rolling_and_anchored_spans():
    ts = make_bundle(1000).timestamps
    rolling = window_spans(ts, 200, 100)
    anchored = window_spans(ts, 200, 100, anchored=True)
    assert len(rolling) == len(anchored) == 8
    for k, ((a, b, c, d), (e, f, g, h)) in enumerate(zip(rolling, anchored)):
        assert (b - a, c, d) == (200, 200 + 100 * k, 300 + 100 * k)  # fixed-length train
        assert (e, f, g, h) == (0, b, c, d)  # expanding train, same test spans
    # a step longer than the test span leaves gaps; shorter is refused (overlap)
    gaps = window_spans(ts, 200, 100, step=150)
    assert [s[2] for s in gaps] == [200, 350, 500, 650, 800]
    with pytest.raises(ValueError, match="overlap"):
        window_spans(ts, 200, 100, step=50)
    # partial keeps a last, shorter window
    assert window_spans(ts, 200, 300) == [(0, 200, 200, 500), (300, 500, 500, 800)]
    assert window_spans(ts, 200, 300, partial=True)[-1] == (600, 800, 800, 1000)


def test_gaps_between_test_spans_are_nan(data):
    wf = sb.walk_forward(data, train=200, test=100, step=150, constraint=CONSTRAINT,
                         **GRID, **FIXED)
    assert np.isnan(wf.equity[0, 300:350]).all()
    assert not np.isnan(wf.equity[0, 350])
    # the window after the gap starts from the equity the previous one ended with
    path = sb.backtest(data, window=(350, 450), **{n: wf.chosen[1][n] for n in PARAMS})
    assert_same(wf.equity[0, 350:450], path.equity[0, 350:450] * wf.equity[0, 299] / 1e4)


def _add_months(d, months):
    """An independent calendar month addition on Python datetimes."""
    y, m = divmod(d.month - 1 + months, 12)
    y += d.year
    day = min(d.day, calendar.monthrange(y, m + 1)[1])
    return d.replace(year=y, month=m + 1, day=day)


def test_duration_windows():
    data = make_bundle(1000)
    ts = [dt.datetime.fromisoformat(str(t)[:19]) for t in data.timestamps]
    t0 = ts[0]
    got = window_spans(data.timestamps, "1Y", "6M")
    want = []
    k = 0
    while True:
        tr_lo = _add_months(t0, 6 * k)
        tr_hi = _add_months(t0, 12 + 6 * k)
        te_hi = _add_months(t0, 18 + 6 * k)
        if te_hi > ts[-1] + dt.timedelta(days=3):  # longest spacing: a weekend
            break
        want.append((bisect.bisect_left(ts, tr_lo), bisect.bisect_left(ts, tr_hi),
                     bisect.bisect_left(ts, tr_hi), bisect.bisect_left(ts, te_hi)))
        k += 1
    assert got == want and len(got) >= 4
    # every bar of a test span lies in its calendar half-year
    for k, (_, _, lo, hi) in enumerate(got):
        assert _add_months(t0, 12 + 6 * k) <= ts[lo] and ts[hi - 1] < _add_months(t0, 18 + 6 * k)
    # anchored: training always from the first bar
    assert [s[0] for s in window_spans(data.timestamps, "1Y", "6M", anchored=True)] == \
        [0] * len(got)
    # days and weeks are fixed lengths: 28D == 4W
    assert window_spans(data.timestamps, "364D", "28D") == \
        window_spans(data.timestamps, "52W", "4W")


def test_duration_walk_forward_equals_bar_walk_forward_on_same_spans():
    data = make_bundle(1000)
    by_time = sb.walk_forward(data, train="1Y", test="6M", constraint=CONSTRAINT, **GRID,
                              **FIXED)
    rows, equity = reference_walk_forward(data, by_time.spans)
    check_against_reference(by_time, rows, equity)


def test_month_end_clipping():
    ts = np.array(["2001-01-31", "2001-02-28", "2001-03-31", "2001-04-30", "2001-05-31",
                   "2001-06-30", "2001-07-31"], dtype="datetime64[ns]")
    # Jan 31 + 1M = Feb 28 (clipped), + 2M = Mar 31
    assert window_spans(ts, "1M", "1M") == [(0, 1, 1, 2), (1, 2, 2, 3), (2, 3, 3, 4),
                                            (3, 4, 4, 5), (4, 5, 5, 6), (5, 6, 6, 7)]


def test_parse_duration():
    assert parse_duration("2Y").months == 24
    assert parse_duration("6M").months == 6
    assert parse_duration("4w").ns == 28 * 86_400 * 10**9
    assert parse_duration("90D").ns == 90 * 86_400 * 10**9
    assert parse_duration("30min").ns == 1800 * 10**9
    for bad in ("2", "6m", "-1D", "1.5Y", "Y", "0D"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="all as bar counts or all as durations"):
        sb.walk_forward(data, train="1Y", test=100, **GRID)
    with pytest.raises(ValueError, match="no walk-forward window"):
        sb.walk_forward(data, train=900, test=200, **GRID)
    with pytest.raises(ValueError, match="unknown metric"):
        sb.walk_forward(data, train=200, test=100, objective="sharp", **GRID)
    with pytest.raises(TypeError, match="objective"):
        sb.walk_forward(data, train=200, test=100, objective=3, **GRID)
    with pytest.raises(TypeError, match="train"):
        sb.walk_forward(data, train=2.5, test=100, **GRID)
    with pytest.raises(ValueError, match="train"):
        sb.walk_forward(data, train=0, test=100, **GRID)


def test_format_walk_forward(data):
    wf = sb.walk_forward(data, train=200, test=100, constraint=CONSTRAINT, **GRID, **FIXED)
    text = format_walk_forward(wf)
    assert text == str(wf)
    lines = text.splitlines()
    assert lines[0].startswith("walk-forward: sma_cross, 8 windows, 24 combos")
    assert sum(1 for ln in lines if ln.lstrip().split(" ")[0].isdigit()) == 8
    assert "efficiency" in lines[-1]
    for sym in data.symbols:
        assert any(ln.strip().startswith(sym) for ln in lines)
    # every column by default; with a width (the CLI's: 100, or a narrower terminal) IS
    # sharpe, then OOS maxDD, are left out first (the windows are all in wf.windows)
    assert lines[1].endswith("take_profit  IS sharpe  OOS sharpe  OOS return  OOS maxDD")
    narrow = format_walk_forward(wf, width=100).splitlines()
    assert narrow[1].endswith("take_profit  OOS sharpe  OOS return")  # four parameters
    assert [ln.split()[:6] for ln in narrow[1:10]] == [ln.split()[:6] for ln in lines[1:10]]
    two = sb.walk_forward(data, train=200, test=100, fast=[5, 10], slow=[30, 60])
    fits = format_walk_forward(two, width=100).splitlines()  # without IS sharpe: 98
    assert fits[1].endswith("slow  OOS sharpe  OOS return  OOS maxDD")
    assert max(len(ln) for ln in fits[1:10]) <= 100


def test_result_shapes(data):
    wf = sb.walk_forward(data, train=200, test=100, constraint=CONSTRAINT, **GRID, **FIXED)
    assert wf.equity.shape == (data.n_assets, data.n_bars)
    assert wf.oos_metrics.shape == (8, 3, sb.kernels.N_METRICS)
    assert wf.is_metrics.shape == (8, sb.kernels.N_METRICS)
    assert wf.stats.num_rows == 3
    assert wf.windows.num_rows == 8
    assert wf.chosen[0].keys() == set(PARAMS)


# ---------------------------------------------------------------------------------------
# random search (sweep(sample=N, seed=S)), which walk_forward shares
# ---------------------------------------------------------------------------------------

BIG = {"fast": list(range(2, 40)), "slow": list(range(10, 100, 5)),
       "stop_loss": [None, 0.02, 0.05]}


def _combos(res):
    cols = [res.param_columns[n] for n in ("fast", "slow", "stop_loss")]
    return [tuple(None if math.isnan(x) else float(x) for x in row) for row in zip(*cols)]


def test_random_search_reproducible_distinct_constrained(data):
    a = sb.sweep(data, constraint="fast < slow", sample=60, seed=5, **BIG)
    b = sb.sweep(data, constraint="fast < slow", sample=60, seed=5, **BIG)
    c = sb.sweep(data, constraint="fast < slow", sample=60, seed=6, **BIG)
    assert a.n_combos == 60 and len(_combos(a)) == 60
    assert _combos(a) == _combos(b)
    np.testing.assert_array_equal(a.metrics, b.metrics)
    assert _combos(a) != _combos(c)
    assert len(set(_combos(a))) == 60  # distinct
    assert all(f < s for f, s, _ in _combos(a))
    # every sampled combo is a grid combo with the same metrics as in the full sweep
    full = sb.sweep(data, constraint="fast < slow", **BIG)
    index = {k: i for i, k in enumerate(_combos(full))}
    n_assets = data.n_assets
    for i, k in enumerate(_combos(a)):
        j = index[k]
        np.testing.assert_array_equal(a.metrics[i * n_assets:(i + 1) * n_assets],
                                      full.metrics[j * n_assets:(j + 1) * n_assets])


def test_random_search_at_least_grid_runs_whole_grid(data):
    grid = {"fast": [5, 10, 20], "slow": [30, 60]}
    full = sb.sweep(data, **grid)
    for n in (6, 7, 100):
        res = sb.sweep(data, sample=n, seed=1, **grid)
        assert res.n_combos == 6
        assert sorted(_pairs(res)) == sorted(_pairs(full))
    assert sb.sweep(data, sample=4, seed=1, **grid).n_combos == 4
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="sample"):
            sb.sweep(data, sample=bad, **grid)


def _pairs(res):
    return list(zip(res.param_columns["fast"].tolist(), res.param_columns["slow"].tolist()))
