"""From a sweep's row to its backtest: params(combo), backtest(combo), best() filters; the
progress bar's ETA and its default."""

import io
import math

import numpy as np
import pytest

import sweepbt as sb
from sweepbt import _progress, _engine as engine


@pytest.fixture(scope="module")
def data(demo_ab):
    return demo_ab.slice_bars(0, 1200)


@pytest.fixture(scope="module")
def res(data):
    return sb.sweep(data, "sma_cross", fast=[5, 10, 20], slow=[30, 60], max_bars=[None, 20],
                    stop_loss=[0.05, None], constraint="3 * fast < slow", fees=0.001,
                    direction="both")


def test_best_row_reruns_to_the_same_backtest(res, data):
    row = res.best("sharpe", 3).to_pylist()[2]
    params = res.params(row)
    assert params == {k: row[k] for k in ("fast", "slow", "max_bars", "stop_loss", "fees")}
    bt = res.backtest(row)
    want = sb.backtest(data, "sma_cross", direction="both", **params)
    assert bt.params == want.params
    assert bt.stats.equals(want.stats) and bt.trades.equals(want.trades)
    np.testing.assert_array_equal(bt.equity, res.equity([row["combo"]])[0])
    for a, sym in enumerate(data.symbols):  # the sweep's own row of this combo and asset
        mine = [r for r in res.table.to_pylist() if r["combo"] == row["combo"]][a]
        assert mine["symbol"] == sym
        assert mine["sharpe"] == pytest.approx(bt.stats["sharpe"][a].as_py(), rel=1e-12)


def test_a_pandas_row_with_nan_rules_works(res, data):
    """A best() row through pandas carries NaN for a rule that is off: it means off."""
    frame = res.best("sharpe", 24).to_pandas()
    off = frame[frame["stop_loss"].isna() & frame["max_bars"].isna()].iloc[0]
    bt = res.backtest(off)
    assert bt.params["stop_loss"] is None and bt.params["max_bars"] is None
    params = {k: off[k] for k in ("fast", "slow", "stop_loss", "max_bars", "fees")}
    again = sb.backtest(data, "sma_cross", direction="both",
                        **{k: (int(v) if k in ("fast", "slow") else v)
                           for k, v in params.items()})
    assert again.stats.equals(bt.stats)


def test_a_whole_row_runs_as_its_backtest(res, data):
    """sb.backtest(data, **row) with a row of best() or table: the row's result columns
    (rank, combo, symbol, metrics) are ignored, its parameters run; a misspelt name still
    fails, and sweep() takes no metric names."""
    row = res.best("sharpe", 3).to_pylist()[1]
    want = res.backtest(row)
    bt = sb.backtest(data, "sma_cross", direction="both", **row)
    assert bt.params == res.params(row) and bt.stats.equals(want.stats)
    table_row = next(r for r in res.table.to_pylist() if r["combo"] == row["combo"])
    assert table_row["symbol"] == data.symbols[0]
    again = sb.backtest(data, "sma_cross", direction="both", **table_row)
    assert again.stats.equals(want.stats)  # every asset: symbol selects nothing
    pandas_row = res.best("sharpe", 3).to_pandas().iloc[1]
    assert sb.backtest(data, direction="both", **pandas_row).stats.equals(want.stats)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) sharp for strategy"):
        sb.backtest(data, direction="both", **row, sharp=1.0)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) combo, sharpe for"):
        sb.sweep(data, fast=[5, 10], sharpe=1.0, combo=3)


def test_trade_statistics_are_sweep_metrics(res):
    """best_trade, worst_trade, expectancy and sqn come from the trade tally: a sweep's rows
    equal the recorded backtest's trades, and best() ranks and filters on them."""
    rows = res.table.to_pylist()
    for combo in res.combos[:4]:
        bt = res.backtest(int(combo))
        trades = bt.trades.to_pydict()
        for a, row in enumerate(r for r in rows if r["combo"] == combo):
            mine = [i for i, s in enumerate(trades["symbol"]) if s == row["symbol"]]
            pnl = np.array([trades["pnl"][i] for i in mine])
            ret = np.array([trades["return"][i] for i in mine])
            assert row["n_trades"] == len(mine) > 1
            want = {"best_trade": ret.max(), "worst_trade": ret.min(),
                    "expectancy": pnl.mean(),
                    "sqn": math.sqrt(pnl.size) * pnl.mean() / np.std(pnl, ddof=1)}
            for name, value in want.items():
                assert row[name] == pytest.approx(value, rel=1e-9), (combo, a, name)
                assert bt.stats[name][a].as_py() == row[name]
    by_sqn = res.best("sqn", 100).to_pylist()
    assert [r["sqn"] for r in by_sqn] == sorted((r["sqn"] for r in by_sqn), reverse=True)
    kept = res.best("sharpe", 100, where="worst_trade > -0.06 and expectancy > 50").to_pylist()
    assert kept and all(r["worst_trade"] > -0.06 and r["expectancy"] > 50 for r in kept)
    assert len(kept) < len(res.best("sharpe", 100))


def test_bad_combos_are_named(res):
    with pytest.raises(ValueError, match="not in this grid"):
        res.params(10_000)
    with pytest.raises(ValueError, match="does not pass the constraint"):
        res.params(int(np.setdiff1d(np.arange(24), res.combos)[0]))
    with pytest.raises(TypeError, match="combo id"):
        res.params("3")
    with pytest.raises(ValueError, match="'combo' entry"):
        res.params({"fast": 5})


def test_best_filters(res):
    all_rows = res.best("sharpe", 1000).to_pylist()
    kept = res.best("sharpe", 1000, min_trades=40).to_pylist()
    assert [r["combo"] for r in kept] == [r["combo"] for r in all_rows if r["n_trades"] >= 40]
    assert [r["rank"] for r in kept] == list(range(1, len(kept) + 1))
    where = res.best("sharpe", 1000, where="max_drawdown < 0.3 and slow == 60").to_pylist()
    assert [r["combo"] for r in where] == [
        r["combo"] for r in all_rows if r["max_drawdown"] < 0.3 and r["slow"] == 60]
    assert 0 < len(where) < len(all_rows)
    with pytest.raises(ValueError, match="min_trades"):
        res.best(min_trades=-1)
    with pytest.raises(ValueError, match="unknown name|not a|nope"):
        res.best(where="nope > 1")


def test_progress_eta_and_text_bar():
    assert _progress.eta_text(0, 10, 1.0) == "ETA ?"
    assert _progress.eta_text(5, 10, 10.0) == "ETA 10s"
    assert _progress.eta_text(1, 100, 10.0) == "ETA 16m30s"

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    bar = _progress.ProgressBar(100, stream)
    bar.update(50)
    bar.close()
    assert "50/100 backtests" in stream.getvalue() and "ETA" in stream.getvalue()
    assert not _progress.in_notebook()


def test_progress_defaults_on_for_long_sweeps(data, capsys):
    assert sb.sweep.__kwdefaults__["progress"] is None
    assert engine.AUTO_PROGRESS_BAR_EVALUATIONS > 10 * 2 * 1200  # this small sweep: off
    sb.sweep(data, "sma_cross", fast=[5, 10], slow=30)
    assert capsys.readouterr().err == ""
    assert math.isfinite(engine.AUTO_PROGRESS_BAR_EVALUATIONS)
