"""Arrays written after a Bundle was built: every public call checks the Bundle again
(Bundle.check) and refuses it with the DataError loading would raise, before any kernel."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import sweepbt as sb
from sweepbt.data import Bundle, DataError, load

N_BARS = 80


def make_bundle():
    """Three assets x 80 bars of valid OHLCV with a factor ``f``; asset 2 starts at bar 5."""
    rng = np.random.default_rng(7)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (3, N_BARS)), axis=1))
    open_ = close * np.exp(rng.normal(0, 0.005, close.shape))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    for x in (open_, high, low, close):
        x[2, :5] = np.nan
    return Bundle.from_arrays(open_, high, low, close, volume=np.full(close.shape, 100.0),
                              symbols=["A", "B", "C"],
                              factors={"f": rng.normal(size=close.shape)})


RUNS = {
    "backtest": lambda d: sb.backtest(d, "sma_cross", fast=3, slow=10),
    "sweep": lambda d: sb.sweep(d, "sma_cross", fast=[3, 4], slow=10, progress=False),
    "portfolio": lambda d: sb.backtest(d, "sma_cross", fast=3, slow=10, portfolio=True),
    "rank": lambda d: sb.backtest(d, "momentum_rank", lookback=5, top_n=2, rebalance=10),
    "factor_rank": lambda d: sb.sweep(d, "factor_rank", factor="f", top_n=[1, 2],
                                      rebalance=10, progress=False),
    "walk_forward": lambda d: sb.walk_forward(d, "sma_cross", train=40, test=20,
                                              fast=[3, 4], slow=10, progress=False),
    "estimate": lambda d: sb.estimate(d, "sma_cross", fast=[3, 4], slow=10),
    "load": lambda d: load(d),
}

#: (what is written, the message loading gives for it)
CHANGES = {
    "nan close": (lambda d: d.close.__setitem__((1, 40), np.nan),
                  r"price is NaN or infinite: symbol 'B', row 40 .*column 'close'"),
    "inf close": (lambda d: d.close.__setitem__((1, 40), np.inf),
                  r"price is NaN or infinite: symbol 'B', row 40 .*close=inf"),
    "zero close": (lambda d: d.close.__setitem__((0, 3), 0.0), r"price <= 0: symbol 'A', row 3"),
    "negative open": (lambda d: d.open.__setitem__((2, 70), -5.0),
                      r"price <= 0: symbol 'C', row 70 .*column 'open'"),
    "high below low": (lambda d: d.high.__setitem__((0, 9), d.low[0, 9] / 2),
                       r"high < low: symbol 'A', row 9"),
    "open above high": (lambda d: d.open.__setitem__((1, 11), d.high[1, 11] * 1.5),
                        r"open outside \[low, high\]: symbol 'B', row 11"),
    "close below low": (lambda d: d.close.__setitem__((1, 12), d.low[1, 12] * 0.5),
                        r"close outside \[low, high\]: symbol 'B', row 12"),
    "negative volume": (lambda d: d.volume.__setitem__((0, 1), -1.0),
                        r"volume is negative, NaN or infinite: symbol 'A', row 1"),
    "inf factor": (lambda d: d.factors["f"].__setitem__((2, 30), -np.inf),
                   r"factor is infinite: symbol 'C', row 30 .*column 'f'"),
    "end past the axis": (lambda d: d.end.__setitem__(1, 500),
                          r"span of symbol 'B': start=0, end=500.*n_bars=80"),
    "start after end": (lambda d: d.start.__setitem__(0, 60) or d.end.__setitem__(0, 50),
                        r"span of symbol 'A': start=60, end=50"),
    "negative start": (lambda d: d.start.__setitem__(2, -1), r"span of symbol 'C': start=-1"),
    "unsorted timestamps": (lambda d: d.timestamps.__setitem__(20, d.timestamps[3]),
                            r"unsorted timestamps: row 20"),
    "duplicate timestamps": (lambda d: d.timestamps.__setitem__(20, d.timestamps[19]),
                             r"duplicate timestamps: row 20"),
}


@pytest.fixture(scope="module")
def clean():
    return make_bundle()


@pytest.mark.parametrize("change", sorted(CHANGES))
@pytest.mark.parametrize("mode", sorted(RUNS))
def test_every_call_refuses_arrays_written_after_building(clean, mode, change):
    data = clean.copy()
    write, message = CHANGES[change]
    write(data)
    with pytest.raises(DataError, match=message) as err:
        RUNS[mode](data)
    assert "changed after it was built" in str(err.value)


@pytest.mark.parametrize("change", ["span past the axis", "NaN close"])
def test_a_result_re_running_its_plan_checks_again(clean, change):
    """res.equity() and res.backtest() run kernels on the result's own Bundle: written
    after the sweep, it is refused there too (a span past the axis would corrupt memory)."""
    data = clean.copy()
    res = sb.sweep(data, "sma_cross", fast=[3, 4], slow=10, portfolio=True)
    if change == "span past the axis":
        data.end[1] = 500
    else:
        data.close[1, 40] = np.nan
    for rerun in (lambda: res.equity([0]), lambda: res.returns([0]),
                  lambda: res.backtest(0)):
        with pytest.raises(DataError, match="changed after it was built"):
            rerun()


def test_outside_the_spans_anything_goes(clean):
    data = clean.copy()
    data.close[2, :5] = -1.0  # before asset C's span: never read
    data.factors["f"][2, :5] = np.inf
    data.check()
    base = sb.backtest(clean, "sma_cross", fast=3, slow=10, portfolio=True)
    again = sb.backtest(data, "sma_cross", fast=3, slow=10, portfolio=True)
    assert np.array_equal(base.equity, again.equity, equal_nan=True)


def test_a_valid_change_runs(clean):
    data = clean.copy()
    data.close[1, 40] = (data.low[1, 40] + data.high[1, 40]) / 2
    data.check()
    bt = sb.backtest(data, "sma_cross", fast=3, slow=10)
    assert bt.stats.num_rows == 3


@pytest.mark.slow
def test_span_past_the_axis_never_reaches_a_kernel():
    """A span past the bar axis corrupted memory in the portfolio kernel (a crash): run in
    a child process so a crash fails this test instead of ending pytest."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
        import sweepbt as sb
        from sweepbt.data import DataError
        from test_bundle_check import make_bundle
        data = make_bundle()
        data.end[1] = 500
        for portfolio in (True, False):
            try:
                sb.backtest(data, "sma_cross", fast=3, slow=10, portfolio=portfolio)
            except DataError as exc:
                print("refused:", exc)
        try:
            sb.backtest(data, "momentum_rank", lookback=5, top_n=2, rebalance=10)
        except DataError as exc:
            print("refused:", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("refused: span of symbol 'B': start=0, end=500") == 3, out.stdout
