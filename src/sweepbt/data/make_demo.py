"""Generate ``demo.parquet``, the data set behind :func:`sweepbt.demo`.

Run ``python -m sweepbt.data.make_demo`` to (re)write it next to this file. The output is a
pure function of the constants below and the seed: ten synthetic assets with daily bars on
weekdays (minus 1 January and 25 December) from 2004-01-02 to 2024-12-31, long format
(``timestamp, symbol, open, high, low, close, volume``), sorted by symbol then timestamp,
timestamps at midnight UTC, prices rounded to 4 decimals.

Each asset's close follows a geometric random walk whose drift and volatility switch between
bull / bear / sideways regimes (a seeded Markov chain), with fat-tailed (Student-t) shocks,
so trends and volatility clusters exist for strategies to find. Open is near the previous
close (an overnight gap), high and low extend beyond open and close. Two assets list late,
one delists early, one does both, so per-asset spans differ.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20240101
FIRST, LAST = "2004-01-02", "2024-12-31"

# symbol, first price, annual drift, annual vol, listed, delisted (None: whole period)
ASSETS = [
    ("ALPHA", 45.0, 0.09, 0.18, None, None),
    ("BRAVO", 120.0, 0.05, 0.25, None, None),
    ("CHARLIE", 30.0, 0.12, 0.35, None, None),
    ("DELTA", 80.0, 0.03, 0.15, None, None),
    ("ECHO", 15.0, 0.15, 0.45, None, None),
    ("FOXTROT", 60.0, 0.07, 0.22, None, None),
    ("GOLF", 200.0, 0.04, 0.12, None, None),
    ("HOTEL", 25.0, 0.10, 0.30, "2009-06-01", None),
    ("INDIA", 50.0, 0.02, 0.28, None, "2018-09-28"),
    ("JULIET", 35.0, 0.08, 0.40, "2012-03-01", "2021-06-30"),
]

# regimes: (drift added to the asset's drift, vol multiplier); mean stay ~ 1 / (1 - p_stay)
REGIMES = [(0.20, 0.8), (-0.30, 1.5), (0.0, 1.0)]
P_STAY = 0.995
DAYS = 252.0


def trading_days() -> np.ndarray:
    n = int(np.busday_count(FIRST, np.datetime64(LAST) + 1))
    days = np.busday_offset(np.datetime64(FIRST), np.arange(n), roll="forward")
    md = np.char.add(
        np.char.zfill((days.astype("datetime64[M]").astype(int) % 12 + 1).astype(str), 2),
        np.char.zfill(((days - days.astype("datetime64[M]")).astype(int) + 1).astype(str), 2))
    holiday = (md == "0101") | (md == "1225")
    return days[~holiday]


def simulate(rng: np.random.Generator, n: int, p0: float, mu: float, sigma: float):
    # regime path
    state = np.empty(n, dtype=np.int64)
    s = 2
    u = rng.random(n)
    nxt = rng.integers(0, 3, n)
    for i in range(n):
        if u[i] > P_STAY:
            s = int(nxt[i])
        state[i] = s
    drift = mu + np.array([r[0] for r in REGIMES])[state]
    vol = sigma * np.array([r[1] for r in REGIMES])[state]
    sd = vol / np.sqrt(DAYS)
    shock = rng.standard_t(5, n) / np.sqrt(5.0 / 3.0)  # unit variance
    ret = (drift - 0.5 * vol**2) / DAYS + sd * shock  # close-to-close log return
    gap = 0.25 * ret + 0.1 * sd * rng.standard_normal(n)  # overnight part
    logc = np.log(p0) + np.cumsum(ret)
    # keep prices in a sane range: shift the whole path (returns unchanged)
    lo_shift = np.log(2.0) - logc.min()
    if lo_shift > 0:
        logc += lo_shift
    close = np.exp(logc)
    prev = np.concatenate(([close[0] * np.exp(-ret[0])], close[:-1]))
    open_ = prev * np.exp(gap)
    wick = 0.6 * sd
    high = np.maximum(open_, close) * np.exp(np.abs(rng.standard_normal(n)) * wick)
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.standard_normal(n)) * wick)
    volume = np.round(1e6 * (p0 / close) ** 0.3 * np.exp(0.4 * rng.standard_normal(n))
                      * (1.0 + 25.0 * np.abs(ret)))
    o, h, lo, c = (np.round(x, 4) for x in (open_, high, low, close))
    h = np.maximum(h, np.maximum(o, c))
    lo = np.minimum(lo, np.minimum(o, c))
    return o, h, lo, c, volume


def build() -> pa.Table:
    rng = np.random.default_rng(SEED)
    days = trading_days()
    parts = {k: [] for k in ("timestamp", "symbol", "open", "high", "low", "close", "volume")}
    for sym, p0, mu, sigma, listed, delisted in ASSETS:
        sub = np.random.default_rng(rng.integers(2**63))
        keep = np.ones(days.size, dtype=bool)
        if listed:
            keep &= days >= np.datetime64(listed)
        if delisted:
            keep &= days <= np.datetime64(delisted)
        d = days[keep]
        o, h, lo, c, v = simulate(sub, d.size, p0, mu, sigma)
        parts["timestamp"].append(d.astype("datetime64[ns]"))
        parts["symbol"].append(np.full(d.size, sym))
        for name, x in zip(("open", "high", "low", "close", "volume"), (o, h, lo, c, v)):
            parts[name].append(x.astype(np.float64))
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    return pa.table({
        "timestamp": pa.array(cols["timestamp"].view(np.int64), pa.int64()).cast(
            pa.timestamp("ns", tz="UTC")),
        "symbol": pa.array(cols["symbol"].tolist(), pa.string()),
        **{k: pa.array(cols[k], pa.float64()) for k in ("open", "high", "low", "close",
                                                         "volume")},
    })


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path(__file__).with_name("demo.parquet")
    table = build()
    pq.write_table(table, out, compression="zstd", compression_level=9, version="2.6",
                   use_dictionary=["symbol"], write_statistics=False,
                   use_byte_stream_split=["open", "high", "low", "close", "volume"])
    # the demo must pass sweepbt's own validation
    from sweepbt.data import load

    b = load(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): {b}")
    print(f"SHA-256 {hashlib.sha256(out.read_bytes()).hexdigest()} (DEMO_SHA256 in "
          "sweepbt/data/loading.py must say the same)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
