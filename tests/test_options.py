"""Run options are defined once (sweepbt.options) and reserved against strategy parameters."""

import inspect

import pytest

import sweepbt as sb
from sweepbt.options import DEFAULTS, options_of
from sweepbt.params import OPTIONS, RESERVED_NAMES


@pytest.mark.parametrize("call", ["backtest", "sweep", "estimate", "walk_forward"])
def test_run_options_match_public_signatures(call):
    sig = inspect.signature(getattr(sb, call))
    taken = {name: p for name, p in sig.parameters.items()
             if name != "data" and p.kind is not inspect.Parameter.VAR_KEYWORD}
    declared = {f.name: f for f in options_of(call)}
    assert set(taken) == set(declared)
    for name, p in taken.items():
        if declared[name].metadata["required"]:
            assert p.default is inspect.Parameter.empty, name
        else:
            assert p.default == getattr(DEFAULTS, name), name


@pytest.mark.parametrize("call", ["backtest", "sweep", "estimate", "walk_forward"])
def test_reserved_names_cover_public_signatures(call):
    names = set(inspect.signature(getattr(sb, call)).parameters) - {"params"}
    assert names <= RESERVED_NAMES
    assert set(OPTIONS) <= RESERVED_NAMES


@pytest.mark.parametrize("name", ["seed", "objective", "window", "data", "fees"])
def test_a_strategy_parameter_cannot_take_a_reserved_name(name):
    with pytest.raises(ValueError, match=name):
        sb.define_strategy(
            f"clash_{name}", indicators=lambda close: close, signal=lambda x: x,
            indicator_params={name: 1})
