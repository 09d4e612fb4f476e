"""The portfolio reference simulator and the engine against vectorbt's cash-sharing
portfolio.

``vbt.Portfolio.from_signals(..., group_by=True, cash_sharing=True, call_seq="auto")``
with the settings of tests/test_vectorbt.py sells before it buys and buys in column order
when the orders are of equal value, cutting a buy that the cash cannot pay to the cash
(``allow_partial``). For long-only books that is the sizing of docs/semantics.md,
"Portfolio backtests", in two cases: value sizing with no costs (vectorbt's value is the
notional before fees), and ``size=1`` with any costs (the first entry of a bar takes all the
cash). The engine (``sb.backtest(..., portfolio=True)``, the codes fed through a user
strategy that reads them from the volume column) must agree with vectorbt as well.
"""

import numpy as np
import pytest

import sweepbt as sb
from helpers import CODES_IN_VOLUME, random_ohlc
from portfolio_reference import reference_portfolio
from reference import BUY, SELL

vbt = pytest.importorskip("vectorbt")
import pandas as pd  # noqa: E402  (a vectorbt dependency)
from vectorbt.portfolio.enums import SizeType, StopEntryPrice, StopExitPrice  # noqa: E402

NAN = float("nan")
REL = 1e-9


def vectorbt_case(seed):
    """Long-only, fill="close", full spans, BUY/SELL codes; either value sizing with no
    costs, or size=1 (all the cash) with every cost; a stop-loss or a trailing stop."""
    rng = np.random.default_rng(80_000 + seed)
    n_assets = int(rng.integers(3, 6))
    prices = random_ohlc(rng, 100, n_assets)
    codes = rng.choice([0, BUY, SELL], size=(n_assets, 100), p=[0.7, 0.15, 0.15])
    options = dict(fill="close")
    if seed % 2 == 0:
        options.update(size_type="value", size=float(rng.choice([2500.0, 4000.0, 6000.0])))
    else:
        options.update(fees=0.001, fixed_fees=2.0, slippage=0.0005)
    level = float(rng.uniform(0.01, 0.05))
    if seed % 3 == 0:
        options["stop_loss"] = level
    elif seed % 3 == 1:
        options["trailing_stop"] = level
    return prices, codes, options


def test_reference_matches_vectorbt_cash_sharing():
    """Assets compete for cash on many bars; equity on every bar, the trade count and
    every trade (asset, bars, units) agree to 1e-9."""
    capped = 0
    for seed in range(24):
        (o, h, lo, c), codes, options = vectorbt_case(seed)
        n_assets, n = c.shape
        ref = reference_portfolio(o, h, lo, c, [0] * n_assets, [n] * n_assets, codes,
                                  np.full((n_assets, n), NAN), **options)
        value = options.get("size_type") == "value"
        stop = options.get("stop_loss", options.get("trailing_stop"))
        days = pd.date_range("2000-01-03", periods=n)
        frame = lambda x: pd.DataFrame(x.T, index=days)  # noqa: E731
        pf = vbt.Portfolio.from_signals(
            frame(c), entries=frame(codes == BUY), exits=frame(codes == SELL), open=frame(o),
            high=frame(h), low=frame(lo), direction="longonly",
            size=options["size"] if value else np.inf,
            size_type=SizeType.Value if value else SizeType.Amount, accumulate=False,
            init_cash=10_000.0, group_by=True, cash_sharing=True, call_seq="auto",
            fees=options.get("fees", 0.0), fixed_fees=options.get("fixed_fees", 0.0),
            slippage=options.get("slippage", 0.0), sl_stop=NAN if stop is None else stop,
            sl_trail="trailing_stop" in options, stop_entry_price=StopEntryPrice.FillPrice,
            stop_exit_price=StopExitPrice.StopMarket, freq="1D")
        what = f"seed {seed} {options}"
        np.testing.assert_allclose(ref["equity"], pf.value().values, rtol=REL, err_msg=what)
        theirs = sorted((int(t["col"]), int(t["entry_idx"]), int(t["exit_idx"]), t["size"])
                        for t in pf.trades.records_arr)
        ours = sorted((t["asset"], t["entry_bar"], t["exit_bar"], t["units"])
                      for t in ref["trades"])
        assert [t[:3] for t in ours] == [t[:3] for t in theirs], what
        np.testing.assert_allclose([t[3] for t in ours], [t[3] for t in theirs], rtol=REL)
        data = sb.Bundle.from_arrays(o, h, lo, c, volume=codes.astype(np.float64))
        bt = sb.backtest(data, CODES_IN_VOLUME, portfolio=True, **options)
        np.testing.assert_allclose(bt.equity, pf.value().values, rtol=REL, err_msg=what)
        engine = sorted(zip(bt.trades["symbol"].to_pylist(), bt.trades["entry_bar"].to_pylist(),
                            bt.trades["exit_bar"].to_pylist(), bt.trades["units"].to_pylist()))
        symbols = list(data.symbols)
        assert [(symbols.index(t[0]),) + t[1:3] for t in engine] == [t[:3] for t in theirs]
        np.testing.assert_allclose([t[3] for t in engine], [t[3] for t in theirs], rtol=REL)
        if value:  # entries whose budget was cut below the value size by the cash left
            capped += sum(t["units"] * t["entry_price"] < options["size"] - 1e-6
                          for t in ref["trades"])
    assert capped >= 10  # assets really compete for cash
