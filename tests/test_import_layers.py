"""The import graph of sweepbt, read from the source with ast (nothing is imported).

Every import counts, including those inside functions. ``from sweepbt import x`` is an
import of the submodule ``sweepbt.x`` when there is one, else of the package ``sweepbt``;
``sweepbt.kernels`` is the kernels/ folder. An import of ``a.b.c`` is an edge to the most
specific module of sweepbt it names (the parent packages it also runs are not counted).
"""

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"sweepbt": ROOT / "src" / "sweepbt", "sweepbt.kernels": ROOT / "kernels"}


def module_files():
    """{module name: path} of every module of sweepbt."""
    out = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if package == "sweepbt" and parts[:1] == ["kernels"]:
                continue  # not shipped from src/ (pyproject maps sweepbt.kernels to kernels/)
            out[".".join([package, *parts])] = path
    return out


def imported_names(tree, module, is_package):
    """(dotted name, line) of every import in ``tree``: relative imports made absolute,
    ``from p import x`` giving ``p.x``, which :func:`resolve` maps to the submodule ``p.x``
    if there is one, else to ``p``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1] + ([base] if base else [])
                base = ".".join(parts)
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def resolve(name, known):
    """The most specific module of ``known`` that the dotted ``name`` names, or ""."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name


def import_graph():
    """{module: {imported module: [lines]}} over the modules of sweepbt."""
    files = module_files()
    graph = {}
    for module, path in files.items():
        edges = graph.setdefault(module, {})
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for name, line in imported_names(tree, module, path.name == "__init__.py"):
            target = resolve(name, files)
            if target and target != module and line not in edges.setdefault(target, []):
                edges[target].append(line)
    return graph


def cycles(graph):
    """The strongly connected components of more than one module, each sorted."""
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {m: reach(m) for m in graph}
    groups = {tuple(sorted(n for n in reachable[m] if m in reachable[n])) for m in graph}
    return sorted(g for g in groups if len(g) > 1)


def describe(graph, group):
    return "\n".join(f"  {a} -> {b} (line {', '.join(map(str, graph[a][b]))})"
                     for a in group for b in sorted(graph[a]) if b in group)


def test_every_kind_of_import_is_seen():
    tree = ast.parse(
        "import numpy as np\n"
        "import sweepbt.kernels.rank as sim\n"
        "from sweepbt import kernels, STRATEGIES\n"
        "def f():\n"
        "    from sweepbt.results import metric_index\n"
        "from . import codes\n"
        "from .. import series\n")
    known = {"sweepbt", "sweepbt.kernels", "sweepbt.kernels.rank", "sweepbt.kernels.codes",
             "sweepbt.kernels.signals", "sweepbt.results", "sweepbt.series"}
    found = {(resolve(name, known), line)
             for name, line in imported_names(tree, "sweepbt.kernels.signals", False)}
    assert found == {("", 1), ("sweepbt.kernels.rank", 2), ("sweepbt.kernels", 3),
                     ("sweepbt", 3), ("sweepbt.results", 5), ("sweepbt.kernels.codes", 6),
                     ("sweepbt.series", 7)}


def test_the_graph_covers_the_source():
    graph = import_graph()
    assert {"sweepbt", "sweepbt.kernels", "sweepbt.kernels.rank", "sweepbt._engine",
            "sweepbt.data"} <= set(graph)
    assert "sweepbt.kernels.rank" in graph["sweepbt.kernels"]
    assert all(b in graph for edges in graph.values() for b in edges)


def test_cycle_finder():
    graph = {"a": {"b": [1]}, "b": {"c": [2]}, "c": {"a": [3], "d": [4]}, "d": {}}
    assert cycles(graph) == [("a", "b", "c")]
    assert describe(graph, ("a", "b", "c")).splitlines()[2] == "  c -> a (line 3)"


def test_kernels_import_nothing_from_the_shell():
    shell = [f"{m} -> {b}" for m, edges in import_graph().items()
             if m.startswith("sweepbt.kernels") for b in edges
             if not (b == "sweepbt.kernels" or b.startswith("sweepbt.kernels."))]
    assert not shell, shell


def test_no_import_cycles():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n\n".join(describe(graph, g) for g in found)
