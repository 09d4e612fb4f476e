"""Hand-computed worked examples of docs/semantics.md, checked against tests/reference.py.

Every expected number below was worked out by hand from the prose of docs/semantics.md
(the arithmetic is in the comments); none was produced by running the reference and
pasting its output. Comparisons are to a relative tolerance of 1e-12 (money amounts are
compared relative to init_cash, so a cash balance of "0" may carry float dust).
"""

import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import pytest  # noqa: E402

from reference import reference_backtest, sma, sma_cross_signals  # noqa: E402

NAN = float("nan")
TOL = 1e-12


def close_enough(actual, expected, scale=1.0):
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return abs(actual - expected) <= TOL * max(abs(expected), scale)


def assert_path(actual, expected, scale):
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert close_enough(a, e, scale), f"bar {i}: {a!r} != {e!r}"


def assert_trades(actual, expected, scale):
    """expected: list of dicts with the keys to check (money keys relative to scale)."""
    assert len(actual) == len(expected), actual
    money = {"pnl"}
    for k, (t, e) in enumerate(zip(actual, expected)):
        for key, value in e.items():
            if key in ("direction", "exit_reason", "entry_bar", "exit_bar"):
                assert t[key] == value, f"trade {k} {key}: {t[key]!r} != {value!r}"
                continue
            s = scale if key in money else 1.0
            assert close_enough(t[key], float(value), s), f"trade {k} {key}: {t[key]!r} != {value!r}"


def assert_metrics(actual, expected):
    for key, value in expected.items():
        if key.startswith("n_"):
            assert actual[key] == value, f"{key}: {actual[key]!r} != {value!r}"
        else:
            assert close_enough(actual[key], float(value)), f"{key}: {actual[key]!r} != {value!r}"


def run(bars, signals, **kw):
    o, h, l, c = (list(map(float, col)) for col in zip(*bars))
    return reference_backtest(o, h, l, c, signals, **kw)


# --------------------------------------------------------------------------------------
# 1. next_open entry and signal exit, with proportional fees
# --------------------------------------------------------------------------------------

#          open   high   low  close
BARS_1 = [(100, 101, 99, 100),
          (100, 105, 99, 104),
          (104, 108, 103, 107),
          (108, 111, 106, 110),
          (110, 112, 109, 111),
          (111, 113, 110, 112)]


def test_next_open_entry_signal_exit_with_fees():
    # init_cash 10010, fees 0.001. Entry signal at bar 0's close -> buy at bar 1's open 100:
    #   units = 10010 / (100 * 1.001) = 100, cash = 10010 - 100*100*1.001 = 0.
    # Closes 104, 107, 110 -> equity 10400, 10700, 11000.
    # Exit signal at bar 3's close -> sell at bar 4's open 110:
    #   proceeds = 100 * 110 * 0.999 = 10989 -> cash 10989 on bars 4 and 5.
    # pnl = 10989 - 10010 = 979; return = 979 / 10010.
    # Exposed: bars 1..3 in full, bar 4 only at its open (exit at the open):
    #   max high = max(105, 108, 111, 110) = 111 -> mfe = 0.11
    #   min low  = min(99, 103, 106, 110)  = 99  -> mae = 0.01
    res = run(BARS_1, [1, 0, 0, -1, 0, 0], fees=0.001, init_cash=10010.0)
    assert_path(res["equity"], [10010, 10400, 10700, 11000, 10989, 10989], 10010)
    assert_path(res["cash"], [10010, 0, 0, 0, 10989, 10989], 10010)
    assert_path(res["units"], [0, 100, 100, 100, 0, 0], 1)
    assert_trades(res["trades"], [dict(
        direction="long", entry_bar=1, exit_bar=4, entry_price=100, exit_price=110,
        entry_quote=100, exit_quote=110, units=100, pnl=979, exit_reason="signal",
        mfe=0.11, mae=0.01, **{"return": 979 / 10010})], 10010)
    # Returns r = [0, 390/10010, 300/10400, 300/10700, -11/11000, 0]
    # max drawdown: peak 11000 at bar 3, then 10989 -> 11/11000 = 0.001.
    # Exposure: units held at the close of bars 1, 2, 3 -> 3/6. Bars held: 4 - 1 = 3.
    # No losing trade -> profit_factor NaN.
    assert_metrics(res["metrics"], dict(
        total_return=979 / 10010, max_drawdown=0.001, exposure=0.5, avg_bars_held=3.0,
        n_trades=1, win_rate=1.0, profit_factor=NAN, avg_trade=979 / 10010,
        n_signal=1, n_stop=0, n_take=0, n_trail=0, n_time=0))


# --------------------------------------------------------------------------------------
# 2. fill="close" with fixed fees; stops are not checked on the entry bar
# --------------------------------------------------------------------------------------

BARS_2 = [(100, 102, 98, 100),
          (110, 112, 108, 111),
          (112, 116, 111, 115),
          (118, 121, 115, 120),
          (120, 122, 118, 119)]


@pytest.mark.parametrize("stop_loss", [None, 0.025])
def test_fill_close_with_fixed_fees(stop_loss):
    # init 10000, fixed_fees 10, fill at the signal bar's close.
    # Bar 1 close 111: units = (10000 - 10) / 111 = 90; cash = 10000 - 90*111 - 10 = 0.
    # equity: bar 1 90*111 = 9990, bar 2 90*115 = 10350.
    # Bar 3 exit signal at close 120: cash = 90*120 - 10 = 10790 (bars 3, 4).
    # pnl = 10790 - 10000 = 790; return = 790 / (90*111 + 10) = 0.079.
    # With stop_loss 0.025 the stop is 111*0.975 = 108.225: bar 1's low 108 is below it,
    # but the entry bar is not checked for fill="close"; bars 2-3 lows 111, 115 are above.
    # Exposed bars: 2..3 (from the bar after entry): max high 121 -> mfe = 121/111 - 1,
    # min low 111 -> mae = max(0, 1 - 111/111) = 0.
    res = run(BARS_2, [0, 1, 0, -1, 0], fill="close", fixed_fees=10.0, stop_loss=stop_loss)
    assert_path(res["equity"], [10000, 9990, 10350, 10790, 10790], 10000)
    assert_path(res["cash"], [10000, 0, 0, 10790, 10790], 10000)
    assert_trades(res["trades"], [dict(
        entry_bar=1, exit_bar=3, entry_price=111, exit_price=120, units=90, pnl=790,
        exit_reason="signal", mfe=10 / 111, mae=0.0, **{"return": 0.079})], 10000)
    assert_metrics(res["metrics"], dict(exposure=0.4, avg_bars_held=2.0, n_signal=1, n_stop=0))


# --------------------------------------------------------------------------------------
# 3. stop_loss hit intrabar; hit on the entry bar; gap through the stop
# --------------------------------------------------------------------------------------

BARS_3 = [(100, 101, 99, 100),
          (100, 102, 97, 99),
          (98, 99, 94.5, 96),
          (96, 97, 94, 95),
          (95, 96, 93, 94)]


def test_stop_loss_intrabar():
    # Entry at bar 1's open 100, 100 units, cash 0; stop = 100 * 0.95 = 95.
    # Bar 1 (entry bar, checked for next_open): open 100 > 95, low 97 > 95: hold; equity 9900.
    # Bar 2: open 98 > 95, low 94.5 <= 95 -> sell at the stop 95: cash 9500.
    # pnl = -500, return -0.05. Exposed bars 1, 2: max high 102, min low 94.5.
    res = run(BARS_3, [1, 0, 0, 0, 0], stop_loss=0.05)
    assert_path(res["equity"], [10000, 9900, 9500, 9500, 9500], 10000)
    assert_trades(res["trades"], [dict(
        entry_bar=1, exit_bar=2, entry_price=100, exit_price=95, exit_quote=95, pnl=-500,
        exit_reason="stop", mfe=0.02, mae=0.055, **{"return": -0.05})], 10000)
    # drawdown 1 - 9500/10000 = 0.05; one loser: profit_factor = 0 / 500 = 0.
    assert_metrics(res["metrics"], dict(max_drawdown=0.05, n_stop=1, win_rate=0.0,
                                        profit_factor=0.0, total_return=-0.05))


def test_stop_loss_checked_on_next_open_entry_bar():
    # Same as above but bar 1's low is 94: the entry bar itself is checked (its open came
    # first), low 94 <= 95 -> out at 95 on bar 1. entry_bar == exit_bar == 1.
    bars = list(BARS_3)
    bars[1] = (100, 102, 94, 99)
    res = run(bars, [1, 0, 0, 0, 0], stop_loss=0.05)
    assert_path(res["equity"], [10000, 9500, 9500, 9500, 9500], 10000)
    assert_trades(res["trades"], [dict(
        entry_bar=1, exit_bar=1, exit_price=95, pnl=-500, exit_reason="stop",
        mfe=0.02, mae=0.06)], 10000)
    assert_metrics(res["metrics"], dict(avg_bars_held=0.0, exposure=0.0))


def test_gap_below_stop_fills_at_open():
    # Stop 95; bar 2 opens at 93, already below the stop -> sell at the open 93, not at 95.
    # pnl = 100 * (93 - 100) = -700. Bar 2 contributes only its open to mfe/mae:
    # mae = 1 - 93/100 = 0.07 (bar 2's low 92 happened after the exit).
    bars = list(BARS_3)
    bars[2] = (93, 96, 92, 95)
    res = run(bars, [1, 0, 0, 0, 0], stop_loss=0.05)
    assert_path(res["equity"], [10000, 9900, 9300, 9300, 9300], 10000)
    assert_trades(res["trades"], [dict(
        entry_bar=1, exit_bar=2, exit_price=93, exit_quote=93, pnl=-700,
        exit_reason="stop", mfe=0.02, mae=0.07)], 10000)


def test_next_open_signal_on_stop_bar_fills_next_open():
    # Stop out on bar 2 at 95 (cash 9500). A new entry signal at bar 2's close is allowed
    # with next_open (it fills on a different bar): buy at bar 3's open 96,
    # units = 9500 / 96, cash 0; marked at closes 95 and 94; it ends as an `end` trade.
    res = run(BARS_3, [1, 0, 1, 0, 0], stop_loss=0.05)
    u = 9500 / 96
    assert_path(res["equity"], [10000, 9900, 9500, u * 95, u * 94], 10000)
    assert_trades(res["trades"], [
        dict(entry_bar=1, exit_bar=2, pnl=-500, exit_reason="stop"),
        # stop for the second trade: 96*0.95 = 91.2, never reached (lows 94, 93).
        dict(entry_bar=3, exit_bar=4, entry_price=96, exit_price=94, units=u,
             pnl=u * 94 - 9500, exit_reason="end", mfe=1 / 96, mae=3 / 96),
    ], 10000)


def test_fill_close_entry_dropped_after_stop_same_bar():
    # fill="close": buy at bar 0's close 100 (100 units). Bar 1 is the first checked bar:
    # low 97 > 95. Bar 2: low 94.5 -> out at 95. The entry signal at bar 2's close is
    # dropped (no new entry on a bar with a stop exit).
    res = run(BARS_3, [1, 0, 1, 0, 0], stop_loss=0.05, fill="close")
    assert_path(res["equity"], [10000, 9900, 9500, 9500, 9500], 10000)
    assert_trades(res["trades"], [dict(
        entry_bar=0, exit_bar=2, exit_price=95, pnl=-500, exit_reason="stop",
        mfe=0.02, mae=0.055)], 10000)


# --------------------------------------------------------------------------------------
# 4. stop and take-profit inside one bar: the stop wins; gap through the take
# --------------------------------------------------------------------------------------

BARS_4 = [(100, 101, 99, 100),
          (100, 103, 97, 101),
          (100, 106, 94, 100),
          (101, 102, 99, 100)]


def test_stop_and_take_same_bar_stop_wins():
    # stop 95, take 105. Bar 1: low 97, high 103: nothing. Bar 2: low 94 <= 95 and
    # high 106 >= 105 -> pessimistic: the stop, at 95. pnl -500.
    res = run(BARS_4, [1, 0, 0, 0], stop_loss=0.05, take_profit=0.05)
    assert_path(res["equity"], [10000, 10100, 9500, 9500], 10000)
    assert_trades(res["trades"], [dict(
        exit_bar=2, exit_price=95, pnl=-500, exit_reason="stop", mfe=0.06, mae=0.06)], 10000)


def test_gap_above_take_fills_at_open():
    # Bar 2 opens at 107 >= take 105 (and above the stop) -> sell at the open 107, reason
    # take, even though the bar later trades down to 94. pnl = 700.
    # mfe: bar 1 high 103, bar 2 open 107 -> 0.07; mae: bar 1 low 97 -> 0.03.
    bars = list(BARS_4)
    bars[2] = (107, 108, 94, 100)
    res = run(bars, [1, 0, 0, 0], stop_loss=0.05, take_profit=0.05)
    assert_path(res["equity"], [10000, 10100, 10700, 10700], 10000)
    assert_trades(res["trades"], [dict(
        exit_bar=2, exit_price=107, exit_quote=107, pnl=700, exit_reason="take",
        mfe=0.07, mae=0.03)], 10000)
    assert_metrics(res["metrics"], dict(n_take=1, n_stop=0))


# --------------------------------------------------------------------------------------
# 5. trailing stop ratchet; combined with a fixed stop
# --------------------------------------------------------------------------------------

BARS_5 = [(100, 101, 99, 100),
          (100, 110, 95, 108),
          (108, 120, 105, 118),
          (118, 119, 110, 112),
          (112, 113, 106, 107),
          (104, 106, 100, 105)]


@pytest.mark.parametrize("stop_loss", [None, 0.08])
def test_trailing_stop_ratchet(stop_loss):
    # trailing 0.10, entry at bar 1's open 100, peak starts at 100.
    # Bar 1: trail = 100*0.9 = 90 (fixed stop 92 if set, higher -> 92); low 95: hold.
    #        Only now peak -> 110. (Had the peak moved first, trail 99 would have hit.)
    # Bar 2: trail = 99 (> 92); low 105: hold; peak -> 120.
    # Bar 3: trail = 108; low 110: hold; high 119 < 120, peak stays 120.
    # Bar 4: trail = 108; open 112 > 108; low 106 <= 108 -> out at 108, reason trail.
    # pnl = 100 * 8 = 800. Exposed bars 1..4: max high 120, min low 95.
    res = run(BARS_5, [1, 0, 0, 0, 0, 0], trailing_stop=0.1, stop_loss=stop_loss)
    assert_path(res["equity"], [10000, 10800, 11800, 11200, 10800, 10800], 10000)
    assert_trades(res["trades"], [dict(
        entry_bar=1, exit_bar=4, exit_price=108, exit_quote=108, pnl=800,
        exit_reason="trail", mfe=0.2, mae=0.05, **{"return": 0.08})], 10000)
    assert_metrics(res["metrics"], dict(n_trail=1, n_stop=0, max_drawdown=1000 / 11800))


def test_trailing_and_fixed_stop_tie_reports_stop():
    # stop_loss 0.1 and trailing 0.1: on bar 1 both levels are 90. Bar 1's low 89 hits it:
    # out at 90; equal levels -> reason stop. pnl -1000.
    bars = list(BARS_5)
    bars[1] = (100, 110, 89, 108)
    res = run(bars, [1, 0, 0, 0, 0, 0], trailing_stop=0.1, stop_loss=0.1)
    assert_trades(res["trades"], [dict(
        entry_bar=1, exit_bar=1, exit_price=90, pnl=-1000, exit_reason="stop",
        mfe=0.1, mae=0.11)], 10000)
    assert_path(res["equity"], [10000] + [9000] * 5, 10000)


# --------------------------------------------------------------------------------------
# 6. max_bars time exit (next_open and close)
# --------------------------------------------------------------------------------------


def test_time_exit_next_open():
    # Entry at bar 1's open 100 (100 units), max_bars 2 -> out at bar 3's close 105.
    bars = [(100, 101, 99, 100), (100, 103, 99, 102), (102, 105, 101, 104),
            (104, 106, 102, 105), (106, 108, 105, 107), (107, 109, 106, 108)]
    res = run(bars, [1, 0, 0, 0, 0, 0], max_bars=2)
    assert_path(res["equity"], [10000, 10200, 10400, 10500, 10500, 10500], 10000)
    assert_trades(res["trades"], [dict(
        entry_bar=1, exit_bar=3, exit_price=105, pnl=500, exit_reason="time",
        mfe=0.06, mae=0.01)], 10000)
    # Held at the close of bars 1 and 2 only (bar 3's close is the exit): exposure 2/6.
    assert_metrics(res["metrics"], dict(n_time=1, avg_bars_held=2.0, exposure=2 / 6))


def test_time_exit_fill_close_drops_same_bar_entry():
    # fill="close", max_bars 2. Buy at bar 1's close 100 (100 units). Time exit at the close
    # of bar 3 = 1 + 2: sell at 103, cash 10300. The entry signal at bar 3 is dropped (time
    # exit on that bar). The entry signal at bar 4 buys at 103: units = 10300/103 = 100,
    # marked at bar 5's close 105 as an `end` trade (bar 6 = 4 + 2 is past the data).
    bars = [(100, 101, 99, 100), (101, 102, 99, 100), (102, 105, 101, 104),
            (104, 106, 102, 103), (103, 105, 101, 103), (104, 106, 103, 105)]
    res = run(bars, [0, 1, 0, 1, 1, 0], max_bars=2, fill="close")
    assert_path(res["equity"], [10000, 10000, 10400, 10300, 10300, 10500], 10000)
    assert_path(res["units"], [0, 100, 100, 0, 100, 100], 1)
    assert_trades(res["trades"], [
        # exposed bars 2, 3: max high 106 -> 0.06, min low 101 > 100 -> mae 0
        dict(entry_bar=1, exit_bar=3, exit_price=103, pnl=300, exit_reason="time",
             mfe=0.06, mae=0.0),
        # exposed bar 5: high 106 -> 3/103, low 103 -> 0
        dict(entry_bar=4, exit_bar=5, entry_price=103, exit_price=105, pnl=200,
             exit_reason="end", mfe=3 / 103, mae=0.0, **{"return": 200 / 10300}),
    ], 10000)
    assert_metrics(res["metrics"], dict(n_time=1, n_trades=2, exposure=4 / 6))


# --------------------------------------------------------------------------------------
# 7. shorts: take-profit and signal exit
# --------------------------------------------------------------------------------------

BARS_7 = [(100, 101, 99, 100),
          (100, 102, 97, 98),
          (96, 97, 89, 91),
          (92, 94, 90, 93),
          (93, 95, 91, 94)]


def test_short_take_profit():
    # direction short: -1 at bar 0 -> sell short at bar 1's open 100:
    #   units = 10000/100 = 100, cash = 10000 + 100*100 = 20000.
    # Bar 1: equity = 20000 - 100*98 = 10200. take = 100*(1-0.1) = 90; low 97: hold.
    # Bar 2: open 96 > 90; low 89 <= 90 -> buy back at 90: cash = 20000 - 9000 = 11000.
    # pnl = 100*100 - 100*90 = 1000, return 0.1.
    # Short mfe = 1 - min(low)/entry = 1 - 89/100; mae = max(high)/entry - 1 = 0.02.
    res = run(BARS_7, [-1, 0, 0, 0, 0], direction="short", take_profit=0.1)
    assert_path(res["equity"], [10000, 10200, 11000, 11000, 11000], 10000)
    assert_path(res["cash"], [10000, 20000, 11000, 11000, 11000], 10000)
    assert_path(res["units"], [0, -100, 0, 0, 0], 1)
    assert_trades(res["trades"], [dict(
        direction="short", entry_bar=1, exit_bar=2, entry_price=100, exit_price=90,
        units=100, pnl=1000, exit_reason="take", mfe=0.11, mae=0.02,
        **{"return": 0.1})], 10000)


def test_short_signal_exit():
    # direction short, +1 is the exit: +1 at bar 3 -> buy back at bar 4's open 93.
    # equity: 20000 - 9800, 20000 - 9100, 20000 - 9300, then cash 20000 - 9300 = 10700.
    # pnl = 100 * (100 - 93) = 700. Exposure bars 1..3 full + bar 4's open:
    # min low 89 -> mfe 0.11; max high 102 -> mae 0.02.
    res = run(BARS_7, [-1, 0, 0, 1, 0], direction="short")
    assert_path(res["equity"], [10000, 10200, 10900, 10700, 10700], 10000)
    assert_trades(res["trades"], [dict(
        direction="short", entry_bar=1, exit_bar=4, exit_price=93, pnl=700,
        exit_reason="signal", mfe=0.11, mae=0.02)], 10000)


# --------------------------------------------------------------------------------------
# 8. direction="both": reversal with fixed fees on each leg
# --------------------------------------------------------------------------------------

BARS_8 = [(100, 101, 99, 100),
          (100, 110, 99, 108),
          (115, 121, 112, 120),
          (125, 126, 118, 120),
          (122, 123, 115, 116)]


def test_reversal_with_fixed_fees():
    # init 10010, fixed_fees 10. +1 at bar 0 -> buy at 100: units = (10010-10)/100 = 100,
    # cash 0. Equity 10800 (bar 1), 12000 (bar 2).
    # -1 at bar 2 -> reverse at bar 3's open 125:
    #   close long: cash = 100*125 - 10 = 12490; pnl = 12490 - 10010 = 2480.
    #   open short on equity 12490: units = (12490 - 10)/125 = 99.84;
    #   cash = 12490 + 99.84*125 - 10 = 24960.
    # Bar 3 equity = 24960 - 99.84*120 = 12979.2; bar 4: 24960 - 99.84*116 = 13378.56.
    # The short is still open at the end: `end` trade at 116, no exit fee:
    #   pnl = 99.84*125 - 10 - 99.84*116 = 888.56; return = 888.56 / (99.84*125 + 10).
    # Check: 2480 + 888.56 = 3368.56 = 13378.56 - 10010.
    # Long mfe: bars 1, 2 + bar 3's open 125 -> 0.25; mae: low 99 -> 0.01.
    # Short mfe: bars 3, 4 min low 115 -> 1 - 115/125 = 0.08; mae: high 126 -> 0.008.
    res = run(BARS_8, [1, 0, -1, 0, 0], direction="both", fixed_fees=10.0, init_cash=10010.0)
    assert_path(res["equity"], [10010, 10800, 12000, 12979.2, 13378.56], 10010)
    assert_path(res["cash"], [10010, 0, 0, 24960, 24960], 10010)
    assert_path(res["units"], [0, 100, 100, -99.84, -99.84], 1)
    assert_trades(res["trades"], [
        dict(direction="long", entry_bar=1, exit_bar=3, entry_price=100, exit_price=125,
             units=100, pnl=2480, exit_reason="signal", mfe=0.25, mae=0.01,
             **{"return": 2480 / 10010}),
        dict(direction="short", entry_bar=3, exit_bar=4, entry_price=125, exit_price=116,
             exit_quote=116, units=99.84, pnl=888.56, exit_reason="end", mfe=0.08,
             mae=0.008, **{"return": 888.56 / 12490}),
    ], 10010)
    assert_metrics(res["metrics"], dict(n_trades=2, n_signal=1, exposure=0.8,
                                        total_return=3368.56 / 10010))


# --------------------------------------------------------------------------------------
# 9. slippage (entry and stop exit)
# --------------------------------------------------------------------------------------


def test_slippage_moves_fills_and_levels():
    # slippage 0.01, init 10100, stop_loss 0.1.
    # Buy at bar 1's open: quote 100, entry_price = 101; units = 10100/101 = 100, cash 0.
    # stop = entry_price * 0.9 = 90.9 (levels are measured from the slipped price).
    # Bar 1: low 97: hold; equity 100*101 = 10100.
    # Bar 2: open 98 > 90.9, low 90 <= 90.9 -> quote 90.9, exit_price 90.9*0.99 = 89.991;
    #   cash = 8999.1; pnl = 8999.1 - 10100 = -1100.9.
    # mfe = 104/101 - 1 = 3/101; mae = 1 - 90/101 = 11/101.
    bars = [(100, 101, 99, 100), (100, 104, 97, 101), (98, 99, 90, 92),
            (93, 95, 91, 94), (92, 94, 90, 93)]
    res = run(bars, [1, 0, 0, 0, 0], slippage=0.01, stop_loss=0.1, init_cash=10100.0)
    assert_path(res["equity"], [10100, 10100, 8999.1, 8999.1, 8999.1], 10100)
    assert_trades(res["trades"], [dict(
        entry_quote=100, entry_price=101, exit_quote=90.9, exit_price=89.991, units=100,
        pnl=-1100.9, exit_reason="stop", mfe=3 / 101, mae=11 / 101,
        **{"return": -1100.9 / 10100})], 10100)


# --------------------------------------------------------------------------------------
# 10. end of data; a next_open signal on the last bar never fills
# --------------------------------------------------------------------------------------


def test_end_of_data_mark_to_market_without_exit_fees():
    # fees 0.001, init 10010: 100 units at 100, cash 0. The exit signal on the last bar
    # would fill at a next open that does not exist, so it never fills. The position is
    # marked at the last close 107: equity 10700, `end` trade with exit_price 107 and no
    # exit fee: pnl = 100*107 - 10010 = 690.
    bars = [(100, 101, 99, 100), (100, 104, 99, 102), (103, 106, 102, 105),
            (105, 108, 104, 107)]
    res = run(bars, [1, 0, 0, -1], fees=0.001, init_cash=10010.0)
    assert_path(res["equity"], [10010, 10200, 10500, 10700], 10010)
    assert_path(res["units"], [0, 100, 100, 100], 1)
    assert_trades(res["trades"], [dict(
        entry_bar=1, exit_bar=3, exit_price=107, exit_quote=107, pnl=690,
        exit_reason="end", mfe=0.08, mae=0.01, **{"return": 690 / 10010})], 10010)
    assert_metrics(res["metrics"], dict(n_trades=1, n_signal=0, exposure=0.75))


# --------------------------------------------------------------------------------------
# 11. sizing: size < 1, and an entry skipped because fixed fees eat the whole budget
# --------------------------------------------------------------------------------------


def test_partial_size():
    # size 0.5: units = 0.5*10000/100 = 50, cash 5000; closes 102, 105 -> 10100, 10250.
    bars = [(100, 101, 99, 100), (100, 103, 99, 102), (102, 106, 101, 105)]
    res = run(bars, [1, 0, 0], size=0.5)
    assert_path(res["equity"], [10000, 10100, 10250], 10000)
    assert_path(res["cash"], [10000, 5000, 5000], 10000)
    assert_trades(res["trades"], [dict(units=50, pnl=250, exit_reason="end",
                                       **{"return": 0.05})], 10000)


def test_entry_skipped_when_fixed_fees_exceed_budget():
    # init 10, fixed_fees 10: size*equity - fixed_fees = 0 <= 0 -> no entry, no trade.
    bars = [(100, 101, 99, 100), (100, 103, 99, 102), (102, 106, 101, 105)]
    res = run(bars, [1, 0, 0], init_cash=10.0, fixed_fees=10.0, fill="close")
    assert res["trades"] == []
    assert_path(res["equity"], [10, 10, 10], 10)


# --------------------------------------------------------------------------------------
# 12. metrics on tiny equity paths
# --------------------------------------------------------------------------------------


def test_metrics_tiny_path():
    # fill="close": 100 units bought at bar 1's close 100, held to the end.
    # equity = [10000, 10000, 11000, 12100, 10890]
    # r = [0, 0, 0.1, 0.1, -0.1]; mean = 0.02;
    # deviations -0.02, -0.02, 0.08, 0.08, -0.12: squares sum = 0.0004*2 + 0.0064*2 + 0.0144
    #   = 0.028; var (ddof 1) = 0.007.
    # sharpe = 0.02 / sqrt(0.007) * sqrt(252); volatility = sqrt(0.007) * sqrt(252)
    # sortino: mean(min(r,0)^2) = 0.01/5 = 0.002 -> 0.02 / sqrt(0.002) * sqrt(252)
    # max_drawdown = 1 - 10890/12100 = 0.1; total_return 0.089
    # cagr = 1.089 ** (252/5) - 1; calmar = cagr / 0.1
    # one `end` trade: pnl 890 > 0 -> win_rate 1, no loser -> profit_factor NaN;
    # avg_trade = 890/10000; exposure 4/5; avg_bars_held = 4 - 1 = 3.
    bars = [(100, 100, 100, 100), (100, 100, 100, 100), (100, 110, 100, 110),
            (110, 121, 110, 121), (121, 121, 108.9, 108.9)]
    res = run(bars, [0, 1, 0, 0, 0], fill="close")
    assert_path(res["equity"], [10000, 10000, 11000, 12100, 10890], 10000)
    cagr = 1.089 ** (252 / 5) - 1
    assert_metrics(res["metrics"], dict(
        total_return=0.089, cagr=cagr, volatility=math.sqrt(0.007) * math.sqrt(252),
        sharpe=0.02 / math.sqrt(0.007) * math.sqrt(252),
        sortino=0.02 / math.sqrt(0.002) * math.sqrt(252), max_drawdown=0.1,
        calmar=cagr / 0.1, n_trades=1, win_rate=1.0, profit_factor=NAN, avg_trade=0.089,
        exposure=0.8, avg_bars_held=3.0, n_stop=0, n_take=0, n_trail=0, n_time=0,
        n_signal=0))


def test_metrics_profit_factor_and_win_rate():
    # fill="close". Buy 100 @ 100 (bar 1), sell @ 103 (bar 2): pnl +300, return 0.03.
    # Buy 10300/103 = 100 @ 103 (bar 3), sell @ 99 (bar 5): pnl -400, return -400/10300.
    # equity = [10000, 10000, 10300, 10300, 10000, 9900, 9900]
    # profit_factor = 300/400 = 0.75; win_rate 0.5; avg_bars_held (1 + 2)/2 = 1.5
    # exposure: held at closes of bars 1, 3, 4 -> 3/7; max_drawdown = 1 - 9900/10300.
    # Trade 2 exposed bars 4, 5: max high 103 -> mfe 0; min low 98 -> mae 5/103.
    bars = [(100, 100, 100, 100), (100, 101, 99, 100), (102, 104, 101, 103),
            (103, 104, 102, 103), (101, 103, 100, 100), (99, 101, 98, 99),
            (99, 100, 98, 99)]
    res = run(bars, [0, 1, -1, 1, 0, -1, 0], fill="close")
    assert_path(res["equity"], [10000, 10000, 10300, 10300, 10000, 9900, 9900], 10000)
    assert_trades(res["trades"], [
        dict(entry_bar=1, exit_bar=2, pnl=300, mfe=0.04, mae=0.0, **{"return": 0.03}),
        dict(entry_bar=3, exit_bar=5, pnl=-400, mfe=0.0, mae=5 / 103,
             **{"return": -400 / 10300}),
    ], 10000)
    assert_metrics(res["metrics"], dict(
        profit_factor=0.75, win_rate=0.5, avg_bars_held=1.5, exposure=3 / 7,
        max_drawdown=400 / 10300, avg_trade=(0.03 - 400 / 10300) / 2, n_signal=2,
        total_return=-0.01))


def test_metrics_no_trades_all_undefined_ratios_nan():
    # No signal: equity flat at 10000, r all 0 -> std 0: sharpe NaN, volatility 0,
    # no negative return: sortino NaN; max_drawdown 0: calmar NaN; no trades.
    bars = [(100, 101, 99, 100)] * 5
    res = run(bars, [0] * 5)
    assert_metrics(res["metrics"], dict(
        total_return=0.0, cagr=0.0, volatility=0.0, sharpe=NAN, sortino=NAN,
        max_drawdown=0.0, calmar=NAN, n_trades=0, win_rate=NAN, profit_factor=NAN,
        avg_trade=NAN, exposure=0.0, avg_bars_held=NAN))


# --------------------------------------------------------------------------------------
# 13. indicators and cross signals
# --------------------------------------------------------------------------------------


def test_sma_and_cross():
    assert sma([1, 2, 3, 4, 5], 2) == [None, 1.5, 2.5, 3.5, 4.5]
    # fast = close (window 1), slow = 3-bar mean:
    # close  5  4  3    4     5  6    5     4  3
    # slow   -  -  4  11/3    4  5  16/3    5  4
    # bar 3: 4 > 11/3 and 3 <= 4 -> +1; bar 6: 5 < 16/3 and 6 >= 5 -> -1;
    # bar 2 has no slow value at bar 1 -> 0.
    close = [5, 4, 3, 4, 5, 6, 5, 4, 3]
    assert sma_cross_signals(close, 1, 3, "long") == [0, 0, 0, 1, 0, 0, -1, 0, 0]
