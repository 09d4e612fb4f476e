"""Loading a user strategy from a file: ``load_strategy("path/to/file.py:name")``.

The file is imported under the module name a plain ``import`` gives it (so that numba's disk
cache, keyed by the file but recording the module name, is shared with code that imports
the file normally), or under ``_sweepbt_user_<hash of its path>`` when that name belongs to
another module; see docs/custom-strategies.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass

from sweepbt import _numba_cache
from sweepbt._files import write_atomic
from sweepbt.strategies.custom_cache import generated_dir
from sweepbt.strategies.custom_messages import describe_exc
from sweepbt.strategies.custom_signals import CustomBuild, register_custom
from sweepbt.errors import StrategyError
from sweepbt.strategies.builtin import STRATEGIES, USER_DEFINED, USER_FILE, Strategy

_lock = threading.RLock()


def _same_file(module, path):
    """Whether ``module`` was loaded from the file ``path`` (absolute, resolved)."""
    origin = getattr(module, "__file__", None)
    return isinstance(origin, str) and os.path.realpath(origin) == path


def _claimed_elsewhere(top, expected):
    """Whether the top-level name ``top`` belongs to something other than ``expected``
    (the file, or the top package's folder) in this process or on ``sys.path``."""
    module = sys.modules.get(top)
    if module is not None:
        places = [getattr(module, "__file__", None)] + list(getattr(module, "__path__", []))
    else:
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError, AttributeError):
            return True
        if spec is None:
            return False
        places = [spec.origin] + list(spec.submodule_search_locations or [])
    for place in places:
        if isinstance(place, str) and os.path.realpath(place) in (
                expected, os.path.join(expected, "__init__.py")):
            return False
    return True


def file_module_name(path):
    """The module name ``load_strategy`` imports the file ``path`` (resolved) under.

    numba's disk cache for the file's ``@njit(cache=True)`` functions is keyed by the file
    but records the module name, which any process that loads the cache entry must be able
    to import. So the file gets the name a plain ``import`` gives it (``zscore`` for
    ``dir/zscore.py``, ``pkg.mod`` for a module of a package), as in a process that imports
    it normally; unless that name already belongs to another module, here or on
    ``sys.path`` (a second ``zscore.py``, a standard-library name): then
    ``_sweepbt_user_<hash of the path>``.
    """
    plain = _numba_cache.plain_module_name(path)
    fallback = _numba_cache.user_module_name(path)
    if plain is None:
        return fallback
    existing = sys.modules.get(plain)
    if existing is not None:
        return plain if _same_file(existing, path) else fallback
    parts = plain.split(".")
    expected = path  # the file, or the folder of its top package
    for _ in parts[1:]:
        expected = os.path.dirname(expected)
    return fallback if _claimed_elsewhere(parts[0], expected) else plain


def _split_spec(text):
    """``"path/file.py:name"`` -> ``(path, name)``; ``(text, None)`` without ``:name``."""
    text = os.fspath(text)
    path, sep, attr = text.rpartition(":")
    if not sep or not attr.isidentifier() or not path:
        return text, None
    return path, attr


def is_file_spec(name):
    """Whether the strategy name ``name`` is meant as ``"path/file.py[:name]"``."""
    return isinstance(name, str) and ".py" in name


def _file_module(path):
    """The module of the strategy file ``path``: imported (again when it changed)."""
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with _lock:
        modname = file_module_name(path)
        module = sys.modules.get(modname)
        if module is not None and not hasattr(module, "__sweepbt_digest__"):
            module.__sweepbt_digest__ = digest  # imported normally: used as it is
        elif module is None or module.__sweepbt_digest__ != digest:
            module = _exec_user_file(modname, path, digest)
    return module


def _spec_module(spec, what):
    """``(path, module, name)`` of ``"path/to/file.py:name"`` (``name`` None when not
    given): the file's module, imported as :func:`load_strategy` says; ``what`` names the
    file's role in the error when it is missing."""
    path, attr = _split_spec(spec)
    path = os.path.realpath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise StrategyError(f"{what} file {path!r} not found (expected FILE.py:NAME)")
    return path, _file_module(path), attr


def load_function(spec, what):
    """The object named in ``"path/to/file.py:name"`` (imported as :func:`load_strategy`
    imports a file); ``what`` names its role (e.g. ``"commission"``) in the errors."""
    path, module, attr = _spec_module(spec, what)
    if attr is None or not hasattr(module, attr):
        raise StrategyError(f"{what}={os.fspath(spec)!r}: name the function as FILE.py:NAME"
                            + ("" if attr is None else f" ({path} has no {attr!r})"))
    return getattr(module, attr)


def load_strategy(spec, *, register=False) -> Strategy:
    """The :class:`Strategy` named in ``"path/to/file.py:name"``.

    The file is imported under the module name a plain ``import`` would give it (its stem,
    or ``package.module`` inside a package; ``_sweepbt_user_<hash>`` when another module
    holds that name), and registered in ``sys.modules``, so that numba's disk cache and the
    generated drivers are shared with code that imports the file normally. A module already
    imported from the file is used as it is. ``name`` must be a Strategy made by
    :func:`define_strategy`; without ``:name`` the file must define exactly one. The file is
    executed again only when its contents changed since it was last loaded in this process.
    ``register=True`` also registers the strategy under its name.

    A file that cannot be imported (a syntax error, an exception, ``sys.exit()`` while it
    runs) raises a StrategyError (a ValueError) naming the file; ``KeyboardInterrupt``
    propagates.
    """
    path, module, attr = _spec_module(spec, "strategy")
    found = {k: v for k, v in vars(module).items() if isinstance(v, Strategy)}
    if attr is None:
        if len(found) != 1:
            listed = ", ".join(sorted(found)) or "none"
            raise StrategyError(f"{path}: name the strategy as FILE.py:NAME (Strategy objects "
                                f"in the file: {listed})")
        attr = next(iter(found))
    if not hasattr(module, attr):
        listed = ", ".join(sorted(found)) or "none"
        raise StrategyError(f"{path} has no {attr!r} (Strategy objects in the file: {listed})")
    strategy = getattr(module, attr)
    if not isinstance(strategy, Strategy):
        raise StrategyError(f"{path}:{attr} is a {type(strategy).__name__}, not a Strategy "
                            "made by sweepbt.define_strategy")
    if register:
        register_custom(strategy)
    return strategy


def _import_error(path, exc):
    """A StrategyError saying why the strategy file ``path`` could not be imported."""
    what = f"cannot import strategy file {path}"
    if isinstance(exc, SystemExit):
        return StrategyError(f"{what}: it called sys.exit({exc.code!r}) while being imported "
                             "(raise an exception instead)")
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        if exc.filename and os.path.realpath(exc.filename) != path:
            where = f"{exc.filename}, {where}"
        text = (exc.text or "").strip()
        return StrategyError(f"{what}: {type(exc).__name__} at {where}: {exc.msg}"
                             + (f": {text}" if text else ""))
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if os.path.realpath(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (line {line})" if line else ""
    return StrategyError(f"{what}: it raised {describe_exc(exc)} while being imported{where}")


def _exec_user_file(modname, path, digest):
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None:
        raise StrategyError(f"cannot import {path!r} as Python source (expected FILE.py:NAME)")
    module = importlib.util.module_from_spec(spec)
    module.__sweepbt_digest__ = digest
    previous = sys.modules.get(modname)
    sys.modules[modname] = module
    folder = os.path.dirname(path)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if previous is not None:
            sys.modules[modname] = previous
        else:
            sys.modules.pop(modname, None)
        if isinstance(exc, (Exception, SystemExit)):
            raise _import_error(path, exc) from exc
        raise  # KeyboardInterrupt and the like
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
    return module


@dataclass(frozen=True)
class StrategySource:
    """A user strategy as it travels to another machine: the text of the file that defines
    it and its name there. ``load()`` writes the text to a local folder (once per content)
    and loads it from there, so no shared file system is needed; the strategy is then
    compiled and disk-cached where it lands. Only this one file travels: modules it
    imports must be installed there."""

    filename: str
    attr: str
    content: bytes
    registered: bool

    @property
    def sha256(self):
        return hashlib.sha256(self.content).hexdigest()

    def load(self) -> Strategy:
        root = generated_dir()
        if root is None:
            raise OSError("no writable directory for the strategy file (set "
                          "SWEEPBT_CACHE_DIR to one)")
        folder = os.path.join(root, "strategy_files", self.sha256[:24])
        path = os.path.join(folder, self.filename)
        if not os.path.isfile(path):
            os.makedirs(folder, exist_ok=True)
            write_atomic(path, lambda tmp: _write_bytes(tmp, self.content))
        return load_strategy(f"{path}:{self.attr}", register=self.registered)


def _write_bytes(path, content):
    with open(path, "wb") as f:
        f.write(content)


def _file_of(fn):
    """The .py file of the module that defines the @njit function ``fn``, or None."""
    path = getattr(sys.modules.get(fn.py_func.__module__), "__file__", None)
    return path if isinstance(path, str) and os.path.isfile(path) else None


def origin_of(fn):
    """``Strategy.origin`` of a user strategy whose code is the @njit function ``fn``."""
    return USER_DEFINED if _file_of(fn) is None else USER_FILE


def strategy_source(strategy):
    """The :class:`StrategySource` of a user ``strategy`` (found as a module attribute of
    the file that defines its ``indicators`` function, or a rank strategy's ``score``), or
    None: a built-in strategy, or
    one no file names (defined in a function or an interactive session)."""
    if strategy.origin != USER_FILE:
        return None
    build = strategy.build
    user_function = build.spec.indicators if isinstance(build, CustomBuild) else \
        build.user_score  # custom.define_rank_strategy
    path = _file_of(user_function)
    if path is None:
        return None
    module = sys.modules.get(user_function.py_func.__module__)
    attr = next((k for k, v in vars(module).items() if v is strategy), None)
    if attr is None:
        return None
    with open(path, "rb") as f:
        content = f.read()
    return StrategySource(os.path.basename(path), attr, content,
                          STRATEGIES.get(strategy.name) is strategy)
