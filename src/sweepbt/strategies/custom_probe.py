"""The definition-time probe of a user strategy (pure Python, bounds-checked).

:func:`probe` runs the pure-Python versions of the user's functions (``fn.py_func``) on
deterministic synthetic data with the default parameters: it checks the features' shape and
dtype and the signal codes, and look-ahead (features and signals computed on the first T
bars must equal those computed on all bars, for several T).
"""

from __future__ import annotations


import numpy as np

from sweepbt._validate import is_integer
from sweepbt.strategies.custom_messages import (CODES_HELP, describe_exc, param_text, show,
                                     strategy_error)
from sweepbt.kernels.codes import ALL_CODES

#: bars of synthetic data the definition-time probe runs on (more for long windows)
PROBE_BARS = 160


def synthetic(n, seed=20240611):
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


def _check_features(name, feats, n, nf_expected, where):
    if not isinstance(feats, np.ndarray):
        raise strategy_error(name, f"indicators must return a 2-D float64 numpy array "
                                   f"(n_features, span_len); it returned "
                                   f"{type(feats).__name__}")
    if feats.ndim != 2:
        raise strategy_error(name, f"indicators must return a 2-D float64 array (n_features, "
                                   f"span_len); it returned a {feats.ndim}-D array of shape "
                                   f"{feats.shape} {where} (one feature: use out[0, :] of an "
                                   "array of shape (1, span_len))")
    if feats.dtype != np.float64:
        raise strategy_error(name, f"indicators must return a float64 array; it returned "
                                   f"{feats.dtype}")
    if feats.shape[1] != n or (nf_expected and feats.shape[0] != nf_expected) \
            or feats.shape[0] < 1:
        want = f"({nf_expected or 'n_features'}, {n})"
        raise strategy_error(name, f"indicators returned shape {feats.shape} {where}; "
                                   f"expected {want}: one row per feature, one column per "
                                   "bar of the span")


def _run_indicators(spec, data, n, params, nf_expected):
    name = spec.name
    args = [_readonly(data[x][:n]) for x in spec.inputs]
    shown = param_text(spec.indicator_params, params)
    where = f"on {n} bar(s) of synthetic data with {shown}"
    try:
        feats = spec.indicators.py_func(*args, *params)
    except IndexError as exc:
        raise strategy_error(name, f"indicators raised {describe_exc(exc)} {where}: it reads "
                                   "past the end of its inputs (look-ahead), or fails on a "
                                   "span shorter than its window (an asset's span can be "
                                   "short: return NaN where a value is undefined)") from None
    except ValueError as exc:
        if "read-only" in str(exc):
            raise strategy_error(name, "indicators must not modify its inputs (they are the "
                                       "data, read-only)") from None
        raise strategy_error(name, f"indicators raised {describe_exc(exc)} {where}") from None
    except Exception as exc:  # noqa: BLE001 - reported with the strategy's name
        raise strategy_error(name, f"indicators raised {describe_exc(exc)} {where}") from None
    _check_features(name, feats, n, nf_expected, where)
    return feats


def _signal_raised(spec, exc, i, n, params):
    """The error of a signal that raised ``exc`` at bar ``i`` of ``n``."""
    name = spec.name
    if isinstance(exc, IndexError):
        text = str(exc)
        what = ("reads beyond bar i (look-ahead)" if "axis 1" in text or i == n - 1
                else "reads a feature row indicators does not produce"
                if "axis 0" in text else "indexes out of bounds")
        return strategy_error(name, f"signal raised IndexError at bar {i} of {n} ({text}): "
                                    f"it {what}")
    if isinstance(exc, ValueError) and "read-only" in str(exc):
        return strategy_error(name, "signal must not modify features (read-only)")
    return strategy_error(name, f"signal raised {describe_exc(exc)} at bar {i} with "
                                f"{param_text(spec.signal_params, params)}")


def _run_signal(spec, feats, n, params):
    name = spec.name
    fn = spec.signal.py_func
    out = np.zeros(n, np.int64)
    view = _readonly(feats[:, :n])
    for i in range(n):
        try:
            code = fn(view, i, *params)
        except Exception as exc:  # noqa: BLE001 - reported with the strategy's name
            raise _signal_raised(spec, exc, i, n, params) from None
        if not is_integer(code):
            raise strategy_error(name, f"signal returned {show(code)} "
                                       f"({type(code).__name__}) at bar {i}; it must return "
                                       f"an integer code: {CODES_HELP}")
        if not 0 <= code <= ALL_CODES:
            raise strategy_error(name, f"signal returned {int(code)} at bar {i}, outside "
                                       f"0..{ALL_CODES}; codes are {CODES_HELP}")
        out[i] = code
    return out


def _same(a, b):
    return np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)


def probe(spec, n_features):
    """Run the pure-Python functions on synthetic data; return n_features."""
    windows = [p.default for p in spec.indicator_params + spec.signal_params
               if p.kind == "window"]
    longest = max(windows, default=1)
    n = max(PROBE_BARS, 2 * longest + 20)
    data = synthetic(n)
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
            raise strategy_error(spec.name, f"indicators: feature {f} at bar {k} changes when "
                                            f"the bars after bar {t - 1} are removed "
                                            f"({show(full[f, k])} with all {n} bars, "
                                            f"{show(part[f, k])} with the first {t}): it "
                                            "reads beyond bar i (look-ahead)")
        cut = _run_signal(spec, full, t, sig)
        diff = np.flatnonzero(cut != codes[:t])
        if diff.size:
            k = int(diff[0])
            raise strategy_error(spec.name, f"signal at bar {k} changes when later bars are "
                                            f"removed ({codes[k]} with all {n} bars, "
                                            f"{cut[k]} with the first {t}): it reads beyond "
                                            "bar i (look-ahead), or wraps around with a "
                                            "negative index")
    return nf
