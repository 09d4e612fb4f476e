"""numba's disk cache, made robust: stale helpers, read-only caches, no cache at all,
renamed modules.

Imported by :mod:`sweepbt` before anything imports :mod:`sweepbt.kernels`, whose kernels
stay plain ``@njit(cache=True)``. Importing it runs :func:`install`, which adds four things
to numba's caching machinery (``numba.core.caching``); each acts only where numba would
otherwise fail:

* **A kernel's entry is stamped by every kernel file it compiles from.** numba stamps a
  function's cache entry by the one file that defines it, so an edit of a helper in
  another file would leave stale machine code behind. In a directory registered with
  :func:`stamp_dependencies` (sweepbt registers ``kernels/``), a file's stamp is a
  SHA-256 over its own text and that of every file of the directory it imports,
  transitively (``from <package>.x import ...``, ``from <package> import x``): editing
  ``kernels/rank.py`` recompiles the rank kernels only, editing ``kernels/_core.py``
  recompiles every kernel that imports it.

* **A read-only cache is used.** numba's cache locators (``NUMBA_CACHE_DIR``, the
  ``__pycache__`` beside the source file, ``~/.cache/numba``) each need a *writable*
  directory. :class:`ReadOnlyCacheLocator`, tried first, looks at the same places in the
  same order: the first writable one is left to numba as before; a directory that cannot
  be written but holds this function's index file (a cache baked into a read-only image)
  is loaded from; with no writable place at all, so is the first unwritable one holding
  any index file. An overload compiled anew there is not saved (quietly).
* **No writable location: compile without a disk cache.** Where numba would raise
  ``RuntimeError("cannot cache function ...: no locator available")`` at decoration time
  (so ``import sweepbt`` failed in a read-only container), :class:`NoDiskCacheLocator`,
  tried last, takes the function: nothing is loaded or saved, the code is compiled in
  memory in each process, and one warning line (:class:`NumbaCacheWarning`) says so, once
  per process.
* **A cache entry recorded under another module name loads.** numba keys a function's
  cache by its source *file* but pickles the *module name* of its globals, and re-imports
  that name when it loads the entry (``numba.core.environment._rebuild_env``). A file
  imported under two names (``import zscore`` in one process, ``load_strategy`` in
  another) then fails with ``ModuleNotFoundError``. When the recorded name cannot be
  imported, the module already loaded from the same file under another name is used
  (matched by the names a file can be given: its plain import name, its stem, or the
  ``load_strategy`` name of its path); when there is none, the entry is treated as a cache
  miss (compiled again and re-saved), never a crash.

``NUMBA_CACHE_LOCATOR_CLASSES`` (numba >= 0.68), when set, replaces numba's list of locators
and so these locators too.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
import sys
import threading
import warnings

from numba.core import caching, config, environment

#: prefix of the module names load_strategy gives files it cannot import by their plain name
USER_PREFIX = "_sweepbt_user_"

_lock = threading.Lock()
_installed = False
_warned = False


class NumbaCacheWarning(UserWarning):
    """numba cannot cache compiled code on disk: it is compiled in each process."""


# ----------------------------------------------------------------------------------------
# cache entries stamped by the files a kernel compiles from

#: directory -> the package name its files import each other by
_stamped = {}


def stamp_dependencies(directory, package):
    """Stamp the numba cache entries of the functions defined in ``directory`` (the
    package ``package``) by their file and every file of it they import, transitively."""
    _stamped[os.path.realpath(directory)] = package


def _imported_files(path, directory, package):
    """The files of ``directory`` that ``path`` imports directly."""
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == package:  # from <package> import x
                names.update(a.name for a in node.names)
            elif node.module.startswith(package + "."):
                names.add(node.module[len(package) + 1:].split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(a.name[len(package) + 1:].split(".")[0] for a in node.names
                         if a.name.startswith(package + "."))
    found = (os.path.join(directory, name + ".py") for name in names)
    return {f for f in found if os.path.isfile(f)}


def dependency_files(path, directory, package):
    """``path`` and every file of ``directory`` it imports, transitively, sorted (as
    paths in ``directory``: in a strict editable install they are links to the sources)."""
    seen, todo = set(), [os.path.join(directory, os.path.basename(path))]
    while todo:
        file = todo.pop()
        if file not in seen:
            seen.add(file)
            todo.extend(_imported_files(file, directory, package) - seen)
    return sorted(seen)


@functools.lru_cache(maxsize=256)
def _dependency_digest(path, directory, package, stats):
    """SHA-256 over the names and texts of :func:`dependency_files` (``stats``, the
    directory's file stats, keys the memo: an edit while running is seen)."""
    digest = hashlib.sha256()
    for file in dependency_files(path, directory, package):
        with open(file, "rb") as f:
            digest.update(os.path.basename(file).encode() + b"\0" + f.read() + b"\0")
    return digest.digest()


def dependency_stamp(path):
    """The stamp of a file in a :func:`stamp_dependencies` directory (None elsewhere).
    The directory is the one ``path`` is in (a strict editable install's link tree keeps
    its own directory of links to the sources)."""
    directory = os.path.realpath(os.path.dirname(path))
    package = _stamped.get(directory)
    if package is None:
        return None
    stats = tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size)
                         for e in os.scandir(directory) if e.name.endswith(".py")))
    return ("sweepbt-dependencies", _dependency_digest(
        os.path.join(directory, os.path.basename(path)), directory, package, stats))


def _patch_source_stamp(mixin):
    """Every source-file locator stamps a registered directory's files by their
    dependencies (numba's own stamp elsewhere)."""
    own = mixin.get_source_stamp

    def get_source_stamp(self):
        stamp = None if getattr(sys, "frozen", False) else dependency_stamp(self._py_file)
        return own(self) if stamp is None else stamp

    mixin.get_source_stamp = get_source_stamp


# ----------------------------------------------------------------------------------------
# module names of a source file


def user_module_name(path):
    """The module name ``load_strategy`` gives ``path`` when its plain name is taken."""
    return USER_PREFIX + hashlib.sha256(path.encode()).hexdigest()[:16]


def plain_module_name(path):
    """The name a plain ``import`` gives the file ``path`` from its package root.

    ``dir/zscore.py`` is ``zscore``; ``root/pkg/sub/mod.py`` with ``__init__.py`` in
    ``pkg`` and ``sub`` is ``pkg.sub.mod``. None when the stem is not an identifier.
    """
    folder, filename = os.path.split(path)
    stem, ext = os.path.splitext(filename)
    if ext != ".py" or not stem.isidentifier() or stem == "__init__":
        return None
    parts = [stem]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        parent, name = os.path.split(folder)
        if not name.isidentifier() or parent == folder:
            break
        parts.append(name)
        folder = parent
    return ".".join(reversed(parts))


def _names_of_file(path):
    real = os.path.realpath(path)
    names = {user_module_name(real), os.path.splitext(os.path.basename(real))[0]}
    for p in (path, real):
        plain = plain_module_name(p)
        if plain:
            names.add(plain)
    return names


def loaded_module_of(modname):
    """The one module in ``sys.modules`` whose source file can be named ``modname``."""
    found = {}
    stem = modname.rpartition(".")[2]
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            continue
        if not modname.startswith(USER_PREFIX) and \
                os.path.splitext(os.path.basename(path))[0] != stem:
            continue  # cheap filter before resolving paths
        try:
            if modname in _names_of_file(path):
                found.setdefault(os.path.realpath(path), module)
        except (OSError, ValueError):  # pragma: no cover - odd paths
            continue
    return next(iter(found.values())) if len(found) == 1 else None


class StaleCacheEntry(FileNotFoundError):
    """A cache entry whose module cannot be found: numba treats it as a miss.

    numba's cache loader (``IndexDataCacheFile.load``) returns "not cached" on an
    ``OSError`` while reading an entry, so the function is compiled and saved again.
    """


# ----------------------------------------------------------------------------------------
# locators


_impl_cls = getattr(caching, "CacheImpl", None) or caching._CacheImpl


def _standard_locators():
    """numba's locators for plain source files, in numba's order of preference."""
    names = (("UserProvidedCacheLocator", "_UserProvidedCacheLocator"),
             ("InTreeCacheLocator", "_InTreeCacheLocator"),
             ("UserWideCacheLocator", "_UserWideCacheLocator"))
    out = []
    for public, private in names:
        cls = getattr(caching, public, None) or getattr(caching, private, None)
        if cls is not None:
            out.append(cls)
    return out


_STANDARD = _standard_locators()


def _index_files(path):
    """The numba index files in directory ``path`` (empty when unreadable or absent)."""
    try:
        return [n for n in os.listdir(path) if n.endswith(".nbi")]
    except OSError:
        return []


def _index_name(py_func, py_file, disambiguator):
    """The end of the name of the index file numba keeps for ``py_func`` (as in
    ``CacheImpl.__init__`` and ``get_filename_base``; library caches prefix it)."""
    qualname = getattr(py_func, "__qualname__", py_func.__name__)
    stem = os.path.splitext(os.path.basename(py_file))[0]
    fullname = f"{stem}.{qualname}".replace("<", "").replace(">", "")
    abiflags = getattr(sys, "abiflags", "")
    return (f"{fullname}-{disambiguator}.py{sys.version_info[0]}{sys.version_info[1]}"
            f"{abiflags}.nbi")


class ReadOnlyCacheLocator(caching._CacheLocator):
    """An existing, readable, unwritable cache directory holding numba index files.

    Tried before numba's own locators, over the same places in the same order (see
    :meth:`from_function`). Loads work as usual; saves are skipped (see :func:`install`).
    """

    # what the patched Cache.load_overload / save_overload skip (flags, not isinstance:
    # robust to a reload of this module)
    sweepbt_loads, sweepbt_saves = True, False

    def __init__(self, inner, py_file):
        self._inner = inner
        self._py_file = py_file
        self._lineno = getattr(inner, "_lineno", 0)

    def ensure_cache_path(self):
        pass  # read-only on purpose: nothing is written here

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_source_stamp(self):
        return self._inner.get_source_stamp()

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        """numba's places in numba's order: the first writable one is left to numba; an
        unwritable one holding this function's index is used read-only. With no writable
        place, the first unwritable one holding any index file is used read-only (a baked
        cache: what it lacks is compiled, not saved). Otherwise None."""
        if getattr(sys, "frozen", False) or not os.path.exists(py_file):
            return None
        fallback = None
        for kind in _STANDARD:
            if "UserProvided" in kind.__name__ and not config.CACHE_DIR:
                continue
            try:
                inner = kind(py_func, py_file)
            except Exception:  # noqa: BLE001 - a place numba cannot use either
                continue
            try:
                inner.ensure_cache_path()
            except OSError:
                found = _index_files(inner.get_cache_path())
                if not found:
                    continue
                own = _index_name(py_func, py_file, inner.get_disambiguator())
                if any(n.endswith(own) for n in found):
                    return cls(inner, py_file)
                fallback = fallback or inner
                continue
            return None  # writable: numba's own locator takes it
        return None if fallback is None else cls(fallback, py_file)


class NoDiskCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
    """The last resort, when no place is usable: nothing is loaded or saved."""

    sweepbt_loads, sweepbt_saves = False, False

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno

    def ensure_cache_path(self):
        pass

    def get_cache_path(self):
        # never opened (loads and saves are skipped); not a directory in any case
        return os.path.join(os.devnull, "sweepbt-no-disk-cache")

    @classmethod
    def from_function(cls, py_func, py_file):
        if not (os.path.exists(py_file) or getattr(sys, "frozen", False)):
            return None  # "<string>", "<ipython-...>": numba's own rules apply
        _warn_once(py_file)
        return cls(py_func, py_file)


def _warn_once(py_file):
    global _warned
    with _lock:
        if _warned:
            return
        _warned = True
    where = (f"NUMBA_CACHE_DIR={config.CACHE_DIR} is not writable" if config.CACHE_DIR
             else "NUMBA_CACHE_DIR is not set")
    try:
        from numba.misc.appdirs import AppDirs

        user_wide = AppDirs(appname="numba", appauthor=False).user_cache_dir
    except Exception:  # noqa: BLE001 - only for the message
        user_wide = "~/.cache/numba"
    pycache = os.path.join(os.path.dirname(py_file), "__pycache__")
    # filename "sweepbt", line 0: the warning is one line, with no source line under it
    warnings.warn_explicit(
        f"numba cannot write its disk cache ({where}; neither {pycache} nor {user_wide} "
        "is writable): compiling without a disk cache, in every process; set "
        "NUMBA_CACHE_DIR to a writable directory to keep compiled code",
        NumbaCacheWarning, filename="sweepbt", lineno=0, module="sweepbt")


# ----------------------------------------------------------------------------------------
# installing


def install():
    """Add the locators and the module-name fallback to numba (idempotent)."""
    global _installed
    with _lock:
        if _installed or getattr(caching, "_sweepbt_installed", False):
            _installed = True  # (by an earlier copy of this module, e.g. reloaded)
            return
        classes = _impl_cls._locator_classes
        classes.insert(0, ReadOnlyCacheLocator)
        classes.append(NoDiskCacheLocator)
        _patch_source_stamp(caching._SourceFileBackedLocatorMixin)
        _patch_cache(caching.Cache)
        _patch_environment()
        caching._sweepbt_installed = True
        _installed = True


def _locator_of(cache):
    impl = getattr(cache, "_impl", None)
    return getattr(impl, "locator", None)


def _patch_cache(cache_cls):
    load, save = cache_cls.load_overload, cache_cls.save_overload

    def load_overload(self, sig, target_context):
        if not getattr(_locator_of(self), "sweepbt_loads", True):
            return None
        return load(self, sig, target_context)

    def save_overload(self, sig, data):
        if not getattr(_locator_of(self), "sweepbt_saves", True):
            return None
        return save(self, sig, data)

    load_overload.__wrapped__, save_overload.__wrapped__ = load, save
    cache_cls.load_overload = load_overload
    cache_cls.save_overload = save_overload


def _patch_environment():
    original = environment._rebuild_env

    def _rebuild_env(modname, consts, env_name):
        try:
            return original(modname, consts, env_name)
        except ImportError as exc:
            module = loaded_module_of(modname) if isinstance(modname, str) else None
            if module is None:
                raise StaleCacheEntry(
                    f"numba cache entry recorded for module {modname!r}, which cannot be "
                    "imported here: compiling again") from exc
        env = environment.Environment(module.__dict__)
        env.consts[:] = consts
        env.env_name = env_name
        environment.Environment._memo[env_name] = env
        return env

    # pickled by reference as numba's own function: cache files do not name sweepbt
    _rebuild_env.__module__ = original.__module__
    _rebuild_env.__qualname__ = original.__qualname__
    _rebuild_env.__wrapped__ = original
    environment._rebuild_env = _rebuild_env


def _kernels_directory():
    """Where ``sweepbt.kernels`` lives (found, not imported: it must load after install)."""
    spec = importlib.util.find_spec("sweepbt.kernels")
    return spec.submodule_search_locations[0]


install()
stamp_dependencies(_kernels_directory(), "sweepbt.kernels")
