"""Several strategies in one sweep: ``sb.sweep(data, ["sma_cross", "ema_cross"], ...)``.

:func:`plan_several` validates the call into one :class:`~sweepbt._plan.Plan` per strategy
(each with its own grid), which the engine runs one after the other through its one
sweep path (the same chunk loop, sinks and executor as a single-strategy sweep).
:class:`MultiSweepResult` joins their results: a ``strategy`` column, combo ids made unique
by offsetting strategy k's ids by the grid sizes of the strategies before it, and the
deflated Sharpe ratio over every combo of every strategy. docs/getting-started.md,
"Several strategies in one sweep", has the rules; ``sample=`` draws from
their joined grid (:func:`sampled_several`). :class:`MultiOutDir` is such a sweep's
``out=`` folder: an ordinary out= folder per strategy (docs/distributed.md).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sweepbt import _frames as frames
from sweepbt._files import write_atomic, write_text
from sweepbt._validate import check_count, combo_id
from sweepbt._outdir import MANIFEST, OutDir, make_new, read_existing, remove_own
from sweepbt._params import EXACT_COUNT_LIMIT, FIXED_OPTIONS, OPTIONS
from sweepbt._plan import draw_distinct, prepare
from sweepbt.strategies.ranking import NOT_FOR_RANK
from sweepbt._results import SweepResult
from sweepbt._sinks import SharpeMoments
from sweepbt.strategies.builtin import STRATEGIES
from sweepbt.strategies.lookup import get_strategy
from sweepbt._vocabulary import METRIC_NAMES, N_METRICS, metric_index, rank_order

#: a per-strategy entry of the dict form that is not a parameter: that strategy's own
#: constraint (it applies together with the call's ``constraint=``)
OWN_CONSTRAINT = "constraint"


def several(strategy):
    """True when ``strategy`` names several strategies (a list, tuple or dict)."""
    return isinstance(strategy, (list, tuple, dict))


def _entries(strategies):
    """``[(Strategy, its own grid dict)]`` of a list/tuple of strategies or a dict
    ``{strategy: {param: values}}``; errors for an empty or repeated strategy."""
    if isinstance(strategies, dict):
        items = list(strategies.items())
        for spec, own in items:
            if own is not None and not isinstance(own, dict):
                raise TypeError(f"strategy {spec!r}: its grid must be a dict {{param: "
                                f"values}} (or None), got {type(own).__name__}")
    else:
        items = [(spec, None) for spec in strategies]
    if not items:
        raise ValueError("strategy is an empty list; give at least one strategy")
    entries, seen = [], set()
    for spec, own in items:
        strategy = get_strategy(spec)
        if strategy.name in seen:
            raise ValueError(f"strategy {strategy.name!r} is listed twice; list each "
                             "strategy once (a dict {strategy: {param: values}} gives each "
                             "its own grid)")
        seen.add(strategy.name)
        entries.append((strategy, dict(own or {})))
    return entries


def _takes(strategy, name):
    return name in strategy.param_names or name in strategy.settings


def _split(entries, params):
    """Each strategy's keyword arguments: the options, the shared ones it takes, its own.

    A keyword that no listed strategy takes is a TypeError naming them. An option that some
    strategy's grid has and another's lacks is given to the latter at its default (so
    every row of the table has it, and passes back to ``sb.backtest``)."""
    for name in params:
        if name not in OPTIONS and not any(_takes(s, name) for s, _ in entries):
            listed = "; ".join(f"{s.name}: {', '.join(s.param_names + s.settings)}"
                               for s, _ in entries)
            raise TypeError(f"unknown parameter {name!r}: none of the strategies swept "
                            f"takes it ({listed}); options: "
                            f"{', '.join(list(OPTIONS) + list(FIXED_OPTIONS))}")
    split = [{**{k: v for k, v in params.items() if k in OPTIONS or _takes(s, k)}, **own}
             for s, own in entries]
    options = [n for n in OPTIONS if any(n in p for p in split)]
    for (strategy, _), given in zip(entries, split):
        for name in options:
            if name not in given and not (strategy.is_rank and name in NOT_FOR_RANK):
                given[name] = OPTIONS[name].default
    return split


def _both(constraint, own):
    if own is None or constraint is None:
        return constraint if own is None else own
    return f"({constraint}) and ({own})"


def plan_several(data, strategies, params, options):
    """One Plan per strategy of ``strategies`` (see :func:`_entries`) with the call's
    ``options`` (an options.RunOptions), every one validated before any runs; an error
    names the strategy it is about."""
    entries = _entries(strategies)
    plans = []
    for (strategy, _), given in zip(entries, _split(entries, params)):
        own = given.pop(OWN_CONSTRAINT, None)
        try:
            plan = prepare(data, strategy, given, options,
                           constraint=_both(options.constraint, own))
        except (TypeError, ValueError) as exc:
            if type(exc) not in (TypeError, ValueError):
                raise
            raise type(exc)(f"strategy {strategy.name!r}: {exc}") from None
        data = plan.bundle  # loaded once
        plans.append(plan)
    kinds = {plan.strategy.name: plan.engine.one_book for plan in plans}
    if len(set(kinds.values())) > 1:
        rank = [name for name, pf in kinds.items() if pf]
        alone = [name for name, pf in kinds.items() if not pf]
        raise ValueError(
            f"{', '.join(rank)} always run(s) as one portfolio over all assets (a rank "
            f"strategy), while {', '.join(alone)} run(s) per asset: their rows do not "
            "compare in one table; pass portfolio=True to run every strategy as one "
            "portfolio, or sweep them separately")
    return plans


def sampled_several(plans, n, seed):
    """The grid ids each of ``plans`` runs for ``sample=n``: ``n`` distinct combos drawn
    uniformly from their joined grid (strategy k's ids offset by the grid sizes before
    it, as :class:`MultiSweepResult` numbers them) among those that pass their
    strategy's constraint, by :func:`~sweepbt._plan.draw_distinct` (as ``sampled_combos``
    does for one grid), then split into each plan's own sorted ids (empty when none of
    its combos was drawn). None for every plan (run whole) when ``n`` is None or the
    joined grids keep no more than ``n`` combos."""
    grids = [plan.grid for plan in plans]
    if n is None or (all(g.constraint is None or g.n_total <= EXACT_COUNT_LIMIT
                         for g in grids) and n >= sum(g.count() for g in grids)):
        return [None] * len(plans)
    offsets = np.concatenate([[0], np.cumsum([g.n_total for g in grids])]).astype(np.int64)

    def passing(joined):
        owner = np.searchsorted(offsets, joined, side="right") - 1
        keep = np.zeros(joined.size, bool)
        for k, grid in enumerate(grids):
            mine = np.flatnonzero(owner == k)
            local = joined[mine] - offsets[k]
            keep[mine[np.isin(local, grid.columns_at(local)[2])]] = True
        return joined[keep]

    what = "the constraints (" + "; ".join(
        f"{p.strategy.name}: {p.grid.constraint!r}" for p in plans) + ")"
    ids = draw_distinct(n, int(offsets[-1]), passing, seed, what)
    return [ids[(ids >= lo) & (ids < hi)] - lo for lo, hi in zip(offsets[:-1], offsets[1:])]


def _merged_moments(parts):
    """(count, mean, M2) of every combo's Sharpe over all parts (sinks' merge rule)."""
    moments = SharpeMoments(len(parts[0].symbols))
    for offset, part in zip(_offsets(parts), parts):
        if part.sharpe_moments[0] > 0:
            moments.parts[int(offset)] = part.sharpe_moments
    return moments.finish()


def _offsets(parts):
    """Strategy k's first combo id: the grid sizes (before any constraint) before it."""
    sizes = [part.plan.grid.n_total for part in parts]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def _keep_top(parts, offsets, k, metric):
    """``parts`` holding only the ``k`` best combos by ``metric`` over all of them (mean
    over assets, ties by the joined combo id), as ``top=k`` keeps them."""
    aggregated = [part.aggregate("mean") for part in parts]
    ids = np.concatenate([ids + off for (ids, _), off in zip(aggregated, offsets)])
    per_combo = np.concatenate([means for _, means in aggregated])
    chosen = np.zeros(ids.size, bool)
    chosen[rank_order(per_combo, ids, metric)[:k]] = True
    kept, lo = [], 0
    for part in parts:
        mine = chosen[lo:lo + part.combos.size]
        lo += part.combos.size
        rows = np.repeat(mine, len(part.symbols))
        kept.append(replace(part, combos=part.combos[mine], metrics=part.metrics[rows],
                            param_columns={n: v[mine] for n, v in part.param_columns.items()},
                            _table=None))
    return kept


def _common(parts):
    """The fixed options every part shares; ``rank`` when any part is a rank strategy's."""
    common = {k: v for k, v in parts[0].fixed.items()
              if all(k in p.fixed and p.fixed[k] == v for p in parts)}
    if any(p.fixed.get("rank") for p in parts):
        common["rank"] = True
    return common


def _union(lists):
    return tuple(dict.fromkeys(name for names in lists for name in names))


@dataclass(repr=False)
class MultiSweepResult(SweepResult):
    """The results of a sweep of several strategies: a :class:`SweepResult` whose rows
    are every strategy's, with a ``strategy`` column and combo ids unique across them.

    ``parts`` are the strategies' own results (their own combo ids), ``offsets[k]`` what
    is added to part k's ids. ``names`` and ``axes`` are the union over the strategies;
    ``param_columns`` holds NaN where a strategy lacks a parameter.
    """

    parts: tuple = ()
    offsets: np.ndarray = None
    strategies: tuple = ()

    @classmethod
    def of(cls, parts, top=None, metric="sharpe", path=None):
        """The joined result of ``parts`` (each strategy's SweepResult, in the order
        given); with ``top=k`` only the k best combos by ``metric`` over all of them
        are held (each part kept its own k best while streaming). ``path``: the
        :class:`MultiOutDir` of an ``out=`` sweep; without ``top`` its parts hold no rows
        in memory, and neither does the joined result (they are read from the folder)."""
        offsets = _offsets(parts)
        if top is not None:
            parts = _keep_top(parts, offsets, top, metric)
        names = _union(p.names for p in parts)
        in_memory = all(p.metrics is not None for p in parts)
        combos, params, metrics = _joined_rows(
            [(p.combos, p.param_columns, p.metrics) for p in parts], offsets, names
        ) if in_memory else (None, None, None)
        return cls(
            bundle=parts[0].bundle, symbols=parts[0].symbols,
            strategy=", ".join(p.strategy for p in parts), fixed=_common(parts), names=names,
            axes=_union(p.axes for p in parts), n_combos=sum(p.n_combos for p in parts),
            combos=combos, param_columns=params, metrics=metrics, path=path,
            elapsed=sum(p.elapsed for p in parts),
            bar_evaluations=sum(p.bar_evaluations for p in parts),
            compile_seconds=sum(p.compile_seconds for p in parts),
            sharpe_moments=_merged_moments(parts),
            plan=parts[0].plan,  # the row spans (the same for every part) for PSR / DSR
            parts=tuple(parts), offsets=offsets,
            strategies=tuple(p.strategy for p in parts))

    @property
    def metric_names(self):
        """Every part's metric columns."""
        return _union(p.metric_names for p in self.parts)

    def held(self):
        """:meth:`SweepResult.held` joined over the strategies (read back from their
        folders for an ``out=`` sweep without ``top``)."""
        if self.metrics is not None:
            return self.combos, self.param_columns, self.metrics
        return _joined_rows([p.held() for p in self.parts], self.offsets, self.names)

    def _labelled(self, k, table):
        """Part k's ``table`` with its combo ids offset and a ``strategy`` column."""
        position = table.column_names.index("combo")
        table = table.set_column(position, "combo",
                                 pc.add(table["combo"], pa.scalar(int(self.offsets[k]))))
        return table.add_column(position + 1, "strategy",
                                pa.array([self.strategies[k]] * table.num_rows, pa.string()))

    def _joined(self, tables, first):
        """The labelled ``tables`` as one: columns ``first``, ``combo``, ``strategy``, the
        parameters (union; null where a strategy has none), then the rest."""
        table = pa.concat_tables([self._labelled(k, t) for k, t in tables],
                                 promote_options="permissive")
        head = [*first, "combo", "strategy",
                *(n for n in self.names if n in table.column_names)]
        order = head + [c for c in table.column_names if c not in head]
        meta = {b"sweepbt": json.dumps({"strategy": list(self.strategies), **self.fixed},
                                       default=str).encode()}
        return table.select(order).replace_schema_metadata(meta)

    @property
    def table(self) -> pa.Table:
        """One row per combo x asset: ``combo``, ``strategy``, the parameters, ``symbol``,
        metrics; a parameter a strategy does not have is null in its rows."""
        if self._table is None:
            self._table = self._joined(enumerate(p.table for p in self.parts), ())
        return self._table

    def best(self, metric="sharpe", k=10, how="mean", *, min_trades=None,
             where=None) -> pa.Table:
        """:meth:`SweepResult.best` over every strategy's combos (ties by combo id), with
        a ``strategy`` column. A ``where`` naming a parameter that a strategy lacks
        keeps none of that strategy's combos."""
        metric_index(metric)
        k = check_count("k", k)
        used = _names_in(where)
        tables = []
        for i, part in enumerate(self.parts):
            lacks = used & (set(self.names) - set(part.names))
            tables.append((i, part.best(metric, k, how).slice(0, 0) if lacks else
                           part.best(metric, k, how, min_trades=min_trades, where=where)))
        both = self._joined(tables, ("rank",))
        nan = np.full(both.num_rows, np.nan)
        per_combo = np.column_stack([
            both[m].to_numpy().astype(np.float64) if m in both.column_names else nan
            for m in METRIC_NAMES]).reshape(-1, N_METRICS)
        order = rank_order(per_combo, both["combo"].to_numpy(), metric)[:k]
        best = both.take(pa.array(order, pa.int64()))
        return best.set_column(0, "rank", pa.array(np.arange(1, order.size + 1)))

    def _locate(self, combo):
        """(part index, its own combo id) of a combo id of this result."""
        total = int(self.offsets[-1]) + self.parts[-1].plan.grid.n_total
        if not 0 <= combo < total:
            raise ValueError(f"combo {combo} is not in this sweep's grids (ids 0.."
                             f"{total - 1} over {', '.join(self.strategies)})")
        k = int(np.searchsorted(self.offsets, combo, side="right")) - 1
        return k, combo - int(self.offsets[k])

    def params(self, combo) -> dict:
        """The strategy (its name when registered, else the Strategy) and parameters of
        ``combo`` as ``sb.backtest`` takes them: ``sb.backtest(data, **res.params(c))``."""
        k, local = self._locate(combo_id(combo))
        strategy = self.parts[k].plan.strategy
        named = STRATEGIES.get(strategy.name) is strategy
        return {"strategy": strategy.name if named else strategy,
                **self.parts[k].params(local)}

    def backtest(self, combo, threads=None):
        """Re-run ``combo`` (an id, or a row of :meth:`best` / :attr:`table`) with full
        recording, with its own strategy: what ``sb.backtest`` returns."""
        k, local = self._locate(combo_id(combo))
        return self.parts[k].backtest(local, threads)

    def equity(self, combos=None) -> np.ndarray:
        """:meth:`SweepResult.equity` of held combos of any strategy, in the order given."""
        ids = self.held()[0] if combos is None else np.atleast_1d(
            np.asarray(combos, dtype=np.int64))
        located = [self._locate(int(c)) for c in ids]
        bundle = self.bundle
        out = np.empty((ids.size, len(self.symbols), bundle.n_bars))
        for k, part in enumerate(self.parts):
            rows = [i for i, (j, _) in enumerate(located) if j == k]
            if rows:
                out[rows] = part.equity([located[i][1] for i in rows])
        return out

    def to_pandas(self):
        """:attr:`table` as a pandas DataFrame indexed by ``(strategy, combo, symbol)``
        (the parameters, null where a strategy has none, are columns)."""
        return frames.table_pandas(self.table, ["strategy", "combo", "symbol"],
                                   "SweepResult.to_pandas()")


def _joined_rows(held, offsets, names):
    """(combo ids, params, metrics) of every strategy's ``held`` rows as one: ids offset,
    a parameter a strategy lacks NaN in its rows."""
    return (np.concatenate([ids + off for (ids, _, _), off in zip(held, offsets)]),
            {n: np.concatenate([params[n] if n in params else np.full(ids.size, np.nan)
                                for ids, params, _ in held]) for n in names},
            np.concatenate([metrics for _, _, metrics in held]))


def _names_in(expression):
    """The names an expression (a ``where=``) uses; empty when there is none or it does
    not parse (``best`` then reports the error)."""
    if not isinstance(expression, str):
        return set()
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


#: the top-level file of a multi-strategy ``out=`` folder: the strategies, in order
STRATEGIES_FILE = "_strategies.json"
#: the format of STRATEGIES_FILE; a folder of another format is refused
INDEX_FORMAT = 1


def _listing(plans, ids):
    """The strategies of a multi-strategy out= folder, in order: each name and grid size
    (before any constraint: what fixes the combo id offsets), and with ``sample=`` the
    count and a digest of the ids it drew (``ids``: :func:`sampled_several`'s)."""
    return [{"name": p.strategy.name, "n_combos": int(p.grid.n_total), **({} if i is None else {
        "sample": f"{i.size} combos, sha256 {hashlib.sha256(i.tobytes()).hexdigest()[:16]}"})}
        for p, i in zip(plans, ids)]


def _listed(listing):
    return ", ".join(f"{s['name']} ({s['n_combos']:,} combos"
                     + (f"; sample: {s['sample']}" if "sample" in s else "") + ")"
                     for s in listing)


class MultiOutDir:
    """The ``out=`` folder of a sweep of several strategies: ``<path>/<strategy name>/``
    for each, an ordinary out= folder (:class:`~sweepbt._outdir.OutDir`: its own manifest,
    ``_partial/`` and parts, its own grid ids), and ``_strategies.json`` (written first)
    listing the strategies in order with their grid sizes, and ``complete`` once every
    strategy's folder is."""

    def __init__(self, path, index, created):
        self.path, self.index, self.created = path, index, created

    @classmethod
    def open(cls, path, plans, resume, ids):
        """The folder ``path`` for ``plans`` run on ``ids`` (each plan's, None: its whole
        grid): a new one, or with ``resume`` one made by the same strategies (in the same
        order, with the same grids and the same sample drawn)."""
        path = os.fspath(path)
        wanted = _listing(plans, ids)
        if not os.path.lexists(path):  # the list first, before any strategy runs
            folder = cls(path, {"format": INDEX_FORMAT, "complete": False,
                                "strategies": wanted}, created=True)
            make_new(path, folder.write_index, extra=(STRATEGIES_FILE,))
            return folder
        what = ("a single-strategy sweep folder" if os.path.isfile(os.path.join(
            path, MANIFEST)) else "not a sweepbt folder of several strategies")
        folder = cls(path, read_existing(path, STRATEGIES_FILE, resume, what,
                                         version=INDEX_FORMAT), created=False)
        found = folder.index["strategies"]
        if found != wanted:
            order = (" (the same strategies in another order)"
                     if sorted(map(str, found)) == sorted(map(str, wanted)) else "")
            raise ValueError(f"cannot resume out={path!r}: it holds a sweep of other "
                             f"strategies{order}: {_listed(found)} in the folder, "
                             f"{_listed(wanted)} now. Resume it with the call that made it, "
                             "or pick a new path")
        complete = [os.path.lexists(folder.sub(plan))  # each strategy's own folder
                    and OutDir.open(folder.sub(plan), plan, i, True).complete  # checked
                    for plan, i in zip(plans, ids) if i is None or i.size]
        if folder.index["complete"] and not all(complete):  # a strategy's folder was lost
            folder.index["complete"] = False
            folder.write_index()
        return folder

    def sub(self, plan):
        """The out= folder of ``plan``'s strategy."""
        return os.path.join(self.path, plan.strategy.name)

    def write_index(self):
        text = json.dumps(self.index, indent=1)
        write_atomic(os.path.join(self.path, STRATEGIES_FILE), lambda tmp: write_text(tmp, text))

    def finish(self):
        """Mark the folder complete (every strategy's folder is); returns the path."""
        if not self.index.get("complete"):
            self.index["complete"] = True
            self.write_index()
        return self.path

    def discard_if_new_and_empty(self):
        """When this call made the folder and no strategy's folder is kept, remove
        sweepbt's files from it, and the folder if that empties it."""
        names = [s["name"] for s in self.index["strategies"]]
        if self.created and not any(os.path.lexists(os.path.join(self.path, n))
                                    for n in names):
            remove_own(self.path, extra=(STRATEGIES_FILE,))

    def stopped_note(self, k):
        """What a sweep interrupted while strategy ``k`` ran says about its folder."""
        names = [s["name"] for s in self.index["strategies"]]
        started = os.path.isdir(os.path.join(self.path, names[k])) if k < len(names) else False
        if self.created and k == 0 and not started:
            return "nothing was written"
        said = [f"finished and kept: {', '.join(names[:k]) or 'none'}"]
        if started:
            said.append(f"{names[k]} stopped (its finished chunks are kept)")
        if names[k + started:]:
            said.append(f"not run yet: {', '.join(names[k + started:])}")
        return (f"strategies {'; '.join(said)}; all in {self.path!r}: run the same sweep "
                "with resume=True (CLI: --resume) to continue")
