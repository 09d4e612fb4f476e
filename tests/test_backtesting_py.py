"""Cross-check against backtesting.py: whole units, a commission callable
``max(min, per_share * |size|)``, market orders at the next open (docs/semantics.md,
Costs: "Peers").

The sizing rules differ (backtesting.py sizes a fractional ``size`` with a commission per
unit estimated from that fraction; sweepbt buys the largest whole order the budget pays
for), so backtesting.py is given the orders sweepbt chose: each trade's units, placed at
the close of the bar before its entry. Everything else must agree: fill prices,
commissions on both legs, each trade's pnl and the equity at every close.
"""

import warnings

import numpy as np
import pytest

import sweepbt as sb

backtesting = pytest.importorskip("backtesting")
pd = pytest.importorskip("pandas")

MIN_FEES, PER_SHARE = 5.0, 0.005  # the minimum holds below 1,000 shares


def _broker_commission(order_size, price):
    return max(MIN_FEES, PER_SHARE * abs(order_size))


def _frame(bundle, a):
    return pd.DataFrame({"Open": bundle.open[a], "High": bundle.high[a], "Low": bundle.low[a],
                         "Close": bundle.close[a], "Volume": np.ones(bundle.n_bars)},
                        index=pd.to_datetime(bundle.timestamps))


def _replay(frame, trades, init_cash):
    """backtesting.py running sweepbt's orders: buy ``units`` at the close before each
    entry bar, close at the close before each exit bar (both fill at the next open)."""
    buys = {int(t["entry_bar"]) - 1: float(t["units"]) for t in trades}
    sells = {int(t["exit_bar"]) - 1 for t in trades if t["exit_reason"] != "end"}

    class Replay(backtesting.Strategy):
        def init(self):
            pass

        def next(self):
            i = len(self.data) - 1
            if i in sells and self.position:
                self.position.close()
            if i in buys:
                self.buy(size=int(buys[i]))

    bt = backtesting.Backtest(frame, Replay, cash=init_cash, commission=_broker_commission)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trades left open at the end; pandas deprecations
        return bt.run()


@pytest.mark.parametrize("symbol, fast, slow, at_minimum", [
    ("ALPHA", 10, 40, "some"), ("BRAVO", 10, 40, "all"), ("CHARLIE", 10, 40, "none")])
def test_whole_shares_with_a_minimum_commission_agree_with_backtesting_py(symbol, fast, slow,
                                                                           at_minimum):
    data = sb.demo().select([symbol]).slice_bars(0, 1500)
    init_cash = 100_000.0
    res = sb.backtest(data, "sma_cross", fast=fast, slow=slow, size=0.9, init_cash=init_cash,
                      fees_per_share=PER_SHARE, min_fees=MIN_FEES, lot_size=1.0)
    trades = res.trades.to_pylist()
    assert len(trades) > 5
    assert all(t["units"] == int(t["units"]) for t in trades)
    paying_the_minimum = [PER_SHARE * t["units"] < MIN_FEES for t in trades]
    assert {"all": all, "none": lambda x: not any(x),
            "some": lambda x: any(x) and not all(x)}[at_minimum](paying_the_minimum)
    stats = _replay(_frame(data, 0), trades, init_cash)
    peer = stats["_trades"]
    closed = [t for t in trades if t["exit_reason"] != "end"]
    assert len(peer) == len(closed)
    for k, (ours, theirs) in enumerate(zip(closed, peer.itertuples())):
        assert theirs.Size == ours["units"], k
        assert theirs.EntryBar == ours["entry_bar"] and theirs.ExitBar == ours["exit_bar"], k
        assert theirs.EntryPrice == pytest.approx(ours["entry_price"], rel=1e-12), k
        assert theirs.ExitPrice == pytest.approx(ours["exit_price"], rel=1e-12), k
        assert theirs.PnL == pytest.approx(ours["pnl"], rel=1e-9, abs=1e-6), k
    peer_equity = stats["_equity_curve"]["Equity"].to_numpy()
    np.testing.assert_allclose(res.equity[0], peer_equity, rtol=1e-10)
