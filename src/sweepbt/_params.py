"""Parameter validation and grid construction.

Every strategy parameter and every risk/cost option may be a scalar (fixed) or a sequence (a
grid axis). The grid is the cartesian product of the axes, filtered by an optional
``constraint`` expression. Per-combo values end up as flat numpy arrays, one per parameter,
in the dtype the kernels take: windows int64; rates float64 with NaN meaning "rule off";
``max_bars`` and ``max_positions`` int64 with 0 meaning "off".
"""

from __future__ import annotations

import ast
import functools
import math
import numbers
import operator
from dataclasses import dataclass

import numpy as np

from sweepbt._constraint_words import not_allowed, syntax_error
from sweepbt._validate import is_integer
from sweepbt._choices import CHOICE_PARAMS, decode_choice, encode_choice
from sweepbt._combo_options import OPTIONS
from sweepbt._options import DIRECTIONS, FILL_MODES, RUN_OPTION_NAMES
from sweepbt._vocabulary import METRIC_NAMES


FIXED_OPTIONS = ("fill", "direction", "init_cash", "periods_per_year")
#: names no strategy parameter may take: the sweepable options, every run option of
#: sweepbt._options, and the public calls' own arguments (tested against their signatures)
RESERVED_NAMES = frozenset(OPTIONS) | RUN_OPTION_NAMES | {"data"}
#: the columns of a sweep's result rows (``best()``, ``table``) that are not parameters: a
#: row passed whole, ``sb.backtest(data, **row)``, carries them (:func:`drop_result_columns`)
RESULT_COLUMNS = frozenset({"rank", "combo", "symbol", *METRIC_NAMES})

#: combos per block when counting those that pass a constraint (bounds that pass's memory)
COUNT_BLOCK = 1 << 16
#: grids up to this many combos are counted exactly; larger ones are estimated by sampling
EXACT_COUNT_LIMIT = 1 << 22
#: random combos drawn to estimate how many a constraint keeps in a larger grid
ESTIMATE_DRAWS = 1 << 16
#: the largest grid (before the constraint): combo ids must fit int64 arithmetic
MAX_GRID = 1 << 62


def _is_sequence(value):
    return isinstance(value, (list, tuple, range, np.ndarray)) and np.ndim(value) > 0


def _is_nan(value):
    """Whether ``value`` is a float NaN (Python or numpy)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and not isinstance(value, numbers.Integral) and math.isnan(value)


def _in_bounds(x, bounds):
    low, high, low_open, high_open = bounds
    ok_low = x > low if low_open else x >= low
    ok_high = x < high if high_open else x <= high
    return ok_low and ok_high


def _describe_bounds(bounds):
    low, high, low_open, high_open = bounds
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    return f"{left}{low:g}, {high:g}{right}"


def _check_number(name, value, where):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}{where} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name}{where} must be finite, got {value!r}")
    return x


def _check_integer(name, value, where, what="an integer"):
    if is_integer(value):
        return int(value)  # exact, however large (bounds are checked by the caller)
    x = _check_number(name, value, where)
    if x != int(x):
        raise TypeError(f"{name}{where} must be {what}, got {value!r}")
    return int(x)


def check_window(name, value, where, longest_span):
    """A window: an integer number of bars in [1, longest_span]."""
    w = _check_integer(name, value, where, "an integer number of bars")
    if w < 1:
        raise ValueError(f"{name}{where} must be >= 1 bar, got {w}")
    if w > longest_span:
        raise ValueError(
            f"{name}{where}={w} is longer than the data (longest asset span: "
            f"{longest_span} bars)")
    return w


def check_option(name, value, where=""):
    """Validate one value of a sweepable option; None (rule off) only where allowed."""
    spec = OPTIONS[name]
    if spec.allow_none and _is_nan(value):
        value = None  # NaN, as pandas or Arrow rows carry a rule that is off
    if value is None:
        if not spec.allow_none:
            raise ValueError(f"{name}{where} cannot be None")
        return None
    x = _check_integer(name, value, where) if spec.kind == "int" else _check_number(
        name, value, where)
    if not _in_bounds(x, spec.bounds):
        raise ValueError(
            f"{name}{where} must be in {_describe_bounds(spec.bounds)}, got {value!r}")
    return x


def check_fixed(fill, direction, init_cash, periods_per_year):
    """Validate the options that cannot be swept; return them in kernel form."""
    for name, value in (("fill", fill), ("direction", direction)):
        if _is_sequence(value):
            raise ValueError(f"{name} cannot be swept; give one value")
    if fill not in FILL_MODES:
        raise ValueError(f"unknown fill {fill!r}; expected one of {sorted(FILL_MODES)}")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; expected {sorted(DIRECTIONS)}")
    cash = _check_number("init_cash", init_cash, "")
    if cash <= 0:
        raise ValueError(f"init_cash must be > 0, got {init_cash!r}")
    ppy = None
    if periods_per_year is not None:
        ppy = _check_number("periods_per_year", periods_per_year, "")
        if ppy <= 0:
            raise ValueError(f"periods_per_year must be > 0, got {periods_per_year!r}")
    return FILL_MODES[fill], DIRECTIONS[direction], cash, ppy


@dataclass
class Grid:
    """A lazily enumerated parameter grid: combos are made chunk by chunk, never all at once.

    ``names`` are the strategy's parameters (in its declared order) then the options the
    user gave; ``values[name]`` holds that axis's values in kernel dtype (one value for a
    scalar). Combo ``flat`` of the unconstrained product is the C-order index over
    ``names``, so its signal (the strategy parameters' part) is ``flat // n_option_combos``.
    """

    names: tuple
    values: dict
    axes: tuple
    n_strategy_params: int
    constraint: object = None
    strategy: object = None

    @property
    def shape(self):
        return tuple(self.values[n].size for n in self.names)

    @property
    def n_total(self):
        """Combinations before the constraint."""
        return math.prod(self.shape)

    @property
    def n_option_combos(self):
        return math.prod(self.shape[self.n_strategy_params:])

    @property
    def strategy_values(self):
        """Axis values of the strategy's parameters (signals are their product, C order)."""
        return {n: self.values[n] for n in self.names[:self.n_strategy_params]}

    def columns_at(self, flat):
        """Per-combo columns for unconstrained indices ``flat``, constraint applied.

        Returns ``(columns, signal_idx, kept)``: every name and every option (defaults
        filled in) as arrays over the kept combos, each kept combo's signal row, and the
        kept indices themselves.
        """
        index = np.unravel_index(flat, self.shape) if self.shape else ()
        columns = {n: self.values[n][i] for n, i in zip(self.names, index)}
        if self.constraint is not None:
            keep = evaluate_constraint(self.constraint, columns)
            columns = {n: c[keep] for n, c in columns.items()}
            flat = flat[keep]
            if self.strategy is not None:  # what the constraint keeps must be valid
                self.strategy.check_combos(
                    {n: columns[n] for n in self.names[:self.n_strategy_params]})
        n = flat.size
        for name, default in _kernel_defaults().items():
            if name not in columns:
                columns[name] = np.full(n, default)
        return columns, flat // self.n_option_combos, flat

    def count(self):
        """Combinations that pass the constraint (evaluated in blocks of COUNT_BLOCK)."""
        if self.constraint is None:
            return self.n_total
        kept = 0
        for lo in range(0, self.n_total, COUNT_BLOCK):
            flat = np.arange(lo, min(self.n_total, lo + COUNT_BLOCK), dtype=np.int64)
            kept += self.columns_at(flat)[2].size
        return kept

    def count_or_estimate(self):
        """(combos kept by the constraint, standard error): exact (error 0) for grids of up
        to EXACT_COUNT_LIMIT combos, else estimated from ESTIMATE_DRAWS uniform draws (a
        fixed seed, so the same grid gives the same estimate)."""
        if self.constraint is None or self.n_total <= EXACT_COUNT_LIMIT:
            return self.count(), 0.0
        draws = np.random.default_rng(0).integers(0, self.n_total, ESTIMATE_DRAWS)
        share = self.columns_at(draws)[2].size / ESTIMATE_DRAWS
        # a share seen as 0 or 1 still has an error of about one draw's worth
        error = max(math.sqrt(share * (1.0 - share) / ESTIMATE_DRAWS),
                    1.0 / ESTIMATE_DRAWS) * self.n_total
        return round(share * self.n_total), error


def user_value(name, value):
    """One kernel-form value of ``name`` as a user gives it: None for a rule that is off,
    a word (or number of bars) of CHOICE_PARAMS, else a Python scalar."""
    if is_null(name, np.asarray(value)):
        return None
    return decode_choice(name, value) if name in CHOICE_PARAMS else np.asarray(value).item()


def is_null(name, values):
    """Mask of 'rule off' values of a None-able option (NaN, or 0 for an integer one)."""
    if name not in OPTIONS or not OPTIONS[name].allow_none:
        return None
    return values == 0 if OPTIONS[name].kind == "int" else np.isnan(values)


def _axis_values(name, value, check):
    """The validated list of values for one parameter (a scalar gives a 1-long list)."""
    if not _is_sequence(value):
        return [check(name, value, "")]
    values = list(value)
    if not values:
        raise ValueError(f"{name} is an empty sequence; give at least one value")
    return [check(name, v, f"[{i}]") for i, v in enumerate(values)]


def drop_result_columns(strategy, params):
    """``params`` less the :data:`RESULT_COLUMNS` not of ``strategy`` (a row passed whole to
    ``backtest``; other unknown names fail in build_grid) and, in a row (with ``combo``), the
    nulls of other strategies' parameters and of options a rank strategy does not take."""
    own, row = {*strategy.param_names, *strategy.settings}, "combo" in params
    return {k: v for k, v in params.items() if (k not in RESULT_COLUMNS or k in own)
            and not (row and k not in own and (v is None or _is_nan(v)) and (
                strategy.is_rank or k not in OPTIONS or not OPTIONS[k].allow_none))}


def build_grid(strategy, params, longest_span, constraint=None, unbounded=()):
    """Validate ``params`` (name -> scalar or sequence) for ``strategy``; return the Grid.

    Unknown names raise TypeError; parameters not given take their defaults; windows named
    in ``unbounded`` skip the ``longest_span`` bound; the constraint is tried on the first
    combos, so a typo fails before any work."""
    known = set(strategy.param_names) | set(OPTIONS)
    unknown = sorted(set(params) - known)
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {', '.join(unknown)} for strategy {strategy.name!r}; "
            f"strategy parameters: {', '.join(strategy.param_names)}; options: "
            f"{', '.join(list(OPTIONS) + list(FIXED_OPTIONS))}")

    def check_param(name, value, where):
        if name in CHOICE_PARAMS:
            return encode_choice(name, value, where)
        if name == "atr_window":
            return check_window(name, value, where, longest_span)
        if name in OPTIONS:
            return check_option(name, value, where)
        spec = next(p for p in strategy.params if p.name == name)
        if spec.kind == "window":
            value = check_window(name, value, where,
                                 math.inf if name in unbounded else longest_span)
        elif spec.kind == "count":
            value = _check_integer(name, value, where, "a whole number")
            if value < 0:
                raise ValueError(f"{name}{where} must be >= 0, got {value}")
        else:
            value = _check_number(name, value, where)
        if spec.check is not None:
            spec.check(name, value, where)
        return value

    names = tuple(strategy.param_names) + tuple(n for n in OPTIONS if n in params)
    values = {}
    for name in names:
        value = params.get(name, next(
            (p.default for p in strategy.params if p.name == name), None))
        values[name] = _as_kernel_array(name, _axis_values(name, value, check_param))
    axes = tuple(n for n in names if _is_sequence(params.get(n)))
    n_total = math.prod(values[n].size for n in names)
    if n_total > MAX_GRID:
        raise ValueError(f"the grid has {n_total:.3g} combinations, more than the 2**62 "
                         "sweepbt can index; use fewer values per axis, or sample= a random "
                         "subset of a smaller grid")
    grid = Grid(names=names, values=values, axes=axes,
                n_strategy_params=len(strategy.param_names), constraint=constraint,
                strategy=strategy)
    if constraint is not None:
        grid.columns_at(np.arange(min(grid.n_total, 16), dtype=np.int64))
    elif strategy.requires is not None:  # every combination runs: check them all now
        strategy.check_combos(strategy.product(grid.strategy_values))
    return grid


@functools.cache
def _kernel_defaults():
    """Every option's default in kernel form (NaN or 0 for a rule that is off), made once:
    every combo column an option that is not swept takes."""
    return {name: _as_kernel_array(name, [option.default])[0]
            for name, option in OPTIONS.items()}


def _as_kernel_array(name, values):
    if name in OPTIONS and OPTIONS[name].kind == "float":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    if not (name in OPTIONS or isinstance(values[0], int)):
        return np.array(values, dtype=np.float64)
    ints = [0 if v is None else v for v in values]  # integer option: 0 means off
    if not all(-2**63 <= v < 2**63 for v in ints):
        raise ValueError(f"{name}={max(ints, key=abs)} is too large (at most 2**63 - 1)")
    return np.array(ints, dtype=np.int64)


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_DIVISIONS = (ast.Div, ast.FloorDiv, ast.Mod)
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
            ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}
#: a constraint longer than this, or with more syntax nodes, is refused before evaluation
MAX_CONSTRAINT_CHARS = 2_000
MAX_CONSTRAINT_NODES = 400


def evaluate_constraint(expression, columns, what="constraint"):
    """Evaluate a constraint such as ``"fast < slow and slow <= 4 * fast"`` per combo
    (``what`` names the expression in the errors: a constraint, a where= filter).

    Allowed: parameter names, numbers, + - * / // % **, comparisons (chained too), and,
    or, not, parentheses. Arithmetic is float64 (IEEE: an overflow is inf, never a wrapped
    integer or a huge exact power); a division by zero is an error, and so is a result (or
    an operand of and/or/not) that is a number rather than true/false. Options that are off
    (None) compare as NaN, so any comparison with them is False. Returns a boolean mask.
    """
    if not isinstance(expression, str):
        raise TypeError(f"{what} must be a string expression, got {expression!r}")
    if len(expression) > MAX_CONSTRAINT_CHARS:
        raise ValueError(f"{what} is {len(expression):,} characters long; at most "
                         f"{MAX_CONSTRAINT_CHARS:,} are allowed")
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        raise ValueError(f"{what} {expression!r} is not a valid expression: "
                         f"{syntax_error(expression, exc, what)}") from None
    n_nodes = sum(1 for _ in ast.walk(tree))
    if n_nodes > MAX_CONSTRAINT_NODES:
        raise ValueError(f"{what} {expression!r} has {n_nodes} terms; at most "
                         f"{MAX_CONSTRAINT_NODES} are allowed")
    n = next(iter(columns.values())).shape[0]
    value, is_bool = _Evaluator(columns, expression, n, what).visit(tree.body)
    if not is_bool:
        raise ValueError(f"{what} {expression!r} gives numbers, not true/false: use a "
                         f"comparison such as 'fast < slow'")
    return _as_mask(value, n).copy()


def _as_mask(x, n):
    return np.broadcast_to(np.asarray(x, dtype=bool), (n,))


class _Evaluator:
    """Evaluates a constraint's AST over the combos in ``columns`` (``n`` of them): each
    ``visit`` gives (value, is_boolean)."""

    def __init__(self, columns, expression, n, what):
        self.columns, self.expression, self.n, self.what = columns, expression, n, what

    def fail(self, message):
        return ValueError(f"{self.what} {self.expression!r}: {message}")

    def visit(self, node):
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.not_allowed(node)
        return method(node)

    def not_allowed(self, node):
        return self.fail(not_allowed(node, self.what))

    def sub(self, child, want_bool):
        value, is_bool = self.visit(child)
        if is_bool != want_bool:
            what = "true/false" if want_bool else "a number"
            raise self.fail(f"{ast.unparse(child)!r} must be {what} here")
        return value

    def mask(self, child):
        return _as_mask(self.sub(child, True), self.n)

    def visit_Name(self, node):
        if node.id not in self.columns:
            raise self.fail(f"unknown name {node.id!r}; known: {', '.join(self.columns)}")
        col = self.columns[node.id].astype(np.float64)
        if node.id in OPTIONS and OPTIONS[node.id].kind == "int":
            col[col == 0] = np.nan  # 0 = off = NaN
        return col, False

    def visit_Constant(self, node):
        if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
            raise self.not_allowed(node)
        if abs(node.value) >= 1e308:
            return np.float64(math.copysign(math.inf, node.value)), False
        return np.float64(node.value), False

    def words(self, node, equality=False):
        """Refuse arithmetic or order on a parameter holding words (codes of CHOICE_PARAMS
        that are not numbers of bars); with ``equality`` (== or != a number) only
        ``weighting``, whose codes are no numbers at all."""
        if isinstance(node, ast.Name) and node.id in CHOICE_PARAMS and node.id in \
                self.columns and (node.id == "weighting" or (
                    not equality and np.any(self.columns[node.id] < 0))):
            example = "'M'" if node.id == "rebalance" else "'equal'"
            raise self.fail(f"{node.id} holds words: compare it only with == or != and a "
                            f"word, e.g. {node.id} == {example}")

    def operand(self, node, other):
        """A comparison's operand; a word compared with a CHOICE_PARAMS name (``other``)
        is that word's code."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                isinstance(other, ast.Name) and other.id in CHOICE_PARAMS:
            try:
                return np.float64(encode_choice(other.id, node.value)), False
            except ValueError as exc:
                raise self.fail(str(exc)) from None
        return self.visit(node)

    def visit_BinOp(self, node):
        if type(node.op) not in _BINARY:
            raise self.not_allowed(node)
        self.words(node.left)
        self.words(node.right)
        left, right = self.sub(node.left, False), self.sub(node.right, False)
        if isinstance(node.op, _DIVISIONS) and np.any(np.asarray(right) == 0):
            raise self.fail(f"division by zero in {ast.unparse(node)!r}")
        with np.errstate(all="ignore"):
            return _BINARY[type(node.op)](left, right), False

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.Not):
            return ~self.mask(node.operand), True
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise self.not_allowed(node)
        value = self.sub(node.operand, False)
        return (-value if isinstance(node.op, ast.USub) else value), False

    def visit_BoolOp(self, node):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        out = self.mask(node.values[0])
        for value in node.values[1:]:
            out = combine(out, self.mask(value))
        return out, True

    def visit_Compare(self, node):
        if not all(type(op) in _COMPARE for op in node.ops):
            raise self.not_allowed(node)
        nodes = [node.left, *node.comparators]
        values = []
        for k, child in enumerate(nodes):
            other = nodes[k + 1] if k == 0 else nodes[k - 1]
            value, is_bool = self.operand(child, other)
            if is_bool:
                raise self.fail(f"{ast.unparse(child)!r} must be a number here")
            values.append(value)
        out = np.ones(self.n, dtype=bool)
        for k, op in enumerate(node.ops):
            pair = nodes[k:k + 2]
            equality = isinstance(op, (ast.Eq, ast.NotEq))
            if not (equality and any(isinstance(n, ast.Constant) and isinstance(n.value, str)
                                     for n in pair)):
                for side in pair:
                    self.words(side, equality)
            out &= _as_mask(_COMPARE[type(op)](values[k], values[k + 1]), self.n)
        return out, True
