"""The cost models of DESIGN.md, "Costs: one formula for every fill, in every mode", in the
three pure-Python references (tests/reference.py, tests/portfolio_reference.py,
tests/rank_reference.py), checked by hand.

Every fill of ``q`` units at quote ``x``: ``p = x*(1 + s*slippage)``, ``n = q*p``;
``c = fees_per_share*q + fees*n``, ``c = max(c, min_fees)``, ``c = min(c, max_fees*n)`` when
``max_fees > 0``; charge ``c + fixed_fees`` (``+ tax*n`` on a sale); a buy pays ``n +
charge``, a sale receives ``max(n - charge, 0)``. Entries (and rank buys cut to the cash)
take the largest ``q`` with ``q*p + charge(q) <= budget``, rounded down to ``lot_size``.

The numbers in the comments are worked out by hand from that text. No kernel is run here:
the differential tests against the compiled engine come with the engine's cost options
(:func:`random_cost_config` draws their configurations).
"""

import math
import random

import pytest

from portfolio_reference import reference_portfolio
from rank_reference import reference_rank_portfolio
from reference import BUY, SELL, Costs, reference_backtest
from helpers import random_cost_config

NAN = float("nan")
REL = 1e-12
ENTER_LONG, EXIT_LONG, ENTER_SHORT, EXIT_SHORT = 1, 2, 4, 8


def close_to(actual, expected, rel=REL, abs_=1e-9):
    return actual == pytest.approx(expected, rel=rel, abs=abs_)


def flat(closes):
    """(open, high, low, close) of bars that open, trade and close at one price."""
    return list(closes), list(closes), list(closes), list(closes)


def run_asset(closes, signals, **kw):
    kw.setdefault("fill", "close")
    return reference_backtest(*flat(closes), signals, **kw)


# --------------------------------------------------------------------------------------
# the cost model itself (reference.Costs)
# --------------------------------------------------------------------------------------


def test_sizing_each_piece_binds():
    # fees_per_share 0.005, min 1, max 1% of the notional, at p = 1: per unit a = 0.005,
    # the cap k = 0.01. c(q) = min(max(0.005q, 1), 0.01q):
    #   q < 100:       0.01q (the cap is below the minimum)
    #   100 <= q < 200: 1     (the minimum)
    #   q >= 200:      0.005q (per share)
    costs = Costs(fees_per_share=0.005, min_fees=1.0, max_fees=0.01)
    assert close_to(costs.commission(50.0, 1.0), 0.5)
    assert close_to(costs.commission(150.0, 1.0), 1.0)
    assert close_to(costs.commission(1000.0, 1.0), 5.0)
    # budget 50.5: the cap piece, 1.01q = 50.5 -> q = 50
    assert close_to(costs.units(50.5, 1.0), 50.0)
    # budget 151: the minimum piece, q + 1 = 151 -> q = 150
    assert close_to(costs.units(151.0, 1.0), 150.0)
    # budget 1005: the per-share piece, 1.005q = 1005 -> q = 1000
    assert close_to(costs.units(1005.0, 1.0), 1000.0)
    # at the joints: 101 buys exactly 100 (cap = minimum = 1), 201 buys 200
    assert close_to(costs.units(101.0, 1.0), 100.0)
    assert close_to(costs.units(201.0, 1.0), 200.0)
    for budget in (0.3, 50.5, 101.0, 130.0, 151.0, 201.0, 777.0, 1005.0):
        q = costs.units(budget, 1.0)
        assert costs.spend(q, 1.0) <= budget  # never over the budget, not even by an ulp
        assert costs.spend(q * (1 + 1e-9), 1.0) > budget  # and the largest


def test_sizing_with_fixed_fees_tax_and_lots():
    # fixed 2, fees 0.001, minimum 3 at p = 100: a = 0.1/unit, the minimum up to q = 30.
    costs = Costs(fees=0.001, fixed_fees=2.0, min_fees=3.0)
    # budget 1005: the minimum piece, 100q + 3 + 2 = 1005 -> q = 10
    assert close_to(costs.units(1005.0, 100.0), 10.0)
    # budget 5007: the proportional piece, 100.1q + 2 = 5007 -> q = 50
    assert close_to(costs.units(5007.0, 100.0), 50.0)
    # below the minimum and the fixed fee nothing fits
    assert costs.units(4.0, 100.0) == 0.0
    # a short sale's budget covers its tax: tax 0.004, q*(100 + 0.1 + 0.4) + 2 = 5027
    # -> q = 50
    taxed = Costs(fees=0.001, fixed_fees=2.0, min_fees=3.0, tax=0.004)
    assert close_to(taxed.units(5027.0, 100.0, sale=True), 50.0)
    assert close_to(taxed.units(5007.0, 100.0), 50.0)  # a buy pays no tax
    # lots: 50 -> 50 with lot 10, 49.95 -> 40 with lot 10, 0 with lot 100
    assert Costs(lot_size=10.0).units(4995.0, 100.0) == 40.0
    assert Costs(lot_size=10.0).units(5000.0, 100.0) == 50.0
    assert Costs(lot_size=100.0).units(5000.0, 100.0) == 0.0
    assert Costs(lot_size=1.0).round_lot_toward_zero(-7.9) == -7.0


def test_a_sale_never_costs_cash_and_its_split():
    # n = 10 * 0.1 = 1; commission max(0, 5) = 5 > n: the sale receives 0, the commission
    # took the whole notional (1) and the tax nothing
    received, commission, tax = Costs(min_fees=5.0, tax=0.01).sell(10.0, 0.1)
    assert (received, commission, tax) == (0.0, 1.0, 0.0)
    # n = 1, fixed 0.9, tax 20%: 0.9 + 0.2 > 1 -> receives 0, commission 0.9, tax 0.1
    received, commission, tax = Costs(fixed_fees=0.9, tax=0.2).sell(10.0, 0.1)
    assert received == 0.0 and close_to(commission, 0.9) and close_to(tax, 0.1)


@pytest.mark.parametrize("kw", [dict(fees_per_share=-1.0), dict(min_fees=-0.1),
                                dict(max_fees=-0.01), dict(tax=-0.001), dict(lot_size=-1.0),
                                dict(min_fees=math.inf)])
def test_bad_costs_are_errors(kw):
    with pytest.raises(ValueError, match="costs must be >= 0"):
        Costs(**kw)
    with pytest.raises(ValueError, match="costs must be >= 0"):
        run_asset([100.0, 100.0], [0, 0], **kw)


# --------------------------------------------------------------------------------------
# per asset (reference_backtest), fill="close", bars that trade at one price
# --------------------------------------------------------------------------------------


def test_asset_per_share_commission_with_a_minimum():
    # 0.01 per share, at least 5 per order, init 10000, buy at 100: 0.01q < 5 for q < 500,
    # so the minimum binds: 100q + 5 = 10000 -> q = 99.95, cash 0.
    out = run_asset([100.0, 110.0, 120.0], [1, 0, -1], fees_per_share=0.01, min_fees=5.0)
    (t,) = out["trades"]
    assert close_to(t["units"], 99.95)
    assert close_to(out["cash"][0], 0.0)
    assert close_to(out["equity"][0], 9995.0) and close_to(out["equity"][1], 10994.5)
    # sell at 120: n = 11994, c = max(0.9995, 5) = 5 -> receives 11989
    assert close_to(out["cash"][2], 11989.0)
    assert close_to(t["pnl"], 1989.0) and close_to(t["return"], 0.1989)
    assert close_to(t["commission"], 10.0) and t["tax"] == 0.0
    assert close_to(out["metrics"]["costs"], 10.0)


def test_asset_per_share_piece_above_the_minimum():
    # 1 per share, minimum 5: from 5 shares on the per-share piece binds: 101q = 10100
    # -> q = 100, commission 100; sell at 120: n = 12000, c = 100, receives 11900
    out = run_asset([100.0, 110.0, 120.0], [1, 0, -1], init_cash=10100.0,
                    fees_per_share=1.0, min_fees=5.0)
    (t,) = out["trades"]
    assert close_to(t["units"], 100.0)
    assert close_to(t["pnl"], 11900.0 - 10100.0) and close_to(t["commission"], 200.0)
    assert close_to(out["equity"][-1], 11900.0)


def test_asset_a_cap_that_binds():
    # 1 per share capped at 0.5% of the notional: at 100 the cap (0.5/unit) is below the
    # per-share 1/unit, so c = 0.005n: 100.5q = 10050 -> q = 100, commission 50.
    # Sell at 120: c = min(100, 60) = 60, receives 11940.
    out = run_asset([100.0, 110.0, 120.0], [1, 0, -1], init_cash=10050.0,
                    fees_per_share=1.0, max_fees=0.005)
    (t,) = out["trades"]
    assert close_to(t["units"], 100.0)
    assert close_to(t["commission"], 110.0)
    assert close_to(t["pnl"], 11940.0 - 10050.0)
    assert close_to(out["cash"][2], 11940.0)


@pytest.mark.parametrize("budget, units, commission", [(50.5, 50.0, 0.5), (151.0, 150.0, 1.0),
                                                       (1005.0, 1000.0, 5.0)])
def test_asset_entry_sizing_each_piece(budget, units, commission):
    # the three pieces of test_sizing_each_piece_binds through a backtest at price 1: the
    # entry spends the whole cash; the last bar marks the position (no exit costs)
    out = run_asset([1.0, 1.0], [1, 0], init_cash=budget, fees_per_share=0.005,
                    min_fees=1.0, max_fees=0.01)
    (t,) = out["trades"]
    assert close_to(t["units"], units) and close_to(t["commission"], commission)
    assert t["exit_reason"] == "end"
    assert 0.0 <= out["cash"][0] <= 1e-9
    assert close_to(out["metrics"]["costs"], commission)


def test_asset_slippage_moves_the_price_the_commission_reads():
    # next_open, slippage 1%, 0.05 per share, minimum 1. Buy at the open of bar 1 (quote
    # 100, p = 101): past 20 shares the per-share piece binds, 101.05q = 10105 -> q = 100,
    # commission 5. Sell at the open of bar 3 (quote 120, p = 118.8): n = 11880, c = 5,
    # receives 11875.
    out = reference_backtest(*flat([100.0, 100.0, 120.0, 120.0]), [1, 0, -1, 0],
                             init_cash=10105.0, slippage=0.01, fees_per_share=0.05,
                             min_fees=1.0)
    (t,) = out["trades"]
    assert close_to(t["units"], 100.0)
    assert close_to(t["entry_price"], 101.0) and close_to(t["exit_price"], 118.8)
    assert close_to(out["equity"][1], 10000.0) and close_to(out["equity"][2], 12000.0)
    assert close_to(t["pnl"], 11875.0 - 10105.0) and close_to(t["commission"], 10.0)
    assert close_to(out["cash"][3], 11875.0)


def test_asset_whole_shares():
    # fees 0.1%, lot 1: 10000 / 100.1 = 99.90 -> 99 shares; pays 9900 * 1.001 = 9909.9,
    # 90.1 stays in cash. Sell at 120: 11880 * 0.999 = 11868.12.
    out = run_asset([100.0, 110.0, 120.0], [1, 0, -1], fees=0.001, lot_size=1.0)
    (t,) = out["trades"]
    assert t["units"] == 99.0
    assert close_to(out["cash"][0], 90.1)
    assert close_to(out["equity"][1], 90.1 + 99 * 110.0)
    assert close_to(t["pnl"], 11868.12 - 9909.9)
    assert close_to(t["commission"], 9.9 + 11.88)
    # lots of 10: 90 shares
    assert run_asset([100.0, 120.0], [1, 0], fees=0.001, lot_size=10.0)["trades"][0][
        "units"] == 90.0


def test_asset_tax_on_a_short_sale():
    # direction short, fees 0.1%, tax 0.3%: the short entry is a sale and its budget covers
    # its tax: q * 100 * 1.004 = 10040 -> q = 100; receives 10000 - 10 - 30 = 9960, cash
    # 20000. Cover at 90 (a buy, no tax): pays 9000 + 9 = 9009, cash 10991.
    out = run_asset([100.0, 95.0, 90.0], [-1, 0, 1], direction="short", init_cash=10040.0,
                    fees=0.001, tax=0.003)
    (t,) = out["trades"]
    assert t["direction"] == "short" and close_to(t["units"], 100.0)
    assert close_to(out["cash"][0], 20000.0)
    assert close_to(out["cash"][2], 10991.0)
    assert close_to(t["pnl"], 9960.0 - 9009.0)
    assert close_to(t["commission"], 19.0) and close_to(t["tax"], 30.0)
    # the cash committed at entry is n + c + fixed fees, the tax left out: 10010
    assert close_to(t["return"], 951.0 / 10010.0)
    assert close_to(out["metrics"]["costs"], 49.0)


def test_asset_tax_on_closing_a_long():
    # tax 1% on the sale only: buy 100 at 100 (no tax), sell at 120: n = 12000, tax 120
    out = run_asset([100.0, 110.0, 120.0], [1, 0, -1], tax=0.01)
    (t,) = out["trades"]
    assert close_to(t["units"], 100.0) and close_to(t["tax"], 120.0)
    assert t["commission"] == 0.0 and close_to(t["pnl"], 1880.0)


def test_asset_a_sale_whose_costs_exceed_its_notional():
    # size 0.5, fixed 0.9, tax 20%: buy (5000 - 0.9) / 100 = 49.991 units, cash 5000.
    # The price falls to 0.02: n = 0.99982, fixed fee 0.9 + tax 0.199964 > n: the sale
    # receives 0 (it costs no cash), commission 0.9, tax the rest 0.09982.
    out = run_asset([100.0, 1.0, 0.02], [1, 0, -1], size=0.5, fixed_fees=0.9, tax=0.2)
    (t,) = out["trades"]
    assert close_to(t["units"], 49.991)
    assert close_to(out["cash"][2], 5000.0) and close_to(out["equity"][2], 5000.0)
    assert close_to(t["pnl"], -5000.0)
    assert close_to(t["commission"], 1.8) and close_to(t["tax"], 0.09982)
    assert close_to(out["metrics"]["costs"], 1.89982)
    # pnl = sale notional - buy notional - commission - tax
    assert close_to(t["pnl"], 0.99982 - 4999.1 - 1.8 - 0.09982)


def test_asset_minimum_fee_on_each_leg_of_a_reversal():
    # minimum 10 per order, nothing else: long (10000 - 10) / 100 = 99.9 at 100. At 110 the
    # reversal closes it (receives 10989 - 10 = 10979), then shorts (10979 - 10) / 110 =
    # 99.71818... units (receives 10969 - 10 = 10959). The end mark at 100 pays nothing.
    out = run_asset([100.0, 105.0, 110.0, 100.0], [1, 0, -1, 0], direction="both",
                    min_fees=10.0)
    long_, short = out["trades"]
    assert close_to(long_["units"], 99.9) and close_to(long_["pnl"], 979.0)
    assert close_to(long_["commission"], 20.0)
    q = 10969.0 / 110.0
    assert close_to(short["units"], q) and short["exit_reason"] == "end"
    assert close_to(short["commission"], 10.0)
    assert close_to(short["pnl"], 10959.0 - q * 100.0)
    assert close_to(out["cash"][2], 10979.0 + 10959.0)
    assert close_to(out["equity"][3], 10000.0 + 979.0 + 10959.0 - q * 100.0)
    assert close_to(out["metrics"]["costs"], 30.0)


def test_asset_entries_nothing_fits_are_skipped():
    # a budget of 10 (size 0.001) cannot pay a minimum fee of 10: no trade
    out = run_asset([100.0, 110.0], [1, 0], size=0.001, min_fees=10.0)
    assert out["trades"] == [] and out["metrics"]["n_trades"] == 0
    # 50 of cash cannot buy one whole share at 100
    out = run_asset([100.0, 110.0], [1, 0], init_cash=50.0, lot_size=1.0)
    assert out["trades"] == [] and out["equity"] == [50.0, 50.0]
    # ... but a cap on the minimum lets a small order through: min 10, max 1%: c = 0.01n
    out = run_asset([100.0, 110.0], [1, 0], size=0.001, min_fees=10.0, max_fees=0.01)
    assert close_to(out["trades"][0]["units"], 10.0 / 101.0)


def test_asset_ruin_mark_pays_nothing():
    # a short of 100 units (received 10000 - 10, minimum fee 10) against a rally to 300:
    # equity 20000 - 10 - 100*300 < 0: ruined, the ruin mark pays no costs
    out = run_asset([100.0, 300.0, 310.0], [-1, 0, 0], direction="short",
                    init_cash=10010.0, min_fees=10.0)
    (t,) = out["trades"]
    assert t["exit_reason"] == "ruin" and out["metrics"]["ruined"] == 1.0
    assert close_to(t["commission"], 10.0) and t["tax"] == 0.0
    assert close_to(t["pnl"], 9990.0 - 30000.0)


# --------------------------------------------------------------------------------------
# portfolio (reference_portfolio)
# --------------------------------------------------------------------------------------


def rows(*closes_by_asset):
    c = [[NAN if x is None else float(x) for x in row] for row in closes_by_asset]
    return c, [list(r) for r in c], [list(r) for r in c], [list(r) for r in c]


def span_of(close):
    start = [next(i for i, x in enumerate(r) if x == x) for r in close]
    end = [len(r) - next(i for i, x in enumerate(reversed(r)) if x == x) for r in close]
    return start, end


def run_portfolio(bars, codes, **kw):
    kw.setdefault("fill", "close")
    start, end = span_of(bars[3])
    atr = [[NAN] * len(bars[3][0]) for _ in bars[3]]
    return reference_portfolio(*bars, start, end, codes, atr, **kw)


def test_portfolio_whole_shares_minimum_fee_and_tax():
    # A at 100, B at 50, size 0.5, lots of 1, 0.01 per share with a minimum of 5, tax 0.1%.
    # Bar 0: E = 10000. A: budget 5000, (5000 - 5) / 100 = 49.95 -> 49 shares, pays
    # 4900 + 5, cash 5095. B: budget min(5000, 5095) = 5000, (5000 - 5) / 50 = 99.9 -> 99,
    # pays 4950 + 5, cash 140.
    bars = rows([100.0, 110.0, 120.0], [50.0, 40.0, 45.0])
    codes = [[ENTER_LONG, 0, EXIT_LONG], [ENTER_LONG, 0, EXIT_LONG]]
    out = run_portfolio(bars, codes, size=0.5, lot_size=1.0, fees_per_share=0.01,
                        min_fees=5.0, tax=0.001)
    assert out["units"][0][0] == 49.0 and out["units"][1][0] == 99.0
    assert close_to(out["cash"][0], 140.0) and close_to(out["equity"][0], 9990.0)
    assert close_to(out["equity"][1], 140.0 + 49 * 110.0 + 99 * 40.0)
    # bar 2 sells: A n = 5880, c = 5, tax 5.88 -> 5869.12; B n = 4455, c = 5, tax 4.455
    # -> 4445.545
    a, b = sorted(out["trades"], key=lambda t: t["asset"])
    assert close_to(a["pnl"], 5869.12 - 4905.0) and close_to(b["pnl"], 4445.545 - 4955.0)
    assert close_to(a["commission"], 10.0) and close_to(a["tax"], 5.88)
    assert close_to(b["commission"], 10.0) and close_to(b["tax"], 4.455)
    assert close_to(out["cash"][2], 140.0 + 5869.12 + 4445.545)
    assert close_to(out["metrics"]["costs"], 30.335)


def test_portfolio_short_entry_budget_includes_its_tax():
    # a short of A at 100, fees 0, tax 0.4%, init 10040: q * 100 * 1.004 = 10040 -> 100,
    # receives 10000 - 40 = 9960, cash 20000; covered at 90 (no tax): pays 9000
    bars = rows([100.0, 95.0, 90.0])
    out = run_portfolio(bars, [[ENTER_SHORT, 0, EXIT_SHORT]], direction="short",
                        init_cash=10040.0, tax=0.004)
    (t,) = out["trades"]
    assert close_to(t["units"], 100.0) and close_to(out["cash"][0], 20000.0)
    assert close_to(t["tax"], 40.0) and t["commission"] == 0.0
    assert close_to(t["pnl"], 960.0) and close_to(out["cash"][2], 11000.0)


def test_portfolio_entry_that_buys_no_lot_is_skipped():
    # round lots of 100: A at 30 with budget 5000 -> 166.7 -> 100 shares (3000); B at 60
    # with budget min(5000, 7000) -> 83.3 -> 0 lots: skipped
    bars = rows([30.0, 30.0], [60.0, 60.0])
    out = run_portfolio(bars, [[ENTER_LONG, 0], [ENTER_LONG, 0]], size=0.5, lot_size=100.0)
    assert out["units"][0][0] == 100.0 and out["units"][1][0] == 0.0
    assert len(out["trades"]) == 1 and close_to(out["cash"][0], 7000.0)


def test_portfolio_delisting_sale_whose_costs_exceed_its_notional():
    # A bought with the whole cash at 100 with a minimum fee of 3: (10000 - 3) / 100 =
    # 99.97 units. It collapses to 0.02 and is delisted at bar 1 while B trades on: the
    # delisting sale (n = 1.9994) would owe 3: it receives 0, the commission took 1.9994.
    bars = rows([100.0, 0.02, None], [10.0, 10.0, 10.0])
    out = run_portfolio(bars, [[ENTER_LONG, 0, 0], [0, 0, 0]], min_fees=3.0)
    (t,) = out["trades"]
    assert t["exit_reason"] == "delist" and close_to(t["units"], 99.97)
    assert out["cash"][1] == 0.0 and out["metrics"]["ruined"] == 1.0
    assert close_to(t["commission"], 3.0 + 1.9994) and t["tax"] == 0.0
    assert close_to(t["pnl"], -10000.0)


# --------------------------------------------------------------------------------------
# rank (reference_rank_portfolio), fill="close"
# --------------------------------------------------------------------------------------


def run_rank(bars, scores_by_bar, schedule, **kw):
    kw.setdefault("fill", "close")
    start, end = span_of(bars[3])
    n_assets, n_bars = len(bars[3]), len(bars[3][0])
    scores = [[NAN] * n_bars for _ in range(n_assets)]
    for bar, row in scores_by_bar.items():
        for a, x in enumerate(row):
            scores[a][bar] = x
    return reference_rank_portfolio(*bars, start, end, scores, schedule, **kw)


def by_asset(trades):
    return sorted(trades, key=lambda t: (t["asset"], t["entry_bar"]))


def test_rank_whole_shares_and_a_cut_buy_with_a_minimum():
    # top 2 of A (100), B (50), equal weights, lots of 1, 0.01 per share, minimum 2.
    # E = 10000: targets A 50, B 100. A: pays 5000 + max(0.5, 2) = 5002, cash 4998.
    # B: 100 would cost 5002: cut to (4998 - 2) / 50 = 99.92 -> 99 shares, pays 4952,
    # cash 46.
    bars = rows([100.0, 110.0, 120.0], [50.0, 40.0, 45.0])
    out = run_rank(bars, {0: [2.0, 1.0]}, [0], top_n=2, lot_size=1.0,
                   fees_per_share=0.01, min_fees=2.0)
    assert out["units"][0][0] == 50.0 and out["units"][1][0] == 99.0
    assert close_to(out["cash"][0], 46.0)
    a, b = by_asset(out["trades"])
    assert close_to(a["pnl"], 6000.0 - 5002.0) and close_to(a["commission"], 2.0)
    assert close_to(b["pnl"], 99 * 45.0 - 4952.0) and close_to(b["commission"], 2.0)
    assert close_to(out["equity"][2], 46.0 + 6000.0 + 4455.0)
    assert close_to(out["metrics"]["costs"], 4.0)
    assert close_to(out["metrics"]["turnover"], (5000.0 + 4950.0) / 10000.0)


def test_rank_flip_with_a_cap_and_tax_each_leg_its_own_order():
    # top 1 long, bottom 1 short (weights +-0.5), flat prices of 100, fees 1% capped at
    # 0.5% of the notional (c = 0.005n), tax 0.2% on sales.
    # Bar 0: E = 10000. Sell B short 50: n = 5000, c = 25, tax 10 -> +4965; buy A 50:
    # -5025; cash 9940 = E at every later quote.
    # Bar 1 (scores flip): targets A -49.7, B +49.7. Sells: A closes 50 (+4965; trade pnl
    # -60), then shorts 49.7 (n = 4970, c = 24.85, tax 9.94 -> +4935.21). Buys: B covers
    # 50 (-5025; trade pnl -60), then buys 49.7 (-4994.85). Cash 9820.36.
    bars = rows([100.0] * 3, [100.0] * 3)
    out = run_rank(bars, {0: [2.0, 1.0], 1: [1.0, 2.0]}, [0, 1], top_n=1, bottom_n=1,
                   fees=0.01, max_fees=0.005, tax=0.002)
    assert close_to(out["cash"][0], 9940.0) and close_to(out["cash"][1], 9820.36)
    assert close_to(out["units"][0][1], -49.7) and close_to(out["units"][1][1], 49.7)
    a1, a2, b1, b2 = by_asset(out["trades"])
    for t in (a1, b1):
        assert close_to(t["pnl"], -60.0) and close_to(t["commission"], 50.0)
        assert close_to(t["tax"], 10.0)
    assert close_to(a2["pnl"], 4935.21 - 4970.0) and close_to(a2["tax"], 9.94)
    assert close_to(a2["commission"], 24.85)
    assert close_to(b2["pnl"], 4970.0 - 4994.85) and close_to(b2["commission"], 24.85)
    assert b2["tax"] == 0.0 and a2["exit_reason"] == b2["exit_reason"] == "end"
    # prices never move: every dollar lost is a cost
    assert close_to(out["metrics"]["costs"], 179.64)
    assert close_to(out["equity"][2], 10000.0 - 179.64)


def test_rank_sale_whose_costs_exceed_its_notional_and_a_cut_buy():
    # top 2 of A, B, C; minimum fee 3. Bar 0 (A, B at 100): A 50 units (pays 5003), B cut to
    # (4997 - 3) / 100 = 49.94 (pays 4997), cash 0. Bar 1: A collapses to 0.02, C (100)
    # replaces it. E = 1 + 4994 = 4995, targets B = C = 24.975. Sells: A's 50 (n = 1 < 3:
    # receives 0, commission 1); B sells 24.965 (n = 2496.5, receives 2493.5). Buy C: cut to
    # (2493.5 - 3) / 100 = 24.905, pays 2493.5, cash 0.
    bars = rows([100.0, 0.02, 0.02], [100.0] * 3, [100.0] * 3)
    out = run_rank(bars, {0: [3.0, 2.0, 1.0], 1: [1.0, 3.0, 2.0]}, [0, 1], top_n=2,
                   min_fees=3.0)
    a, b, c = by_asset(out["trades"])
    assert close_to(a["pnl"], -5003.0) and close_to(a["commission"], 4.0)
    assert a["exit_reason"] == "signal"
    assert close_to(out["units"][1][1], 24.975) and close_to(out["units"][2][1], 24.905)
    assert close_to(out["cash"][1], 0.0)
    assert close_to(b["pnl"], -4997.0 + 2493.5 + 2497.5) and close_to(b["commission"], 6.0)
    assert close_to(c["pnl"], -3.0) and close_to(c["commission"], 3.0)
    assert close_to(out["equity"][2], 4988.0) and close_to(out["metrics"]["costs"], 13.0)


def test_rank_minimum_fee_does_not_extend_the_fixed_fee_skip():
    # top 1, weight capped at 0.5, minimum fee 1. Bar 0: A 50 units (pays 5001), cash 4999.
    # Bar 1: E = 9999, target 49.995: a sale of 0.005 units (n = 0.5). It leaves the
    # position open but its notional is above fixed_fees (0): it trades, and its minimum
    # fee takes the whole notional (receives 0, commission 0.5).
    bars = rows([100.0] * 3, [50.0] * 3)
    out = run_rank(bars, {0: [2.0, 1.0], 1: [2.0, 1.0]}, [0, 1], top_n=1,
                   position_limit=0.5, min_fees=1.0)
    (t,) = out["trades"]
    assert close_to(out["units"][0][1], 49.995) and close_to(out["cash"][1], 4999.0)
    assert t["n_fills"] == 2 and close_to(t["commission"], 1.5)
    assert close_to(t["pnl"], -1.5) and close_to(out["equity"][2], 9998.5)
    # with a fixed fee of 1 instead, the rule of the fixed fee skips that trade
    out = run_rank(bars, {0: [2.0, 1.0], 1: [2.0, 1.0]}, [0, 1], top_n=1,
                   position_limit=0.5, fixed_fees=1.0)
    assert out["trades"][0]["n_fills"] == 1 and out["units"][0][1] == 50.0


def test_rank_targets_rounded_toward_zero_to_lots():
    # top 1 long (A at 70), bottom 1 short (B at 30), lots of 10, tax 0.1%. E = 10000:
    # A 5000/70 = 71.4 -> 70; B -5000/30 = -166.7 -> -160. B sells 160 short (n = 4800,
    # tax 4.8), A buys 70 (4900). Cash 10000 + 4795.2 - 4900 = 9895.2.
    bars = rows([70.0] * 3, [30.0] * 3)
    out = run_rank(bars, {0: [2.0, 1.0]}, [0], top_n=1, bottom_n=1, lot_size=10.0,
                   tax=0.001)
    assert out["units"][0][0] == 70.0 and out["units"][1][0] == -160.0
    assert close_to(out["cash"][0], 9895.2)
    assert close_to(out["metrics"]["costs"], 4.8)


# --------------------------------------------------------------------------------------
# invariants of every reference under random costs (no kernel involved)
# --------------------------------------------------------------------------------------


def random_walk(rng, n, vol=0.03):
    o, h, lo, c = [], [], [], []
    prev = rng.choice([0.5, 20.0, 100.0])
    for _ in range(n):
        op = prev * math.exp(rng.gauss(0.0, vol / 3))
        cl = op * math.exp(rng.gauss(0.0, vol))
        o.append(op)
        c.append(cl)
        h.append(max(op, cl) * (1 + abs(rng.gauss(0.0, vol / 2))))
        lo.append(min(op, cl) * (1 - abs(rng.gauss(0.0, vol / 2))))
        prev = cl
    return o, h, lo, c


def check_costs_add_up(out, init_cash):
    """Trades' pnl add up to the equity change, every trade's commission and tax are >= 0,
    and ``costs`` is their sum."""
    trades = out["trades"]
    final = [x for x in out["equity"] if x == x][-1]
    assert math.fsum(t["pnl"] for t in trades) == pytest.approx(final - init_cash,
                                                                rel=1e-9, abs=1e-6)
    assert all(t["commission"] >= 0.0 and t["tax"] >= 0.0 for t in trades)
    total = math.fsum(t["commission"] + t["tax"] for t in trades)
    assert out["metrics"]["costs"] == pytest.approx(total, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("seed", range(40))
def test_random_costs_asset(seed):
    rng = random.Random(seed)
    n = rng.randint(20, 80)
    o, h, lo, c = random_walk(rng, n, rng.choice([0.01, 0.05]))
    costs = random_cost_config(rng)
    signals = [rng.choice([0, 0, 0, BUY, SELL]) for _ in range(n)]
    out = reference_backtest(o, h, lo, c, signals, codes=True, fill=rng.choice(
        ["next_open", "close"]), direction=rng.choice(["long", "short", "both"]),
        stop_loss=rng.choice([None, 0.03]), **costs)
    check_costs_add_up(out, 10_000.0)
    lot = costs["lot_size"]
    for t in out["trades"]:
        if lot > 0.0:
            assert t["units"] / lot == pytest.approx(round(t["units"] / lot), abs=1e-9)
        # the round trip's cash: sales' notional - purchases' notional - its costs
        if t["exit_reason"] not in ("end", "ruin"):
            sign = 1.0 if t["direction"] == "long" else -1.0
            gross = sign * t["units"] * (t["exit_price"] - t["entry_price"])
            assert t["pnl"] == pytest.approx(gross - t["commission"] - t["tax"],
                                             rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(25))
def test_random_costs_portfolio(seed):
    rng = random.Random(1000 + seed)
    n_assets, n = rng.randint(2, 4), rng.randint(20, 60)
    walks = [random_walk(rng, n) for _ in range(n_assets)]
    bars = [[list(w[k]) for w in walks] for k in range(4)]
    codes = [[rng.choice([0, 0, 0, ENTER_LONG, EXIT_LONG, ENTER_SHORT, EXIT_SHORT])
              for _ in range(n)] for _ in range(n_assets)]
    direction = rng.choice(["long", "both"])
    out = run_portfolio(bars, codes, fill=rng.choice(["next_open", "close"]),
                        direction=direction, size=rng.choice([0.3, 0.5, 1.0]),
                        **random_cost_config(rng))
    check_costs_add_up(out, 10_000.0)
    if direction == "long":  # entries never borrow (up to rounding, as today's fees)
        assert all(x >= -1e-9 * abs(e) for x, e in zip(out["cash"], out["equity"]) if x == x)


@pytest.mark.parametrize("seed", range(25))
def test_random_costs_rank(seed):
    rng = random.Random(2000 + seed)
    n_assets, n = rng.randint(2, 5), rng.randint(20, 60)
    walks = [random_walk(rng, n) for _ in range(n_assets)]
    bars = [[list(w[k]) for w in walks] for k in range(4)]
    top = rng.randint(1, n_assets)
    bottom = rng.choice([0, rng.randint(0, n_assets - top)])
    scores = {i: [rng.gauss(0.0, 1.0) for _ in range(n_assets)] for i in range(n)}
    step = rng.randint(1, 5)
    out = run_rank(bars, scores, list(range(step - 1, n, step)), top_n=top, bottom_n=bottom,
                   fill=rng.choice(["next_open", "close"]), **random_cost_config(rng))
    check_costs_add_up(out, 10_000.0)
    paid = math.fsum(f["commission"] + f["tax"] for f in out["fills"])
    assert out["metrics"]["costs"] == pytest.approx(paid, rel=1e-12, abs=1e-9)
    if bottom == 0:  # a long-only book never has negative cash (up to rounding)
        assert all(x >= -1e-9 * abs(e) for x, e in zip(out["cash"], out["equity"]) if x == x)
