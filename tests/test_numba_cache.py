"""numba's disk cache made robust by sweepbt._numba_cache (docs/getting-started.md).

* No writable cache location anywhere (read-only HOME, no NUMBA_CACHE_DIR, read-only
  install): ``import sweepbt`` works, compiles without a disk cache, warns once.
* A read-only cache that already holds compiled kernels (baked into an image) is loaded;
  what it lacks is compiled and not saved, quietly.
* A cache entry recorded under a module name this process cannot import (a file imported
  under another name elsewhere) loads via the module of the same file, or is compiled
  again; never a ModuleNotFoundError.

Each case runs in subprocesses with their own temporary NUMBA_CACHE_DIR. A read-only
directory is simulated with chmod; as root, which chmod does not stop, the subprocess runs
without the capabilities that bypass file permissions (``setpriv``), or the test is
skipped.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NO_DAC = ["--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "SWEEPBT_CACHE_DIR",
                        "NUMBA_CACHE_LOCATOR_CLASSES")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def _make_read_only(path):
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


def _make_writable(path):
    for dirpath, dirnames, filenames in os.walk(path):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


@pytest.fixture(scope="module")
def unprivileged(tmp_path_factory):
    """The command prefix under which chmod'ed directories are really read-only."""
    prefix = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a read-only directory cannot be "
                        "simulated with chmod")
        prefix = [setpriv, *NO_DAC]
    probe = tmp_path_factory.mktemp("probe")
    probe.chmod(0o555)
    try:
        out = subprocess.run([*prefix, sys.executable, "-c",
                              f"open({str(probe / 'x')!r}, 'w')"], capture_output=True)
    finally:
        probe.chmod(0o755)
    if out.returncode == 0:
        pytest.skip("chmod 555 does not make a directory read-only here")
    return prefix


@pytest.fixture()
def installed_copy(tmp_path):
    """A copy of the sweepbt package (the kernels inside it) on PYTHONPATH, so that the
    in-tree __pycache__ beside the kernels can be made read-only without touching the
    checkout; and a HOME. Made writable again afterwards."""
    pkg = tmp_path / "site"
    shutil.copytree(ROOT / "src" / "sweepbt", pkg / "sweepbt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "kernels", pkg / "sweepbt" / "kernels",
                    ignore=shutil.ignore_patterns("__pycache__"))
    home = tmp_path / "home"
    home.mkdir()
    yield pkg, home
    _make_writable(tmp_path)


KERNEL_CALL = """
import numpy as np
import sweepbt
from sweepbt.kernels import rolling_mean_1d, sweep_metrics
assert sweepbt.__file__.startswith({pkg!r}), sweepbt.__file__
out = np.full(10, np.nan)
rolling_mean_1d(np.arange(10.0), 0, 10, 3, out)
if {second_signature}:
    rolling_mean_1d(np.arange(20.0)[::2], 0, 10, 4, out)  # not contiguous: another overload
stats = rolling_mean_1d.stats
print(out[-1], type(rolling_mean_1d._cache._impl.locator).__name__,
      sum(stats.cache_hits.values()), sum(stats.cache_misses.values()),
      type(sweep_metrics._cache._impl.locator).__name__)  # a kernel not compiled yet
"""


def _run(prefix, script, env, cwd=None):
    return subprocess.run([*prefix, sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_no_writable_cache_location_compiles_without_disk_cache(unprivileged,
                                                                installed_copy):
    """Read-only HOME, no NUMBA_CACHE_DIR, read-only install: `import sweepbt` raised
    RuntimeError("cannot cache function 'rolling_mean_1d': no locator available ...")."""
    pkg, home = installed_copy
    _make_read_only(pkg)
    _make_read_only(home)
    env = _clean_env(HOME=str(home), PYTHONPATH=str(pkg))
    out = _run(unprivileged, KERNEL_CALL.format(pkg=str(pkg), second_signature=False), env)
    assert out.returncode == 0, out.stderr
    value, locator, hits, misses, other = out.stdout.split()
    assert float(value) == 8.0  # mean of 7, 8, 9
    assert (locator, hits, misses, other) == ("NoDiskCacheLocator", "0", "1",
                                              "NoDiskCacheLocator")
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr  # one warning for all the kernels
    kernels = pkg / "sweepbt" / "kernels" / "__pycache__"
    assert lines[0] == (
        "sweepbt:0: NumbaCacheWarning: numba cannot write its disk cache (NUMBA_CACHE_DIR "
        f"is not set; neither {kernels} nor {home / '.cache' / 'numba'} is writable): "
        "compiling without a disk cache, in every process; set NUMBA_CACHE_DIR to a "
        "writable directory to keep compiled code")
    assert os.listdir(home) == []


@pytest.mark.slow
def test_read_only_prepopulated_cache_is_used(unprivileged, installed_copy, tmp_path):
    """A cache baked into a read-only image is loaded (it was ignored, or import failed);
    an overload it lacks is compiled and not saved, without an error or a warning."""
    pkg, home = installed_copy
    cache = tmp_path / "baked"
    cache.mkdir()
    # populate it, writable
    first = _run([], KERNEL_CALL.format(pkg=str(pkg), second_signature=False),
                 _clean_env(HOME=str(home), PYTHONPATH=str(pkg), NUMBA_CACHE_DIR=str(cache)))
    assert first.returncode == 0, first.stderr
    assert first.stdout.split()[1:] == ["UserProvidedCacheLocator", "0", "1",
                                        "UserProvidedCacheLocator"]
    files = sorted(p.name for p in cache.rglob("*"))
    assert any(name.endswith(".nbi") for name in files), files
    for path in (pkg, home, cache):
        _make_read_only(path)
    env = _clean_env(HOME=str(home), PYTHONPATH=str(pkg), NUMBA_CACHE_DIR=str(cache))
    out = _run(unprivileged, KERNEL_CALL.format(pkg=str(pkg), second_signature=True), env)
    assert out.returncode == 0, out.stderr
    value, locator, hits, misses, other = out.stdout.split()
    assert float(value) == 15.0  # the second call: mean of 12, 14, 16, 18
    assert (locator, hits, misses) == ("ReadOnlyCacheLocator", "1", "1")
    assert other == "ReadOnlyCacheLocator"  # not in the cache: compiled if used, no warning
    assert out.stderr == ""
    assert sorted(p.name for p in cache.rglob("*")) == files  # nothing written
    assert os.listdir(home) == []


# ----------------------------------------------------------------------------------------
# cache entries recorded under another module name


HELPER = """
from numba import njit

OFFSET = 1.5


@njit(cache=True)
def shifted(x):
    return x + OFFSET
"""

LOAD_AS = """
import importlib.util, os, sys
import sweepbt
from sweepbt import _numba_cache
path = os.path.realpath("helper_mod.py")
name = {name}
spec = importlib.util.spec_from_file_location(name, path)
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
stats = module.shifted.stats
print(module.shifted(1.0), sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""

PLAIN = """
import sweepbt
import helper_mod
stats = helper_mod.shifted.stats
print(helper_mod.shifted(1.0), sum(stats.cache_hits.values()),
      sum(stats.cache_misses.values()))
"""


@pytest.mark.slow
def test_cache_entry_recorded_under_another_module_name(tmp_path):
    """numba keys a function's cache by its file but records its module's name, and
    imports that name when loading the entry. A name this process cannot import resolves
    to the module loaded from the same file (e.g. load_strategy's hashed name, which older
    sweepbt versions always recorded); a name that cannot be resolved at all is a cache
    miss, compiled and saved again. Both were ModuleNotFoundError."""
    (tmp_path / "helper_mod.py").write_text(HELPER)

    def run(script, cache):
        env = _clean_env(NUMBA_CACHE_DIR=str(tmp_path / cache))
        out = _run([], script, env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        value, hits, misses = out.stdout.split()
        assert float(value) == 2.5
        return int(hits), int(misses)

    hashed = LOAD_AS.format(name="_numba_cache.user_module_name(path)")
    assert run(hashed, "a") == (0, 1)  # compiled, saved under _sweepbt_user_<hash>
    assert run(PLAIN, "a") == (1, 0)  # loaded as helper_mod: the hashed name is its file's
    stranger = LOAD_AS.format(name=repr("somebody_else"))
    assert run(stranger, "b") == (0, 1)  # saved under 'somebody_else'
    assert run(PLAIN, "b") == (0, 1)  # no module of that name: compiled again, re-saved
    assert run(PLAIN, "b") == (1, 0)


# ----------------------------------------------------------------------------------------
# cache entries stamped by every kernel file they compile from

PKG_HELPER = """
from numba import njit

from pkgk._core import SCALE


@njit(cache=True)
def scaled(x):
    return x * SCALE
"""

PKG_KERNEL = """
from numba import njit

from pkgk.helper import scaled


@njit(cache=True)
def kernel(x):
    return scaled(x) + 1.0
"""

STAMPED_RUN = """
import os, sys
import sweepbt
from sweepbt import _numba_cache
_numba_cache.stamp_dependencies(os.path.realpath("pkgk"), "pkgk")
from pkgk.kernel import kernel
print(kernel(2.0), sum(kernel.stats.cache_hits.values()))
"""


def _write_package(root, scale):
    (root / "pkgk").mkdir(exist_ok=True)
    (root / "pkgk" / "__init__.py").write_text("")
    (root / "pkgk" / "_core.py").write_text(f"SCALE = {scale}\n")
    (root / "pkgk" / "helper.py").write_text(PKG_HELPER)
    (root / "pkgk" / "kernel.py").write_text(PKG_KERNEL)
    (root / "pkgk" / "other.py").write_text("UNRELATED = 1\n")


def test_a_dependency_edit_changes_the_stamp_and_an_unrelated_one_does_not(tmp_path):
    from sweepbt import _numba_cache

    _write_package(tmp_path, 3.0)
    pkg = tmp_path / "pkgk"
    _numba_cache.stamp_dependencies(str(pkg), "pkgk")
    kernel, helper, core = (str(pkg / f) for f in ("kernel.py", "helper.py", "_core.py"))
    assert [Path(f).name for f in _numba_cache.dependency_files(
        kernel, os.path.realpath(pkg), "pkgk")] == ["_core.py", "helper.py", "kernel.py"]
    before = {f: _numba_cache.dependency_stamp(f) for f in (kernel, helper, core)}
    (pkg / "other.py").write_text("UNRELATED = 2\n")  # imported by nobody
    assert {f: _numba_cache.dependency_stamp(f) for f in before} == before
    (pkg / "_core.py").write_text("SCALE = 4.0\n")  # imported by helper, so by kernel
    after = {f: _numba_cache.dependency_stamp(f) for f in before}
    assert all(after[f] != before[f] for f in before)
    (pkg / "kernel.py").write_text(PKG_KERNEL + "\n# a comment\n")  # imported by nobody
    assert _numba_cache.dependency_stamp(helper) == after[helper]
    assert _numba_cache.dependency_stamp(kernel) != after[kernel]
    assert _numba_cache.dependency_stamp(str(tmp_path / "elsewhere.py")) is None


@pytest.mark.slow
def test_a_stale_entry_is_never_loaded(tmp_path):
    """numba alone stamps kernel.py's entry by kernel.py: after an edit of _core.py, which
    kernel.py reaches through helper.py, it would load the old machine code (7.0)."""
    env = _clean_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def run():
        out = _run([], STAMPED_RUN, env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        value, hits = out.stdout.split()
        return float(value), int(hits)

    _write_package(tmp_path, 3.0)
    assert run() == (7.0, 0)  # compiled and saved
    assert run() == (7.0, 1)  # loaded from the cache
    (tmp_path / "pkgk" / "other.py").write_text("UNRELATED = 2\n")
    assert run() == (7.0, 1)  # an unrelated file: still loaded
    (tmp_path / "pkgk" / "_core.py").write_text("SCALE = 4.0\n")
    assert run() == (9.0, 0)  # a dependency changed: compiled again, never the old code


def test_the_kernels_are_stamped_by_their_imports():
    """The layout of docs/architecture.md: each engine compiles from its own file, the
    position helpers, the core and the enums; editing rank.py recompiles only rank."""
    import sweepbt.kernels
    from sweepbt import _numba_cache

    directory = os.path.realpath(Path(sweepbt.kernels.__file__).parent)

    def deps(name):
        return [Path(f).name for f in _numba_cache.dependency_files(
            os.path.join(directory, name), directory, "sweepbt.kernels")]

    shared = ["_core.py", "_position.py", "codes.py", "commission.py", "enums.py"]
    assert deps("asset.py") == sorted(shared + ["asset.py"])
    assert deps("portfolio.py") == sorted(shared + ["portfolio.py"])
    assert deps("rank.py") == sorted(shared + ["rank.py"])
    assert deps("_core.py") == ["_core.py", "commission.py", "enums.py"]
    assert _numba_cache.dependency_stamp(os.path.join(directory, "rank.py"))[0] == \
        "sweepbt-dependencies"


def test_a_directory_of_links_is_stamped_by_the_sources(tmp_path):
    """A strict editable install (the README's development set-up) imports the kernels from
    a directory of links to kernels/: their entries are stamped there too, by the texts the
    links point to (an unstamped link tree once loaded a kernel compiled with old enums)."""
    from sweepbt import _numba_cache

    _write_package(tmp_path, 3.0)
    links = tmp_path / "tree" / "pkgk"
    links.mkdir(parents=True)
    for source in (tmp_path / "pkgk").iterdir():
        (links / source.name).symlink_to(source)
    _numba_cache.stamp_dependencies(str(links), "pkgk")
    kernel = str(links / "kernel.py")
    before = _numba_cache.dependency_stamp(kernel)
    assert before is not None
    assert [Path(f).name for f in _numba_cache.dependency_files(
        kernel, os.path.realpath(links), "pkgk")] == ["_core.py", "helper.py", "kernel.py"]
    (tmp_path / "pkgk" / "_core.py").write_text("SCALE = 4.0\n")  # the source, not the link
    assert _numba_cache.dependency_stamp(kernel) != before
