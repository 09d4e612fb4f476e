"""Every example in README.md and docs/*.md runs as written.

Each Markdown file runs in a fresh directory holding ``prices.parquet``, written the way the
docs tell a new user to (``sweepbt demo --out prices.parquet``), and a link to the
repository's ``examples/`` (the docs' commands run from a checkout):

* a ```` ```python ```` block runs as Python; the blocks of one file share one namespace, in
  order, as a reader would type them;
* in any other block, each line that is a ``sweepbt`` command (optionally after a ``$ ``
  prompt; ``\\`` continues a line; ``#`` starts a comment) runs as that command and must
  exit with status 0; other lines (output, ``pip install``, formulas) are not run.

A block preceded by the line ``<!-- no-test -->`` is skipped: use it for a fragment that
cannot run on its own (a signature, a placeholder, a slow benchmark). docs/architecture.md
("Documentation examples") states this convention.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from pathlib import Path

import pytest

from sweepbt import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_MARK = "<!-- no-test -->"
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.S | re.M)


def code_blocks(text: str):
    """``(line, language, body)`` of each fenced block not marked ``<!-- no-test -->``."""
    for m in _FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        if before == SKIP_MARK:
            continue
        yield text[:m.start()].count("\n") + 1, m.group(1).lower(), m.group(2)


def sweepbt_commands(body: str):
    """The ``sweepbt`` command lines of a block, as argument lists (program name dropped)."""
    joined = re.sub(r"\\\n\s*", " ", body)
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:].strip()
        if line.startswith("sweepbt "):
            yield shlex.split(line, comments=True)[1:]


def test_code_blocks_are_found_and_the_skip_mark_works():
    text = ("```python\nx = 1\n```\n\n<!-- no-test -->\n```python\nundefined\n```\n"
            "```\n$ sweepbt sweep --demo \\\n    --top 3   # a comment\noutput line\n```\n")
    blocks = list(code_blocks(text))
    assert [(line, lang) for line, lang, _ in blocks] == [(1, "python"), (9, "")]
    assert list(sweepbt_commands(blocks[1][2])) == [["sweep", "--demo", "--top", "3"]]


@pytest.fixture(scope="module")
def prices(tmp_path_factory):
    """``prices.parquet`` as ``sweepbt demo --out prices.parquet`` writes it."""
    path = tmp_path_factory.mktemp("docs") / "prices.parquet"
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["demo", "--out", str(path)]) == 0
    return path


def run_python(body: str, path: Path, namespace: dict) -> None:
    """Run a block from a real file (numba caches only functions defined in one)."""
    path.write_text(body)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(body, str(path), "exec"), namespace)


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_doc_examples_run(doc, prices, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.link(prices, tmp_path / "prices.parquet")
    os.symlink(ROOT / "examples", tmp_path / "examples")  # as run from the repository
    namespace = {"__name__": f"doc_{doc.stem}"}
    for line, lang, body in code_blocks(doc.read_text()):
        where = f"{doc.name}:{line}"
        if lang == "python":
            run_python(body, tmp_path / f"{doc.stem}_{line}.py".replace("-", "_"), namespace)
            continue
        for argv in sweepbt_commands(body):
            if argv[:1] == ["demo"] and "prices.parquet" in argv:
                os.remove("prices.parquet")  # made above as this very command makes it
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                try:
                    status = cli.main(argv)
                except SystemExit as exc:  # argparse's usage errors
                    status = exc.code
            assert status == 0, f"{where}: sweepbt {shlex.join(argv)}\n{out.getvalue()}"
