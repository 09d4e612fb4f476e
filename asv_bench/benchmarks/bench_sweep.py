"""Sweep throughput and memory: sizes S, L and XL of ``common.GRIDS``.

Kernels are warmed in ``setup`` (a tiny sweep), so compilation never lands in a timing;
compile costs are measured on their own in ``bench_compile``.
"""

import time

from . import common


class Sweep:
    """``sb.sweep`` of the S (3,240 backtests), L (29,160) and XL (811,800 of 1,000,000
    combos kept by fast < slow, 1 asset) workloads, end to end: grid, indicators,
    signals, the fused simulation kernel and the result arrays."""

    params = ["S", "L", "XL"]
    param_names = ["size"]
    timeout = 600

    def setup(self, size):
        common.warm_kernels()
        self.bundle = common.gbm_bundle(*common.SHAPES[size])

    def time_sweep(self, size):
        common.run_sweep(self.bundle, size)

    def peakmem_sweep(self, size):
        common.run_sweep(self.bundle, size)


class BrokerCosts:
    """The L sweep with a broker's commission (``common.BROKER_COSTS``: per share, with a
    minimum per order) against the same sweep with proportional fees only: the issue's
    bound is within 10 %."""

    params = ["proportional", "per_share_min"]
    param_names = ["costs"]
    timeout = 300

    def setup(self, costs):
        common.warm_kernels()
        self.bundle = common.gbm_bundle(*common.SHAPES["L"])
        self.costs = common.BROKER_COSTS if costs == "per_share_min" else {}

    def time_sweep_L(self, costs):
        common.run_sweep(self.bundle, "L", **self.costs)


class Throughput:
    """Bar-evaluations per second (one bar of one backtest) of the L sweep, end to end;
    the best of three runs. The issue's target is 600 M/s."""

    timeout = 300

    def setup(self):
        common.warm_kernels()
        self.bundle = common.gbm_bundle(*common.SHAPES["L"])

    def track_bar_evaluations_per_second_L(self):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            common.run_sweep(self.bundle, "L")
            best = min(best, time.perf_counter() - t0)
        return common.bar_evaluations("L") / best

    track_bar_evaluations_per_second_L.unit = "bar-evaluations/s"


class PortfolioSweep:
    """``sb.sweep(..., portfolio=True)`` of workload P: 1,080 portfolios, each 8 assets x
    6,300 bars sharing one cash balance (54 M asset-bar evaluations), end to end."""

    timeout = 600

    def setup(self):
        common.warm_kernels()
        self.bundle = common.gbm_bundle(*common.PORTFOLIO_SHAPE)

    def time_sweep(self):
        common.run_portfolio_sweep(self.bundle)

    def peakmem_sweep(self):
        common.run_portfolio_sweep(self.bundle)

    def track_asset_bar_evaluations_per_second(self):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            common.run_portfolio_sweep(self.bundle)
            best = min(best, time.perf_counter() - t0)
        return common.portfolio_bar_evaluations() / best

    track_asset_bar_evaluations_per_second.unit = "asset-bar evaluations/s"


class RankSweep:
    """``sb.sweep`` of ``momentum_rank`` on workload R's data (100 assets x 5,040 daily bars)
    with a reduced grid, ``common.RANK_ASV_GRID``: lookbacks {63, 126, 189, 252} x top_n
    {5, 10, 20} x rebalance {W, M, Q} x stop_loss {none, 10 %} = 72 rank-and-rebalance
    portfolios (36 M asset-bar evaluations), end to end. The full workload R (216) runs in
    ``compare_peers.py --sizes R``."""

    timeout = 600

    def setup(self):
        common.warm_rank_kernels()
        self.bundle = common.gbm_bundle(*common.RANK_SHAPE)

    def time_sweep(self):
        common.run_rank_sweep(self.bundle, common.RANK_ASV_GRID)

    def peakmem_sweep(self):
        common.run_rank_sweep(self.bundle, common.RANK_ASV_GRID)

    def track_asset_bar_evaluations_per_second(self):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            common.run_rank_sweep(self.bundle, common.RANK_ASV_GRID)
            best = min(best, time.perf_counter() - t0)
        return common.rank_bar_evaluations(grid=common.RANK_ASV_GRID) / best

    track_asset_bar_evaluations_per_second.unit = "asset-bar evaluations/s"
