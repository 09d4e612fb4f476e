"""``sweepbt warmup``: compile every kernel ahead of time (for images and CI)."""

from __future__ import annotations

import os

import sweepbt as sb
from sweepbt._compiling import say, watch
from sweepbt.warming import KERNELS


def cmd_warmup(args, out):
    cache = os.environ.get("NUMBA_CACHE_DIR") or "numba's default (beside the package or " \
        "~/.cache/numba)"
    print(f"warming up: every built-in strategy, per asset, portfolio and rank; numba "
          f"cache: {cache}", file=out)
    out.flush()

    def tell(label):
        print(f"  {label}", file=out)
        out.flush()

    with watch(KERNELS, say):  # on a cold cache: "compiling kernels (... about N s)"
        done = sb.warmup(tell)
    print(done, file=out)
    return 0
