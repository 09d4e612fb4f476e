"""``sweepbt warmup``: compile every kernel ahead of time (for images and CI)."""

from __future__ import annotations

import os

import sweepbt as sb


def cmd_warmup(args, out):
    cache = os.environ.get("NUMBA_CACHE_DIR") or "numba's default (beside the package or " \
        "~/.cache/numba)"
    print(f"warming up: every built-in strategy, per asset, portfolio and rank; numba "
          f"cache: {cache}", file=out)
    out.flush()

    def tell(label):
        print(f"  {label}", file=out)
        out.flush()

    done = sb.warmup(tell)
    print(done, file=out)
    return 0
