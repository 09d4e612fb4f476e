"""sweepbt's public surface, held by allowlists (as scipy's test_public_api.py).

``PUBLIC_MODULES`` names every public module and its public names (its ``__all__``);
``GROUPED_MODULES`` the modules of a package (``cli/``, ``data/``, ``kernels/``,
``strategies/``) that are its implementation, present under plain names but not API. Every
other module's name has an underscore (``sweepbt._plan``). A new module or public name,
or one gone, fails here: add it to a list (and to the docs) on purpose, or underscore it.
"""

import importlib
import pkgutil

import pytest

import sweepbt

PUBLIC_MODULES = {
    "sweepbt": [
        "BUY", "BacktestResult", "Bundle", "ENTER_LONG", "ENTER_SHORT", "EXIT_LONG",
        "EXIT_SHORT", "MultiSweepResult", "PortfolioResult", "SELL", "STRATEGIES",
        "StrategyError", "SweepEstimate", "SweepResult", "SweepTooLarge",
        "SweepbtError", "WalkForwardResult", "Warmup", "backtest",
        "define_rank_strategy", "define_strategy", "demo", "estimate", "load",
        "load_strategy", "plot", "report", "show", "sweep", "walk_forward", "warmup",
    ],
    "sweepbt.cli": [
        "CliError", "collect_params", "format_value", "main", "parse_columns",
        "parse_number", "parse_param", "parse_range", "parse_values", "render_table",
    ],
    "sweepbt.data": [
        "Bundle", "DataError", "demo", "infer_periods_per_year", "load",
    ],
    "sweepbt.distributed": [
        "ClusterLost", "RESCATTERS", "WORKERS_WRITE",
    ],
    "sweepbt.errors": [
        "StrategyError", "StrategyTypeError", "SweepTooLarge", "SweepbtError",
    ],
    "sweepbt.kernels": [
        "Bars", "COMMISSION_SIGNATURE", "Combos", "Direction", "EXIT_REASONS", "Events",
        "ExitReason",
        "FillMode", "Holdings", "METRIC_NAMES", "Market", "Metric", "NOISE",
        "N_METRICS", "N_RANK", "N_RULES", "Outputs", "RANK_COLUMNS", "RULE_COLUMNS",
        "RankCombos", "RankRule", "Rule", "Scores", "Scratch", "Signals", "SimSettings",
        "SizeType", "TRADE_DTYPE", "WEIGHTINGS", "Weighting", "atr_bank",
        "backtest_record", "bollinger_bank", "channel_1d", "channel_bank", "codes",
        "commission_callback",
        "codes_to_events", "cross_events", "diff_rows_bank", "donchian_events",
        "ema_1d", "ema_bank", "ema_rows_bank", "equity_paths", "level_events",
        "momentum_score_bank", "portfolio_equity_paths", "portfolio_metrics",
        "portfolio_record", "rank_equity_paths", "rank_metrics", "rank_record",
        "roc_1d", "roc_bank", "rolling_mean_1d", "rolling_std_1d", "rsi_bank",
        "simulate_asset", "simulate_portfolio", "simulate_rank", "sma_bank",
        "sweep_metrics", "volatility_bank", "wilder_atr_1d", "wilder_rsi_1d",
    ],
    "sweepbt.plot": [
        "MAX_POINTS", "distribution", "drawdown", "equity", "equity_curve",
        "equity_curves", "heatmap", "heatmap_grid", "sensitivity", "to_png", "to_svg",
        "trades", "trades_on_price", "underwater", "walk_forward",
    ],
    "sweepbt.protocols": [
        "Executor", "FileSink", "Runner", "ScoreSource", "SignalSource", "Sink",
        "SpawningSink",
    ],
    "sweepbt.stats": [
        "DeflatedSharpe", "EULER_GAMMA", "PBOResult", "cscv", "deflated_sharpe",
        "expected_max_sharpe", "pbo", "probabilistic_sharpe",
    ],
    "sweepbt.strategies": [
        "BUY", "ENTER_LONG", "ENTER_SHORT", "EXIT_LONG", "EXIT_SHORT", "SELL",
        "STRATEGIES", "Strategy", "define_rank_strategy", "define_strategy",
        "generated_dir", "generated_module", "get_strategy", "load_strategy",
    ],
    "sweepbt.walkforward": [
        "WalkForwardResult", "format_walk_forward", "walk_forward", "window_spans",
    ],
}

# the rooms of a package: plain names inside it, but its API is the package's __all__
GROUPED_MODULES = [
    "sweepbt.cli.backtest", "sweepbt.cli.common", "sweepbt.cli.demo", "sweepbt.cli.flags",
    "sweepbt.cli.formatting", "sweepbt.cli.outputs", "sweepbt.cli.parser",
    "sweepbt.cli.parsing", "sweepbt.cli.strategies", "sweepbt.cli.sweep",
    "sweepbt.cli.walk_forward", "sweepbt.cli.warmup",
    "sweepbt.data.bundle", "sweepbt.data.columns", "sweepbt.data.errors",
    "sweepbt.data.factors", "sweepbt.data.loading", "sweepbt.data.make_demo",
    "sweepbt.data.readers", "sweepbt.data.times", "sweepbt.data.vendors", "sweepbt.data.wide",
    "sweepbt.kernels.asset", "sweepbt.kernels.codes", "sweepbt.kernels.commission",
    "sweepbt.kernels.enums",
    "sweepbt.kernels.indicators", "sweepbt.kernels.portfolio", "sweepbt.kernels.rank",
    "sweepbt.kernels.signals",
    "sweepbt.strategies.builtin", "sweepbt.strategies.custom",
    "sweepbt.strategies.custom_cache", "sweepbt.strategies.custom_files",
    "sweepbt.strategies.custom_messages", "sweepbt.strategies.custom_probe",
    "sweepbt.strategies.custom_signals", "sweepbt.strategies.lookup",
    "sweepbt.strategies.ranking",
]


def _is_private(name):
    return any(part.startswith("_") for part in name.split("."))


def _plain_modules():
    """Every module of sweepbt with no underscored part in its dotted name."""
    found = {"sweepbt"}
    for info in pkgutil.walk_packages(sweepbt.__path__, "sweepbt."):
        if not _is_private(info.name):
            found.add(info.name)
    return found


def test_every_plain_module_is_listed():
    unexpected = sorted(_plain_modules() - set(PUBLIC_MODULES) - set(GROUPED_MODULES))
    assert not unexpected, (
        f"modules with a public name that no list holds: {unexpected}; underscore them "
        "(sweepbt._name), group them in a package, or list them here on purpose")


def test_every_listed_module_is_there():
    gone = sorted((set(PUBLIC_MODULES) | set(GROUPED_MODULES)) - _plain_modules())
    assert not gone, f"listed modules that are gone: {gone}"


def test_the_lists_do_not_overlap():
    assert not set(PUBLIC_MODULES) & set(GROUPED_MODULES)
    for name, names in PUBLIC_MODULES.items():
        assert len(set(names)) == len(names), name


@pytest.mark.parametrize("name", sorted(PUBLIC_MODULES))
def test_public_names_are_the_listed_ones(name):
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(PUBLIC_MODULES[name])
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"


def test_dir_of_the_package_shows_only_the_api():
    for name in set(PUBLIC_MODULES) | set(GROUPED_MODULES):
        importlib.import_module(name)  # every submodule imported: its attribute is set
    submodules = {name.split(".")[1] for name in PUBLIC_MODULES if name != "sweepbt"}
    shown = {n for n in dir(sweepbt) if not n.startswith("_")}
    assert shown == set(PUBLIC_MODULES["sweepbt"]) | submodules, (
        f"not API: {sorted(shown - set(PUBLIC_MODULES['sweepbt']) - submodules)}")

