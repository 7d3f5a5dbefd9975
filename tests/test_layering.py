"""No import cycles between neuronlab's parts (DESIGN.md: arrows run down only).

A part is a top-level module or package of ``neuronlab`` (``api``, ``train``, ``run``, ``io``, ...). Every
``import`` counts, a lazy one inside a function too: a lazy import hides a cycle from Python's import
order, not from a reader, who still has to go back and forth between the two parts. ``neuronlab/__init__``
is the package's front door, not a part: it may name any part (``neuronlab.train`` is the notebook
function of ``api``).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "neuronlab"


def part_of(module: str) -> str | None:
    """``neuronlab.run.paths`` -> ``run``; ``None`` for other packages and the package itself."""
    names = module.split(".")
    return names[1] if names[0] == "neuronlab" and len(names) > 1 else None


def module_name(path: Path) -> str:
    names = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(names[:-1] if names[-1] == "__init__" else names)


def imports_of(path: Path, package: str = "neuronlab") -> set[str]:
    """Every module named by an ``import`` in the file (of ``package``), wherever the statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = package.split(".")
            base = ".".join([*names[: len(names) - node.level + 1], node.module or ""]) if node.level else ""
            base = base.strip(".") or node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # from neuronlab import api
    return found


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        source = part_of(name)
        if source is None:
            continue  # neuronlab/__init__.py
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for target in filter(None, map(part_of, imports_of(path, package))):
            if (target != source and (PACKAGE / target).exists()) or (PACKAGE / f"{target}.py").exists():
                graph.setdefault(source, set())
                if target != source:
                    graph[source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path per cycle found by a depth-first search (each back edge), as ``[a, b, ..., a]``."""
    found: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


# Known cycles between parts, each with why it is there and what removes it (none today: io/ no longer
# builds through tasks/, and data/ prints through the ground floor's show, not io/'s). A cycle gone
# fails the test below until its line goes.
KNOWN: list[list[str]] = []


def test_no_import_cycle_between_parts():
    found = cycles(part_graph())
    assert [c for c in found if c not in KNOWN] == []
    assert [c for c in KNOWN if c not in found] == [], "a known cycle is gone: remove it from KNOWN"


def test_the_check_sees_a_cycle_and_a_lazy_import(tmp_path):
    """The checker itself: a back edge is a cycle; an import inside a function is seen; the package's
    own parts are found (a typo in PACKAGE would make the first test pass on nothing)."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    from neuronlab.run import paths\n    import neuronlab.io.files\n")
    assert {"neuronlab.run", "neuronlab.run.paths", "neuronlab.io.files"} <= imports_of(lazy)
    graph = part_graph()
    assert {"api", "train", "run", "io", "tasks", "errors"} <= set(graph) | {
        t for v in graph.values() for t in v
    }
    # the ground floor: errors prints through show, which imports nothing of the package
    assert graph.get("errors") == {"show"} and "show" not in graph
