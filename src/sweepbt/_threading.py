"""Thread count and threading-layer handling for the parallel kernels.

numba's default ``workqueue`` layer aborts the process when two Python threads launch
parallel kernels at once. Before the first launch, and only if the user has not chosen a
layer, sweepbt asks numba for a thread-safe one (TBB or OpenMP). If only ``workqueue`` is
available, kernel launches are serialized by a process-wide lock instead.
"""

from __future__ import annotations

import contextlib
import threading

import numba

from sweepbt._validate import check_count

_serialize = threading.RLock()  # re-entrant: guarded calls nest (walk-forward -> equity)
_configured = False


def configure_layer():
    """Before the first kernel launch: ask numba for a thread-safe layer (see above)."""
    global _configured
    if _configured:
        return
    if numba.config.THREADING_LAYER == "default":
        try:
            from numba.np.ufunc import parallel as _parallel

            launched = _parallel._is_initialized
        except (ImportError, AttributeError):  # pragma: no cover - numba internals moved
            launched = True
        if not launched and _threadsafe_layer_available():
            numba.config.THREADING_LAYER = "threadsafe"
    _configured = True


def _threadsafe_layer_available():
    for module in ("numba.np.ufunc.tbbpool", "numba.np.ufunc.omppool"):
        try:
            __import__(module)
            return True
        except ImportError:
            continue
    return False


def check_threads(threads):
    """Validate ``threads`` (None = numba's default) against numba's maximum."""
    if threads is None:
        return None
    return check_count("threads", threads, 1, numba.config.NUMBA_NUM_THREADS, TypeError)


def n_threads(threads):
    """The thread count a kernel launched now would use."""
    return threads if threads is not None else numba.get_num_threads()


@contextlib.contextmanager
def kernel_threads(threads):
    """Run kernels with ``threads`` threads (this Python thread only), thread-safely."""
    configure_layer()
    previous = numba.get_num_threads()
    lock = _serialize if _needs_lock() else contextlib.nullcontext()
    with lock:
        if threads is not None:
            numba.set_num_threads(threads)
        try:
            yield
        finally:
            if threads is not None:
                numba.set_num_threads(previous)


def _needs_lock():
    try:
        return numba.threading_layer() == "workqueue"
    except ValueError:  # no parallel kernel launched yet: be safe
        return True


@contextlib.contextmanager
def single_thread():
    """Run the kernels launched inside on the calling thread only (inside kernel_threads)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
