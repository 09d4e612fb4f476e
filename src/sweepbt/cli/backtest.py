"""``sweepbt backtest``: one combination on every asset; per-asset stats and the trades."""

from __future__ import annotations

import sweepbt as sb
from sweepbt._files import write_parquet
from sweepbt._interrupt import checkpoint
from sweepbt._table import render_table
from sweepbt.cli.common import (call_options, check_int_flags, compiling, data_header,
                                load_data, metric_columns, settings_line)
from sweepbt.cli.flags import risk_texts
from sweepbt.cli.formatting import fitted_table, metric_header
from sweepbt._format import format_times, format_value
from sweepbt._vocabulary import METRIC_NAMES
from sweepbt.cli.outputs import (check_out_path, check_report, input_files, write_output,
                                 write_report)
from sweepbt.cli.parsing import CliError, collect_params, qualified

#: metric columns printed by default
STATS_COLUMNS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
                 "calmar", "n_trades", "win_rate", "profit_factor", "exposure")
#: the default columns a narrow table leaves out, least important first
DROP_ORDER = ("profit_factor", "calmar", "volatility", "sortino", "exposure", "win_rate",
              "cagr", "n_trades", "max_drawdown", "sharpe", "total_return")

#: the columns of the printed trades; those in TRADE_TEXT are left-aligned
TRADE_COLUMNS = ("symbol", "direction", "entry_time", "exit_time", "bars", "entry_price",
                 "exit_price", "units", "pnl", "return", "exit_reason", "mfe", "mae")
TRADE_TEXT = ("symbol", "direction", "entry_time", "exit_time", "exit_reason")
#: the trade columns a narrow table leaves out, least important first
TRADE_DROP_ORDER = ("mae", "mfe", "units", "entry_price", "exit_price", "bars", "direction")


def cmd_backtest(args, out):
    check_int_flags(args)
    columns = metric_columns(args, METRIC_NAMES, STATS_COLUMNS)
    if args.trades_out is not None:
        check_out_path(args.trades_out, "--trades-out", args.force, input_files(args))
    check_report(args)
    params = collect_params(args.param, risk_texts(args))
    for name, value in params.items():
        if isinstance(value, list):
            raise CliError(f"{name}: backtest runs one combination; give one value "
                           "(use 'sweepbt sweep' for lists and ranges)")
    bundle = load_data(args)
    strategy, options = call_options(args, "backtest")
    strategy, params = qualified(strategy, params)
    with compiling(strategy, options, ("record",)):
        bt = sb.backtest(bundle, strategy, **options, **params)
    checkpoint()

    print(data_header(bundle, args), file=out)
    shown = ", ".join(f"{k}={format_value(k, v)}" for k, v in bt.params.items())
    print(f"strategy: {bt.strategy}({shown})", file=out)
    print(settings_line(args, bundle), file=out)
    print(file=out)

    stats = bt.stats.to_pydict()
    names = ["symbol"] + list(columns)
    rows = [[stats["symbol"][i]] + [format_value(c, stats[c][i]) for c in columns]
            for i in range(bt.stats.num_rows)]
    droppable = [] if args.columns else [names.index(n) for n in DROP_ORDER if n in names]
    table, note = fitted_table([metric_header(n) for n in names], rows, out, droppable,
                               names, left={"symbol"})
    print("portfolio stats:" if isinstance(bt, sb.PortfolioResult) else "stats per asset:",
          file=out)
    print(table + (f"\n{note}" if note else ""), file=out)
    if isinstance(bt, sb.PortfolioResult):
        _print_assets(out, bt)

    trades = bt.trades
    if args.trades_out is not None:
        write_output(args.trades_out, "--trades-out", args.force,
                     lambda tmp: write_parquet(trades, tmp))
    if args.trades > 0:
        _print_trades(out, trades, bundle, args.trades)
    if args.trades_out is not None:
        print(f"\nwrote {trades.num_rows:,} trades to {args.trades_out}", file=out)
    write_report(args, bt, out)
    return 0


def _print_assets(out, bt):
    """A portfolio's per-asset pnl contribution and trade counts."""
    assets = bt.assets.to_pydict()
    rows = [[assets["symbol"][i], format_value("pnl", assets["pnl"][i]),
             str(assets["n_trades"][i]), format_value("win_rate", assets["win_rate"][i])]
            for i in range(bt.assets.num_rows)]
    print(file=out)
    print("per asset:", file=out)
    print(render_table(["symbol", "pnl", "n_trades", "win_rate"], rows, left={"symbol"}),
          file=out)


def _print_trades(out, trades, bundle, count):
    """The first ``count`` trades."""
    first = trades.slice(0, min(count, trades.num_rows))
    print(file=out)
    print(f"trades: first {first.num_rows} of {trades.num_rows:,}:"
          if first.num_rows < trades.num_rows else f"trades ({trades.num_rows:,}):",
          file=out)
    if not first.num_rows:
        return
    t = first.to_pydict()
    entry_bar = first.column("entry_bar").to_numpy()
    exit_bar = first.column("exit_bar").to_numpy()
    entry_time = format_times(bundle.timestamps[entry_bar], bundle.timestamps)
    exit_time = format_times(bundle.timestamps[exit_bar], bundle.timestamps)
    rows = []
    for i in range(first.num_rows):
        rows.append([
            t["symbol"][i], t["direction"][i], entry_time[i], exit_time[i],
            str(int(exit_bar[i] - entry_bar[i])),
            *(format_value(n, t[n][i]) for n in ("entry_price", "exit_price",
                                                  "units", "pnl", "return")),
            t["exit_reason"][i],
            format_value("mfe", t["mfe"][i]), format_value("mae", t["mae"][i]),
        ])
    droppable = [TRADE_COLUMNS.index(n) for n in TRADE_DROP_ORDER]
    table, note = fitted_table(TRADE_COLUMNS, rows, out, droppable, TRADE_COLUMNS,
                               left=TRADE_TEXT, hint="--trades-out FILE has every column")
    print(table + (f"\n{note}" if note else ""), file=out)
