"""``sweepbt warmup``: compile every kernel ahead of time (for images and CI)."""

from __future__ import annotations

import os

import sweepbt as sb
from sweepbt._compiling import say, watch
from sweepbt._warming import kernels_of_modes, modes_of


def cmd_warmup(args, out):
    modes = modes_of(args.mode)
    cache = os.environ.get("NUMBA_CACHE_DIR") or "numba's default (beside the package or " \
        "~/.cache/numba)"
    what = "per asset, portfolio and rank" if len(modes) == 3 else " and ".join(modes)
    print(f"warming up: every built-in strategy, {what}; numba cache: {cache}", file=out)
    out.flush()

    def tell(label):
        print(f"  {label}", file=out)
        out.flush()

    # on a cold cache: "compiling kernels (first run only, about N s)"
    with watch(kernels_of_modes(modes), say):
        done = sb.warmup(tell, mode=modes)
    print(done, file=out)
    return 0
