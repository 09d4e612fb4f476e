"""Seeing numba compile: the "compiling kernels" line and the compile time of a run.

A kernel's first call in a process either loads its machine code from numba's disk cache
(well under a second) or, on a cache miss, compiles it: seconds to minutes, once per
machine. numba reports each real compilation (not a cache load) as a ``numba:compile``
event; :class:`watch` listens to them while a run executes:

* ``seconds``: the time spent compiling (outermost compilations only, so a kernel that
  compiles its helpers is counted once), which the results report apart from the run time
  so that throughput is the warm figure;
* ``compiled``: the functions compiled (``module.qualname``, numba's own helpers too);
* ``announce``: called once, with :func:`estimate`'s seconds, when the first compilation
  starts (every public call and the CLI print :func:`message` on stderr then, so a first
  run never sits silent). Only the outermost watch with an ``announce`` announces: a CLI
  command around ``sb.sweep`` prints one line.

Watches nest (a CLI command around ``sb.sweep`` around a plan): each sees every compilation
made while it is open.
"""

from __future__ import annotations

import sys
import threading
import time

from numba.core import event

from sweepbt import kernels

#: about how many seconds each big kernel takes to compile cold, helpers included (numba
#: 0.68, one core of a 2-core Zen 4 machine at load average 1; docs/performance.md)
COLD_SECONDS = {
    "sweep_metrics": 12, "equity_paths": 9, "backtest_record": 9,
    "portfolio_metrics": 20, "portfolio_equity_paths": 18, "portfolio_record": 18,
    "rank_metrics": 40, "rank_equity_paths": 40, "rank_record": 40,
}
#: the indicator and signal kernels of a strategy, together, about
SMALL_SECONDS = 5
#: CPU seconds of :func:`_calibration_loop` on the machine of COLD_SECONDS
CALIBRATION_SECONDS = 0.023

_lock = threading.Lock()
_open = []  # the watches open now, outermost first
_depth = 0  # nesting of numba:compile events (a kernel compiling its helpers)
_started = 0.0


def notice(plan, uses=("metrics",)):
    """A :class:`watch` of the kernels of ``plan``'s engine (``uses``: "metrics",
    "record", "equity") that says on stderr when they compile."""
    return watch(plan.engine.kernel_names(uses), say)


def ready(name):
    """Whether kernel ``name`` runs without compiling: compiled in this process, or an
    entry in numba's disk cache (its index file holds one)."""
    dispatcher = getattr(kernels, name)
    if dispatcher.overloads:
        return True
    try:
        return bool(dispatcher._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - no disk cache (NullCache), unreadable index
        return False


def estimate(names):
    """About how many seconds compiling takes here and now for a run that uses the kernels
    ``names``: the reference machine's seconds times :func:`machine_factor`."""
    cold = [COLD_SECONDS.get(n, SMALL_SECONDS) for n in set(names) if not ready(n)]
    return (sum(cold) + SMALL_SECONDS) * machine_factor()


def _calibration_loop():
    total = 0
    for k in range(300_000):
        total += k * k % 7
    return total


def machine_factor():
    """How many times longer than on the reference machine (quiet) a compilation takes
    here now: the wall time of a short pure-Python loop over its time there. numba's
    compiler is mostly pure Python, and a busy machine stretches both alike (about 0.02
    to 0.1 s, spent only when something compiles)."""
    t0 = time.perf_counter()
    _calibration_loop()
    return max(0.5, (time.perf_counter() - t0) / CALIBRATION_SECONDS)


def message(seconds):
    """The line printed while kernels compile."""
    return f"compiling kernels (first run only, about {seconds:.0f} s)"


def say(seconds):
    """Print :func:`message` on stderr (the CLI and every public call)."""
    sys.stderr.write(message(seconds) + "\n")
    sys.stderr.flush()


class _Listener(event.Listener):
    def on_start(self, ev):
        global _depth, _started
        with _lock:
            _depth += 1
            if _depth > 1:
                return
            _started = time.perf_counter()
            watches = list(_open)
        _announce(watches)

    def on_end(self, ev):
        global _depth
        dispatcher = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
        func = getattr(dispatcher, "py_func", None)
        name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"
        with _lock:
            _depth = max(_depth - 1, 0)
            took = time.perf_counter() - _started if _depth == 0 else 0.0
            for w in _open:
                w.compiled.append(name)
                w.seconds += took


def _announce(watches):
    teller = next((w for w in watches if w.announce is not None), None)
    if teller is None or any(w.announced for w in watches):
        return
    for w in watches:
        w.announced = True
    names = [n for w in watches for n in w.kernels]
    teller.announce(estimate(names))


_registered = False


def _register():
    global _registered
    with _lock:
        if not _registered:
            event.register("numba:compile", _Listener())
            _registered = True


class watch:
    """``with watch(kernels, announce) as w:`` ... then ``w.seconds`` spent compiling and
    ``w.compiled`` (``module.qualname`` of each function compiled). ``kernels`` names the
    big kernels the run uses (for the estimate); ``announce(seconds)`` is called when the
    first compilation starts."""

    def __init__(self, kernels=(), announce=None):
        self.kernels = tuple(kernels)
        self.announce = announce
        self.announced = False
        self.seconds = 0.0
        self.compiled = []

    def __enter__(self):
        _register()
        with _lock:
            _open.append(self)
        return self

    def __exit__(self, *exc):
        with _lock:
            _open.remove(self)
        return False
