"""asv benchmarks for sweepbt (see docs/performance.md); shared workloads in ``common``."""
