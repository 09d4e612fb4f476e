"""Single-backtest latency: ``sb.backtest`` (stats, trades and per-bar equity recorded)."""

from . import common


class Backtest:
    """One ``sma_cross`` backtest with a stop, a take-profit and fees, on one asset of
    2,520 daily bars or 1,000,000 minute bars."""

    params = [2_520, 1_000_000]
    param_names = ["n_bars"]
    timeout = 300

    def setup(self, n_bars):
        common.warm_kernels()
        self.bundle = common.gbm_bundle(1, n_bars)

    def time_backtest(self, n_bars):
        common.run_backtest(self.bundle)
