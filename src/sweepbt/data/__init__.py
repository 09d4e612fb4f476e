"""Data files shipped with sweepbt (the demo data set, ``demo.parquet``)."""
