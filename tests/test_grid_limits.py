"""Values at the edges of what a grid or a factor column can hold: huge integers, a
vol_window no weighting uses, fees + tax of a rank strategy, uint64 factors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import sweepbt as sb
from sweepbt.data import Bundle

HUGE = 10**30


def short_bundle(n_bars=50):
    """Four assets of ``n_bars`` close-only bars: shorter than the default vol_window 63."""
    rng = np.random.default_rng(3)
    close = 20.0 * np.exp(np.cumsum(rng.normal(0, 0.02, (4, n_bars)), axis=1))
    return Bundle.from_arrays(close=close, symbols=["A", "B", "C", "D"])


@pytest.fixture(scope="module")
def data():
    return short_bundle()


@pytest.mark.parametrize("kw", [dict(rebalance=HUGE), dict(rebalance=[5, HUGE]),
                                dict(top_n=HUGE, rebalance=5), dict(skip=HUGE, rebalance=5),
                                dict(vol_window=HUGE, rebalance=5)])
def test_integers_beyond_int64_are_a_value_error_naming_the_parameter(data, kw):
    name = next(k for k, v in kw.items() if v == HUGE or v == [5, HUGE])
    kw = {"lookback": 5, "top_n": 2, **kw}
    with pytest.raises(ValueError, match=f"^{name}={HUGE} is too large"):
        sb.sweep(data, "momentum_rank", progress=False, **kw)


def test_an_unused_default_vol_window_does_not_need_63_bars(data):
    bt = sb.backtest(data, "momentum_rank", lookback=5, top_n=2, rebalance=10)
    assert np.isfinite(bt.stats.column("total_return")[0].as_py())
    again = sb.backtest(data, "momentum_rank", lookback=5, top_n=2, rebalance=10,
                        vol_window=30)  # unused: the same backtest
    assert np.array_equal(bt.equity, again.equity, equal_nan=True)
    ok = sb.backtest(data, "momentum_rank", lookback=5, top_n=2, rebalance=10,
                     weighting="inverse_vol", vol_window=20)
    assert ok.stats.num_rows == 1


@pytest.mark.parametrize("strategy, kw", [
    ("momentum_rank", dict(lookback=5, weighting="inverse_vol")),
    ("momentum_rank", dict(lookback=5, weighting=["equal", "inverse_vol"])),
    ("low_volatility_rank", {}),
])
def test_a_used_vol_window_longer_than_the_data_is_refused(data, strategy, kw):
    with pytest.raises(ValueError, match="vol_window.*=63 is longer than the data "
                                         r"\(longest asset span: 50 bars\)"):
        sb.sweep(data, strategy, top_n=2, rebalance=10, progress=False, **kw)


@pytest.mark.parametrize("fees, tax, shown", [
    (0.9, 0.2, "fees=0.9 with tax=0.2"),
    ([0.0, 0.5], [0.1, 0.5], "fees=0.5 with tax=0.5"),
    (0.0, [0.2, 0.999], None),
])
def test_fees_plus_tax_of_one_or_more_is_refused_for_any_combo(data, fees, tax, shown):
    kw = dict(lookback=5, top_n=2, rebalance=10, fees=fees, tax=tax, progress=False)
    if shown is None:
        res = sb.sweep(data, "momentum_rank", **kw)
        assert res.table.num_rows == 2
        return
    with pytest.raises(ValueError, match=f"fees \\+ tax must be < 1.*{shown}"):
        sb.sweep(data, "momentum_rank", **kw)


def test_fees_and_tax_just_below_one_run(data):
    bt = sb.backtest(data, "momentum_rank", lookback=5, top_n=2, rebalance=10, fees=0.5,
                     tax=0.4)
    assert bt.equity[-1] < bt.equity[0]


def test_uint64_factor_above_2_53_rounds_to_float64():
    table = short_bundle(20).to_table()
    big = np.arange(table.num_rows, dtype=np.uint64) * np.uint64(3) + np.uint64(2**60 + 1)
    table = table.append_column("mcap", pa.array(big))
    data = sb.load(table, factors=["mcap"])
    got = data.factors["mcap"]
    assert np.array_equal(got[0], big[:20].astype(np.float64))
    assert got[0, 0] == float(2**60)  # 2**60 + 1 rounds to the nearest float64
    assert sb.backtest(data, "factor_rank", factor="mcap", top_n=1,
                       rebalance=5).stats.num_rows == 1
