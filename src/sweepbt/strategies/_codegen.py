"""Source text of the compiled drivers of a user strategy (sweepbt.strategies.custom).

A custom strategy's two ``@njit`` functions are called by two generated parallel drivers:

* ``indicator_stage(ins, spans, total, nf, slots, ips, bank, status)``: the features of
  indicator combos ``slots`` on every asset, into the flat feature ``bank``;
* ``signal_stage(bank, spans, total, nf, row_slot, sps, codes, counts, status, bad)``: the
  dense signal codes and event counts of signals ``q`` on every asset.

``ins`` is the tuple of input series (2-D, one row per asset), ``spans`` the tuple
``(start, end, offs)`` of the assets' spans and their offsets in a flat bank, ``ips`` /
``sps`` the tuples of per-combination parameter values (one 1-D array per declared
parameter, possibly empty). The drivers thus take the same number of arguments whatever the
strategy declares; only the generated calls of the user's functions grow with it.

This module renders that text and nothing else: it imports nothing from sweepbt and not
numba (the text imports numba when it is executed), so it can be read and tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass

#: bump when the generated drivers change in a way their text does not show; every
#: strategy then gets a new module (the rendered text is part of the module's key too)
GENERATOR_VERSION = 3


@dataclass(frozen=True)
class DriverShape:
    """What the generated text depends on: the arity of the user's functions."""

    n_inputs: int
    n_indicator_params: int
    n_signal_params: int


_HEADER = '''"""Compiled drivers of a sweepbt custom strategy (generated: do not edit).

indicators: {ind}; signal: {sig}.

numba {numba}, generator {generator}. The file is named by a hash of the strategy's source
and is never rewritten: its mtime keys numba's cache.
"""

import importlib

import numpy as np
from numba import njit, prange

{imports}'''

# by import_module: a dotted name (a module of a package) whose parent package is not
# importable here, as load_strategy may register it, is found in sys.modules all the same
_IMPORT = '''user_{role}_module = importlib.import_module({module!r})
user_{role} = user_{role}_module.{qualname}
'''

_BODY = '''

@njit(parallel=True, cache={cache})
def indicator_stage(ins, spans, total, nf, slots, ips, bank, status):
    """Features of indicator combos ``slots`` (params ``ips[*][k]``) on every asset."""
    start, end, offs = spans
{unpack_ins}{unpack_ips}    n_assets = start.shape[0]
    for t in prange(slots.shape[0] * n_assets):
        k = t // n_assets
        a = t - k * n_assets
        s = start[a]
        e = end[a]
        span = e - s
        feats = user_indicators({in_slices}{ip_items})
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
def signal_stage(bank, spans, total, nf, row_slot, sps, codes, counts, status, bad):
    """Dense codes and event counts of signals ``q`` (params ``sps[*][q]``) on every asset."""
    start, end, offs = spans
{unpack_sps}    n_assets = start.shape[0]
    for r in prange(row_slot.shape[0] * n_assets):
        q = r // n_assets
        a = r - q * n_assets
        span = end[a] - start[a]
        base = (row_slot[q] * total + offs[a]) * nf
        feats = bank[base:base + nf * span].reshape((nf, span))
        cb = q * total + offs[a]
        n = 0
        for i in range(span):
            c = user_signal(feats, i{sp_items})
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


def _names(prefix, n):
    return [f"{prefix}{k}" for k in range(n)]


def _unpack(prefix, n, packed):
    """``    p0, p1, = packed`` (nothing for an empty tuple)."""
    if not n:
        return ""
    return "    " + "".join(f"{x}, " for x in _names(prefix, n)) + f"= {packed}\n"


def render_body(shape, *, all_codes, cache):
    """The two drivers' source text: it expects ``np``, ``njit``, ``prange`` and the user's
    functions ``user_indicators`` / ``user_signal`` as globals of the module it runs in."""
    n_in, n_ip, n_sp = shape.n_inputs, shape.n_indicator_params, shape.n_signal_params
    return _BODY.format(
        cache=bool(cache), all_codes=int(all_codes),
        unpack_ins=_unpack("in", n_in, "ins"),
        unpack_ips=_unpack("ip", n_ip, "ips"),
        unpack_sps=_unpack("sp", n_sp, "sps"),
        in_slices=", ".join(f"{x}[a, s:e]" for x in _names("in", n_in)),
        ip_items="".join(f", {x}[k]" for x in _names("ip", n_ip)),
        sp_items="".join(f", {x}[q]" for x in _names("sp", n_sp)))


def render_module(shape, *, all_codes, indicators, signal, numba_version):
    """The source text of a generated module file: it imports the user's functions by name
    (``indicators`` / ``signal``: ``(module name, qualified name)``) and defines the two
    drivers with numba's disk cache on."""
    imports = "".join(_IMPORT.format(module=module, qualname=qualname, role=role)
                      for role, (module, qualname) in (("indicators", indicators),
                                                       ("signal", signal)))
    header = _HEADER.format(ind=".".join(indicators), sig=".".join(signal),
                            numba=numba_version, generator=GENERATOR_VERSION,
                            imports=imports)
    return header + render_body(shape, all_codes=all_codes, cache=True)
