"""The kernels' signatures: short, named, and never shadowing a module.

Long positional argument lists let two same-typed arguments be swapped silently (numba
compiles and runs the swap); the kernels group their inputs in the NamedTuples of
sweepbt.kernels.enums instead, and every ``@njit`` function takes at most
MAX_PARAMETERS parameters.
"""

import importlib
import inspect
import pkgutil

import numpy as np
from numba.core.dispatcher import Dispatcher

import sweepbt.kernels
from sweepbt import kernels
from sweepbt._params import OPTIONS

MAX_PARAMETERS = 12


def _modules():
    return [importlib.import_module(f"sweepbt.kernels.{m.name}")
            for m in pkgutil.iter_modules(sweepbt.kernels.__path__)]


def _dispatchers():
    """(qualified name, dispatcher) of every numba function defined in a kernels module."""
    found = []
    for module in _modules():
        for name, value in vars(module).items():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__:
                found.append((f"{module.__name__}.{name}", value))
    return found


def test_no_kernel_takes_more_than_twelve_parameters():
    found = _dispatchers()
    names = {name.rpartition(".")[2] for name, _ in found}
    assert {"sweep_metrics", "simulate_asset", "exit_position", "_level_scan", "sma_bank"} <= names
    too_long = {name: len(inspect.signature(d.py_func).parameters) for name, d in found
                if len(inspect.signature(d.py_func).parameters) > MAX_PARAMETERS}
    assert too_long == {}


def test_no_public_name_shadows_a_kernels_module():
    for module in _modules():
        short = module.__name__.rpartition(".")[2]
        assert getattr(sweepbt.kernels, short) is module, short
        assert short not in kernels.__all__ or short == "codes"


def test_rule_columns_are_the_sweepable_options():
    """Every per-combo risk/cost option travels in the rules matrix, by name (atr_window
    picks the ATR row instead)."""
    assert set(kernels.RULE_COLUMNS) == set(OPTIONS) - {"atr_window"}
    assert kernels.N_RULES == len(kernels.RULE_COLUMNS)
    assert [getattr(kernels.Rule, n) for n in kernels.RULE_COLUMNS] == list(
        range(kernels.N_RULES))


def test_enums_are_named_positions():
    assert kernels.METRIC_NAMES[kernels.Metric.sharpe] == "sharpe"
    assert kernels.EXIT_REASONS[kernels.ExitReason.ruin] == "ruin"
    assert tuple(kernels.FillMode) == (0, 1)
    assert tuple(kernels.Direction) == (0, 1, 2)
    assert kernels.EXIT_REASONS[kernels.ExitReason.delist] == "delist"
    assert tuple(kernels.SizeType) == (0, 1)


def test_trade_record_types():
    dtype = kernels.TRADE_DTYPE
    for name in ("direction", "entry_bar", "exit_bar", "exit_reason", "asset"):
        assert dtype[name] == np.int64, name
    for name in ("entry_price", "exit_price", "units", "pnl", "return", "mfe", "mae"):
        assert dtype[name] == np.float64, name


def test_settings_are_typed_once():
    settings = kernels.SimSettings.of(np.int32(1), True, 10_000, np.float32(252),
                                      np.int8(1))
    assert [type(v) for v in settings[:5]] == [int, int, float, float, int]
    assert settings.user_commission is False


def test_every_commission_function_has_the_settings_type_of_none():
    """A commission function travels as a callback typed by its signature alone: every
    function, and none, give SimSettings one numba type (one compiled kernel)."""
    from numba import njit, typeof

    @njit
    def per_share(units, price, is_buy):
        return 0.01 * units if is_buy else 0.02 * units

    none = kernels.SimSettings.of(1, 0, 1e4, 252.0)
    given = kernels.SimSettings.of(1, 0, 1e4, 252.0, commission=per_share)
    assert typeof(none) == typeof(given)
    assert given.user_commission is True and none.user_commission is False
    callback = kernels.commission_callback(per_share)
    assert given.commission == callback.address
    assert callback.ctypes(10.0, 5.0, 1.0) == 0.1 and callback.ctypes(10.0, 5.0, -1.0) == 0.2


def test_every_rule_column_is_read_by_each_engine_or_refused_for_it():
    """The per-asset and portfolio engines read a RuleRow, the rank engine RankRules; each
    carries the costs as one Costs. A rule column an engine does not read is refused for
    it, with a reason (ranking.NOT_FOR_RANK)."""
    from sweepbt.kernels._core import Costs
    from sweepbt.kernels._position import RuleRow
    from sweepbt.kernels.rank import RankRules
    from sweepbt.strategies.ranking import NOT_FOR_RANK

    def read(row):
        from_settings = ("commission", "custom")  # SimSettings': a run's, not a combo's
        return [f for f in row._fields if f != "costs"] + [
            f for f in Costs._fields if f not in from_settings]

    columns = set(kernels.RULE_COLUMNS)
    assert sorted(read(RuleRow)) == sorted(columns)  # per asset and portfolio
    rank_reads = set(read(RankRules)) & columns
    assert rank_reads | set(NOT_FOR_RANK) >= columns
    assert not rank_reads & set(NOT_FOR_RANK)
