"""``sb.load`` of a 10,000,000-row long-format Parquet file (10 symbols x 1,000,000
minute bars): read, validate and pivot into a Bundle."""

import os

import pyarrow.parquet as pq

from . import common

N_SYMBOLS = 10
N_BARS = 1_000_000


class Load:
    timeout = 600

    def setup_cache(self):
        # asv runs setup_cache in a temporary directory that stays the working directory
        # of this class's benchmarks and is removed afterwards
        path = os.path.abspath("prices_10m.parquet")
        pq.write_table(common.long_table(N_SYMBOLS, N_BARS), path)
        return path

    def setup(self, path):
        import sweepbt  # noqa: F401  (import cost stays out of the timing)

    def time_load_parquet_10m_rows(self, path):
        import sweepbt as sb

        sb.load(path)

    def peakmem_load_parquet_10m_rows(self, path):
        import sweepbt as sb

        sb.load(path)
