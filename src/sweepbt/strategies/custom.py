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

The parts, one module each (imports go downwards):

* this module: ``define_strategy``, the strategy's specification and its checks;
* :mod:`sweepbt.strategies.custom_probe`: the definition-time probe on synthetic data
  (look-ahead);
* :mod:`sweepbt.strategies._codegen`: the text of the generated drivers;
* :mod:`sweepbt.strategies.custom_cache`: the generated modules and their cache on disk;
* :mod:`sweepbt.strategies.custom_signals`: the build and signal source the engine calls;
* :mod:`sweepbt.strategies.custom_files`: ``load_strategy`` (strategy files);
* :mod:`sweepbt.strategies.custom_messages`: the wording of the errors.

Caching. numba cannot cache a compiled function that receives another dispatcher as an
argument, so sweepbt *generates* a small Python module per strategy (into
``$SWEEPBT_CACHE_DIR``, else ``$NUMBA_CACHE_DIR/sweepbt_generated``, else
``~/.cache/sweepbt/generated``, else the temporary directory) that imports the user's two
functions as module globals and defines ``@njit(cache=True)`` drivers calling them directly.
The module is named by a hash of its own text, of the user's source files (and of the
source files of the jitted helpers they call, and the constants they read), the functions'
names, and the numba / Python / generator versions: editing the strategy (or sweepbt's
template) gives a new module and a fresh compile, and an existing generated file is never
rewritten (its mtime keys numba's cache). Where nothing is writable, or the user's
functions cannot be imported by name in another process (defined in a REPL, or nested in
a function), the drivers are compiled in memory without a disk cache: slower to start,
identical results.

Mistakes are reported up front as ``StrategyError("strategy 'x': ...")`` (a ValueError):
at definition time a probe runs the functions' pure-Python versions (``fn.py_func``, with
bounds-checked indexing) on deterministic synthetic data with the default parameters,
checking the signatures, the features' shape and dtype, the signal codes, and look-ahead
(features and signals computed on the first T bars must equal those computed on all bars,
for several T). numba typing errors at the first compile are re-raised the same way, with
numba's message shortened to its first informative line.
"""

from __future__ import annotations

import inspect
import keyword
import math
import numbers
import threading
from dataclasses import dataclass, field

import numpy as np
from numba.core.dispatcher import Dispatcher

from sweepbt._validate import is_integer
from sweepbt.strategies.custom_cache import generated_dir, make_drivers, source_key
from sweepbt.strategies.custom_files import load_strategy, origin_of
from sweepbt.strategies.custom_messages import qualname, strategy_error
from sweepbt.strategies.custom_probe import probe
from sweepbt.strategies.custom_signals import CustomBuild, register_custom
from sweepbt.kernels.codes import (  # noqa: F401 - re-exported for user strategy files
    BUY, ENTER_LONG, ENTER_SHORT, EXIT_LONG, EXIT_SHORT, SELL)
from sweepbt._params import RESERVED_NAMES
from sweepbt.strategies.ranking import (RANK_PARAMS, checked_scores, rank_strategy,
                                        user_score_rows)
from sweepbt.errors import StrategyError, StrategyTypeError
from sweepbt.strategies.builtin import STRATEGIES, Param, Strategy

__all__ = [
    "BUY", "SELL", "ENTER_LONG", "EXIT_LONG", "ENTER_SHORT", "EXIT_SHORT",
    "define_strategy", "load_strategy", "generated_module", "generated_dir",
]

#: the price series an ``indicators`` function can ask for, in Bundle field names
INPUTS = ("open", "high", "low", "close", "volume")
RANK_PARAM_NAMES = tuple(p.name for p in RANK_PARAMS)
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
                self._drivers = make_drivers(self)
            return self._drivers


def define_strategy(name, *, indicators, signal, indicator_params=None, signal_params=None,
                    inputs=("close",), n_features=None, doc="", param_docs=None,
                    register=False, check=True) -> Strategy:
    """A :class:`~sweepbt.strategies.builtin.Strategy` made of two user ``@njit`` functions.

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
    _check_name(name, doc)
    inputs = _check_inputs(name, inputs)
    ind_params, sig_params = _check_declared(name, indicator_params, signal_params)
    _check_function(name, "indicators", indicators)
    _check_function(name, "signal", signal)
    _check_signature(name, "indicators", indicators, list(inputs),
                     [p.name for p in ind_params], sig_params, "the inputs")
    _check_signature(name, "signal", signal, ["features", "i"],
                     [p.name for p in sig_params], ind_params, "features, i")
    n_features = _check_n_features(name, n_features)
    spec = CustomSpec(name=name, indicators=indicators, signal=signal, inputs=inputs,
                      indicator_params=ind_params, signal_params=sig_params,
                      n_features=n_features or 0, doc=doc)
    spec.source_key = source_key(indicators, signal)
    if check:
        spec.n_features = probe(spec, n_features)
    elif n_features is None:
        raise strategy_error(name, "n_features is required with check=False")
    params = _params(name, ind_params + sig_params, param_docs)
    strategy = Strategy(name=name, params=params, build=CustomBuild(spec),
                        doc=doc or f"custom strategy {name} "
                                   f"({qualname(indicators)} -> {qualname(signal)})",
                        origin=origin_of(indicators))
    if register:
        register_custom(strategy)
    return strategy


def define_rank_strategy(name, *, score, params=None, inputs=("close",), doc="",
                         param_docs=None, register=False, check=True) -> Strategy:
    """A rank-and-rebalance strategy (docs/custom-strategies.md) scored by a user ``@njit``
    function, with every parameter of the built-in rank strategies (``top_n``,
    ``bottom_n``, ``rebalance``, ``weighting``, ...; docs/strategies.md).

    ``score(*inputs, *params)`` gets the series named in ``inputs`` for every asset up to
    the rebalance bar ``r``: read-only float64 ``(n_assets, r + 1)`` views, NaN outside
    each asset's span, the last column bar ``r``; it never sees a later bar. It returns a
    float array of one score per asset (higher ranks first; NaN = not eligible). It runs
    once per distinct parameter combination and rebalance bar of a sweep (the indicator
    stage), never per combo. ``params`` maps each score parameter to its default (an int
    declares a window, a float a float); all are sweepable. ``register=True`` adds it to
    ``STRATEGIES``. ``check`` runs it on synthetic data first (a probe).
    """
    _check_name(name, doc)
    inputs = _check_inputs(name, inputs)
    declared = _check_params(name, params, "score")
    clash = sorted({p.name for p in declared} & set(RANK_PARAM_NAMES))
    if clash:
        raise strategy_error(name, f"score parameter(s) {', '.join(clash)} clash with the rank "
                                   "parameters every rank strategy has; rename them")
    _check_function(name, "score", score)
    wanted = list(inputs) + [p.name for p in declared]
    try:
        sig = inspect.signature(score.py_func)
    except (TypeError, ValueError):  # pragma: no cover - odd callables
        sig = None
    if sig is not None and [p.name for p in sig.parameters.values()][:len(wanted)] != wanted:
        raise strategy_error(name, f"score {qualname(score)}{sig} must take "
                                   f"({', '.join(wanted)}): the inputs, then the declared "
                                   "score parameters in order")
    names = tuple(p.name for p in declared)
    strategy = rank_strategy(
        name, _params(name, declared, param_docs), user_score_rows(score, inputs, names),
        doc or f"custom rank strategy {name} ({qualname(score)})", origin=origin_of(score))
    strategy.build.user_score = score  # finds its file (Dask)
    if check:
        _probe_score(name, score, inputs, [p.default for p in declared])
    if register:
        old = STRATEGIES.get(name)
        if old is not None and not old.is_user:
            raise strategy_error(name, "a built-in strategy has this name; pick another name")
        STRATEGIES[name] = strategy
    return strategy


def _probe_score(name, score, inputs, defaults):
    """Run ``score`` on synthetic prices (6 assets, one listed late, 300 bars) at a few
    bars: an error names the strategy and what went wrong."""
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (6, 300)), axis=1))
    close[5, :50] = np.nan
    series = {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
              "volume": np.where(np.isnan(close), np.nan, 1e6)}
    for r in (0, 49, 120, 299):
        views = [series[x][:, :r + 1].copy() for x in inputs]
        for v in views:
            v.flags.writeable = False
        try:
            checked_scores(score, views, tuple(defaults), 6, r)
        except Exception as exc:  # noqa: BLE001 - the probe reports whatever failed
            raise strategy_error(name, f"the probe (6 synthetic assets, 300 bars) failed: "
                                       f"{type(exc).__name__}: {exc}") from exc


def _check_name(name, doc):
    if not isinstance(name, str) or not name.isidentifier():
        raise StrategyError(f"strategy name must be an identifier (letters, digits, _), "
                            f"got {name!r}", name)
    if not isinstance(doc, str):
        raise StrategyTypeError(f"strategy {name!r}: doc must be a string", name)


def _check_n_features(name, n_features):
    if n_features is None:
        return None
    if not is_integer(n_features) or n_features < 1:
        raise strategy_error(name, f"n_features must be a positive integer, got "
                                   f"{n_features!r}")
    return int(n_features)


def _params(name, declared, param_docs):
    """The strategy's :class:`Param` tuple, documented by ``param_docs`` or by kind."""
    docs = dict(param_docs or {})
    unknown = sorted(set(docs) - {p.name for p in declared})
    if unknown:
        raise strategy_error(name, f"param_docs names unknown parameter(s) "
                                   f"{', '.join(unknown)}")
    return tuple(
        Param(p.name, p.kind, p.default, docs.get(p.name, (
            "window, bars" if p.kind == "window" else "float") + f" ({p.stage} parameter)"))
        for p in declared)


def _check_inputs(name, inputs):
    if isinstance(inputs, str):
        inputs = (inputs,)
    try:
        inputs = tuple(inputs)
    except TypeError:
        raise strategy_error(name, f"inputs must be a sequence of series names, got "
                                   f"{inputs!r}") from None
    if not inputs:
        raise strategy_error(name, f"inputs is empty; name at least one of "
                                   f"{', '.join(INPUTS)}")
    for x in inputs:
        if x not in INPUTS:
            raise strategy_error(name, f"unknown input {x!r}; inputs are series of "
                                       f"{', '.join(INPUTS)}")
    if len(set(inputs)) != len(inputs):
        raise strategy_error(name, f"inputs {inputs} names a series twice")
    return inputs


def _check_params(name, declared, stage):
    if declared is None:
        return ()
    if not isinstance(declared, dict):
        raise strategy_error(name, f"{stage}_params must be a dict name -> default, got "
                                   f"{declared!r}")
    out = []
    for pname, default in declared.items():
        if not isinstance(pname, str) or not pname.isidentifier() or keyword.iskeyword(pname):
            raise strategy_error(name, f"{stage} parameter name {pname!r} is not an identifier")
        if pname in RESERVED_NAMES:
            raise strategy_error(name, f"{stage} parameter {pname!r} clashes with an engine "
                                       "option or keyword of backtest()/sweep()/walk_forward(); "
                                       "rename it")
        if isinstance(default, (bool, np.bool_)):
            raise strategy_error(name, f"{stage} parameter {pname!r} has a bool default; "
                                       "parameters are windows (int default) or floats "
                                       "(float default)")
        if isinstance(default, numbers.Integral):
            if default < 1:
                raise strategy_error(name, f"{stage} parameter {pname!r}: an int default "
                                           f"declares a window (bars, >= 1), got {default}; use "
                                           "a float default for a non-window number")
            out.append(_Declared(pname, int(default), "window", stage))
        elif isinstance(default, numbers.Real):
            if not math.isfinite(float(default)):
                raise strategy_error(name, f"{stage} parameter {pname!r} default must be finite, "
                                           f"got {default!r}")
            out.append(_Declared(pname, float(default), "float", stage))
        else:
            raise strategy_error(name, f"{stage} parameter {pname!r} default must be an int "
                                       f"(window) or a float, got {default!r}")
    return tuple(out)


def _check_declared(name, indicator_params, signal_params):
    """The declared indicator and signal parameters (``_Declared`` tuples)."""
    ind_params = _check_params(name, indicator_params, "indicator")
    sig_params = _check_params(name, signal_params, "signal")
    clash = sorted({p.name for p in ind_params} & {p.name for p in sig_params})
    if clash:
        raise strategy_error(name, f"parameter(s) {', '.join(clash)} declared both in "
                                   "indicator_params and signal_params")
    return ind_params, sig_params


def _check_function(name, role, fn):
    if isinstance(fn, Dispatcher):
        if fn.targetoptions.get("forceobj") or fn.targetoptions.get("nopython") is False:
            raise strategy_error(name, f"{role} {qualname(fn)} must be compiled in nopython mode "
                                       "(use @numba.njit)")
        return
    if inspect.isfunction(fn) or inspect.isbuiltin(fn) or callable(fn):
        what = ("a plain Python function" if inspect.isfunction(fn)
                else f"a {type(fn).__name__}")
        raise strategy_error(name, f"{role} must be a numba @njit function, got {what} "
                                   f"{getattr(fn, '__qualname__', fn)!r}: decorate it with "
                                   "@numba.njit")
    raise strategy_error(name, f"{role} must be a numba @njit function, got {fn!r}")


def _check_signature(name, role, fn, fixed, declared, other_stage, fixed_text):
    py = fn.py_func
    try:
        sig = inspect.signature(py)
    except (TypeError, ValueError):  # pragma: no cover - odd callables
        return
    params = list(sig.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY) for p in params):
        raise strategy_error(name, f"{role} {qualname(fn)}{sig} must take plain positional "
                                   "parameters only")
    n_required = sum(p.default is p.empty for p in params)
    expected = len(fixed) + len(declared)
    arg_names = [p.name for p in params]
    stage = "indicator" if role == "indicators" else "signal"
    wanted = ", ".join(fixed + declared)
    if role == "indicators":
        _check_inputs_first(name, fn, sig, arg_names, fixed)
    if not n_required <= expected <= len(params):
        raise strategy_error(name, f"{role} {qualname(fn)}{sig} takes {len(params)} "
                                   f"argument(s) but sweepbt passes {expected}: ({wanted}), "
                                   f"i.e. {fixed_text} then the declared {stage} parameters "
                                   "in order")
    _check_order(name, role, fn, sig, arg_names[len(fixed):expected], declared, other_stage)


def _check_inputs_first(name, fn, sig, arg_names, fixed):
    """indicators' leading parameters named after series are the declared inputs."""
    head = []
    for a in arg_names:
        if a not in INPUTS:
            break
        head.append(a)
    if head and head != fixed:
        raise strategy_error(name, f"indicators {qualname(fn)}{sig} starts with "
                                   f"({', '.join(head)}) but inputs={tuple(fixed)}; declare "
                                   f"inputs=({', '.join(map(repr, head))},)")


def _check_order(name, role, fn, sig, tail, declared, other_stage):
    """The parameters ``tail`` a user function takes are its stage's, in declared order."""
    stage = "indicator" if role == "indicators" else "signal"
    if sorted(tail) == sorted(declared) and tail != declared:
        raise strategy_error(name, f"{role} {qualname(fn)}{sig} takes its parameters in the "
                                   f"order ({', '.join(tail)}) but they are declared in the "
                                   f"order ({', '.join(declared)}); sweepbt passes them in "
                                   "declared order")
    misplaced = [a for a in tail if a in {p.name for p in other_stage}]
    if misplaced:
        other = "signal" if stage == "indicator" else "indicator"
        raise strategy_error(name, f"{role} {qualname(fn)}{sig} takes "
                                   f"{', '.join(misplaced)}, declared in {other}_params: "
                                   f"{role} gets only the {stage} parameters "
                                   f"({', '.join(declared) or 'none'})")


def generated_module(strategy):
    """The module of compiled drivers of a custom ``strategy`` (generated on first use).

    Its ``indicator_stage`` / ``signal_stage`` are numba dispatchers: ``.stats.cache_hits``
    tells whether they came from numba's disk cache; ``__file__`` (absent for in-memory
    drivers) is the generated source.
    """
    if not (isinstance(strategy, Strategy) and isinstance(strategy.build, CustomBuild)):
        name = strategy.name if isinstance(strategy, Strategy) else strategy
        raise StrategyError(f"{name!r} is not a custom strategy", name)
    return strategy.build.spec.drivers
