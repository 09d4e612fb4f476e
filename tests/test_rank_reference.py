"""The rank-and-rebalance reference (tests/rank_reference.py), checked two ways.

1. Small cases computed by hand (the numbers are in the comments), including the worked
   example of docs/semantics.md, "Rank-and-rebalance strategies".
2. Invariants on random universes with ragged spans and NaN scores: cash + positions ==
   equity, trades' pnl add up to the equity change, long-only cash never negative, and no
   look-ahead (truncating the future changes nothing decided before it).
"""

import math
import re

import numpy as np
import pytest

from helpers import flat_bars, random_universe, scores_at
from rank_reference import (low_volatility_score, momentum_score, reference_rank_portfolio,
                            reversal_score, target_weights, volatility)
from sweepbt._schedule import rebalance_bars

NAN = float("nan")
REL = 1e-12


def spans(close):
    ok = ~np.isnan(np.asarray(close))
    start = [int(np.argmax(row)) for row in ok]
    end = [int(len(row) - np.argmax(row[::-1])) for row in ok]
    return start, end


def close_to(actual, expected):
    return actual == pytest.approx(expected, rel=REL, abs=1e-9)


def run(bars, scores, schedule, **kw):
    start, end = spans(bars[3])
    return reference_rank_portfolio(*bars, start, end, scores, schedule, **kw)


# --------------------------------------------------------------------------------------
# scores
# --------------------------------------------------------------------------------------


def test_score_functions_by_hand():
    close = [[NAN, 100.0, 110.0, 121.0, 108.9, 119.79]]
    start = [1]
    mom = momentum_score(close, start, lookback=2)[0]
    # defined from bar start + lookback = 3: 121/100 - 1, 108.9/110 - 1, 119.79/121 - 1
    assert mom[:3] == [NAN] * 3 or all(math.isnan(x) for x in mom[:3])
    assert close_to(mom[3:], [0.21, -0.01, -0.01])
    skipped = momentum_score(close, start, lookback=1, skip=1)[0]
    # close[i-1]/close[i-2] - 1, defined from bar 3: 110/100-1, 121/110-1, 108.9/121-1
    assert all(math.isnan(x) for x in skipped[:3])
    assert close_to(skipped[3:], [0.1, 0.1, -0.1])
    rev = reversal_score(close, start, lookback=1)[0]
    assert close_to(rev[2:], [-0.1, -0.1, 0.1, -0.1])
    vol = volatility(close, start, vol_window=2)[0]
    # returns 0.1, 0.1, -0.1, 0.1: std of (0.1, 0.1) = 0, of (0.1, -0.1) = sqrt(0.02)
    assert all(math.isnan(x) for x in vol[:3])
    assert close_to(vol[3:], [0.0, math.sqrt(0.02), math.sqrt(0.02)])
    assert close_to(low_volatility_score(close, start, 2)[0][4], -math.sqrt(0.02))
    # outside the span (a delisted asset's NaN closes) every score is NaN
    assert math.isnan(momentum_score([[100.0, 101.0, NAN]], [0], 1)[0][2])


def test_weightings_by_hand():
    score = [0.3, 0.1, -0.1, NAN]
    eligible = [True, True, True, False]
    kw = dict(top_n=2, bottom_n=0, position_limit=None)
    assert target_weights(score, None, eligible, weighting="equal", **kw) == [0.5, 0.5, 0, 0]
    # "score": the excess over the worst eligible score (-0.1): 0.4 and 0.2 -> 2/3, 1/3
    w = target_weights(score, None, eligible, weighting="score", **kw)
    assert close_to(w, [2 / 3, 1 / 3, 0.0, 0.0])
    # inverse_vol: 1/0.01 and 1/0.03 -> 0.75, 0.25; position_limit=0.6 caps the first
    w = target_weights(score, [0.01, 0.03, 0.02, NAN], eligible, weighting="inverse_vol",
                       top_n=2, bottom_n=0, position_limit=0.6)
    assert close_to(w, [0.6, 0.25, 0.0, 0.0])
    # both sides: each side gets half; bottom_n picks the lowest of the rest
    w = target_weights(score, None, eligible, weighting="equal", top_n=1, bottom_n=1,
                       position_limit=None)
    assert w == [0.5, 0.0, -0.5, 0.0]
    # fewer eligible than top_n: each slot keeps 1/top_n, the empty slot stays in cash
    w = target_weights([1.0, NAN, NAN], None, [True, False, False], weighting="score",
                       top_n=2, bottom_n=0, position_limit=None)
    assert w == [0.5, 0.0, 0.0]
    # ties go by asset order
    assert target_weights([1.0, 2.0, 2.0], None, [True] * 3, weighting="equal", top_n=1,
                          bottom_n=0, position_limit=None) == [0.0, 1.0, 0.0]


# --------------------------------------------------------------------------------------
# hand-computed backtests
# --------------------------------------------------------------------------------------


def worked_example():
    """docs/semantics.md, "Rank-and-rebalance strategies", worked example."""
    ts = np.array(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-29", "2024-03-01",
                   "2024-03-04"], dtype="datetime64[ns]")
    bars = flat_bars([100, 100, 100, 120, 125, 130],
                     [50, 50, 50, 40, 40, 42],
                     [20, 20, 20, 25, 25, 26])
    scores = scores_at(3, 6, {1: [3, 2, 1], 3: [3, 1, 2]})
    schedule = rebalance_bars(ts, "M")
    return run(bars, scores, schedule, top_n=2, fill="next_open", fixed_fees=10.0, tax=0.003)


def test_worked_example_equal_weight_top2_monthly_with_fees_and_tax():
    out = worked_example()
    assert [r["bar"] for r in out["rebalances"]] == [1, 3]  # month ends in the data
    # bar 2 open, E = 10000, targets 0.5*E/price: A 50 units, B 100 units (no sells).
    # A: 50*100 + 10 = 5010, cash 4990. B wants 100*50 + 10 = 5010 > 4990: cut to
    # (4990 - 10)/50 = 99.6 units, cash 0.
    # bar 3: the close rebalance sees A 3, C 2, B 1. bar 4 open: E = 50*125 + 99.6*40 =
    # 10234; targets A 0.5*10234/125 = 40.936, C 0.5*10234/25 = 204.68, B 0.
    # Sells first: A sells 9.064 @125 = 1133 -> 1133*(1 - 0.003) - 10 = 1119.601;
    # B sells 99.6 @40 = 3984 -> 3984*0.997 - 10 = 3962.048; cash 5081.649.
    # Buy C: 204.68*25 + 10 = 5127 > 5081.649: cut to (5081.649 - 10)/25 = 202.86596.
    assert close_to(out["cash"], [10000, 10000, 0, 0, 0, 0])
    assert close_to(out["units"][0], [0, 0, 50, 50, 40.936, 40.936])
    assert close_to(out["units"][1], [0, 0, 99.6, 99.6, 0, 0])
    assert close_to(out["units"][2], [0, 0, 0, 0, 202.86596, 202.86596])
    # closes: 50*100 + 99.6*50 = 9980; 50*120 + 99.6*40 = 9984;
    # 40.936*125 + 202.86596*25 = 10188.649; 40.936*130 + 202.86596*26 = 10596.19496
    assert close_to(out["equity"], [10000, 10000, 9980, 9984, 10188.649, 10596.19496])
    trades = {(t["asset"], t["exit_reason"]): t for t in out["trades"]}
    assert len(out["trades"]) == 3
    b = trades[(1, "signal")]  # B: -4990 + 3962.048
    assert close_to([b["pnl"], b["entry_price"], b["exit_price"], b["units"]],
                    [-1027.952, 50, 40, 99.6])
    a = trades[(0, "end")]  # A: -5010 + 1119.601 + 40.936*130 (marked, no costs)
    assert close_to([a["pnl"], a["entry_price"], a["units"], a["n_fills"]],
                    [1431.281, 100, 50, 2])
    assert close_to(a["exit_price"], (9.064 * 125 + 40.936 * 130) / 50)  # 129.0936
    assert close_to(a["return"], 1431.281 / 5010)
    c = trades[(2, "end")]  # C: -5081.649 + 202.86596*26
    assert close_to(c["pnl"], 192.86596)
    assert close_to(sum(t["pnl"] for t in out["trades"]), 596.19496)
    # turnover: (5000 + 4980)/10000 and (1133 + 3984 + 5071.649)/10234
    assert close_to(out["rebalances"][0]["turnover"], 0.998)
    assert close_to(out["rebalances"][1]["turnover"], 10188.649 / 10234)
    assert close_to(out["metrics"]["turnover"], (0.998 + 10188.649 / 10234) / 2)
    assert out["metrics"]["n_trades"] == 3 and out["metrics"]["n_signal"] == 1


def test_short_side_with_bottom_n_tax_on_short_sales_and_a_flip():
    bars = flat_bars([100, 100, 125, 120], [50, 50, 40, 44])
    scores = scores_at(2, 4, {0: [2, 1], 2: [1, 2]})
    out = run(bars, scores, [0, 2], top_n=1, bottom_n=1, fill="close", tax=0.01)
    # bar 0 close, E = 10000: A +0.5, B -0.5. Sell first: short B 100 @50, proceeds
    # 5000*0.99 = 4950 (tax on the short sale), cash 14950; buy A 50 @100, cash 9950.
    # bar 2 close: E = 9950 + 50*125 - 100*40 = 12200; targets A -6100/125 = -48.8,
    # B +6100/40 = 152.5. Sells: A closes its long, 6250*0.99 = 6187.5 (pnl 1187.5),
    # then shorts 48.8 @125: 6100*0.99 = 6039, cash 22176.5. Buys: B covers 100 @40
    # (4000, pnl 4950 - 4000 = 950), then buys 152.5 @40 (6100): cash 12076.5.
    assert close_to(out["cash"], [9950, 9950, 12076.5, 12076.5])
    assert close_to(out["units"][0], [50, 50, -48.8, -48.8])
    assert close_to(out["units"][1], [-100, -100, 152.5, 152.5])
    # bar 3: 12076.5 - 48.8*120 + 152.5*44 = 12930.5
    assert close_to(out["equity"], [9950, 9950, 12076.5, 12930.5])
    pnl = [(t["asset"], t["direction"], t["exit_reason"], t["pnl"]) for t in out["trades"]]
    assert [p[:3] for p in pnl] == [(0, 1, "signal"), (1, -1, "signal"), (0, -1, "end"),
                                     (1, 1, "end")]
    # the end trades: A short 6039 - 48.8*120 = 183; B long -6100 + 152.5*44 = 610
    assert close_to([p[3] for p in pnl], [1187.5, 950, 183, 610])
    assert close_to(sum(p[3] for p in pnl), 12930.5 - 10000)


def test_position_limit_leaves_cash():
    bars = flat_bars([100, 110, 110], [50, 50, 55])
    scores = scores_at(2, 3, {0: [2, 1]})
    vol = scores_at(2, 3, {0: [0.01, 0.03]})
    out = run(bars, scores, [0], top_n=2, weighting="inverse_vol", vol=vol,
              position_limit=0.6, fill="close")
    # inverse_vol: 100 : 33.3 -> 0.75, 0.25; A capped at 0.6: A 60 units @100, B 50 @50,
    # 1500 stays in cash
    assert close_to(out["cash"], [1500, 1500, 1500])
    assert close_to(out["units"][0], [60, 60, 60])
    assert close_to(out["units"][1], [50, 50, 50])
    assert close_to(out["equity"], [10000, 10600, 10850])  # 1500 + 6600 + 2750
    # an asset whose vol is NaN is not eligible under inverse_vol: B takes none
    vol[0, 0] = NAN
    out = run(bars, scores, [0], top_n=1, weighting="inverse_vol", vol=vol, fill="close")
    assert close_to(out["units"][1], [200, 200, 200]) and out["units"][0] == [0, 0, 0]


def test_a_buy_cut_by_cash_with_proportional_fees():
    bars = flat_bars([100, 100, 100], [50, 50, 50])
    scores = scores_at(2, 3, {0: [2, 1]})
    out = run(bars, scores, [0], top_n=2, fill="close", fees=0.01, slippage=0.01)
    # E = 10000: targets 50 and 100 units. A: 50 @ 101 * 1.01 = 5100.5, cash 4899.5;
    # B costs 50.5*1.01 = 51.005 a unit: cut to 4899.5/51.005 units, cash 0
    assert close_to(out["units"][0][0], 50)
    assert close_to(out["units"][1][0], 4899.5 / 51.005)
    assert out["cash"][0] == pytest.approx(0.0, abs=1e-9)
    assert out["rebalances"][0]["turnover"] == pytest.approx((5000 + 4899.5 / 51.005 * 50)
                                                             / 10000, rel=REL)


def test_a_stopped_position_stays_in_cash_until_the_next_rebalance():
    o = [[100, 100, 95, 92, 95, 90], [50] * 6]
    h = [[100, 100, 96, 92, 95, 100], [50] * 6]
    lo = [[100, 100, 88, 92, 95, 89], [50] * 6]
    c = [[100, 100, 90, 92, 95, 99], [50] * 6]
    bars = tuple(np.array(x, dtype=float) for x in (o, h, lo, c))
    scores = scores_at(2, 6, {0: [2, 1], 4: [2, 1]})
    out = run(bars, scores, [0, 4], top_n=1, stop_loss=0.1)
    # bar 1 open: 100 units of A @100, stop 90. bar 2: open 95 > 90, low 88 <= 90: sold
    # at 90, cash 9000. Bars 3-4: in cash although A is still the top score. Bar 4's
    # rebalance buys 9000/90 = 100 units at bar 5's open, 90; bar 5 closes at 99.
    assert close_to(out["equity"], [10000, 10000, 9000, 9000, 9000, 9900])
    assert close_to(out["units"][0], [0, 100, 0, 0, 0, 100])
    assert [(t["entry_bar"], t["exit_bar"], t["exit_reason"]) for t in out["trades"]] == [
        (1, 2, "stop"), (5, 5, "end")]
    assert close_to([t["pnl"] for t in out["trades"]], [-1000, 900])
    assert out["metrics"]["n_stop"] == 1


def test_stops_are_measured_from_the_average_cost_after_an_addition():
    bars = flat_bars([100, 80, 66, 62, 62], [100, 240, 240, 240, 240])
    scores = scores_at(2, 5, {0: [2, 1], 1: [2, 1]})
    out = run(bars, scores, [0, 1], top_n=2, fill="close", stop_loss=0.3)
    # bar 0: 50 units each. Bar 1: E = 50*80 + 50*240 = 16000, targets A 8000/80 = 100,
    # B 8000/240 = 33.33. B sells 16.67 @240 (4000), A buys 50 @80 (4000): A's average
    # cost is (50*100 + 50*80)/100 = 90, its stop 63 (from the first cost, 100, it would
    # have been 70 and fired on bar 2 at 66). Bar 3 opens at 62 <= 63: sold at 62.
    assert close_to(out["units"][0], [50, 100, 100, 0, 0])
    assert close_to(out["equity"], [10000, 16000, 14600, 14200, 14200])
    a, b = out["trades"]
    assert (a["asset"], a["exit_reason"], a["exit_bar"]) == (0, "stop", 3)
    assert close_to([a["entry_price"], a["exit_price"], a["units"], a["pnl"]],
                    [90, 62, 100, 6200 - 9000])
    # B: one trade through its partial sale: -5000 + 4000 + 33.33*240
    assert (b["asset"], b["exit_reason"]) == (1, "end")
    assert close_to(b["pnl"], 7000)


def test_no_buy_back_at_the_close_of_a_rule_exit():
    o, h, lo, c = ([[100, 100, 95], [50, 50, 50]], [[100, 100, 95], [50, 50, 50]],
                   [[100, 85, 95], [50, 50, 50]], [[100, 95, 95], [50, 50, 50]])
    bars = tuple(np.array(x, dtype=float) for x in (o, h, lo, c))
    scores = scores_at(2, 3, {0: [2, 1], 1: [2, 1]})
    out = run(bars, scores, [0, 1], top_n=1, fill="close", stop_loss=0.1)
    # 100 units of A at bar 0's close; bar 1's low reaches the stop, 90: cash 9000. The
    # rebalance at bar 1's close still ranks A first, but A is not bought back there.
    assert close_to(out["units"][0], [100, 0, 0])
    assert close_to(out["cash"], [0, 9000, 9000])
    assert out["rebalances"][1]["weights"] == [1.0, 0.0]
    assert out["rebalances"][1]["turnover"] == 0.0


def test_a_short_book_can_be_ruined():
    bars = flat_bars([50, 100, 120], [10, 10, 10])
    scores = scores_at(2, 3, {0: [1, 2], 1: [1, 2]})
    out = run(bars, scores, [0, 1], top_n=0, bottom_n=1, fill="close")
    # short 200 units of A at 50: cash 20000. Bar 1: E = 20000 - 200*100 = 0, the
    # rebalance trades nothing, and the account is ruined at the close: the short is
    # booked at 100 with no costs (pnl 10000 - 20000), the account stays at 0.
    assert close_to(out["equity"], [10000, 0, 0])
    assert close_to(out["units"][0], [-200, -200, 0])
    assert [(t["exit_reason"], t["pnl"]) for t in out["trades"]] == [("ruin", -10000.0)]
    assert out["metrics"]["ruined"] == 1.0
    # the rebalance at the ruined close took place and traded nothing: it counts 0
    assert out["rebalances"][1]["turnover"] == 0.0
    assert out["metrics"]["turnover"] == 0.5


def test_an_asset_is_not_eligible_when_the_next_bar_is_outside_its_span():
    bars = flat_bars([100, 100, 100, 100, 100], [50, 50, 60, None, None])
    scores = scores_at(2, 5, {0: [1, 5], 2: [1, 5]})
    # bar 0: B (score 5) bought at bar 1's open, 200 units. Bar 2: B still scores 5, but
    # its span ends at bar 2 (bar 3 is not in it): A is chosen. B is delisted at bar 2's
    # close (60: 12000, reason delist); A buys 120 units at bar 3's open.
    out = run(bars, scores, [0, 2], top_n=1)
    assert out["rebalances"][1]["weights"] == [1.0, 0.0]
    assert close_to(out["equity"], [10000, 10000, 12000, 12000, 12000])
    assert close_to(out["units"][0], [0, 0, 0, 120, 120])
    assert [(t["asset"], t["exit_reason"]) for t in out["trades"]] == [(1, "delist"),
                                                                       (0, "end")]
    # fill="close": the rebalance at bar 2 sells B itself (reason signal) and buys A
    out = run(bars, scores, [0, 2], top_n=1, fill="close")
    assert close_to(out["units"][0], [0, 0, 120, 120, 120])
    assert [(t["asset"], t["exit_reason"]) for t in out["trades"]] == [(1, "signal"),
                                                                       (0, "end")]


def test_nothing_eligible_means_cash():
    bars = flat_bars([100, 110, 120], [50, 50, 50])
    scores = scores_at(2, 3, {0: [2, 1], 1: [NAN, NAN]})
    out = run(bars, scores, [0, 1], top_n=1, fill="close")
    assert close_to(out["units"][0], [100, 0, 0])
    assert close_to(out["equity"], [10000, 11000, 11000])


@pytest.mark.parametrize("kw, words", [
    (dict(top_n=3), "top_n + bottom_n = 3 exceeds the universe of 2 assets"),
    (dict(top_n=0), "at least 1"),
    (dict(top_n=1, weighting="rank"), "weighting must be one of"),
    (dict(top_n=1, weighting="inverse_vol"), "needs vol"),
    (dict(top_n=1, position_limit=1.5), "position_limit"),
    (dict(top_n=1, tax=-0.1), "costs must be >= 0"),
])
def test_bad_input(kw, words):
    bars = flat_bars([100, 100], [50, 50])
    with pytest.raises(ValueError, match=re.escape(words)):
        run(bars, scores_at(2, 2, {0: [1, 2]}), [0], **kw)


# --------------------------------------------------------------------------------------
# invariants on random universes
# --------------------------------------------------------------------------------------


def random_run(seed, truncate=None):
    rng, bars, start, end = random_universe(seed)
    lookback = int(rng.integers(1, 10))
    kw = dict(
        top_n=int(rng.integers(1, 3)), bottom_n=int(rng.choice([0, 0, 1])),
        weighting=str(rng.choice(["equal", "inverse_vol", "score"])),
        position_limit=float(rng.choice([1.0, 0.4])), fill=str(rng.choice(["next_open",
                                                                           "close"])),
        fees=float(rng.choice([0.0, 0.001])), fixed_fees=float(rng.choice([0.0, 5.0])),
        slippage=float(rng.choice([0.0, 0.001])), tax=float(rng.choice([0.0, 0.003])),
        stop_loss=[None, 0.03][int(rng.integers(2))],
        trailing_stop=[None, 0.05][int(rng.integers(2))],
        take_profit=[None, 0.05][int(rng.integers(2))],
        max_bars=[None, 7][int(rng.integers(2))])
    every = int(rng.integers(3, 12))
    not_eligible = rng.random(bars[3].shape) < 0.1  # NaN scores, drawn on the full axis
    if truncate is not None:
        bars = [x[:, :truncate] for x in bars]
        end = [min(e, truncate) for e in end]
        not_eligible = not_eligible[:, :truncate]
    close = bars[3]
    scores = np.array(momentum_score(close, start, lookback))
    scores[not_eligible] = NAN
    vol = np.array(volatility(close, start, 5))
    schedule = np.arange(every - 1, close.shape[1] - 1, every)
    out = reference_rank_portfolio(*bars, start, end, scores, schedule, vol=vol, **kw)
    return out, bars, start, end, kw


@pytest.mark.parametrize("seed", range(30))
def test_accounting_invariants(seed):
    out, bars, start, end, kw = random_run(seed)
    close = bars[3]
    p0, p1 = min(start), max(end)
    for i in range(p0, p1):
        held = sum(out["units"][a][i] * close[a, i] for a in range(len(start))
                   if out["units"][a][i] != 0.0)
        assert out["cash"][i] + held == pytest.approx(out["equity"][i], rel=1e-9, abs=1e-6)
        if kw["bottom_n"] == 0:
            assert out["cash"][i] >= -1e-9 * abs(out["equity"][i])
    total = sum(t["pnl"] for t in out["trades"])
    assert total == pytest.approx(out["equity"][p1 - 1] - 10_000.0, rel=1e-9, abs=1e-6)
    for f in out["fills"]:  # every fill's quote lies within its bar
        a, i = f["asset"], f["bar"]
        assert bars[2][a, i] - 1e-9 <= f["quote"] <= bars[1][a, i] + 1e-9


@pytest.mark.parametrize("seed", range(12))
def test_no_look_ahead(seed):
    full = random_run(seed)[0]
    cut = 55
    part = random_run(seed, truncate=cut)[0]
    # every bar before the new last one is decided the same way
    assert part["equity"][:cut - 1] == pytest.approx(full["equity"][:cut - 1], rel=1e-12,
                                                      nan_ok=True)
    early = lambda fills: [f for f in fills if f["bar"] < cut - 1]  # noqa: E731
    assert early(part["fills"]) == early(full["fills"])


@pytest.mark.parametrize("seed", range(8))
def test_weights_are_met_at_the_fill_without_costs(seed):
    rng, bars, start, end = random_universe(seed)
    scores = np.array(momentum_score(bars[3], start, 3))
    schedule = list(range(4, 70, 5))
    out = reference_rank_portfolio(*bars, start, end, scores, schedule, top_n=2,
                                   bottom_n=1, fill="close")
    for rec in out["rebalances"]:
        r = rec["bar"]
        for a in range(len(start)):
            value = out["units"][a][r] * bars[3][a, r] if out["units"][a][r] else 0.0
            assert value / out["equity"][r] == pytest.approx(rec["weights"][a], abs=1e-12)
