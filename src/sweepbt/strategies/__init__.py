"""Strategies: the built-in ones and the registry (``builtin``), the rank-and-rebalance
ones (``ranking``), user-written ones (``custom`` and its rooms ``custom_files``,
``custom_signals``, ``custom_probe``, ``custom_cache``, ``custom_messages``, ``_codegen``)
and ``lookup.get_strategy``, which turns a name, a ``Strategy`` or ``"file.py:name"`` into
a strategy. The names below are the public API; the submodules are the implementation
(docs/architecture.md)."""

from sweepbt.strategies.builtin import STRATEGIES, Strategy
from sweepbt.strategies.custom import (BUY, ENTER_LONG, ENTER_SHORT, EXIT_LONG, EXIT_SHORT, SELL,
                                       define_rank_strategy, define_strategy, generated_dir,
                                       generated_module, load_strategy)
from sweepbt.strategies.lookup import get_strategy

__all__ = [
    "BUY", "SELL", "ENTER_LONG", "EXIT_LONG", "ENTER_SHORT", "EXIT_SHORT",
    "STRATEGIES", "Strategy", "define_rank_strategy", "define_strategy", "generated_dir",
    "generated_module", "get_strategy", "load_strategy",
]
