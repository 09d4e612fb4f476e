"""Run options are defined once (sweepbt._options) and reserved against strategy parameters."""

import argparse
import inspect
import pathlib
from dataclasses import fields

import pytest

import sweepbt as sb
from sweepbt.cli.parser import build_parser
from sweepbt.cli.parsing import flag_name
from sweepbt._options import DEFAULTS, RunOptions, options_of
from sweepbt._params import OPTIONS, RESERVED_NAMES

ROOT = pathlib.Path(__file__).resolve().parents[1]


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


def test_every_run_option_reaches_the_cli_the_docs_and_the_metadata():
    """A flagged option has its flag in each command that takes it; every option is in
    docs/ (``name=``); a recorded one is in the result metadata of a run that sets it,
    and no other one is."""
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    docs = "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    data = sb.demo().select(["ALPHA", "BRAVO"])
    res = sb.sweep(data, "sma_cross", fast=[5, 10], slow=50, fill="close",
                   direction="both", init_cash=5000.0, periods_per_year=250,
                   portfolio=True, size_type="value", size=1000.0, window=(0, 600),
                   constraint="fast < slow", sample=1, seed=0)
    wf = sb.walk_forward(data, "sma_cross", fast=[5, 10], slow=50, train=300, test=100,
                         step=100, anchored=True, objective="cagr", partial=True)
    recorded = set(res.fixed) | set(wf.fixed)
    for f in fields(RunOptions):
        assert f"{f.name}=" in docs, f.name
        for call in f.metadata["calls"]:
            if f.metadata["flag"] and call != "estimate":
                flags = {s for a in sub.choices[call.replace("_", "-")]._actions
                         for s in a.option_strings}
                assert flag_name(f.name) in flags, (f.name, call)
        assert (f.name in recorded) == f.metadata["recorded"], f.name
