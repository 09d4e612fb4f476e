"""The generated driver modules of user strategies, and their cache on disk.

numba cannot cache a compiled function that receives another dispatcher as an argument, so
sweepbt *generates* a small Python module per strategy (text:
:mod:`sweepbt.strategies._codegen`) that imports the user's two functions as module globals
and defines ``@njit(cache=True)`` drivers calling them directly. The module is written
into the first writable of :func:`candidate_dirs` and named by :func:`module_key`: a hash of its text, of
:func:`source_key` (the user's source files, the jitted helpers they call, the constants
they read), and of the numba, Python and generator versions. An existing generated file is
never rewritten (its mtime keys numba's cache). Where nothing is writable, or the user's
functions cannot be imported by name in another process, the drivers are compiled in memory
without a disk cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import linecache
import numbers
import os
import sys
import tempfile
import types
import warnings

import numba
import numpy as np
from numba import njit, prange
from numba.core.dispatcher import Dispatcher

from sweepbt.strategies import _codegen
from sweepbt.kernels.codes import ALL_CODES

GEN_PREFIX = "_sweepbt_gen_"


# ----------------------------------------------------------------------------------------
# what the compiled strategy is made of


def _cell_filled(cell):
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _is_constant(x):
    if isinstance(x, tuple):
        return all(_is_constant(v) for v in x)
    return isinstance(x, (numbers.Number, str, bytes, np.ndarray)) and not callable(x)


def _constant_key(x):
    if isinstance(x, np.ndarray):
        return f"ndarray{x.dtype}{x.shape}:{hashlib.sha256(x.tobytes()).hexdigest()}"
    if isinstance(x, tuple):
        return "(" + ",".join(_constant_key(v) for v in x) + ")"
    return f"{type(x).__name__}:{x!r}"


def _module_refs(module, names, todo, constants):
    """The dispatchers (into ``todo``) and constants read as ``module.<name>``."""
    for attr in sorted(names):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sub = getattr(module, attr, None)
        if isinstance(sub, Dispatcher):
            todo.append(sub)
        elif _is_constant(sub):
            constants.append(f"{module.__name__}.{attr}={_constant_key(sub)}")


def _names_read(py):
    """Every global or attribute name the code of ``py`` (and its nested code) reads."""
    codes, names = [py.__code__], set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names


def _dependencies(fns):
    """The dispatchers reachable from ``fns`` and the global constants they read.

    numba freezes global values and compiles the jitted functions a function calls into
    it, so a change to any of them must change the generated module's name.
    """
    found_fns, constants = [], []
    seen, todo = set(), list(fns)
    while todo:
        fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        found_fns.append(fn)
        py = fn.py_func
        names = _names_read(py)
        glb = py.__globals__
        cells = [c.cell_contents for c in (py.__closure__ or ()) if _cell_filled(c)]
        for obj in [glb[n] for n in sorted(names) if n in glb] + cells:
            if isinstance(obj, types.ModuleType):
                _module_refs(obj, names, todo, constants)
            elif isinstance(obj, Dispatcher):
                todo.append(obj)
            elif _is_constant(obj):
                constants.append(_constant_key(obj))
    return found_fns, sorted(constants)


def _code_key(code, h):
    """Feed a code object (bytecode, names, constants, nested code) into hash ``h``."""
    h.update(code.co_code)
    h.update(repr((code.co_name, code.co_names, code.co_varnames, code.co_freevars)).encode())
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _code_key(c, h)
        elif isinstance(c, frozenset):  # repr order depends on hash randomization
            h.update(repr(sorted(map(repr, c))).encode())
        else:
            h.update(repr(c).encode())


def source_key(*functions):
    """Hash of what the user's jitted ``functions`` (a strategy's, a commission) are made
    of: their source files and those of the jitted helpers they call, their bytecode and
    qualified names, and the global constants they read."""
    fns, constants = _dependencies(list(functions))
    h = hashlib.sha256()
    files = set()
    for fn in fns:
        py = fn.py_func
        h.update(f"{py.__module__}:{py.__qualname__}".encode())
        _code_key(py.__code__, h)
        try:
            files.add(inspect.getsourcefile(py) or "")
        except TypeError:
            files.add("")
    for path in sorted(files):
        h.update(path.encode() + b"\0")
        try:
            with open(path, "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(b"<unreadable>")
    for c in constants:
        h.update(c.encode() + b"\0")
    return h.hexdigest()


def module_key(spec, text):
    """The name part of the generated module of ``spec`` with source ``text``."""
    h = hashlib.sha256()
    for part in (f"generator {_codegen.GENERATOR_VERSION}", f"numba {numba.__version__}",
                 f"python {sys.version}", text, spec.source_key):
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:20]


# ----------------------------------------------------------------------------------------
# where generated modules live


def candidate_dirs():
    """Where generated modules may live, in order of preference."""
    dirs = []
    if os.environ.get("SWEEPBT_CACHE_DIR"):
        dirs.append(os.environ["SWEEPBT_CACHE_DIR"])
    if os.environ.get("NUMBA_CACHE_DIR"):
        dirs.append(os.path.join(os.environ["NUMBA_CACHE_DIR"], "sweepbt_generated"))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"),
                                                            ".cache")
    dirs.append(os.path.join(base, "sweepbt", "generated"))
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    dirs.append(os.path.join(tempfile.gettempdir(), f"sweepbt-generated-{uid}"))
    return [os.path.abspath(d) for d in dirs]


def generated_dir():
    """The first writable directory for generated modules, or None when none is."""
    for d in candidate_dirs():
        if writable(d):
            return d
    return None


def writable(directory):
    """Whether files can be created in ``directory`` (made if missing)."""
    try:
        os.makedirs(directory, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def _publish(directory, filename, text):
    """Write ``text`` as ``directory/filename`` unless it exists; never rewrite a file.

    The file appears atomically (written aside, then hard-linked into place), so another
    process never imports a half-written module. Returns the path, or None on failure.
    """
    path = os.path.join(directory, filename)
    if _read(path) == text:
        return path
    if os.path.exists(path) or not writable(directory):
        return None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # no hard links here: fall back to a checked rename
            if not os.path.exists(path):
                os.replace(tmp, path)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    except OSError:
        return None
    return path if _read(path) == text else None


def _import_file(modname, path):
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


# ----------------------------------------------------------------------------------------
# the drivers of a strategy


def _importable(fn):
    """(module name, qualname) to import ``fn`` by name in another process, or None."""
    py = fn.py_func
    module, qualname = getattr(py, "__module__", None), getattr(py, "__qualname__", "")
    if not module or "<" in qualname or module not in sys.modules:
        return None
    try:
        source = inspect.getsourcefile(py)
    except TypeError:
        return None
    if not source or not os.path.isfile(source):
        return None
    obj = sys.modules[module]
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if obj is not fn:
        return None
    return module, qualname


def _shape(spec):
    return _codegen.DriverShape(len(spec.inputs), len(spec.indicator_params),
                                len(spec.signal_params))


def make_drivers(spec):
    """The module of compiled drivers for ``spec``: from a generated file when possible."""
    indicators, signal = _importable(spec.indicators), _importable(spec.signal)
    if indicators and signal:
        text = _codegen.render_module(_shape(spec), all_codes=ALL_CODES, indicators=indicators,
                                      signal=signal, numba_version=numba.__version__)
        modname = f"{GEN_PREFIX}{module_key(spec, text)}"
        if modname in sys.modules:
            return sys.modules[modname]
        for directory in candidate_dirs():
            path = os.path.join(directory, modname + ".py")
            if _read(path) != text:
                path = _publish(directory, modname + ".py", text)
            if path is None:
                continue
            try:
                return _import_file(modname, path)
            except RuntimeError as exc:  # numba: no writable cache locator for this file
                if "cannot cache" not in str(exc):
                    raise
    return _memory_drivers(spec)


def _memory_drivers(spec):
    """Drivers compiled in memory (no disk cache): functions not importable by name."""
    modname = f"{GEN_PREFIX}{spec.name}_memory_{id(spec):x}"
    module = types.ModuleType(modname)
    module.user_indicators = spec.indicators
    module.user_signal = spec.signal
    module.np, module.njit, module.prange = np, njit, prange
    filename = f"<sweepbt generated drivers of {spec.name!r}>"
    text = _codegen.render_body(_shape(spec), all_codes=ALL_CODES, cache=False)
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    exec(compile(text, filename, "exec"), module.__dict__)  # noqa: S102 - our own template
    return module
