"""User-written strategies: ``define_strategy`` and ``load_strategy``.

A custom strategy is two numba ``@njit`` functions written by the user:

* ``indicators(<inputs of one asset's span>, *indicator_params) -> features``: a 2-D
  float64 array ``(n_features, span_len)``, NaN where a value is undefined;
* ``signal(features, i, *signal_params) -> code``: the signal at the close of bar ``i``
  (span-relative), ``0`` or a bit set of :mod:`sweepbt.kernels.codes`, reading
  ``features[:, :i+1]`` only.

They run on the same path as the built-in strategies: the indicator stage once per distinct
indicator-parameter combination per asset, the signal stage once per distinct signal per
asset, both inside compiled parallel drivers (``prange``) that produce the CSR signal events
the simulation kernel consumes. No Python code runs per bar or per combination.

Caching. numba cannot cache a compiled function that receives another dispatcher as an
argument, so sweepbt *generates* a small Python module per strategy (into
``$SWEEPBT_CACHE_DIR``, else ``$NUMBA_CACHE_DIR/sweepbt_generated``, else
``~/.cache/sweepbt/generated``, else the temporary directory) that imports the user's two
functions as module globals and defines ``@njit(cache=True)`` drivers calling them directly.
The module is named by a hash of the user's source files (and of the source files of the
jitted helpers they call, and the constants they read), the functions' names, and the
sweepbt / numba / generator versions: editing the strategy gives a new module and a fresh
compile, and an existing generated file is never rewritten (its mtime keys numba's cache).
Where nothing is writable, or the user's functions cannot be imported by name in another
process (defined in a REPL, or nested in a function), the drivers are compiled in memory
without a disk cache: slower to start, identical results.

Mistakes are reported up front as ``ValueError("strategy 'x': ...")``: at definition time
a probe runs the functions' pure-Python versions (``fn.py_func``, with bounds-checked
indexing) on deterministic synthetic data with the default parameters, checking the
signatures, the features' shape and dtype, the signal codes, and look-ahead (features and
signals computed on the first T bars must equal those computed on all bars, for several T).
numba typing errors at the first compile are re-raised the same way, with numba's message
shortened to its first informative line.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import keyword
import linecache
import math
import numbers
import os
import re
import sys
import tempfile
import threading
import types
import warnings
from dataclasses import dataclass, field

import numba
import numpy as np
from numba import njit, prange
from numba.core.dispatcher import Dispatcher

from sweepbt import _numba_cache
from sweepbt.kernels.codes import (  # noqa: F401 - re-exported for user strategy files
    ALL_CODES, BUY, ENTER_LONG, ENTER_SHORT, EXIT_LONG, EXIT_SHORT, SELL)
from sweepbt.kernels.signals import codes_to_events
from sweepbt.params import RESERVED_NAMES
from sweepbt.strategies import STRATEGIES, Param, Signals, Strategy

__all__ = [
    "BUY", "SELL", "ENTER_LONG", "EXIT_LONG", "ENTER_SHORT", "EXIT_SHORT",
    "define_strategy", "load_strategy", "generated_module", "generated_dir",
]

#: bump when the generated drivers change: every strategy then gets a new module
GENERATOR_VERSION = 2
#: the price series an ``indicators`` function can ask for, in Bundle field names
INPUTS = ("open", "high", "low", "close", "volume")
#: the indicator features and dense signal codes of one events() block stay under this
BLOCK_BYTES = 256 << 20
#: bars of synthetic data the definition-time probe runs on (more for long windows)
PROBE_BARS = 160
_CODES_HELP = ("0 (nothing) or a bit set of ENTER_LONG=1, EXIT_LONG=2, ENTER_SHORT=4, "
               "EXIT_SHORT=8 (BUY=9, SELL=6)")
_GEN_PREFIX = "_sweepbt_gen_"
_lock = threading.RLock()


# ----------------------------------------------------------------------------------------
# the strategy's specification


@dataclass(frozen=True)
class _Declared:
    """One declared parameter: ``kind`` is ``"window"`` (an int default) or ``"float"``."""

    name: str
    default: object
    kind: str
    stage: str  # "indicator" or "signal"


@dataclass(eq=False)
class CustomSpec:
    """Everything sweepbt knows about a user strategy; ``Strategy.build.spec``."""

    name: str
    indicators: Dispatcher
    signal: Dispatcher
    inputs: tuple
    indicator_params: tuple  # of _Declared
    signal_params: tuple  # of _Declared
    n_features: int
    doc: str
    source_key: str = ""
    _drivers: object = field(default=None, repr=False)

    @property
    def drivers(self):
        """The generated module (compiled drivers ``indicator_stage``/``signal_stage``)."""
        with _lock:
            if self._drivers is None:
                self._drivers = _make_drivers(self)
            return self._drivers


def _err(name, message):
    return ValueError(f"strategy {name!r}: {message}")


def define_strategy(name, *, indicators, signal, indicator_params=None, signal_params=None,
                    inputs=("close",), n_features=None, doc="", param_docs=None,
                    register=False, check=True) -> Strategy:
    """A :class:`~sweepbt.strategies.Strategy` made of two user ``@njit`` functions.

    ``indicators(*inputs, *indicator_params)`` gets one asset's span of each series named in
    ``inputs`` (1-D float64, read-only) and the indicator parameters, in declared order, and
    returns a float64 array ``(n_features, span_len)``. ``signal(features, i,
    *signal_params)`` returns the code at the close of span bar ``i``: 0 or a bit set of
    ``ENTER_LONG, EXIT_LONG, ENTER_SHORT, EXIT_SHORT`` (``BUY``/``SELL`` for the usual
    bullish/bearish signals), reading ``features[:, :i+1]`` only.

    ``indicator_params`` / ``signal_params`` map each parameter name to its default: an int
    default declares a window (an integer number of bars, >= 1 and at most the data
    length), a float default a float. Every parameter is sweepable; the indicator stage
    runs once per distinct combination of the indicator parameters per asset, the signal
    stage once per distinct combination of all parameters per asset.

    ``n_features`` is inferred by the probe when None. ``register=True`` also adds the
    strategy to ``sweepbt.STRATEGIES`` (so its name works as ``strategy=``).
    ``check=False`` skips the definition-time probe (which runs the pure-Python versions of
    the functions on synthetic data); ``n_features`` is then required.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"strategy name must be an identifier (letters, digits, _), "
                         f"got {name!r}")
    if not isinstance(doc, str):
        raise TypeError(f"strategy {name!r}: doc must be a string")
    inputs = _check_inputs(name, inputs)
    ind_params = _check_params(name, indicator_params, "indicator")
    sig_params = _check_params(name, signal_params, "signal")
    clash = sorted({p.name for p in ind_params} & {p.name for p in sig_params})
    if clash:
        raise _err(name, f"parameter(s) {', '.join(clash)} declared both in "
                         "indicator_params and signal_params")
    _check_function(name, "indicators", indicators)
    _check_function(name, "signal", signal)
    _check_signature(name, "indicators", indicators, list(inputs),
                     [p.name for p in ind_params], sig_params, "the inputs")
    _check_signature(name, "signal", signal, ["features", "i"],
                     [p.name for p in sig_params], ind_params, "features, i")
    if n_features is not None:
        if isinstance(n_features, bool) or not isinstance(n_features, numbers.Integral) \
                or n_features < 1:
            raise _err(name, f"n_features must be a positive integer, got {n_features!r}")
        n_features = int(n_features)
    spec = CustomSpec(name=name, indicators=indicators, signal=signal, inputs=inputs,
                      indicator_params=ind_params, signal_params=sig_params,
                      n_features=n_features or 0, doc=doc)
    spec.source_key = _source_key(spec)
    if check:
        spec.n_features = _probe(spec, n_features)
    elif n_features is None:
        raise _err(name, "n_features is required with check=False")
    docs = dict(param_docs or {})
    unknown = sorted(set(docs) - {p.name for p in ind_params + sig_params})
    if unknown:
        raise _err(name, f"param_docs names unknown parameter(s) {', '.join(unknown)}")
    params = tuple(
        Param(p.name, p.kind, p.default, docs.get(p.name, (
            "window, bars" if p.kind == "window" else "float") + f" ({p.stage} parameter)"))
        for p in ind_params + sig_params)
    strategy = Strategy(name=name, params=params, build=_Build(spec),
                        doc=doc or f"custom strategy {name} "
                                   f"({_qualname(indicators)} -> {_qualname(signal)})")
    if register:
        _register(strategy)
    return strategy


def _register(strategy):
    old = STRATEGIES.get(strategy.name)
    if old is not None and not isinstance(old.build, _Build):
        raise _err(strategy.name, "a built-in strategy has this name; pick another name")
    STRATEGIES[strategy.name] = strategy


def _qualname(fn):
    py = getattr(fn, "py_func", fn)
    return getattr(py, "__qualname__", repr(py))


def _check_inputs(name, inputs):
    if isinstance(inputs, str):
        inputs = (inputs,)
    try:
        inputs = tuple(inputs)
    except TypeError:
        raise _err(name, f"inputs must be a sequence of series names, got {inputs!r}") \
            from None
    if not inputs:
        raise _err(name, f"inputs is empty; name at least one of {', '.join(INPUTS)}")
    for x in inputs:
        if x not in INPUTS:
            raise _err(name, f"unknown input {x!r}; inputs are series of {', '.join(INPUTS)}")
    if len(set(inputs)) != len(inputs):
        raise _err(name, f"inputs {inputs} names a series twice")
    return inputs


def _check_params(name, declared, stage):
    if declared is None:
        return ()
    if not isinstance(declared, dict):
        raise _err(name, f"{stage}_params must be a dict name -> default, got {declared!r}")
    out = []
    for pname, default in declared.items():
        if not isinstance(pname, str) or not pname.isidentifier() or keyword.iskeyword(pname):
            raise _err(name, f"{stage} parameter name {pname!r} is not an identifier")
        if pname in RESERVED_NAMES:
            raise _err(name, f"{stage} parameter {pname!r} clashes with an engine option or "
                             "keyword of backtest()/sweep()/walk_forward(); rename it")
        if isinstance(default, (bool, np.bool_)):
            raise _err(name, f"{stage} parameter {pname!r} has a bool default; parameters "
                             "are windows (int default) or floats (float default)")
        if isinstance(default, numbers.Integral):
            if default < 1:
                raise _err(name, f"{stage} parameter {pname!r}: an int default declares a "
                                 f"window (bars, >= 1), got {default}; use a float default "
                                 "for a non-window number")
            out.append(_Declared(pname, int(default), "window", stage))
        elif isinstance(default, numbers.Real):
            if not math.isfinite(float(default)):
                raise _err(name, f"{stage} parameter {pname!r} default must be finite, "
                                 f"got {default!r}")
            out.append(_Declared(pname, float(default), "float", stage))
        else:
            raise _err(name, f"{stage} parameter {pname!r} default must be an int (window) "
                             f"or a float, got {default!r}")
    return tuple(out)


def _check_function(name, role, fn):
    if isinstance(fn, Dispatcher):
        if fn.targetoptions.get("forceobj") or fn.targetoptions.get("nopython") is False:
            raise _err(name, f"{role} {_qualname(fn)} must be compiled in nopython mode "
                             "(use @numba.njit)")
        return
    if inspect.isfunction(fn) or inspect.isbuiltin(fn) or callable(fn):
        what = ("a plain Python function" if inspect.isfunction(fn)
                else f"a {type(fn).__name__}")
        raise _err(name, f"{role} must be a numba @njit function, got {what} "
                         f"{getattr(fn, '__qualname__', fn)!r}: decorate it with "
                         "@numba.njit")
    raise _err(name, f"{role} must be a numba @njit function, got {fn!r}")


def _check_signature(name, role, fn, fixed, declared, other_stage, fixed_text):
    py = fn.py_func
    try:
        sig = inspect.signature(py)
    except (TypeError, ValueError):  # pragma: no cover - odd callables
        return
    params = list(sig.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY) for p in params):
        raise _err(name, f"{role} {_qualname(fn)}{sig} must take plain positional "
                         "parameters only")
    n_required = sum(p.default is p.empty for p in params)
    expected = len(fixed) + len(declared)
    arg_names = [p.name for p in params]
    stage = "indicator" if role == "indicators" else "signal"
    wanted = ", ".join(fixed + declared)
    if role == "indicators":
        head = []
        for a in arg_names:
            if a not in INPUTS:
                break
            head.append(a)
        if head and head != fixed:
            raise _err(name, f"indicators {_qualname(fn)}{sig} starts with "
                             f"({', '.join(head)}) but inputs={tuple(fixed)}; declare "
                             f"inputs=({', '.join(map(repr, head))},)")
    if not n_required <= expected <= len(params):
        raise _err(name, f"{role} {_qualname(fn)}{sig} takes {len(params)} argument(s) but "
                         f"sweepbt passes {expected}: ({wanted}), i.e. {fixed_text} then the "
                         f"declared {stage} parameters in order")
    tail = arg_names[len(fixed):expected]
    if sorted(tail) == sorted(declared) and tail != declared:
        raise _err(name, f"{role} {_qualname(fn)}{sig} takes its parameters in the order "
                         f"({', '.join(tail)}) but they are declared in the order "
                         f"({', '.join(declared)}); sweepbt passes them in declared order")
    misplaced = [a for a in tail if a in {p.name for p in other_stage}]
    if misplaced:
        other = "signal" if stage == "indicator" else "indicator"
        raise _err(name, f"{role} {_qualname(fn)}{sig} takes {', '.join(misplaced)}, declared "
                         f"in {other}_params: {role} gets only the {stage} parameters "
                         f"({', '.join(declared) or 'none'})")


# ----------------------------------------------------------------------------------------
# the definition-time probe (pure Python, bounds-checked)


def _synthetic(n, seed=20240611):
    """Random-walk prices on a slow wave: highs and lows fall inside the series, so an
    indicator that peeks at the whole series (its max, its mean) is caught."""
    rng = np.random.default_rng(seed)
    wave = 0.3 * np.sin(np.linspace(0.0, 3.0 * np.pi, n))
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)) + wave)
    prev = np.concatenate([[100.0], close[:-1]])
    open_ = prev * np.exp(rng.normal(0.0, 0.005, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.01, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.01, n)))
    volume = rng.integers(1_000, 100_000, n).astype(np.float64)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def _readonly(a):
    a = np.array(a, dtype=np.float64, copy=True)
    a.flags.writeable = False
    return a


def _describe_exc(exc):
    text = _first_line(str(exc)) if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _show(x):
    """repr of a value as the user wrote it (no numpy scalar wrapper)."""
    return repr(x.item() if isinstance(x, np.generic) else x)


def _param_text(declared, values):
    return ", ".join(f"{p.name}={_show(v)}" for p, v in zip(declared, values)) \
        or "no parameters"


def _run_indicators(spec, data, n, params, nf_expected):
    name = spec.name
    args = [_readonly(data[x][:n]) for x in spec.inputs]
    shown = _param_text(spec.indicator_params, params)
    where = f"on {n} bar(s) of synthetic data with {shown}"
    try:
        feats = spec.indicators.py_func(*args, *params)
    except IndexError as exc:
        raise _err(name, f"indicators raised {_describe_exc(exc)} {where}: it reads past the "
                         "end of its inputs (look-ahead), or fails on a span shorter than "
                         "its window (an asset's span can be short: return NaN where a "
                         "value is undefined)") from None
    except ValueError as exc:
        if "read-only" in str(exc):
            raise _err(name, "indicators must not modify its inputs (they are the data, "
                             "read-only)") from None
        raise _err(name, f"indicators raised {_describe_exc(exc)} {where}") from None
    except Exception as exc:  # noqa: BLE001 - reported with the strategy's name
        raise _err(name, f"indicators raised {_describe_exc(exc)} {where}") from None
    if not isinstance(feats, np.ndarray):
        raise _err(name, f"indicators must return a 2-D float64 numpy array "
                         f"(n_features, span_len); it returned {type(feats).__name__}")
    if feats.ndim != 2:
        raise _err(name, f"indicators must return a 2-D float64 array (n_features, "
                         f"span_len); it returned a {feats.ndim}-D array of shape "
                         f"{feats.shape} {where} (one feature: use out[0, :] of an array "
                         "of shape (1, span_len))")
    if feats.dtype != np.float64:
        raise _err(name, f"indicators must return a float64 array; it returned {feats.dtype}")
    if feats.shape[1] != n or (nf_expected and feats.shape[0] != nf_expected) \
            or feats.shape[0] < 1:
        want = f"({nf_expected or 'n_features'}, {n})"
        raise _err(name, f"indicators returned shape {feats.shape} {where}; expected {want}: "
                         "one row per feature, one column per bar of the span")
    return feats


def _run_signal(spec, feats, n, params):
    name = spec.name
    fn = spec.signal.py_func
    out = np.zeros(n, np.int64)
    view = _readonly(feats[:, :n])
    for i in range(n):
        try:
            code = fn(view, i, *params)
        except IndexError as exc:
            text = str(exc)
            what = ("reads beyond bar i (look-ahead)" if "axis 1" in text or i == n - 1
                    else "reads a feature row indicators does not produce"
                    if "axis 0" in text else "indexes out of bounds")
            raise _err(name, f"signal raised IndexError at bar {i} of {n} ({text}): it "
                             f"{what}") from None
        except ValueError as exc:
            if "read-only" in str(exc):
                raise _err(name, "signal must not modify features (read-only)") from None
            raise _err(name, f"signal raised {_describe_exc(exc)} at bar {i} with "
                             f"{_param_text(spec.signal_params, params)}") from None
        except Exception as exc:  # noqa: BLE001
            raise _err(name, f"signal raised {_describe_exc(exc)} at bar {i} with "
                             f"{_param_text(spec.signal_params, params)}") from None
        if isinstance(code, (bool, np.bool_)) or not isinstance(code, numbers.Integral):
            raise _err(name, f"signal returned {_show(code)} ({type(code).__name__}) at bar "
                             f"{i}; it must return an integer code: {_CODES_HELP}")
        if not 0 <= code <= ALL_CODES:
            raise _err(name, f"signal returned {int(code)} at bar {i}, outside "
                             f"0..{ALL_CODES}; codes are {_CODES_HELP}")
        out[i] = code
    return out


def _same(a, b):
    return np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)


def _probe(spec, n_features):
    """Run the pure-Python functions on synthetic data; return n_features."""
    windows = [p.default for p in spec.indicator_params + spec.signal_params
               if p.kind == "window"]
    longest = max(windows, default=1)
    n = max(PROBE_BARS, 2 * longest + 20)
    data = _synthetic(n)
    ind = [p.default for p in spec.indicator_params]
    sig = [p.default for p in spec.signal_params]
    full = _run_indicators(spec, data, n, ind, n_features)
    nf = full.shape[0]
    codes = _run_signal(spec, full, n, sig)
    cuts = {1, 2, 3, 5, longest - 1, longest, longest + 1, longest + 7, n // 2, n - 1}
    for t in sorted(c for c in cuts if 1 <= c < n):
        part = _run_indicators(spec, data, t, ind, nf)
        bad = ~_same(part, full[:, :t])
        if bad.any():
            f, k = np.argwhere(bad)[0]
            raise _err(spec.name, f"indicators: feature {f} at bar {k} changes when the bars "
                                  f"after bar {t - 1} are removed ({_show(full[f, k])} with "
                                  f"all {n} bars, {_show(part[f, k])} with the first {t}): "
                                  "it reads "
                                  "beyond bar i (look-ahead)")
        cut = _run_signal(spec, full, t, sig)
        diff = np.flatnonzero(cut != codes[:t])
        if diff.size:
            k = int(diff[0])
            raise _err(spec.name, f"signal at bar {k} changes when later bars are removed "
                                  f"({codes[k]} with all {n} bars, {cut[k]} with the first "
                                  f"{t}): it reads beyond bar i (look-ahead), or wraps "
                                  "around with a negative index")
    return nf


# ----------------------------------------------------------------------------------------
# generated drivers


_HEADER = '''"""Compiled drivers of a sweepbt custom strategy (generated: do not edit).

indicators: {ind}; signal: {sig}.

sweepbt {version}, numba {numba}, generator {generator}. The file is named by a hash of the
strategy's source and is never rewritten: its mtime keys numba's cache.
"""

import importlib

import numpy as np
from numba import njit, prange

{imports}
'''

# by import_module: a dotted name (a module of a package) whose parent package is not
# importable here, as load_strategy may register it, is found in sys.modules all the same
_IMPORT = '''_{role}_module = importlib.import_module({module!r})
_{role} = _{role}_module.{qualname}
'''

_BODY = '''

@njit(parallel=True, cache={cache})
def indicator_stage({ins}, start, end, offs, total, nf, slots, {ips}bank, status):
    """Features of indicator combos ``slots`` (params ``ip*[k]``) on every asset."""
    n_assets = start.shape[0]
    for t in prange(slots.shape[0] * n_assets):
        k = t // n_assets
        a = t - k * n_assets
        s = start[a]
        e = end[a]
        span = e - s
        feats = _indicators({in_slices}{ip_items})
        if feats.shape[0] != nf or feats.shape[1] != span:
            status[t, 0] = 1
            status[t, 1] = feats.shape[0]
            status[t, 2] = feats.shape[1]
            continue
        base = (slots[k] * total + offs[a]) * nf
        dst = bank[base:base + nf * span].reshape((nf, span))
        for f in range(nf):
            for i in range(span):
                dst[f, i] = feats[f, i]


@njit(parallel=True, cache={cache})
def signal_stage(bank, start, end, offs, total, nf, row_slot, {sps}codes, counts, status,
                 bad):
    """Dense codes and event counts of signals ``q`` (params ``sp*[q]``) on every asset."""
    n_assets = start.shape[0]
    for r in prange(row_slot.shape[0] * n_assets):
        q = r // n_assets
        a = r - q * n_assets
        span = end[a] - start[a]
        base = (row_slot[q] * total + offs[a]) * nf
        feats = bank[base:base + nf * span].reshape((nf, span))
        cb = q * total + offs[a]
        n = 0
        for i in range(span):
            c = _signal(feats, i{sp_items})
            if c == 0:
                codes[cb + i] = 0
                continue
            if not (c >= 1 and c <= {all_codes}):
                status[r, 0] = 1
                status[r, 1] = i
                bad[r] = c
                break
            ci = np.int8(c)
            if ci != c:
                status[r, 0] = 2
                status[r, 1] = i
                bad[r] = c
                break
            codes[cb + i] = ci
            n += 1
        counts[r] = n
'''


def _driver_body(spec, cache):
    n_in, n_ip, n_sp = len(spec.inputs), len(spec.indicator_params), len(spec.signal_params)
    ins = ", ".join(f"in{k}" for k in range(n_in))
    return _BODY.format(
        cache=cache, ins=ins, all_codes=ALL_CODES,
        ips="".join(f"ip{k}, " for k in range(n_ip)),
        sps="".join(f"sp{k}, " for k in range(n_sp)),
        in_slices=", ".join(f"in{k}[a, s:e]" for k in range(n_in)),
        ip_items="".join(f", ip{k}[k]" for k in range(n_ip)),
        sp_items="".join(f", sp{k}[q]" for k in range(n_sp)))


def _importable(fn):
    """(module name, qualname) to import ``fn`` by name in another process, or None."""
    py = fn.py_func
    module, qualname = getattr(py, "__module__", None), getattr(py, "__qualname__", "")
    if not module or "<" in qualname or module not in sys.modules:
        return None
    try:
        source = inspect.getsourcefile(py)
    except TypeError:
        return None
    if not source or not os.path.isfile(source):
        return None
    obj = sys.modules[module]
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if obj is not fn:
        return None
    return module, qualname


def _dependencies(fns):
    """The dispatchers reachable from ``fns`` and the global constants they read.

    numba freezes global values and compiles the jitted functions a function calls into
    it, so a change to any of them must change the generated module's name.
    """
    found_fns, constants = [], []
    seen, todo = set(), list(fns)
    while todo:
        fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        found_fns.append(fn)
        py = fn.py_func
        codes, names = [py.__code__], set()
        while codes:
            code = codes.pop()
            names.update(code.co_names)
            codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        glb = py.__globals__
        cells = [c.cell_contents for c in (py.__closure__ or ()) if _cell_filled(c)]
        for obj in [glb[n] for n in sorted(names) if n in glb] + cells:
            if isinstance(obj, types.ModuleType):
                for attr in sorted(names):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        sub = getattr(obj, attr, None)
                    if isinstance(sub, Dispatcher):
                        todo.append(sub)
                    elif _is_constant(sub):
                        constants.append(f"{obj.__name__}.{attr}={_constant_key(sub)}")
            elif isinstance(obj, Dispatcher):
                todo.append(obj)
            elif _is_constant(obj):
                constants.append(_constant_key(obj))
    return found_fns, sorted(constants)


def _cell_filled(cell):
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _is_constant(x):
    if isinstance(x, tuple):
        return all(_is_constant(v) for v in x)
    return isinstance(x, (numbers.Number, str, bytes, np.ndarray)) and not callable(x)


def _constant_key(x):
    if isinstance(x, np.ndarray):
        return f"ndarray{x.dtype}{x.shape}:{hashlib.sha256(x.tobytes()).hexdigest()}"
    if isinstance(x, tuple):
        return "(" + ",".join(_constant_key(v) for v in x) + ")"
    return f"{type(x).__name__}:{x!r}"


def _code_key(code, h):
    """Feed a code object (bytecode, names, constants, nested code) into hash ``h``."""
    h.update(code.co_code)
    h.update(repr((code.co_name, code.co_names, code.co_varnames, code.co_freevars)).encode())
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _code_key(c, h)
        elif isinstance(c, frozenset):  # repr order depends on hash randomization
            h.update(repr(sorted(map(repr, c))).encode())
        else:
            h.update(repr(c).encode())


def _source_key(spec):
    """Hash of what the compiled strategy is made of, taken when it is defined: the source
    files of the user's functions and of the jitted helpers they call, their bytecode and
    qualified names, and the global constants they read."""
    fns, constants = _dependencies([spec.indicators, spec.signal])
    h = hashlib.sha256()
    files = set()
    for fn in fns:
        py = fn.py_func
        h.update(f"{py.__module__}:{py.__qualname__}".encode())
        _code_key(py.__code__, h)
        try:
            files.add(inspect.getsourcefile(py) or "")
        except TypeError:
            files.add("")
    for path in sorted(files):
        h.update(path.encode() + b"\0")
        try:
            with open(path, "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(b"<unreadable>")
    for c in constants:
        h.update(c.encode() + b"\0")
    return h.hexdigest()


def _module_key(spec, text):
    from sweepbt import __version__

    h = hashlib.sha256()
    for part in (f"generator {GENERATOR_VERSION}", f"sweepbt {__version__}",
                 f"numba {numba.__version__}", f"python {sys.version}", text,
                 spec.source_key):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:20]


def _candidate_dirs():
    """Where generated modules may live, in order of preference."""
    dirs = []
    if os.environ.get("SWEEPBT_CACHE_DIR"):
        dirs.append(os.environ["SWEEPBT_CACHE_DIR"])
    if os.environ.get("NUMBA_CACHE_DIR"):
        dirs.append(os.path.join(os.environ["NUMBA_CACHE_DIR"], "sweepbt_generated"))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                            ".cache")
    dirs.append(os.path.join(base, "sweepbt", "generated"))
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    dirs.append(os.path.join(tempfile.gettempdir(), f"sweepbt-generated-{uid}"))
    return [os.path.abspath(d) for d in dirs]


def generated_dir():
    """The first writable directory for generated modules, or None when none is."""
    for d in _candidate_dirs():
        if _writable(d):
            return d
    return None


def _writable(directory):
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def _publish(directory, filename, text):
    """Write ``text`` as ``directory/filename`` unless it exists; never rewrite a file.

    The file appears atomically (written aside, then hard-linked into place), so another
    process never imports a half-written module. Returns the path, or None on failure.
    """
    path = os.path.join(directory, filename)
    if _read(path) == text:
        return path
    if os.path.exists(path) or not _writable(directory):
        return None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # no hard links here: fall back to a checked rename
            if not os.path.exists(path):
                os.replace(tmp, path)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    except OSError:
        return None
    return path if _read(path) == text else None


def _import_file(modname, path):
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def _make_drivers(spec):
    """The module of compiled drivers for ``spec``: from a generated file when possible."""
    where = {role: _importable(getattr(spec, role)) for role in ("indicators", "signal")}
    if all(where.values()):
        imports = "".join(_IMPORT.format(module=m, qualname=q, role=role)
                          for role, (m, q) in where.items())
        from sweepbt import __version__

        text = _HEADER.format(ind=".".join(where["indicators"]),
                              sig=".".join(where["signal"]),
                              version=__version__, numba=numba.__version__,
                              generator=GENERATOR_VERSION, imports=imports) + \
            _driver_body(spec, cache=True)
        key = _module_key(spec, text)
        modname = f"{_GEN_PREFIX}{key}"
        if modname in sys.modules:
            return sys.modules[modname]
        for directory in _candidate_dirs():
            path = os.path.join(directory, modname + ".py")
            if _read(path) != text:
                path = _publish(directory, modname + ".py", text)
            if path is None:
                continue
            try:
                return _import_file(modname, path)
            except RuntimeError as exc:  # numba: no writable cache locator for this file
                if "cannot cache" not in str(exc):
                    raise
    return _memory_drivers(spec)


def _memory_drivers(spec):
    """Drivers compiled in memory (no disk cache): functions not importable by name."""
    modname = f"{_GEN_PREFIX}{spec.name}_memory_{id(spec):x}"
    module = types.ModuleType(modname)
    module._indicators = spec.indicators
    module._signal = spec.signal
    module.np, module.njit, module.prange = np, njit, prange
    filename = f"<sweepbt generated drivers of {spec.name!r}>"
    text = _driver_body(spec, cache=False)
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    exec(compile(text, filename, "exec"), module.__dict__)  # noqa: S102 - our own template
    return module


def generated_module(strategy):
    """The module of compiled drivers of a custom ``strategy`` (generated on first use).

    Its ``indicator_stage`` / ``signal_stage`` are numba dispatchers: ``.stats.cache_hits``
    tells whether they came from numba's disk cache; ``__file__`` (absent for in-memory
    drivers) is the generated source.
    """
    build = getattr(strategy, "build", None)
    if not isinstance(build, _Build):
        raise ValueError(f"{getattr(strategy, 'name', strategy)!r} is not a custom strategy")
    return build.spec.drivers


# ----------------------------------------------------------------------------------------
# running: the signal source the engine calls


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(message):
    """numba's message, shortened to its first informative line (and the line it
    announces, when it ends with a colon)."""
    lines = [ln.strip() for ln in _ANSI.sub("", str(message)).splitlines()]
    lines = [ln for ln in lines if ln]
    for k, ln in enumerate(lines):
        if not ln.startswith(("Failed in ", "During: ", "- Resolution failure")):
            if ln.endswith(":") and k + 1 < len(lines):
                return f"{ln} {lines[k + 1]}"
            return ln
    return lines[0] if lines else ""


def _location(message, files):
    """'file.py, line N' of the first place in ``message`` inside one of ``files``."""
    text = _ANSI.sub("", str(message))
    found = [(m.start(), m.group(1), m.group(2))
             for pattern in (r'File "([^"]+)", line (\d+)', r" at (\S+\.py) \((\d+)\)")
             for m in re.finditer(pattern, text)]
    for _, path, line in sorted(found):
        if os.path.realpath(path) in files:
            return f"{os.path.basename(path)}, line {line}"
    return None


def _compile_error(spec, exc, arg_types):
    """A ValueError naming the strategy and the function numba could not compile."""
    ind_sig, sig_sig = arg_types
    culprit, message = None, exc
    for role, argtys in (("indicators", ind_sig), ("signal", sig_sig)):
        fn = getattr(spec, role)
        try:
            fn.compile(tuple(argtys))
        except Exception as inner:  # noqa: BLE001 - reported
            culprit, message = (role, fn, argtys), inner
            break
    files = set()
    for fn in (spec.indicators, spec.signal):
        with contextlib.suppress(TypeError):
            files.add(os.path.realpath(inspect.getsourcefile(fn.py_func)))
    loc = _location(message, files)
    first = _first_line(message)
    if culprit is None:
        return _err(spec.name, f"numba could not compile the strategy's drivers: {first}")
    role, fn, argtys = culprit
    shown = ", ".join(str(t) for t in argtys)
    return _err(spec.name, f"numba cannot compile {role} {_qualname(fn)}({shown}): {first}"
                           + (f" ({loc})" if loc else ""))


def _types_of(spec):
    from numba.core import types as nt

    arr1 = nt.Array(nt.float64, 1, "C", readonly=True)
    arr2 = nt.Array(nt.float64, 2, "C", readonly=True)
    scalar = {"window": nt.int64, "float": nt.float64}
    ind = [arr1] * len(spec.inputs) + [scalar[p.kind] for p in spec.indicator_params]
    sig = [arr2, nt.int64] + [scalar[p.kind] for p in spec.signal_params]
    return ind, sig


def _call(spec, fn, *args):
    """Call a driver; numba typing/lowering errors become a ValueError naming the strategy."""
    try:
        return fn(*args)
    except numba.core.errors.NumbaError as exc:
        raise _compile_error(spec, exc, _types_of(spec)) from None


class _Build:
    """``Strategy.build`` of a custom strategy: ``build(bundle, values) -> signal source``."""

    def __init__(self, spec):
        self.spec = spec

    def __call__(self, bundle, values):
        from sweepbt._threading import _configure_layer

        _configure_layer()
        return CustomSignals(self.spec, bundle, values)

    def __repr__(self):
        return f"<custom strategy {self.spec.name!r} build>"


def _ro(a):
    v = a.view()
    v.flags.writeable = False
    return v


def _kernel_values(declared, values):
    dtype = {"window": np.int64, "float": np.float64}
    return [np.ascontiguousarray(values[p.name], dtype=dtype[p.kind]) for p in declared]


class CustomSignals:
    """Signal events of a custom strategy, computed on demand by signal range.

    Signal ``s`` is combination ``s`` of the strategy's parameters in C order (indicator
    parameters first): indicator combo ``s // n_sig``, signal combo ``s % n_sig``. A call
    computes the features of the indicator combos its signals need (once each; the last
    block's features are kept for the next call, since consecutive chunks share combos),
    then the signal codes, and compacts them into CSR events.
    """

    def __init__(self, spec, bundle, values):
        self.spec = spec
        self.bundle = bundle
        self.drivers = spec.drivers
        self.ind_values = _kernel_values(spec.indicator_params, values)
        self.sig_values = _kernel_values(spec.signal_params, values)
        self.ind_shape = tuple(v.size for v in self.ind_values)
        self.sig_shape = tuple(v.size for v in self.sig_values)
        self.n_sig = math.prod(self.sig_shape)
        self.n_signals = math.prod(self.ind_shape) * self.n_sig
        self.start, self.end = bundle.start, bundle.end
        spans = (self.end - self.start).astype(np.int64)
        self.offs = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
        self.total = int(spans.sum())
        self.inputs = [_ro(getattr(bundle, x)) for x in spec.inputs]
        self._features = None  # (first indicator combo, count, bank)
        self._last = None

    # -- indicator stage ------------------------------------------------------------------

    def _unravel(self, flat, shape, arrays):
        if not arrays:
            return []
        idx = np.unravel_index(np.asarray(flat, dtype=np.int64), shape)
        return [np.ascontiguousarray(v[i]) for v, i in zip(arrays, idx)]

    def _bank(self, g0, g1):
        """Features of indicator combos g0..g1-1 as one flat read-only array.

        Combos already computed by the previous call are reused, never recomputed.
        """
        nf, total = self.spec.n_features, self.total
        row = nf * total
        lo, hi = g0, g0  # combos [lo, hi) come from the previous bank
        if self._features is not None:
            p0, pn, old = self._features
            if p0 <= g0 and g1 <= p0 + pn:
                return old[(g0 - p0) * row:(g1 - p0) * row]
            lo, hi = max(g0, p0), min(g1, p0 + pn)
        bank = np.empty((g1 - g0) * row)
        if lo < hi:
            bank[(lo - g0) * row:(hi - g0) * row] = old[(lo - p0) * row:(hi - p0) * row]
        else:
            lo = hi = g0
        need = np.concatenate([np.arange(g0, lo, dtype=np.int64),
                               np.arange(hi, g1, dtype=np.int64)])
        if need.size:
            n_tasks = need.size * self.bundle.n_assets
            status = np.zeros((n_tasks, 3), np.int64)
            _call(self.spec, self.drivers.indicator_stage, *self.inputs, self.start, self.end,
                  self.offs, total, nf, need - g0,
                  *self._unravel(need, self.ind_shape, self.ind_values), bank, status)
            if status[:, 0].any():
                t = int(np.flatnonzero(status[:, 0])[0])
                k, a = divmod(t, self.bundle.n_assets)
                params = [v[0] for v in self._unravel([need[k]], self.ind_shape,
                                                      self.ind_values)]
                span = int(self.end[a] - self.start[a])
                raise _err(self.spec.name, (
                    f"indicators returned shape ({status[t, 1]}, {status[t, 2]}) on "
                    f"{self.bundle.symbols[a]} ({span} bars) with "
                    f"{_param_text(self.spec.indicator_params, params)}; expected "
                    f"({nf}, {span}): one row per feature, one column per bar of the span"))
        bank.flags.writeable = False
        self._features = (g0, g1 - g0, bank)
        return bank

    # -- signal stage ---------------------------------------------------------------------

    def _block(self, lo, hi):
        n_assets, total, nf = self.bundle.n_assets, self.total, self.spec.n_features
        sig = np.arange(lo, hi, dtype=np.int64)
        ind, j = np.divmod(sig, self.n_sig)
        g0, g1 = int(ind[0]), int(ind[-1]) + 1
        bank = self._bank(g0, g1)
        n_rows = sig.size * n_assets
        codes = np.empty(sig.size * total, np.int8)
        counts = np.zeros(n_rows, np.int64)
        status = np.zeros((n_rows, 2), np.int64)
        bad = np.zeros(n_rows)
        _call(self.spec, self.drivers.signal_stage, bank, self.start, self.end, self.offs,
              total, nf, ind - g0, *self._unravel(j, self.sig_shape, self.sig_values),
              codes, counts, status, bad)
        if status[:, 0].any():
            r = int(np.flatnonzero(status[:, 0])[0])
            q, a = divmod(r, n_assets)
            self._signal_error(int(sig[q]), a, int(status[r, 0]), int(status[r, 1]), bad[r])
        return codes_to_events(codes, counts, self.start, self.end, self.offs, total,
                               n_assets)

    def _signal_error(self, s, a, kind, bar, value):
        g, j = divmod(s, self.n_sig)
        params = [v[0] for v in self._unravel([g], self.ind_shape, self.ind_values)]
        params += [v[0] for v in self._unravel([j], self.sig_shape, self.sig_values)]
        declared = self.spec.indicator_params + self.spec.signal_params
        what = (f"outside 0..{ALL_CODES}" if kind == 1 else "not an integer")
        shown = int(value) if kind == 1 and float(value).is_integer() else float(value)
        raise _err(self.spec.name, (
            f"signal returned {shown!r} ({what}) at span bar {bar} of "
            f"{self.bundle.symbols[a]} with {_param_text(declared, params)}; codes are "
            f"{_CODES_HELP}"))

    def events(self, lo, hi) -> Signals:
        """Events of signals ``lo <= s < hi``, as rows ``(s - lo) * n_assets + a``."""
        lo, hi = int(lo), int(hi)
        if self._last is not None and self._last[0] == (lo, hi):
            return self._last[1]
        per_signal = self.total + self.spec.n_features * self.total * 8 / max(1, self.n_sig)
        step = max(1, int(BLOCK_BYTES // max(1.0, per_signal)))
        parts = [self._block(b, min(hi, b + step)) for b in range(lo, hi, step)]
        if len(parts) == 1:
            signals = Signals(*parts[0])
        else:
            ptrs, offset = [np.zeros(1, np.int64)], 0
            for ptr, _, _ in parts:
                ptrs.append(ptr[1:] + offset)
                offset += int(ptr[-1])
            signals = Signals(np.concatenate(ptrs), np.concatenate([p[1] for p in parts]),
                              np.concatenate([p[2] for p in parts]))
        self._last = ((lo, hi), signals)
        return signals


# ----------------------------------------------------------------------------------------
# loading a strategy from a file


def _same_file(module, path):
    """Whether ``module`` was loaded from the file ``path`` (absolute, resolved)."""
    origin = getattr(module, "__file__", None)
    return isinstance(origin, str) and os.path.realpath(origin) == path


def _claimed_elsewhere(top, expected):
    """Whether the top-level name ``top`` belongs to something other than ``expected``
    (the file, or the top package's folder) in this process or on ``sys.path``."""
    module = sys.modules.get(top)
    if module is not None:
        places = [getattr(module, "__file__", None)] + list(getattr(module, "__path__", []))
    else:
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError, AttributeError):
            return True
        if spec is None:
            return False
        places = [spec.origin] + list(spec.submodule_search_locations or [])
    for place in places:
        if isinstance(place, str) and os.path.realpath(place) in (
                expected, os.path.join(expected, "__init__.py")):
            return False
    return True


def _file_module_name(path):
    """The module name ``load_strategy`` imports the file ``path`` (resolved) under.

    numba's disk cache for the file's ``@njit(cache=True)`` functions is keyed by the file
    but records the module name, which any process that loads the cache entry must be able
    to import. So the file gets the name a plain ``import`` gives it (``zscore`` for
    ``dir/zscore.py``, ``pkg.mod`` for a module of a package), as in a process that imports
    it normally; unless that name already belongs to another module, here or on
    ``sys.path`` (a second ``zscore.py``, a standard-library name): then
    ``_sweepbt_user_<hash of the path>``.
    """
    plain = _numba_cache.plain_module_name(path)
    fallback = _numba_cache.user_module_name(path)
    if plain is None:
        return fallback
    existing = sys.modules.get(plain)
    if existing is not None:
        return plain if _same_file(existing, path) else fallback
    parts = plain.split(".")
    expected = path  # the file, or the folder of its top package
    for _ in parts[1:]:
        expected = os.path.dirname(expected)
    return fallback if _claimed_elsewhere(parts[0], expected) else plain


def _split_spec(text):
    text = os.fspath(text)
    path, sep, attr = text.rpartition(":")
    if not sep or not attr.isidentifier() or not path:
        return text, None
    return path, attr


def load_strategy(spec, *, register=False) -> Strategy:
    """The :class:`Strategy` named in ``"path/to/file.py:name"``.

    The file is imported under the module name a plain ``import`` would give it (its stem,
    or ``package.module`` inside a package; ``_sweepbt_user_<hash>`` when another module
    holds that name), and registered in ``sys.modules``, so that numba's disk cache and the
    generated drivers are shared with code that imports the file normally. A module already
    imported from the file is used as it is. ``name`` must be a Strategy made by
    :func:`define_strategy`; without ``:name`` the file must define exactly one. The file is
    executed again only when its contents changed since it was last loaded in this process.
    ``register=True`` also registers the strategy under its name.

    A file that cannot be imported (a syntax error, an exception, ``sys.exit()`` while it
    runs) raises a ValueError naming the file; ``KeyboardInterrupt`` propagates.
    """
    path, attr = _split_spec(spec)
    path = os.path.realpath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise ValueError(f"strategy file {path!r} not found (expected FILE.py:NAME)")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with _lock:
        modname = _file_module_name(path)
        module = sys.modules.get(modname)
        if module is not None and not hasattr(module, "__sweepbt_digest__"):
            module.__sweepbt_digest__ = digest  # imported normally: used as it is
        elif module is None or module.__sweepbt_digest__ != digest:
            module = _exec_user_file(modname, path, digest)
    found = {k: v for k, v in vars(module).items() if isinstance(v, Strategy)}
    if attr is None:
        if len(found) != 1:
            listed = ", ".join(sorted(found)) or "none"
            raise ValueError(f"{path}: name the strategy as FILE.py:NAME (Strategy objects "
                             f"in the file: {listed})")
        attr = next(iter(found))
    if not hasattr(module, attr):
        listed = ", ".join(sorted(found)) or "none"
        raise ValueError(f"{path} has no {attr!r} (Strategy objects in the file: {listed})")
    strategy = getattr(module, attr)
    if not isinstance(strategy, Strategy):
        raise ValueError(f"{path}:{attr} is a {type(strategy).__name__}, not a Strategy "
                         "made by sweepbt.define_strategy")
    if register:
        _register(strategy)
    return strategy


def _import_error(path, exc):
    """A ValueError saying why the strategy file ``path`` could not be imported."""
    what = f"cannot import strategy file {path}"
    if isinstance(exc, SystemExit):
        return ValueError(f"{what}: it called sys.exit({exc.code!r}) while being imported "
                          "(raise an exception instead)")
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        if exc.filename and os.path.realpath(exc.filename) != path:
            where = f"{exc.filename}, {where}"
        text = (exc.text or "").strip()
        return ValueError(f"{what}: {type(exc).__name__} at {where}: {exc.msg}"
                          + (f": {text}" if text else ""))
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if os.path.realpath(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (line {line})" if line else ""
    return ValueError(f"{what}: it raised {_describe_exc(exc)} while being imported{where}")


def _exec_user_file(modname, path, digest):
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None:
        raise ValueError(f"cannot import {path!r} as Python source (expected FILE.py:NAME)")
    module = importlib.util.module_from_spec(spec)
    module.__sweepbt_digest__ = digest
    previous = sys.modules.get(modname)
    sys.modules[modname] = module
    folder = os.path.dirname(path)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if previous is not None:
            sys.modules[modname] = previous
        else:
            sys.modules.pop(modname, None)
        if isinstance(exc, (Exception, SystemExit)):
            raise _import_error(path, exc) from exc
        raise  # KeyboardInterrupt and the like
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
    return module
