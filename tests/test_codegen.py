"""The generated drivers of user strategies (sweepbt.strategies._codegen,
sweepbt.strategies.custom_cache).

* The template renders to valid Python for every arity (0 to 3 indicator and signal
  parameters, 1 to 5 inputs), without numba, and without importing the rest of sweepbt.
* Every generated ``@njit`` function takes at most 12 parameters whatever the user declares
  (the drivers' fixed arguments are packed into tuples), and a strategy with 5 inputs and
  3 + 3 parameters runs, giving the codes its pure-Python functions give.
* A change of the generated text gives a new module name (old generated modules are never
  reused for a new template).
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from numba import njit

import sweepbt as sb
from sweepbt.strategies import _codegen, custom, custom_cache
from sweepbt.kernels.codes import ALL_CODES

CODEGEN = Path(__file__).resolve().parents[1] / "src" / "sweepbt" / "strategies" / "_codegen.py"
MAX_PARAMS = 12
SHAPES = [(n_in, n_ip, n_sp) for n_in in (1, 2, 5) for n_ip in range(4) for n_sp in range(4)]

RENDER_ALONE = """
import ast, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("codegen_alone", {path!r})
codegen = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = codegen
spec.loader.exec_module(codegen)
params = {{}}
for n_in, n_ip, n_sp in {shapes!r}:
    shape = codegen.DriverShape(n_in, n_ip, n_sp)
    texts = [
        codegen.render_body(shape, all_codes=15, cache=False),
        codegen.render_module(shape, all_codes=15, indicators=("pkg.mod", "feats"),
                              signal=("pkg.mod", "Holder.sig"), numba_version="0.0"),
    ]
    for text in texts:
        compile(text, f"<drivers {{shape}}>", "exec")  # compiled, never executed
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef):
                params[f"{{n_in}},{{n_ip}},{{n_sp}}:{{node.name}}"] = len(node.args.args)
loaded = sorted(m for m in sys.modules if m == "numba" or m.startswith(("numba.", "sweepbt")))
print(json.dumps({{"loaded": loaded, "params": params}}))
"""


@pytest.mark.slow
def test_template_renders_for_every_arity_without_numba():
    script = RENDER_ALONE.format(path=str(CODEGEN), shapes=SHAPES)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["loaded"] == []  # neither numba nor any part of sweepbt was imported
    params = out["params"]
    assert len(params) == 2 * len(SHAPES)  # both drivers of every shape
    assert max(params.values()) <= MAX_PARAMS, params
    # the drivers' arity does not grow with the strategy's
    assert {params[f"{s[0]},{s[1]},{s[2]}:indicator_stage"] for s in SHAPES} == {8}
    assert {params[f"{s[0]},{s[1]},{s[2]}:signal_stage"] for s in SHAPES} == {10}


def test_codegen_imports_nothing_from_sweepbt():
    tree = ast.parse(CODEGEN.read_text())
    imported = [getattr(node, "module", None) or alias.name
                for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names]
    assert not [m for m in imported if m.split(".")[0] in ("sweepbt", "numba", "numpy")]


@pytest.mark.parametrize("n_ip,n_sp", [(0, 0), (1, 0), (0, 1), (2, 3), (3, 3)])
def test_user_call_passes_inputs_then_parameters_in_order(n_ip, n_sp):
    body = _codegen.render_body(_codegen.DriverShape(3, n_ip, n_sp), all_codes=15,
                                cache=False)
    ip = "".join(f", ip{k}[k]" for k in range(n_ip))
    sp = "".join(f", sp{k}[q]" for k in range(n_sp))
    assert f"user_indicators(in0[a, s:e], in1[a, s:e], in2[a, s:e]{ip})" in body
    assert f"user_signal(feats, i{sp})" in body


def test_a_new_template_gives_a_new_module_name():
    """The generated text is part of the module's key: a changed template (or a changed
    generator version) never reuses an old generated module."""

    class Spec:
        source_key = "abc"

    text = _codegen.render_module(_codegen.DriverShape(1, 1, 1), all_codes=15,
                                  indicators=("m", "f"), signal=("m", "g"),
                                  numba_version="0.0")
    key = custom_cache.module_key(Spec, text)
    assert key == custom_cache.module_key(Spec, text)
    assert key != custom_cache.module_key(Spec, text.replace("prange", "range"))


# ----------------------------------------------------------------------------------------
# a wide strategy: 5 inputs, 3 indicator and 3 signal parameters


@njit(cache=True)
def wide_features(open, high, low, close, volume, w, scale, lag):
    n = close.shape[0]
    out = np.full((2, n), np.nan)
    for i in range(w - 1, n):
        acc = 0.0
        for j in range(i - w + 1, i + 1):
            acc += (high[j] - low[j]) + 0.0 * volume[j]
        out[0, i] = scale * acc / w
    for i in range(lag, n):
        out[1, i] = close[i] - open[i - lag]
    return out


@njit(cache=True)
def wide_signal(features, i, entry, exit_, hold):
    rng, move = features[0, i], features[1, i]
    if np.isnan(rng) or np.isnan(move) or i < hold:
        return 0
    if move > entry * rng:
        return 9  # BUY
    if move < -exit_ * rng:
        return 6  # SELL
    return 0


WIDE = custom.define_strategy(
    "wide_codegen", indicators=wide_features, signal=wide_signal,
    inputs=("open", "high", "low", "close", "volume"),
    indicator_params={"w": 5, "scale": 1.0, "lag": 2},
    signal_params={"entry": 0.2, "exit_": 0.1, "hold": 3})


def _wide_bundle():
    rng = np.random.default_rng(5)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, (2, 90)), axis=1))
    open_ = close * np.exp(rng.normal(0.0, 0.01, close.shape))
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    volume = rng.integers(100, 1000, close.shape).astype(np.float64)
    for p in (open_, high, low, close, volume):
        p[1, :11] = np.nan  # a late listing: a shorter span
    return sb.Bundle.from_arrays(open_, high, low, close, volume)


def test_wide_strategy_drivers_take_at_most_12_parameters():
    module = custom.generated_module(WIDE)
    drivers = [getattr(module, name) for name in dir(module)
               if hasattr(getattr(module, name), "py_func")
               and getattr(module, name).__module__ == module.__name__]
    assert {d.__name__ for d in drivers} == {"indicator_stage", "signal_stage"}
    for d in drivers:
        n = d.py_func.__code__.co_argcount
        assert n <= MAX_PARAMS, (d.__name__, n)


def test_wide_strategy_runs_like_its_python_functions():
    data = _wide_bundle()
    values = {"w": np.array([3, 5]), "scale": np.array([1.0, 2.0]), "lag": np.array([1]),
              "entry": np.array([0.1, 0.3]), "exit_": np.array([0.1]),
              "hold": np.array([2, 4])}
    source = WIDE.build(data, values)
    assert source.n_signals == 16
    events = source.events(0, source.n_signals)
    series = [getattr(data, x) for x in ("open", "high", "low", "close", "volume")]
    combos = np.stack(np.meshgrid(*values.values(), indexing="ij"), -1).reshape(-1, 6)
    for s, (w, scale, lag, entry, exit_, hold) in enumerate(combos):
        for a in range(data.n_assets):
            lo, hi = int(data.start[a]), int(data.end[a])
            feats = wide_features.py_func(*(x[a, lo:hi] for x in series), int(w), scale,
                                          int(lag))
            codes = [wide_signal.py_func(feats, i, entry, exit_, int(hold))
                     for i in range(hi - lo)]
            expected = [(lo + i, c) for i, c in enumerate(codes) if c]
            r = s * data.n_assets + a
            got = list(zip(events.event_bar[events.ptr[r]:events.ptr[r + 1]].tolist(),
                           events.event_code[events.ptr[r]:events.ptr[r + 1]].tolist()))
            assert got == expected, (s, a)
    bt = sb.backtest(data, WIDE, w=3, lag=1, fill="close")
    assert bt.stats.num_rows == data.n_assets


def test_generated_text_is_what_render_module_gives():
    """The generated file on disk is the rendered template, not another text."""
    module = custom.generated_module(WIDE)
    text = Path(module.__file__).read_text()
    expected = _codegen.render_module(
        _codegen.DriverShape(5, 3, 3), all_codes=ALL_CODES,
        indicators=(__name__, "wide_features"), signal=(__name__, "wide_signal"),
        numba_version=numba.__version__)
    assert text == expected
    inputs = ", ".join(f"in{k}[a, s:e]" for k in range(5))
    assert f"feats = user_indicators({inputs}, ip0[k], ip1[k], ip2[k])" in text
