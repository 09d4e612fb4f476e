"""The strategy a caller names: a Strategy, a registered name, or ``"path/file.py:name"``.

Above both the registry (:mod:`sweepbt.strategies.builtin`) and strategy files
(:mod:`sweepbt.strategies.custom_files`), so that neither imports the other.
"""

from __future__ import annotations

from sweepbt.strategies.custom_files import is_file_spec, load_strategy
from sweepbt.strategies.builtin import STRATEGIES, Strategy


def get_strategy(name) -> Strategy:
    """The strategy ``name``: a Strategy, a registered name, or ``"path/file.py:name"``.

    Raises ValueError listing the known strategies otherwise.
    """
    if isinstance(name, Strategy):
        return name
    if isinstance(name, (list, tuple, dict)):
        raise TypeError(f"strategy must be one strategy (a name, a Strategy or "
                        f"'file.py:name'), got a {type(name).__name__}; only sweep() and "
                        "estimate() take several strategies")
    if is_file_spec(name) and name not in STRATEGIES:
        return load_strategy(name)
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown strategy {name!r}; known strategies: {known}") from None
