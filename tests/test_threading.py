"""Concurrent calls from several Python threads, under every threading layer available.

numba's ``workqueue`` layer aborts the process ("Concurrent access has been detected") when
two threads launch parallel kernels at once; sweepbt serializes its launches there and picks
a thread-safe layer otherwise. Each layer runs in its own subprocess (a layer is chosen once
per process).
"""

import os
import subprocess
import sys
import textwrap

import pytest

LAYERS = {"workqueue": "numba.np.ufunc.workqueue", "omp": "numba.np.ufunc.omppool",
          "tbb": "numba.np.ufunc.tbbpool"}


def _layer_env(layer):
    """The environment of a subprocess that runs under ``layer``. The ``tbb`` wheel (a test
    dependency) puts libtbb in the environment's lib/, where the loader must be told."""
    lib = os.path.join(sys.prefix, "lib")
    path = os.pathsep.join(p for p in (lib, os.environ.get("LD_LIBRARY_PATH")) if p)
    return dict(os.environ, NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS="2",
                LD_LIBRARY_PATH=path)


def _layer_available(layer):
    probe = subprocess.run([sys.executable, "-c", f"import {LAYERS[layer]}"],
                           env=_layer_env(layer), capture_output=True)
    return probe.returncode == 0


SCRIPT = textwrap.dedent("""
    import threading
    import numba
    import numpy as np
    import sweepbt as sb

    data = sb.demo().select(["ALPHA", "BRAVO", "CHARLIE"])
    expected_bt = sb.backtest(data, "sma_cross", fast=10, slow=50, stop_atr=2.0).equity
    expected_sw = sb.sweep(data, "rsi_reversion", rsi_window=[7, 14], lower=[20, 30],
                           stop_loss=[None, 0.05]).table
    errors = []

    def work(k):
        try:
            for _ in range(3):
                bt = sb.backtest(data, "sma_cross", fast=10, slow=50, stop_atr=2.0,
                                 threads=1 + k % 2)
                assert np.array_equal(bt.equity, expected_bt, equal_nan=True)
                res = sb.sweep(data, "rsi_reversion", rsi_window=[7, 14], lower=[20, 30],
                               stop_loss=[None, 0.05], threads=1 + k % 2)
                assert res.table.equals(expected_sw)
        except BaseException as exc:  # reported by the main thread
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    print("layer", numba.threading_layer())
""")


@pytest.mark.slow
@pytest.mark.parametrize("layer", list(LAYERS))
def test_four_threads_under_each_layer(layer):
    if not _layer_available(layer):
        pytest.skip(f"threading layer {layer} is not installed here")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=_layer_env(layer),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"layer {layer}" in proc.stdout
