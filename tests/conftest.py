"""Shared fixtures of the test suite.

The data fixtures below are session-scoped: each test file gets the same objects. A test
must never write to them (the prices of a Bundle are writable numpy arrays); a test that
changes a bundle takes ``demo.copy()`` (or ``.select``/``.slice_bars``, which copy) first.
After every test that used one, :func:`_shared_data_unchanged` checks that its arrays are
still the bytes they were, and otherwise fails that test and puts the bytes back (so the
tests after it are not blamed too).

Helpers shared by several files are in helpers.py; the ``slow`` marker (pyproject.toml)
marks the subprocess, Dask, notebook and browser tests: ``pytest -m "not slow"`` is the
quick run.
"""

import hashlib
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # helpers, reference, strategy_cases

import sweepbt as sb  # noqa: E402

#: each shared bundle, its digest and a pristine copy, by fixture name
_SHARED = {}
_ARRAYS = ("open", "high", "low", "close", "volume", "timestamps", "start", "end")


def _digest(bundle):
    h = hashlib.sha256()
    for name in _ARRAYS:
        h.update(getattr(bundle, name).tobytes())
    for name, values in bundle.factors.items():
        h.update(name.encode())
        h.update(values.tobytes())
    h.update(repr((bundle.symbols, bundle.tz)).encode())
    return h.hexdigest()


def _shared(name, bundle):
    _SHARED[name] = (bundle, _digest(bundle), bundle.copy())
    return bundle


def _restore(bundle, pristine):
    for name in _ARRAYS:
        np.copyto(getattr(bundle, name), getattr(pristine, name))
    for name, values in pristine.factors.items():
        np.copyto(bundle.factors[name], values)


@pytest.fixture(scope="session")
def demo():
    """The packaged demo data (``sb.demo()``): 10 assets x 5,451 daily bars. Read only."""
    return _shared("demo", sb.demo())


@pytest.fixture(scope="session")
def demo_abc(demo):
    """The demo's ALPHA, BRAVO and CHARLIE, every bar. Read only."""
    return _shared("demo_abc", demo.select(["ALPHA", "BRAVO", "CHARLIE"]))


@pytest.fixture(scope="session")
def demo_ab(demo):
    """The demo's ALPHA and BRAVO, every bar. Read only."""
    return _shared("demo_ab", demo.select(["ALPHA", "BRAVO"]))


@pytest.fixture(autouse=True)
def _shared_data_unchanged(request):
    """Fails a test that wrote to a shared data fixture it used."""
    yield
    for name in request.fixturenames:
        if name in _SHARED:
            bundle, digest, pristine = _SHARED[name]
            if _digest(bundle) != digest:
                _restore(bundle, pristine)
                pytest.fail(f"the test changed the shared fixture {name!r}: take a .copy() "
                            "of it first (tests/conftest.py)", pytrace=False)
