"""Strategy registry: each strategy declares its parameters and builds its feature cache.

A strategy turns a Bundle and the per-combo values of its parameters into sparse signal
events (see :mod:`sweepbt.kernels.signals`): each distinct indicator parameter is computed
once per asset (the indicator stage), then each distinct signal once per asset, and every
combo points at its signal's events. Adding a strategy is one indicator kernel plus one
``register`` call.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sweepbt import kernels
from sweepbt._params import evaluate_constraint


#: ``Strategy.origin``: sweepbt's own signal or rank strategies, or a user's, defined in a
#: .py file (sent to Dask workers as that file) or elsewhere (a notebook, the REPL)
BUILTIN, RANK, USER_FILE, USER_DEFINED = "builtin", "rank", "user-file", "user-defined"


@dataclass(frozen=True)
class Param:
    """A strategy parameter: ``kind`` is ``"window"`` (integer bars >= 1), ``"count"``
    (an integer >= 0), ``"choice"`` (a word or number of params.CHOICE_PARAMS) or
    ``"float"``.

    ``check(name, value, where)``, when given, validates one value of the parameter beyond
    its kind (bounds such as ``k > 0``) and raises ValueError naming it; ``where`` is
    ``""`` for a scalar or ``"[i]"`` for item ``i`` of a grid axis.
    """

    name: str
    kind: str
    default: object
    doc: str
    check: Callable = None


def in_range(low=-math.inf, high=math.inf, low_open=False, high_open=False):
    """A ``Param.check`` accepting ``low <= x <= high`` (``<`` on an open side)."""
    left = "(" if low_open else "["
    right = ")" if high_open or high == math.inf else "]"

    def check(name, value, where=""):
        ok_low = value > low if low_open else value >= low
        ok_high = value < high if high_open else value <= high
        if not (ok_low and ok_high):
            raise ValueError(
                f"{name}{where} must be in {left}{low:g}, {high:g}{right}, got {value!r}")
        return value

    check.bounds = (low, high, low_open, high_open)
    return check


@dataclass(frozen=True)
class Strategy:
    """A registered strategy.

    ``build(bundle, values)`` gets each parameter's axis values (``values[name]``, an
    array), runs the indicator stage, and returns a signal source
    (:class:`sweepbt.protocols.SignalSource`) whose ``events(lo, hi)`` gives
    :class:`Signals` for signals ``lo..hi-1``; signal ``s`` is
    combination ``s`` of the parameter values in C order over ``params`` (the last
    parameter varies fastest).

    ``requires``, when given, is a condition every combination that runs must meet,
    written like a sweep constraint over the strategy's parameters (``"fast < slow"``);
    see :meth:`check_combos`.
    """

    name: str
    params: tuple
    build: Callable
    doc: str
    requires: str = None
    #: a rank strategy's score parameters (its ``build`` returns a ranking.RankSource);
    #: None for a signal strategy
    score_params: tuple = None
    #: keyword settings that are not swept (a factor column's name): ``build`` gets them
    #: in its values as given
    settings: tuple = ()
    #: BUILTIN, RANK, USER_FILE or USER_DEFINED
    origin: str = BUILTIN

    @property
    def is_rank(self):
        return self.score_params is not None

    @property
    def is_user(self):  # made by define_strategy or define_rank_strategy
        return self.origin in (USER_FILE, USER_DEFINED)

    @property
    def param_names(self):
        return tuple(p.name for p in self.params)

    def check_values(self, values):
        """Run every ``Param.check`` over the axis values ``values[name]``."""
        for p in self.params:
            if p.check is None or p.name not in values:
                continue
            axis = np.atleast_1d(values[p.name])
            for i, v in enumerate(axis):
                p.check(p.name, v.item(), f"[{i}]" if axis.size > 1 else "")

    def product(self, values):
        """Per-signal columns: the cartesian product of the axes (C order, last fastest)."""
        names = self.param_names
        grids = np.meshgrid(*(np.atleast_1d(values[n]) for n in names), indexing="ij")
        return {n: g.ravel() for n, g in zip(names, grids)}

    def invalid_combos(self, columns):
        """Mask of the combinations (per-combo ``columns``) that break ``requires``."""
        n = len(next(iter(columns.values())))
        if self.requires is None or n == 0:
            return np.zeros(n, dtype=bool)
        return ~evaluate_constraint(self.requires, columns)

    def check_combos(self, columns):
        """ValueError naming the first combination in ``columns`` that breaks ``requires``."""
        bad = np.flatnonzero(self.invalid_combos(columns))
        if bad.size:
            self._refuse(columns, bad[0])

    def _refuse(self, columns, i):
        got = ", ".join(f"{n}={np.asarray(columns[n])[i].item()!r}" for n in self.param_names
                        if n in columns)
        raise ValueError(
            f"{self.name} requires {self.requires}, got {got}; in a sweep, add "
            f"constraint=\"{self.requires}\" (or a stricter one)")


@dataclass(frozen=True)
class Signals:
    """Signal events in CSR form: signal ``s`` on asset ``a`` is row ``s * n_assets + a``."""

    ptr: np.ndarray
    event_bar: np.ndarray
    event_code: np.ndarray

    def of(self, signal, asset, n_assets):
        """(event_bar, event_code) of one signal on one asset."""
        row = signal * n_assets + asset
        lo, hi = self.ptr[row], self.ptr[row + 1]
        return self.event_bar[lo:hi], self.event_code[lo:hi]


class CachedEvents:
    """A signal source: events computed on demand by signal range; the last range is kept.

    A sweep asks for the signals of one chunk of combos at a time, so the events in memory
    never grow with the grid; consecutive chunks often share their range. Subclasses
    implement ``_compute(lo, hi) -> (ptr, event_bar, event_code)`` (one event kernel
    call) over ``self.bundle``.
    """

    _last = None

    def events(self, lo, hi) -> Signals:
        """Events of signals ``lo <= s < hi``, as rows ``(s - lo) * n_assets + a``."""
        if self._last is not None and self._last[0] == (lo, hi):
            return self._last[1]
        signals = Signals(*self._compute(lo, hi))
        self._last = ((lo, hi), signals)
        return signals


@dataclass
class CrossSignals(CachedEvents):
    """Signals "feature row A crosses feature row B" (``kernels.cross_events``).

    ``bank`` is the indicator cache ``(n_assets, n_features, n_bars)`` (the indicator
    stage, done once); signal ``s`` compares rows ``a_rows[s]`` and ``b_rows[s]``.
    """

    bundle: object
    bank: np.ndarray
    a_rows: np.ndarray
    b_rows: np.ndarray
    _last: tuple = None

    def _compute(self, lo, hi):
        return kernels.cross_events(self.bank, self.bundle.start, self.bundle.end,
                                    self.a_rows[lo:hi], self.b_rows[lo:hi])


@dataclass
class LevelSignals(CachedEvents):
    """Signals "row x against a lower and an upper level" (``kernels.level_events``).

    Signal ``s`` compares ``x_bank[a, x_rows[s]]`` with ``mid + lower[s] * width`` and
    ``mid + upper[s] * width``, where ``mid``/``width`` are rows ``mid_rows[s]`` /
    ``width_rows[s]`` of their banks (or 0 / 1 without a bank or with a row < 0).
    ``breakout`` False: BUY below the lower level, SELL above the upper one (reversion);
    True: BUY above the upper level, SELL below the lower one.
    """

    bundle: object
    x_bank: np.ndarray
    x_rows: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    breakout: bool
    mid_bank: np.ndarray = None
    mid_rows: np.ndarray = None
    width_bank: np.ndarray = None
    width_rows: np.ndarray = None
    _last: tuple = None

    def _compute(self, lo, hi):
        none = np.full(hi - lo, -1, np.int64)
        mid_bank = self.x_bank if self.mid_bank is None else self.mid_bank
        width_bank = self.x_bank if self.width_bank is None else self.width_bank
        mid_rows = none if self.mid_rows is None else self.mid_rows[lo:hi]
        width_rows = none if self.width_rows is None else self.width_rows[lo:hi]
        return kernels.level_events(
            self.x_bank, self.x_rows[lo:hi], mid_bank, mid_rows, width_bank, width_rows,
            self.lower[lo:hi], self.upper[lo:hi], self.breakout, self.bundle.start,
            self.bundle.end)


@dataclass
class DonchianSignals(CachedEvents):
    """Channel breakout signals (``kernels.donchian_events``) on channel banks."""

    bundle: object
    hh_bank: np.ndarray
    ll_bank: np.ndarray
    entry_rows: np.ndarray
    exit_rows: np.ndarray
    _last: tuple = None

    def _compute(self, lo, hi):
        return kernels.donchian_events(self.bundle.close, self.hh_bank, self.ll_bank,
                                       self.entry_rows[lo:hi], self.exit_rows[lo:hi],
                                       self.bundle.start, self.bundle.end)


#: derived per-signal feature rows are built in blocks of at most this many floats
DERIVED_BLOCK_FLOATS = 1 << 22


@dataclass
class MacdSignals(CachedEvents):
    """MACD crossing its signal line, per signal ``s``: ``EMA(fast) - EMA(slow)`` from rows
    ``fast_rows[s]``/``slow_rows[s]`` of ``ema_bank``, against ``EMA(signal_windows[s])``
    of that line.

    The MACD and signal lines depend on all three parameters, so they are computed per
    signal range, in blocks of at most DERIVED_BLOCK_FLOATS floats (``kernels.diff_rows_bank``
    then ``kernels.ema_rows_bank``), and scanned by ``kernels.cross_events``: memory stays
    bounded however many signals a sweep has.
    """

    bundle: object
    ema_bank: np.ndarray
    fast_rows: np.ndarray
    slow_rows: np.ndarray
    signal_windows: np.ndarray
    _last: tuple = None

    def _compute(self, lo, hi):
        b = self.bundle
        n_assets, n_bars = b.n_assets, b.n_bars
        block = max(1, DERIVED_BLOCK_FLOATS // (2 * n_assets * n_bars))
        parts = []
        for s0 in range(lo, hi, block):
            s1 = min(hi, s0 + block)
            k = s1 - s0
            feats = np.empty((n_assets, 2 * k, n_bars))
            macd, signal = feats[:, :k], feats[:, k:]
            kernels.diff_rows_bank(self.ema_bank, b.start, b.end, self.fast_rows[s0:s1],
                                   self.slow_rows[s0:s1], macd)
            rows = np.arange(k, dtype=np.int64)
            kernels.ema_rows_bank(macd, b.start, b.end, rows, self.signal_windows[s0:s1],
                                  signal)
            parts.append(kernels.cross_events(feats, b.start, b.end, rows, rows + k))
        return _concat_csr(parts)


def _concat_csr(parts):
    """Concatenate CSR ``(ptr, event_bar, event_code)`` blocks of consecutive rows."""
    if len(parts) == 1:
        return parts[0]
    ptrs = [parts[0][0]]
    offset = parts[0][0][-1]
    for ptr, _, _ in parts[1:]:
        ptrs.append(ptr[1:] + offset)
        offset += ptr[-1]
    return (np.concatenate(ptrs), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add ``strategy`` to the registry under its name; returns the registered strategy.

    The registered ``build`` first validates the values it is given: every ``Param.check``
    over each axis value, and ``requires`` when NO combination of the axes meets it (then
    whatever a sweep's constraint keeps is invalid; for a single backtest this is the
    whole check). Combinations that break ``requires`` next to valid ones can only be
    judged with the constraint applied: :meth:`Strategy.check_combos` on the grid's
    columns.
    """
    inner = strategy.build

    @functools.wraps(inner)
    def build(bundle, values):
        strategy.check_values(values)
        if strategy.requires is not None:
            columns = strategy.product(values)
            invalid = strategy.invalid_combos(columns)
            if invalid.all():
                strategy._refuse(columns, 0)
        return inner(bundle, values)

    registered = dataclasses.replace(strategy, build=build)
    STRATEGIES[strategy.name] = registered
    return registered


# --------------------------------------------------------------------------------------
# Building blocks of the built-in strategies (definitions: docs/strategies.md)
# --------------------------------------------------------------------------------------


def _distinct(windows):
    """Distinct integer windows, and the index of each given window among them."""
    distinct = np.unique(windows).astype(np.int64)
    return distinct, np.searchsorted(distinct, windows).astype(np.int64)


def _window_bank(bundle, windows, compute_bank):
    """Compute ``compute_bank`` once per distinct window: (bank, index of each window)."""
    distinct, rows = _distinct(windows)
    bank = np.empty((bundle.n_assets, distinct.size, bundle.n_bars))
    compute_bank(bundle.close, bundle.start, bundle.end, distinct, bank)
    return bank, rows


def _product(*axes):
    """Per-signal columns of the cartesian product of ``axes`` (C order, last fastest)."""
    return [g.ravel() for g in np.meshgrid(*axes, indexing="ij")]


def _ma_cross(compute_bank):
    """Build function of a moving-average crossing strategy (fast over slow)."""

    def build(bundle, values):
        fast, slow = values["fast"], values["slow"]
        bank, rows = _window_bank(bundle, np.concatenate([fast, slow]), compute_bank)
        fast_rows, slow_rows = _product(rows[:fast.size], rows[fast.size:])
        return CrossSignals(bundle, bank, fast_rows, slow_rows)

    return build


_build_sma_cross = _ma_cross(kernels.sma_bank)
_build_ema_cross = _ma_cross(kernels.ema_bank)


def _build_rsi_reversion(bundle, values):
    bank, rows = _window_bank(bundle, values["rsi_window"], kernels.rsi_bank)
    x_rows, lower, upper = _product(rows, values["lower"].astype(np.float64),
                                    values["upper"].astype(np.float64))
    return LevelSignals(bundle, bank, x_rows, lower, upper, breakout=False)


def _bollinger(breakout):
    """Build function of a Bollinger strategy: close against mid -/+ k * sd."""

    def build(bundle, values):
        distinct, rows = _distinct(values["bb_window"])
        shape = (bundle.n_assets, distinct.size, bundle.n_bars)
        mid, sd = np.empty(shape), np.empty(shape)
        kernels.bollinger_bank(bundle.close, bundle.start, bundle.end, distinct, mid, sd)
        w_rows, k = _product(rows, values["k"].astype(np.float64))
        close = bundle.close.reshape(bundle.n_assets, 1, bundle.n_bars)
        return LevelSignals(bundle, close, np.zeros_like(w_rows), -k, k, breakout,
                            mid_bank=mid, mid_rows=w_rows, width_bank=sd, width_rows=w_rows)

    return build


def _build_donchian(bundle, values):
    entry, exit_ = values["entry_window"], values["exit_window"]
    distinct, rows = _distinct(np.concatenate([entry, exit_]))
    shape = (bundle.n_assets, distinct.size, bundle.n_bars)
    hh, ll = np.empty(shape), np.empty(shape)
    kernels.channel_bank(bundle.high, bundle.low, bundle.start, bundle.end, distinct, hh, ll)
    entry_rows, exit_rows = _product(rows[:entry.size], rows[entry.size:])
    return DonchianSignals(bundle, hh, ll, entry_rows, exit_rows)


def _build_macd_cross(bundle, values):
    fast, slow = values["fast"], values["slow"]
    bank, rows = _window_bank(bundle, np.concatenate([fast, slow]), kernels.ema_bank)
    fast_rows, slow_rows, signal = _product(rows[:fast.size], rows[fast.size:],
                                            values["signal"].astype(np.int64))
    return MacdSignals(bundle, bank, fast_rows, slow_rows, signal)


def _build_momentum(bundle, values):
    bank, rows = _window_bank(bundle, values["lookback"], kernels.roc_bank)
    x_rows, threshold = _product(rows, values["threshold"].astype(np.float64))
    return LevelSignals(bundle, bank, x_rows, -threshold, threshold, breakout=True)


# --------------------------------------------------------------------------------------
# The registry entries
# --------------------------------------------------------------------------------------

register(Strategy(
    name="sma_cross",
    params=(
        Param("fast", "window", 10, "fast simple moving average window, bars"),
        Param("slow", "window", 50, "slow simple moving average window, bars"),
    ),
    build=_build_sma_cross,
    doc="Bullish when SMA(fast) of close crosses above SMA(slow); bearish when it crosses below.",
))

register(Strategy(
    name="ema_cross",
    params=(
        Param("fast", "window", 12, "fast exponential moving average window, bars"),
        Param("slow", "window", 26, "slow exponential moving average window, bars"),
    ),
    build=_build_ema_cross,
    doc="Bullish when EMA(fast) of close crosses above EMA(slow); bearish when it crosses "
        "below (SMA-seeded EMAs).",
))

register(Strategy(
    name="rsi_reversion",
    params=(
        Param("rsi_window", "window", 14, "Wilder RSI window, bars"),
        Param("lower", "float", 30, "BUY on every bar with RSI < lower (0..100)",
              check=in_range(0.0, 100.0)),
        Param("upper", "float", 70, "SELL on every bar with RSI > upper (0..100)",
              check=in_range(0.0, 100.0)),
    ),
    build=_build_rsi_reversion,
    requires="lower < upper",
    doc="Mean reversion on Wilder's RSI: bullish while RSI < lower, bearish while "
        "RSI > upper.",
))

_BOLLINGER_PARAMS = (
    Param("bb_window", "window", 20, "moving average / standard deviation window, bars",
          check=in_range(2, math.inf)),
    Param("k", "float", 2, "band width in population standard deviations",
          check=in_range(0.0, math.inf, low_open=True)),
)

register(Strategy(
    name="bollinger_reversion",
    params=_BOLLINGER_PARAMS,
    build=_bollinger(breakout=False),
    doc="Mean reversion on Bollinger bands: bullish while close < lower band, bearish "
        "while close > upper band.",
))

register(Strategy(
    name="bollinger_breakout",
    params=_BOLLINGER_PARAMS,
    build=_bollinger(breakout=True),
    doc="Breakout of Bollinger bands: bullish while close > upper band, bearish while "
        "close < lower band.",
))

register(Strategy(
    name="donchian_breakout",
    params=(
        Param("entry_window", "window", 20, "entry channel: highs/lows of the previous "
              "entry_window bars"),
        Param("exit_window", "window", 10, "exit channel: highs/lows of the previous "
              "exit_window bars"),
    ),
    build=_build_donchian,
    doc="Turtle-style channel breakout: enter long above the entry channel's high (short "
        "below its low), exit on the opposite side of the exit channel.",
))

register(Strategy(
    name="macd_cross",
    params=(
        Param("fast", "window", 12, "fast EMA window, bars"),
        Param("slow", "window", 26, "slow EMA window, bars (fast < slow)"),
        Param("signal", "window", 9, "signal line: EMA window over MACD, bars"),
    ),
    build=_build_macd_cross,
    requires="fast < slow",
    doc="Bullish when MACD (EMA(fast) - EMA(slow)) crosses above its signal line "
        "(EMA(signal) of MACD); bearish when it crosses below.",
))

register(Strategy(
    name="momentum",
    params=(
        Param("lookback", "window", 20, "rate of change over this many bars"),
        Param("threshold", "float", 0, "BUY while ROC > threshold, SELL while "
              "ROC < -threshold (fraction, >= 0)", check=in_range(0.0, math.inf)),
    ),
    build=_build_momentum,
    doc="Time-series momentum: bullish while close/close[lookback bars ago] - 1 > "
        "threshold, bearish while it is < -threshold.",
))
