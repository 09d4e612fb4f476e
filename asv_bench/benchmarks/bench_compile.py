"""Start-up cost: a fresh Python process that imports sweepbt and runs a first sweep.

``cold``: with an empty ``NUMBA_CACHE_DIR``, so every kernel the sweep uses is compiled.
``warm``: with a cache filled by an earlier process, so kernels are loaded from disk.
Each returns the seconds from just before ``import sweepbt`` to the end of the first
sweep, measured inside the child process (interpreter start-up excluded).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

CHILD = r"""
import json, time
t0 = time.perf_counter()
import sweepbt as sb
t1 = time.perf_counter()
import numpy as np
rng = np.random.default_rng(7)
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500)))
bundle = sb.Bundle.from_arrays(close, close * 1.01, close * 0.99, close)
t2 = time.perf_counter()
sb.sweep(bundle, "sma_cross", fast=[3, 5], slow=[8, 12], stop_loss=[0.05, None],
         take_profit=[0.1, None], fees=0.001, fill="close", constraint="fast < slow")
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "sweep": t3 - t2, "total": (t1 - t0) + (t3 - t2)}))
"""


def _child(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


class Compile:
    timeout = 900
    number = 1
    repeat = 1

    def setup(self):
        self.cache_dir = tempfile.mkdtemp(prefix="sweepbt-numba-cache-")

    def teardown(self):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def track_compile_cold(self):
        return _child(self.cache_dir)["total"]

    track_compile_cold.unit = "seconds"

    def track_compile_warm(self):
        _child(self.cache_dir)  # fill the cache
        return _child(self.cache_dir)["total"]

    track_compile_warm.unit = "seconds"
