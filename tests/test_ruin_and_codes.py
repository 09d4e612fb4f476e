"""Hand-worked cases of two decisions of docs/semantics.md, checked on tests/reference.py.

- "Decision (conflicting bits of one side)" (Signals): ENTER_LONG | EXIT_LONG (or
  ENTER_SHORT | EXIT_SHORT) cancel, after the direction filter; the rest of the code acts.
- "Ruin": equity judged at every close; at <= 0 an open position is closed at that close
  (reason `ruin`, no exit costs), nothing acts afterwards, equity stays put, and the
  return-based metrics are NaN.

These tests check the REFERENCE ALONE. Every expected number was worked out by hand from
the docs (the arithmetic is in the comments), never pasted from a run. Exact equalities
where the arithmetic is exact in binary floating point, else a relative 1e-12 (money
relative to init_cash).
"""

import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

import pytest  # noqa: E402

from reference import (  # noqa: E402
    BUY,
    ENTER_LONG,
    ENTER_SHORT,
    EXIT_LONG,
    EXIT_SHORT,
    SELL,
    reference_backtest,
)

NAN = float("nan")
TOL = 1e-12
RETURN_METRICS = ("volatility", "sharpe", "sortino", "calmar", "skew", "kurtosis")


def close_enough(actual, expected, scale=1.0):
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    return abs(actual - expected) <= TOL * max(abs(expected), scale)


def assert_path(actual, expected, scale):
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert close_enough(a, float(e), scale), f"bar {i}: {a!r} != {e!r}"


def assert_trade(t, scale, **expected):
    for key, value in expected.items():
        if key in ("direction", "exit_reason", "entry_bar", "exit_bar"):
            assert t[key] == value, f"{key}: {t[key]!r} != {value!r}"
        else:
            s = scale if key == "pnl" else 1.0
            assert close_enough(t[key], float(value), s), f"{key}: {t[key]!r} != {value!r}"


def assert_metrics(actual, expected):
    for key, value in expected.items():
        if key.startswith("n_"):
            assert actual[key] == value, f"{key}: {actual[key]!r} != {value!r}"
        else:
            assert close_enough(actual[key], float(value)), f"{key}: {actual[key]!r} != {value!r}"


def flat_bars(closes):
    """open = high = low = close on every bar."""
    c = [float(x) for x in closes]
    return c, c, c, c


def run(closes, signals, **kw):
    return reference_backtest(*flat_bars(closes), signals, **kw)


# --------------------------------------------------------------------------------------
# Ruin
# --------------------------------------------------------------------------------------

# A short at 80, size 1, no costs, filled at the close; the price doubles to 160.
SHORT_CLOSES = [100, 80, 80, 160, 150, 150]


@pytest.mark.parametrize("how", ["direction_short", "codes_both"])
def test_short_ruined_at_zero_equity(how):
    if how == "direction_short":  # the bearish signal is the entry of a short
        kw = dict(direction="short")
        signals = [0, -1, 0, 0, 0, 0]
    else:
        kw = dict(direction="both", codes=True)
        signals = [0, ENTER_SHORT, 0, 0, 0, 0]
    res = run(SHORT_CLOSES, signals, fill="close", init_cash=10_000.0, **kw)

    # bar 1: sell short at the close 80: units = 10000 / 80 = 125,
    #        cash = 10000 + 125*80 = 20000, equity = 20000 - 125*80 = 10000
    # bar 2: equity 20000 - 125*80 = 10000
    # bar 3: equity 20000 - 125*160 = 0 -> ruined on bar 3; the short is closed at 160
    #        with no costs: cash = 20000 - 125*160 = 0
    # bars 4, 5: nothing acts; equity and cash stay 0 (the fall to 150 does not count)
    assert res["equity"] == [10000.0, 10000.0, 10000.0, 0.0, 0.0, 0.0]
    assert res["cash"] == [10000.0, 20000.0, 20000.0, 20000.0, 0.0, 0.0]
    # the ruin bar records the short held at its close; flat after it
    assert res["units"] == [0.0, -125.0, -125.0, -125.0, 0.0, 0.0]

    (t,) = res["trades"]
    # pnl = 125*80 - 125*160 = -10000, return = -10000 / (125*80) = -1
    # excursions (fill="close": from bar 2): lows 80, 160 -> mfe = 1 - 80/80 = 0,
    # highs up to 160 -> mae = 160/80 - 1 = 1
    assert_trade(t, 10_000.0, direction="short", entry_bar=1, exit_bar=3, exit_reason="ruin",
                 entry_price=80, entry_quote=80, exit_price=160, exit_quote=160, units=125,
                 pnl=-10000, **{"return": -1.0}, mfe=0.0, mae=1.0)

    m = res["metrics"]
    assert_metrics(m, dict(
        ruined=1.0,
        total_return=-1.0,          # 0 / 10000 - 1
        cagr=-1.0,
        max_drawdown=1.0,           # 1 - 0 / 10000
        exposure=3 / 6,             # short at the closes of bars 1, 2, 3 (the ruin bar)
        n_trades=1,                 # the ruin trade counts in n_trades only
        n_stop=0, n_take=0, n_trail=0, n_time=0, n_signal=0,
        win_rate=0.0,
        profit_factor=0.0,          # no gain / 10000 of losses
        avg_trade=-1.0,
        avg_bars_held=2.0,          # 3 - 1
    ))
    for k in RETURN_METRICS:
        assert math.isnan(m[k]), k


def test_ruin_drops_the_pending_next_open_order():
    # direction="both", fill="next_open": SELL at bar 0 -> short at bar 1's open, 80:
    # units 125, cash 20000. Bar 3 closes at 160: equity 20000 - 125*160 = 0 -> ruin; the
    # BUY at bar 3's close (a reversal to long at bar 4's open) is dropped.
    closes = [80, 80, 80, 160, 150, 100]
    res = run(closes, [-1, 0, 0, 1, 0, 0], direction="both", init_cash=10_000.0)
    assert res["equity"] == [10000.0, 10000.0, 10000.0, 0.0, 0.0, 0.0]
    assert res["units"] == [0.0, -125.0, -125.0, -125.0, 0.0, 0.0]
    (t,) = res["trades"]
    # next_open: exposed from the entry bar 1: prices 80, 80, 160 -> mfe 0, mae 1
    assert_trade(t, 10_000.0, direction="short", entry_bar=1, exit_bar=3, exit_reason="ruin",
                 exit_price=160, exit_quote=160, pnl=-10000, mfe=0.0, mae=1.0)
    assert_metrics(res["metrics"], dict(ruined=1.0, total_return=-1.0, exposure=3 / 6,
                                        n_trades=1, n_signal=0))


def test_ruin_trade_pays_no_exit_costs():
    # As the first case with fees=0.01 and slippage=0.01 (fill="close", direction short):
    # bar 1: p = 80 * 0.99 = 79.2, units = 10000 / (79.2 * 1.01),
    #        cash = 10000 + units*79.2*0.99; bar 3: equity = cash - units*160 < 0 -> ruin.
    # The ruin trade exits at exit_price = exit_quote = 160 (no slippage) and
    # pnl = units*79.2*0.99 - units*160 (no exit fee), the same as equity - init_cash.
    res = run(SHORT_CLOSES, [0, -1, 0, 0, 0, 0], direction="short", fill="close",
              fees=0.01, slippage=0.01, init_cash=10_000.0)
    units = 10_000.0 / (79.2 * 1.01)
    cash1 = 10_000.0 + units * 79.2 * 0.99
    e3 = cash1 - units * 160.0
    assert e3 < 0.0
    assert_path(res["equity"], [10000.0, cash1 - units * 80, cash1 - units * 80, e3, e3, e3],
                10_000.0)
    assert_path(res["cash"], [10000.0, cash1, cash1, cash1, e3, e3], 10_000.0)
    (t,) = res["trades"]
    assert_trade(t, 10_000.0, exit_reason="ruin", exit_bar=3, entry_price=79.2,
                 exit_price=160.0, exit_quote=160.0, units=units,
                 pnl=units * 79.2 * 0.99 - units * 160.0,
                 **{"return": (units * 79.2 * 0.99 - units * 160.0) / 10_000.0})
    assert_metrics(res["metrics"], dict(ruined=1.0, total_return=e3 / 10_000.0 - 1.0,
                                        cagr=-1.0, max_drawdown=1.0 - e3 / 10_000.0))


def test_negative_equity_ruin_trade():
    # The short at 80 (125 units, cash 20000) meets a close of 200 on bar 3:
    # equity = 20000 - 125*200 = -5000 -> ruined; stays -5000 (the fall to 150 is ignored).
    res = run([100, 80, 80, 200, 150, 150], [0, -1, 0, 0, 0, 0], direction="short",
              fill="close", init_cash=10_000.0)
    assert res["equity"] == [10000.0, 10000.0, 10000.0, -5000.0, -5000.0, -5000.0]
    assert res["cash"] == [10000.0, 20000.0, 20000.0, 20000.0, -5000.0, -5000.0]
    (t,) = res["trades"]
    # pnl = 125*80 - 125*200 = -15000, return -15000/10000 = -1.5, mae = 200/80 - 1 = 1.5
    assert_trade(t, 10_000.0, exit_reason="ruin", exit_bar=3, exit_price=200, pnl=-15000,
                 **{"return": -1.5}, mfe=0.0, mae=1.5)
    m = res["metrics"]
    assert_metrics(m, dict(
        ruined=1.0,
        total_return=-1.5,          # -5000 / 10000 - 1  (< -1)
        cagr=-1.0,
        max_drawdown=1.5,           # 1 - (-5000) / 10000  (> 1)
        exposure=3 / 6,
        n_trades=1,
    ))
    assert m["total_return"] < -1.0 and m["max_drawdown"] > 1.0
    for k in RETURN_METRICS:
        assert math.isnan(m[k]), k


def test_gap_through_a_short_stop_ruins_a_flat_account():
    # Short at 80 (fill="close", 125 units, cash 20000), stop_loss=0.5 -> stop 120.
    # Bar 3 gaps open at 200 (>= 120): bought back at the open, 200, reason `stop`:
    # cash = 20000 - 125*200 = -5000, flat. At bar 3's close equity = -5000 <= 0: ruined,
    # with no position left to close (no ruin trade).
    o = [100.0, 80.0, 80.0, 200.0, 150.0, 150.0]
    h = [100.0, 80.0, 80.0, 210.0, 150.0, 150.0]
    lo = [100.0, 80.0, 80.0, 190.0, 150.0, 150.0]
    c = [100.0, 80.0, 80.0, 195.0, 150.0, 150.0]
    res = reference_backtest(o, h, lo, c, [0, -1, 0, 0, 1, 0], direction="short",
                             fill="close", stop_loss=0.5, init_cash=10_000.0)
    assert res["equity"] == [10000.0, 10000.0, 10000.0, -5000.0, -5000.0, -5000.0]
    assert res["units"] == [0.0, -125.0, -125.0, 0.0, 0.0, 0.0]
    (t,) = res["trades"]
    # pnl = 125*80 - 125*200 = -15000; exposure to bar 3 is its open only: mae = 200/80 - 1
    assert_trade(t, 10_000.0, exit_reason="stop", entry_bar=1, exit_bar=3, exit_price=200,
                 pnl=-15000, **{"return": -1.5}, mfe=0.0, mae=1.5)
    m = res["metrics"]
    assert_metrics(m, dict(ruined=1.0, total_return=-1.5, cagr=-1.0, max_drawdown=1.5,
                           exposure=2 / 6, n_trades=1, n_stop=1))
    assert m["total_return"] < -1.0 and m["max_drawdown"] > 1.0
    for k in RETURN_METRICS:
        assert math.isnan(m[k]), k


def test_flat_account_ruined_by_fixed_fees():
    # init_cash 10, fixed_fees 6, fill="close", all prices 100.
    # bar 1 entry: budget = 10 - 6 = 4, units = 4/100 = 0.04, cash = 10 - 0.04*100 - 6 = 0,
    #   equity = 0 + 0.04*100 = 4 (> 0, not ruined)
    # bar 2 exit: the sale is worth 4, less than its fixed fee: it receives
    #   max(4 - 6, 0) = 0 (a sale never costs cash), flat: equity 0 -> ruined, nothing
    #   to close
    # bar 3: the BUY does nothing (ruined); equity stays 0
    res = run([100] * 5, [0, 1, -1, 1, 0], fill="close", fixed_fees=6.0, init_cash=10.0)
    assert res["equity"] == [10.0, 4.0, 0.0, 0.0, 0.0]
    assert res["cash"] == [10.0, 0.0, 0.0, 0.0, 0.0]
    assert res["units"] == [0.0, 0.04, 0.0, 0.0, 0.0]
    (t,) = res["trades"]  # no ruin trade
    # pnl = 0 - (0.04*100 + 6) = -10, return = -10 / (4 + 6) = -1
    assert_trade(t, 10.0, direction="long", entry_bar=1, exit_bar=2, exit_reason="signal",
                 pnl=-10.0, **{"return": -1.0})
    m = res["metrics"]
    assert_metrics(m, dict(
        ruined=1.0,
        total_return=-1.0,          # 0 / 10 - 1
        cagr=-1.0,
        max_drawdown=1.0,           # 1 - 0 / 10
        exposure=1 / 5,             # long at bar 1's close only
        n_trades=1, n_signal=1,
        avg_trade=-1.0, avg_bars_held=1.0, win_rate=0.0,
    ))
    for k in RETURN_METRICS:
        assert math.isnan(m[k]), k


def test_equity_exactly_zero_when_flat_is_ruin():
    # init_cash 12, fixed_fees 6: entry budget 6, units 0.06, cash 0; exit at the same
    # price: cash = 0.06*100 - 6 = 0 -> equity exactly 0 at bar 2's close: ruined (<= 0).
    res = run([100] * 4, [0, 1, -1, 0], fill="close", fixed_fees=6.0, init_cash=12.0)
    assert res["equity"] == [12.0, 6.0, 0.0, 0.0]
    assert res["metrics"]["ruined"] == 1.0
    assert res["metrics"]["total_return"] == -1.0
    assert res["metrics"]["max_drawdown"] == 1.0
    assert [t["exit_reason"] for t in res["trades"]] == ["signal"]


def test_not_ruined_reports_zero():
    # Worked example 1 of semantics.md: never ruined, ruined = 0 and the ratios are defined.
    res = reference_backtest(
        [100, 100, 104, 108, 110, 111], [101, 105, 108, 111, 112, 113],
        [99, 99, 103, 106, 109, 110], [100, 104, 107, 110, 111, 112],
        [1, 0, 0, -1, 0, 0], fees=0.001, init_cash=10010.0)
    assert res["metrics"]["ruined"] == 0.0
    assert not math.isnan(res["metrics"]["sharpe"])
    assert [t["exit_reason"] for t in res["trades"]] == ["signal"]


def test_ruin_on_the_last_bar_is_a_ruin_trade_not_an_end_trade():
    # The first case cut after bar 3: the short is closed for ruin, no `end` trade.
    res = run(SHORT_CLOSES[:4], [0, -1, 0, 0], direction="short", fill="close")
    assert [t["exit_reason"] for t in res["trades"]] == ["ruin"]
    assert res["equity"][-1] == 0.0
    assert res["metrics"]["ruined"] == 1.0


# --------------------------------------------------------------------------------------
# Conflicting bits of one side
# --------------------------------------------------------------------------------------

# init_cash 10001, fixed_fees 1, fill="close": a long bought at 100 gets
# (10001 - 1) / 100 = 100 units and leaves cash 10001 - 100*100 - 1 = 0.
CONFLICT = ENTER_LONG | EXIT_LONG


@pytest.mark.parametrize("direction", ["long", "both"])
def test_enter_and_exit_long_while_long_does_nothing(direction):
    res = run([100, 100, 110, 120, 130], [0, ENTER_LONG, CONFLICT, 0, 0], codes=True,
              direction=direction, fill="close", fixed_fees=1.0, init_cash=10001.0)
    # bar 2's code cancels: no close, no reopen, no fee. Long from bar 1 to the end:
    # equity 100*close = 10000, 11000, 12000, 13000
    assert res["equity"] == [10001.0, 10000.0, 11000.0, 12000.0, 13000.0]
    assert res["cash"] == [10001.0, 0.0, 0.0, 0.0, 0.0]
    (t,) = res["trades"]
    # end trade: pnl = 100*130 - (100*100 + 1) = 2999
    assert_trade(t, 10001.0, direction="long", entry_bar=1, exit_bar=4, exit_reason="end",
                 units=100, pnl=2999)
    assert res["metrics"]["n_signal"] == 0 and res["metrics"]["ruined"] == 0.0


@pytest.mark.parametrize("direction", ["long", "both"])
@pytest.mark.parametrize("fill", ["close", "next_open"])
def test_enter_and_exit_long_while_flat_opens_nothing(direction, fill):
    res = run([100, 110, 120, 130], [CONFLICT, CONFLICT, 0, 0], codes=True,
              direction=direction, fill=fill, fixed_fees=1.0, init_cash=10001.0)
    assert res["trades"] == []
    assert res["equity"] == [10001.0] * 4
    assert res["units"] == [0.0] * 4


def test_enter_and_exit_long_while_long_next_open_does_nothing():
    # next_open: ENTER_LONG at bar 0 -> 100 units at bar 1's open 100; the conflicting
    # code at bar 1 would act at bar 2's open, and does nothing.
    res = run([100, 100, 110, 120], [ENTER_LONG, CONFLICT, 0, 0], codes=True,
              fixed_fees=1.0, init_cash=10001.0)
    assert res["equity"] == [10001.0, 10000.0, 11000.0, 12000.0]
    (t,) = res["trades"]
    assert_trade(t, 10001.0, entry_bar=1, exit_bar=3, exit_reason="end", pnl=1999)


REVERSE_CLOSES = [100, 100, 125, 120, 116]


def test_conflicting_long_bits_with_enter_short_reverse_under_both():
    code = ENTER_LONG | EXIT_LONG | ENTER_SHORT
    res = run(REVERSE_CLOSES, [0, ENTER_LONG, code, 0, 0], codes=True, direction="both",
              fill="close", fixed_fees=1.0, init_cash=10001.0)
    # bar 1: long 100 units at 100, cash 0, equity 10000
    # bar 2 (acts as ENTER_SHORT): sell the long at 125: cash = 100*125 - 1 = 12499,
    #   long pnl = 12500 - 1 - (10000 + 1) = 2498 (reason signal); then short on the
    #   equity after that sale: units = (12499 - 1) / 125 = 99.984,
    #   cash = 12499 + 99.984*125 - 1 = 24996; equity 24996 - 99.984*125 = 12498
    # bar 3: 24996 - 99.984*120 = 12997.92; bar 4: 24996 - 99.984*116 = 13397.856
    # end trade: pnl = 99.984*125 - 1 - 99.984*116 = 898.856
    # (2498 + 898.856 = 3396.856 = 13397.856 - 10001)
    assert_path(res["equity"], [10001, 10000, 12498, 12997.92, 13397.856], 10001.0)
    assert_path(res["units"], [0, 100, -99.984, -99.984, -99.984], 1.0)
    long_t, short_t = res["trades"]
    assert_trade(long_t, 10001.0, direction="long", entry_bar=1, exit_bar=2,
                 exit_reason="signal", exit_price=125, pnl=2498)
    assert_trade(short_t, 10001.0, direction="short", entry_bar=2, exit_bar=4,
                 exit_reason="end", entry_price=125, units=99.984, pnl=898.856)
    # ... exactly what ENTER_SHORT alone does
    plain = run(REVERSE_CLOSES, [0, ENTER_LONG, ENTER_SHORT, 0, 0], codes=True,
                direction="both", fill="close", fixed_fees=1.0, init_cash=10001.0)
    assert res["equity"] == plain["equity"] and res["trades"] == plain["trades"]


def test_conflicting_long_bits_with_enter_short_do_nothing_under_long():
    code = ENTER_LONG | EXIT_LONG | ENTER_SHORT
    res = run(REVERSE_CLOSES, [0, ENTER_LONG, code, 0, 0], codes=True, direction="long",
              fill="close", fixed_fees=1.0, init_cash=10001.0)
    # "long" keeps ENTER_LONG | EXIT_LONG, which cancel: the long runs to the end,
    # equity 100*close; end trade pnl = 100*116 - (100*100 + 1) = 1599
    assert res["equity"] == [10001.0, 10000.0, 12500.0, 12000.0, 11600.0]
    (t,) = res["trades"]
    assert_trade(t, 10001.0, direction="long", entry_bar=1, exit_bar=4, exit_reason="end",
                 pnl=1599)


def test_conflicting_short_bits_mirror():
    # ENTER_SHORT | EXIT_SHORT while short does nothing; with ENTER_LONG under "both" it
    # acts as ENTER_LONG (reverses); under "short" it does nothing.
    short_conflict = ENTER_SHORT | EXIT_SHORT
    kw = dict(codes=True, fill="close", fixed_fees=1.0, init_cash=10001.0)
    # short 100 units at 100 (cash 10001 + 10000 - 1 = 20000); equity 20000 - 100*close
    res = run([100, 100, 90, 80], [0, ENTER_SHORT, short_conflict, 0], direction="short", **kw)
    assert res["equity"] == [10001.0, 10000.0, 11000.0, 12000.0]
    assert [t["exit_reason"] for t in res["trades"]] == ["end"]

    code = short_conflict | ENTER_LONG
    both = run([100, 100, 90, 80], [0, ENTER_SHORT, code, 0], direction="both", **kw)
    plain = run([100, 100, 90, 80], [0, ENTER_SHORT, ENTER_LONG, 0], direction="both", **kw)
    assert both["equity"] == plain["equity"] and both["trades"] == plain["trades"]
    assert [t["exit_reason"] for t in both["trades"]] == ["signal", "end"]

    only_short = run([100, 100, 90, 80], [0, ENTER_SHORT, code, 0], direction="short", **kw)
    assert only_short["equity"] == [10001.0, 10000.0, 11000.0, 12000.0]


def test_all_four_bits_do_nothing():
    every = ENTER_LONG | EXIT_LONG | ENTER_SHORT | EXIT_SHORT
    for first in (ENTER_LONG, ENTER_SHORT):
        res = run([100, 100, 110, 120], [0, first, every, 0], codes=True, direction="both",
                  fill="close", init_cash=10000.0)
        assert len(res["trades"]) == 1 and res["trades"][0]["exit_reason"] == "end"


def test_buy_and_sell_codes_unchanged():
    # BUY and SELL carry one bit of each side, so nothing cancels in them.
    assert BUY & ENTER_LONG and not BUY & EXIT_LONG
    assert SELL & ENTER_SHORT and not SELL & EXIT_SHORT
