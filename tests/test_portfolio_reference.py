"""The portfolio reference simulator (tests/portfolio_reference.py), checked three ways.

1. A one-asset portfolio with ``size_type="equity"`` is the per-asset backtest: it must
   equal tests/reference.py bar by bar and trade by trade on random data and rules.
2. Small cases and the worked example of docs/semantics.md ("Portfolio backtests"),
   computed by hand: exact numbers.
3. ``sb.backtest(..., portfolio=True)`` against the reference on hundreds of random
   configurations (skipped, with the reason, while the API does not take ``portfolio``).
"""

import math

import numpy as np
import pytest

import sweepbt as sb
from helpers import (CODES_IN_VOLUME, CONFLICTS, TRADE_NUMBERS, assert_close, flat_bars,
                     random_config, random_ohlc)
from portfolio_reference import reference_portfolio
from reference import BUY, SELL, reference_backtest, sma_cross_signals, wilder_atr
from strategy_cases import CASES
from helpers import (check_random_portfolio, compare_portfolio, portfolio_backtest,
                     portfolio_config, ragged_case, reference_inputs, reference_options)

NAN = float("nan")
REL = 1e-9
RULES = ("stop_loss", "take_profit", "trailing_stop", "stop_atr", "take_atr", "trailing_atr",
         "max_bars")
COSTS = ("fees", "fixed_fees", "slippage")


def spans_of(close):
    """(start, end) per asset: the bars where the close is not NaN."""
    start, end = [], []
    for row in np.asarray(close):
        inside = np.flatnonzero(~np.isnan(row))
        start.append(int(inside[0]))
        end.append(int(inside[-1]) + 1)
    return start, end


def run_portfolio(prices, codes, **options):
    """The reference on full (n_assets, n_bars) arrays, spans from the NaN padding, no ATR."""
    start, end = spans_of(prices[3])
    atr = np.full(np.shape(prices[3]), NAN)
    return reference_portfolio(*prices, start, end, codes, atr, **options)


def pnl_adds_up(ref, init_cash=10_000.0):
    final = [e for e in ref["equity"] if not math.isnan(e)][-1]
    return math.isclose(sum(t["pnl"] for t in ref["trades"]), final - init_cash,
                        rel_tol=1e-9, abs_tol=1e-6)


# --------------------------------------------------------------------------------------
# 1. one asset: the per-asset reference
# --------------------------------------------------------------------------------------


def one_asset_case(seed):
    """Random bars, signal codes (sma_cross or random conflicting codes) and rules."""
    rng = np.random.default_rng(30_000 + seed)
    n = int(rng.integers(30, 110))
    prices = [p[0] for p in random_ohlc(rng, n, vol=float(rng.choice([0.01, 0.03, 0.12])))]
    cfg = random_config(rng)
    if rng.random() < 0.5:
        codes = [BUY if s > 0 else SELL if s < 0 else 0
                 for s in sma_cross_signals(list(prices[3]), cfg["fast"], cfg["slow"])]
    else:
        codes = [int(x) for x in rng.choice(CONFLICTS, size=n)]
    if rng.random() < 0.2:  # ruin-prone: shorts, large moves, fixed fees near the cash
        cfg.update(direction="short", init_cash=100.0, fixed_fees=float(rng.choice([0, 30.0])))
    del cfg["fast"], cfg["slow"]
    return prices, codes, cfg


@pytest.mark.parametrize("block", range(4))
def test_one_asset_portfolio_is_the_per_asset_backtest(block):
    """size_type="equity", size <= 1, one asset: equity, cash, units, trades and every
    metric but exposure (G / equity here, the share of bars held per asset) agree."""
    for seed in range(block * 50, block * 50 + 50):
        prices, codes, cfg = one_asset_case(seed)
        what = f"seed {seed} {cfg}"
        atr = wilder_atr(*(list(p) for p in prices[1:]), cfg["atr_window"])
        single = reference_backtest(*(list(p) for p in prices), codes, codes=True, atr=atr,
                                    periods_per_year=252.0, **cfg)
        options = {k: v for k, v in cfg.items() if k != "atr_window"}
        port = reference_portfolio(*([p] for p in prices), [0], [len(codes)], [codes],
                                   [[NAN if x is None else x for x in atr]],
                                   periods_per_year=252.0, **options)
        for series in ("equity", "cash"):
            np.testing.assert_allclose(port[series], single[series], rtol=REL, atol=1e-9,
                                       err_msg=f"{what}: {series}")
        np.testing.assert_allclose(port["units"][0], single["units"], rtol=REL, atol=1e-12,
                                   err_msg=f"{what}: units")
        assert len(port["trades"]) == len(single["trades"]), what
        for got, exp in zip(port["trades"], single["trades"]):
            assert got["direction"] == (1 if exp["direction"] == "long" else -1), what
            for key in ("entry_bar", "exit_bar", "exit_reason"):
                assert got[key] == exp[key], f"{what} {key}"
            for key in TRADE_NUMBERS:
                assert_close(got[key], exp[key], f"{what} {key}")
        for name, value in single["metrics"].items():
            if name != "exposure":
                assert_close(port["metrics"][name], value, f"{what} {name}")
        assert pnl_adds_up(port, cfg.get("init_cash", 10_000.0)), what


def test_reference_invariants_on_ragged_portfolios():
    """On random ragged portfolios: the trades' pnl adds up to the equity change; equity ==
    cash + signed units * close on every bar; long-only cash never goes below zero
    without fixed fees; held units are NaN outside [P0, P1) and 0 on bars outside a span."""
    for seed in range(60):
        rng = np.random.default_rng(70_000 + seed)
        padded, spans = ragged_case(rng)
        cfg = portfolio_config(rng, value_sizing=seed % 2 == 0)
        if seed % 2:
            cfg.update(direction="long", fixed_fees=0.0)
        codes, atr = reference_inputs(padded, spans, cfg)
        ref = reference_portfolio(*padded, [s for s, _ in spans], [e for _, e in spans],
                                  codes, atr, **reference_options(cfg))
        what = f"seed {seed} {cfg}"
        assert pnl_adds_up(ref), what
        p0, p1 = min(s for s, _ in spans), max(e for _, e in spans)
        units = np.array(ref["units"])
        held = np.nansum(units * np.nan_to_num(padded[3]), axis=0)
        np.testing.assert_allclose(np.array(ref["equity"])[p0:p1],
                                   (np.array(ref["cash"]) + held)[p0:p1], rtol=1e-12)
        assert np.isnan(units[:, :p0]).all() and np.isnan(units[:, p1:]).all(), what
        for a, (s, e) in enumerate(spans):
            assert (units[a, p0:s] == 0).all() and (units[a, e:p1] == 0).all(), what
        if cfg["direction"] == "long":  # fixed fees too: a sale never costs cash
            assert min(ref["cash"][p0:p1]) >= -1e-9, what


# --------------------------------------------------------------------------------------
# 2. small cases computed by hand
# --------------------------------------------------------------------------------------


def test_two_entries_compete_for_cash_on_one_bar():
    """fill="close", size=0.7, fees=1%: both entries are sized from E = 10000 (target
    7000 each); A (asset order first) gets 7000, B only what is left, E' - G' = 3000."""
    prices = flat_bars([100, 110], [200, 190])
    ref = run_portfolio(prices, [[BUY, 0], [BUY, 0]], fill="close", size=0.7, fees=0.01)
    a, b = ref["trades"]
    assert a["units"] == pytest.approx(7000 / (100 * 1.01), rel=1e-15)  # 69.3069...
    assert b["units"] == pytest.approx(3000 / (200 * 1.01), rel=1e-15)  # 14.8514...
    assert ref["cash"] == pytest.approx([0.0, 0.0], abs=1e-9)
    assert ref["equity"][0] == pytest.approx(10000 / 1.01, rel=1e-15)  # the fees are gone
    # bar 1: 7000/1.01 * 1.1 + 3000/1.01 * 0.95 = 10550 / 1.01, both marked `end`
    assert ref["equity"][1] == pytest.approx(10550 / 1.01, rel=1e-15)
    assert [t["exit_reason"] for t in ref["trades"]] == ["end", "end"]
    assert ref["metrics"]["exposure"] == pytest.approx(1.0, rel=1e-15)


def test_shorts_are_capped_by_gross_exposure():
    """direction="short", size=0.7: A shorts 7000 (cash 17000, E' 10000, G' 7000), so B
    may only short E' - G' = 3000: gross 10000 == equity, leverage 1."""
    prices = flat_bars([100, 90], [200, 210])
    ref = run_portfolio(prices, [[SELL, 0], [SELL, 0]], fill="close", size=0.7,
                        direction="short")
    assert [t["units"] for t in ref["trades"]] == pytest.approx([70.0, 15.0], rel=1e-15)
    assert ref["cash"][0] == pytest.approx(20000.0, rel=1e-15)
    assert ref["units"] == [[-70.0, -70.0], [-15.0, -15.0]]
    # bar 1: 20000 - 70*90 - 15*210 = 10550; pnl 700 and -150
    assert ref["equity"] == pytest.approx([10000.0, 10550.0], rel=1e-15)
    assert [t["pnl"] for t in ref["trades"]] == pytest.approx([700.0, -150.0], rel=1e-12)


def test_max_positions_refuses_a_third_entry_with_value_sizing():
    """size_type="value", size=3000, max_positions=2: A buys 300 @ 10, B 150 @ 20; C is
    refused although 4000 of cash is idle."""
    prices = flat_bars([10, 10], [20, 20], [40, 40])
    ref = run_portfolio(prices, [[BUY, 0], [BUY, 0], [BUY, 0]], fill="close", size=3000.0,
                        size_type="value", max_positions=2)
    assert [(t["asset"], t["units"]) for t in ref["trades"]] == [(0, 300.0), (1, 150.0)]
    assert ref["cash"] == [4000.0, 4000.0]
    assert ref["units"][2] == [0.0, 0.0]
    assert ref["metrics"]["exposure"] == pytest.approx(0.6, rel=1e-15)  # 6000 / 10000


def test_asset_delisted_while_held_pays_exit_costs():
    """B (bars 0-2 of 0-4) bought at bar 1's open 50 with 1% slippage and 0.1% fees;
    its span ends at bar 2 while the axis goes on: sold at bar 2's close 60 with costs,
    reason `delist`. Its SELL at bar 2 (its last bar) is dropped; A never trades."""
    prices = flat_bars([10, 10, 10, 10, 10], [50, 50, 60, None, None])
    codes = [[0] * 5, [BUY, 0, SELL, 0, 0]]
    ref = run_portfolio(prices, codes, fees=0.001, slippage=0.01)
    (trade,) = ref["trades"]
    units = 10000 / (50.5 * 1.001)  # p = 50 * 1.01
    proceeds = units * 59.4 * 0.999  # p = 60 * 0.99
    assert trade["exit_reason"] == "delist" and trade["exit_bar"] == 2
    assert trade["units"] == pytest.approx(units, rel=1e-15)
    assert trade["exit_price"] == pytest.approx(59.4, rel=1e-15)
    assert trade["pnl"] == pytest.approx(proceeds - 10000, rel=1e-12)
    assert ref["equity"][2:] == pytest.approx([proceeds] * 3, rel=1e-15)
    assert ref["units"][1] == [0.0, pytest.approx(units, rel=1e-15), 0.0, 0.0, 0.0]
    assert ref["metrics"]["n_delist"] == 1


def test_next_open_order_fills_on_the_delisting_bar_and_is_delisted():
    """B (bars 0-2 of 0-4): its BUY at bar 1 fills at bar 2's open, 60, and bar 2 being
    its last bar, it is sold at that close with fees: pnl = u*60*0.999 - 10000."""
    prices = flat_bars([10] * 5, [50, 50, 60, None, None])
    ref = run_portfolio(prices, [[0] * 5, [0, BUY, 0, 0, 0]], fees=0.001)
    (trade,) = ref["trades"]
    units = 10000 / (60 * 1.001)
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_reason"]) == (2, 2, "delist")
    assert trade["pnl"] == pytest.approx(units * 60 * 0.999 - 10000, rel=1e-12)
    assert ref["units"][1] == [0.0] * 5


def test_close_fill_skips_an_entry_on_the_last_bar_of_a_delisted_asset():
    """fill="close": B's entry at its last bar (delisted before the axis ends) is not
    taken; A's entry at the last bar of the axis is, and is marked `end` at once."""
    prices = flat_bars([10, 10, 10], [20, 20, None])
    ref = run_portfolio(prices, [[0, 0, BUY], [0, BUY, 0]], fill="close", size=0.5)
    (trade,) = ref["trades"]
    assert (trade["asset"], trade["entry_bar"], trade["exit_bar"], trade["exit_reason"]) == (
        0, 2, 2, "end")
    assert ref["units"] == [[0.0, 0.0, 500.0], [0.0, 0.0, 0.0]]


def test_ruin_books_every_position_and_stays_flat():
    """A short that the price triples: equity <= 0 at bar 1's close; both positions are
    booked `ruin` there with no costs, and the account stays flat at that equity."""
    prices = flat_bars([100, 400, 50], [100, 100, 100])
    ref = run_portfolio(prices, [[SELL, 0, 0], [BUY, 0, 0]], fill="close", size=0.5,
                        direction="both", fees=0.01)
    # A shorts 5000/1.01 of notional, B buys as much; bar 1: A 100 -> 400 costs 3x that
    assert [t["exit_reason"] for t in ref["trades"]] == ["ruin", "ruin"]
    assert ref["equity"][1] <= 0.0 and ref["equity"][2] == ref["equity"][1]
    assert ref["units"][0][2] == 0.0 and ref["metrics"]["ruined"] == 1.0
    assert pnl_adds_up(ref)


# --------------------------------------------------------------------------------------
# 2b. the worked example of docs/semantics.md, "Portfolio backtests"
# --------------------------------------------------------------------------------------

#: (open, close) per bar; high = max, low = min. B is delisted after bar 3; C stays at 20.
EXAMPLE_A = [(100, 100), (100, 110), (110, 100), (100, 102), (102, 104), (104, 105)]
EXAMPLE_B = [(50, 50), (50, 40), (40, 30), (30, 32), None, None]
EXAMPLE_CODES = [[BUY, SELL, BUY, 0, 0, 0], [BUY, 0, 0, 0, 0, 0], [0, 0, BUY, 0, 0, 0]]
EXAMPLE_OPTIONS = dict(size=0.55, max_positions=2, fixed_fees=10.0)


def example_prices():
    rows = [EXAMPLE_A, EXAMPLE_B, [(20, 20)] * 6]
    o = np.array([[NAN if b is None else b[0] for b in row] for row in rows], dtype=float)
    c = np.array([[NAN if b is None else b[1] for b in row] for row in rows], dtype=float)
    return o, np.fmax(o, c), np.fmin(o, c), c


def test_worked_example():
    """docs/semantics.md, Portfolio backtests, worked example (every number by hand)."""
    ref = run_portfolio(example_prices(), EXAMPLE_CODES, **EXAMPLE_OPTIONS)
    # bar 1 open: E = 10000; A: budget 5500, units 5490/100 = 54.9, cash 4500;
    # B: target 5500 but E' - G' = 4500: units 4490/50 = 89.8, cash 0
    # bar 2 open: A sold 54.9*110 - 10 = 6029 (pnl 529)
    # bar 3 open: E = 6029 + 89.8*30 = 8723; A: budget 0.55*8723 = 4797.65 (cash 6029 is
    # enough), units 4787.65/100 = 47.8765, cash 1231.35; C refused: 2 positions open
    # bar 3 close: B delisted, 89.8*32 - 10 = 2863.6 (pnl -1636.4), cash 4094.95
    # bar 5: A marked `end` at 105: pnl 47.8765*105 - 4797.65 = 229.3825
    assert ref["equity"] == pytest.approx(
        [10000, 9631, 8723, 8978.353, 9074.106, 9121.9825], rel=1e-12)
    assert ref["cash"] == pytest.approx([10000, 0, 6029, 4094.95, 4094.95, 4094.95], rel=1e-12,
                                        abs=1e-9)
    assert ref["units"][0] == pytest.approx([0, 54.9, 0, 47.8765, 47.8765, 47.8765], rel=1e-12)
    assert ref["units"][1] == pytest.approx([0, 89.8, 89.8, 0, 0, 0], rel=1e-12)
    assert ref["units"][2] == [0.0] * 6
    summary = [(t["asset"], t["entry_bar"], t["exit_bar"], t["exit_reason"])
               for t in ref["trades"]]
    assert summary == [(0, 1, 2, "signal"), (1, 1, 3, "delist"), (0, 3, 5, "end")]
    assert [t["pnl"] for t in ref["trades"]] == pytest.approx([529, -1636.4, 229.3825],
                                                              rel=1e-12)
    assert [t["entry_price"] for t in ref["trades"]] == [100.0, 50.0, 100.0]
    assert [a["pnl"] for a in ref["assets"]] == pytest.approx([758.3825, -1636.4, 0.0],
                                                              rel=1e-12)
    assert [a["n_trades"] for a in ref["assets"]] == [2, 1, 0]
    assert sum(t["pnl"] for t in ref["trades"]) == pytest.approx(9121.9825 - 10000, rel=1e-12)
    exposure = (0 + 1 + 2694 / 8723 + 4883.403 / 8978.353 + 4979.156 / 9074.106
                + 5027.0325 / 9121.9825) / 6
    assert ref["metrics"]["exposure"] == pytest.approx(exposure, rel=1e-12)
    assert ref["metrics"]["total_return"] == pytest.approx(-0.08780175, rel=1e-12)
    assert ref["metrics"]["n_trades"] == 3 and ref["metrics"]["n_delist"] == 1


# --------------------------------------------------------------------------------------
# 3. the engine against the reference
# --------------------------------------------------------------------------------------

#: a user strategy whose code at bar i is the volume of bar i (tests/test_reference_diff.py)
CODES_STRATEGY = CODES_IN_VOLUME


def engine_options(cfg):
    return {k: v for k, v in cfg.items() if k not in ("fast", "slow")}


@pytest.mark.parametrize("block", range(8))
def test_random_sma_cross_portfolios_match_reference(block):
    """160 random portfolios of 3-6 ragged assets: rules, costs, fills, directions,
    size_type, max_positions; equity, cash, units, trades and metrics agree."""
    for seed in range(block * 20, block * 20 + 20):
        check_random_portfolio(seed, np.random.default_rng(40_000 + seed))


@pytest.mark.parametrize("block", range(3))
def test_random_code_portfolios_match_reference(block):
    """60 portfolios of random (often conflicting) codes: many more fills per bar, so
    entries compete for cash and max_positions all the time; some accounts go bust."""
    for seed in range(block * 20, block * 20 + 20):
        rng = np.random.default_rng(50_000 + seed)
        ruin_prone = seed % 4 == 0
        padded, spans = ragged_case(rng, vol=0.15 if ruin_prone else None)
        n_assets, n = padded[3].shape
        codes = rng.choice(CONFLICTS, size=(n_assets, n),
                           p=[0.08, 0.08, 0.05, 0.05, 0.04, 0.12, 0.12, 0.46])
        cfg = portfolio_config(rng, value_sizing=seed % 2 == 0)
        del cfg["fast"], cfg["slow"]
        if ruin_prone:  # wild prices, shorts, fixed fees near the cash
            cfg.update(init_cash=100.0, fixed_fees=float(rng.choice([0.0, 5.0, 30.0])),
                       size_type="equity", size=1.0, direction=str(rng.choice(["short", "both"])),
                       **{rule: None for rule in RULES if rng.random() < 0.8})
        volume = np.where(np.isnan(padded[3]), NAN, codes.astype(np.float64))
        data = sb.Bundle.from_arrays(*padded, volume=volume)
        bt = portfolio_backtest(data, CODES_STRATEGY, **cfg)
        code_rows, atr = reference_inputs(padded, spans, cfg, codes=codes)
        ref = reference_portfolio(*padded, [s for s, _ in spans], [e for _, e in spans],
                                  code_rows, atr, **reference_options(cfg))
        compare_portfolio(bt, ref, data, f"seed {seed} spans {spans} {cfg}")


@pytest.mark.parametrize("block", range(2))
def test_trade_window_portfolios_match_reference(block):
    """window=(lo, hi): every span is cut to the window (the portfolio axis with it);
    signals and the ATR warm up on the bars before lo, none before lo acts."""
    for seed in range(block * 10, block * 10 + 10):
        rng = np.random.default_rng(60_000 + seed)
        padded, spans = ragged_case(rng)
        n = padded[3].shape[1]
        lo, hi = int(rng.integers(20, n // 3 + 1)), int(rng.integers(2 * n // 3, n + 1))
        cfg = portfolio_config(rng, value_sizing=seed % 2 == 0)
        data = sb.Bundle.from_arrays(*padded)
        bt = portfolio_backtest(data, "sma_cross", window=(lo, hi), **cfg)
        warm = [(s, min(e, hi)) for s, e in spans]  # indicators see nothing after hi
        codes, atr = reference_inputs(padded, warm, cfg)
        ref = reference_portfolio(*padded, [max(s, lo) for s, _ in warm],
                                  [e for _, e in warm], codes, atr, **reference_options(cfg))
        compare_portfolio(bt, ref, data,
                          f"seed {seed} window {(lo, hi)} spans {spans} {cfg}")


def test_worked_example_on_the_engine():
    """The docs example through sb.backtest(portfolio=True) (codes through volume)."""
    prices = example_prices()
    volume = np.where(np.isnan(prices[3]), NAN, np.array(EXAMPLE_CODES, dtype=np.float64))
    data = sb.Bundle.from_arrays(*prices, volume=volume)
    bt = portfolio_backtest(data, CODES_STRATEGY, **EXAMPLE_OPTIONS)
    ref = run_portfolio(prices, EXAMPLE_CODES, **EXAMPLE_OPTIONS)
    compare_portfolio(bt, ref, data, "worked example")
    np.testing.assert_allclose(bt.equity, [10000, 9631, 8723, 8978.353, 9074.106, 9121.9825],
                               rtol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_built_in_strategy_in_a_portfolio_matches_reference(name):
    """Each built-in strategy's signals (its pure-Python reference codes, tests/reference.py)
    traded as one portfolio of ragged assets, with random rules and costs."""
    case = CASES[name]
    for seed in range(4):
        rng = np.random.default_rng(90_000 + 17 * seed + len(name))
        padded, spans = ragged_case(rng)
        cfg = portfolio_config(rng, value_sizing=seed % 2 == 1)
        cfg.pop("fast"), cfg.pop("slow")
        params = case.draw(rng)
        codes = np.zeros(padded[3].shape, dtype=np.int64)
        for a, (s, e) in enumerate(spans):
            codes[a, s:e] = case.reference_signals(*(p[a, s:e] for p in padded), params)
        data = sb.Bundle.from_arrays(*padded)
        bt = portfolio_backtest(data, name, **params, **cfg)
        _, atr = reference_inputs(padded, spans, dict(cfg, fast=2, slow=3), codes=codes)
        ref = reference_portfolio(*padded, [s for s, _ in spans], [e for _, e in spans],
                                  codes, atr, **reference_options(cfg))
        compare_portfolio(bt, ref, data, f"{name} seed {seed} {params} {cfg}")
