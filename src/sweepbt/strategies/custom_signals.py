"""Running a user strategy: its ``Strategy.build`` and the signal source the engine calls.

The indicator stage runs once per distinct indicator-parameter combination per asset, the
signal stage once per distinct signal per asset, both inside the compiled parallel drivers
generated for the strategy (:mod:`sweepbt.strategies.custom_cache`), which produce the
dense codes compacted here into the CSR signal events the simulation kernel consumes. numba
typing errors at the first compile are re-raised as ``StrategyError("strategy 'x': ...")`` with
numba's message shortened to its first informative line.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import re

import numba
import numpy as np

from sweepbt._threading import configure_layer
from sweepbt.strategies.custom_messages import (CODES_HELP, first_line, param_text, qualname,
                                     strategy_error, strip_ansi)
from sweepbt.kernels.codes import ALL_CODES
from sweepbt.kernels.signals import codes_to_events
from sweepbt.strategies.builtin import STRATEGIES, Signals

#: the indicator features and dense signal codes of one events() block stay under this
BLOCK_BYTES = 256 << 20


class CustomBuild:
    """``Strategy.build`` of a custom strategy: ``build(bundle, values) -> signal source``."""

    def __init__(self, spec):
        self.spec = spec

    def __call__(self, bundle, values):
        configure_layer()
        return CustomSignals(self.spec, bundle, values)

    def __repr__(self):
        return f"<custom strategy {self.spec.name!r} build>"


def register_custom(strategy):
    """Add the custom ``strategy`` to ``STRATEGIES``; a built-in's name is refused."""
    old = STRATEGIES.get(strategy.name)
    if old is not None and not old.is_user:
        raise strategy_error(strategy.name, "a built-in strategy has this name; pick another "
                                            "name")
    STRATEGIES[strategy.name] = strategy


# ----------------------------------------------------------------------------------------
# numba errors, named after the strategy


def _location(message, files):
    """'file.py, line N' of the first place in ``message`` inside one of ``files``."""
    text = strip_ansi(message)
    found = [(m.start(), m.group(1), m.group(2))
             for pattern in (r'File "([^"]+)", line (\d+)', r" at (\S+\.py) \((\d+)\)")
             for m in re.finditer(pattern, text)]
    for _, path, line in sorted(found):
        if os.path.realpath(path) in files:
            return f"{os.path.basename(path)}, line {line}"
    return None


def _compile_error(spec, exc, arg_types):
    """A StrategyError naming the strategy and the function numba could not compile."""
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
    first = first_line(message)
    if culprit is None:
        return strategy_error(spec.name, f"numba could not compile the strategy's drivers: "
                                         f"{first}")
    role, fn, argtys = culprit
    shown = ", ".join(str(t) for t in argtys)
    return strategy_error(spec.name, f"numba cannot compile {role} {qualname(fn)}({shown}): "
                                     f"{first}" + (f" ({loc})" if loc else ""))


def _types_of(spec):
    from numba.core import types as nt

    arr1 = nt.Array(nt.float64, 1, "C", readonly=True)
    arr2 = nt.Array(nt.float64, 2, "C", readonly=True)
    scalar = {"window": nt.int64, "float": nt.float64}
    ind = [arr1] * len(spec.inputs) + [scalar[p.kind] for p in spec.indicator_params]
    sig = [arr2, nt.int64] + [scalar[p.kind] for p in spec.signal_params]
    return ind, sig


def _call(spec, fn, *args):
    """Call a driver; numba typing/lowering errors become a StrategyError naming the strategy."""
    try:
        return fn(*args)
    except numba.core.errors.NumbaError as exc:
        raise _compile_error(spec, exc, _types_of(spec)) from None


# ----------------------------------------------------------------------------------------
# the signal source


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
        self.spans = (self.start, self.end, self.offs)  # the drivers' packed layout
        self.inputs = tuple(_ro(getattr(bundle, x)) for x in spec.inputs)
        self._features = None  # (first indicator combo, count, bank)
        self._last = None

    # -- indicator stage ------------------------------------------------------------------

    def _unravel(self, flat, shape, arrays):
        if not arrays:
            return ()
        idx = np.unravel_index(np.asarray(flat, dtype=np.int64), shape)
        return tuple(np.ascontiguousarray(v[i]) for v, i in zip(arrays, idx))

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
            self._compute_features(need, g0, bank)
        bank.flags.writeable = False
        self._features = (g0, g1 - g0, bank)
        return bank

    def _compute_features(self, need, g0, bank):
        """Features of indicator combos ``need`` into ``bank`` (which starts at ``g0``)."""
        nf, total = self.spec.n_features, self.total
        n_tasks = need.size * self.bundle.n_assets
        status = np.zeros((n_tasks, 3), np.int64)
        _call(self.spec, self.drivers.indicator_stage, self.inputs, self.spans, total, nf,
              need - g0, self._unravel(need, self.ind_shape, self.ind_values), bank, status)
        if status[:, 0].any():
            t = int(np.flatnonzero(status[:, 0])[0])
            k, a = divmod(t, self.bundle.n_assets)
            params = [v[0] for v in self._unravel([need[k]], self.ind_shape, self.ind_values)]
            span = int(self.end[a] - self.start[a])
            raise strategy_error(self.spec.name, (
                f"indicators returned shape ({status[t, 1]}, {status[t, 2]}) on "
                f"{self.bundle.symbols[a]} ({span} bars) with "
                f"{param_text(self.spec.indicator_params, params)}; expected "
                f"({nf}, {span}): one row per feature, one column per bar of the span"))

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
        _call(self.spec, self.drivers.signal_stage, bank, self.spans, total, nf, ind - g0,
              self._unravel(j, self.sig_shape, self.sig_values), codes, counts, status, bad)
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
        raise strategy_error(self.spec.name, (
            f"signal returned {shown!r} ({what}) at span bar {bar} of "
            f"{self.bundle.symbols[a]} with {param_text(declared, params)}; codes are "
            f"{CODES_HELP}"))

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
