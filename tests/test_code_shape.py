"""The shape rules of docs/architecture.md, checked on the source: rooms of one job each
(no shell module over about 500 lines), no function over cyclomatic complexity 20 (radon),
no @njit function over 12 parameters, and no public name re-exported over a submodule."""

import ast
import importlib
import pathlib
import pkgutil

import pytest

import sweepbt
import sweepbt.kernels

radon_complexity = pytest.importorskip("radon.complexity")

ROOT = pathlib.Path(sweepbt.__file__).parent
KERNELS = pathlib.Path(sweepbt.kernels.__file__).parent
MAX_MODULE_LINES = 520  # "about 500"
MAX_COMPLEXITY = 20
MAX_KERNEL_PARAMS = 12


def _shell():
    return sorted(p for p in ROOT.rglob("*.py") if "kernels" not in p.relative_to(ROOT).parts)


def _sources():
    return _shell() + sorted(KERNELS.rglob("*.py"))


@pytest.mark.parametrize("path", _shell(), ids=lambda p: p.name)
def test_shell_module_is_one_room(path):
    n_lines = len(path.read_text().splitlines())
    assert n_lines <= MAX_MODULE_LINES, f"{path} has {n_lines} lines"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_no_function_over_complexity_20(path):
    blocks = radon_complexity.cc_visit(path.read_text())
    worst = [(b.fullname, b.complexity) for b in blocks if b.complexity > MAX_COMPLEXITY]
    assert not worst, f"{path}: {worst}"


def _njit_functions(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                if getattr(target, "id", getattr(target, "attr", None)) == "njit":
                    yield node


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_no_njit_function_over_12_parameters(path):
    tree = ast.parse(path.read_text())
    wide = [(f.name, len(f.args.args)) for f in _njit_functions(tree)
            if len(f.args.args) + len(f.args.kwonlyargs) > MAX_KERNEL_PARAMS]
    assert not wide, f"{path}: {wide}"


def test_no_public_name_shadows_a_submodule():
    import sweepbt.cli
    import sweepbt.data
    import sweepbt.strategies

    for package in (sweepbt, sweepbt.kernels, sweepbt.cli, sweepbt.data, sweepbt.strategies):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            attr = getattr(package, info.name)
            assert attr is module, f"{package.__name__}.{info.name} is not the submodule"


def test_stats_is_imported_by_the_package_itself():
    text = (ROOT / "__init__.py").read_text()
    assert "from sweepbt import stats" in text


def _module_names():
    names = {"sweepbt", "sweepbt.kernels"}
    for path in _shell():
        rel = path.relative_to(ROOT).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        names.add(".".join(["sweepbt", *parts]))
    for path in KERNELS.rglob("*.py"):
        names.add(f"sweepbt.kernels.{path.stem}")
    return names


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_no_module_uses_another_modules_underscore_names(path):
    """``from sweepbt.x import _name`` and ``x._name`` (x a sweepbt module) are refused;
    private modules (``sweepbt._files``) are fine: their public names are the API."""
    modules = _module_names()
    tree = ast.parse(path.read_text())
    bound, bad = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.startswith("sweepbt"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in modules:
                    bound[alias.asname or alias.name] = full
                elif alias.name.startswith("_") and not alias.name.startswith("__"):
                    bad.append(f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    bound[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in bound and node.attr.startswith("_") \
                and not node.attr.startswith("__") \
                and f"{bound[node.value.id]}.{node.attr}" not in modules:
            bad.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
    assert not bad, f"{path}: {bad}"
