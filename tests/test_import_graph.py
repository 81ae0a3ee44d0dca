"""The packages of ``src/valdrix`` import each other one way: no cycle, counting every import of
``valdrix.*`` (module level, inside functions, under ``TYPE_CHECKING``).

A lower domain reaches a higher one through a hook the higher one plugs into at start-up
(``valdrix.wiring``), never by importing it (docs/architecture.md, "Layers").
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import valdrix

SOURCE = Path(valdrix.__file__).parent
# Package-level cycles that must stay, each argued in docs/architecture.md. None today: the
# detector registry's self-registration is a cycle inside ``scanning``, not between packages.
ALLOWED_CYCLES: set[frozenset[str]] = set()


def package_of(module: str) -> str:
    """``valdrix.costs.focus`` -> ``costs``; top-level modules (``valdrix.app``) are their own."""
    return module.split(".")[1]


def imported_modules(source: str, package: str) -> Iterator[str]:
    """Every module the code imports, wherever the import statement is (``package``: the
    package the code is in, for relative imports)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x, from ..kit import y
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join([*base, node.module] if node.module else base)
                yield from (f"{stem}.{alias.name}" for alias in node.names)
            elif node.module:
                yield node.module


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        relative = path.relative_to(SOURCE)
        if len(relative.parts) == 1 and relative.name == "__init__.py":
            continue  # the root package itself
        source = relative.parts[0].removesuffix(".py")
        module = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for imported in imported_modules(path.read_text(), package):
            if imported.startswith("valdrix.") and package_of(imported) != source:
                graph.setdefault(source, set()).add(package_of(imported))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_packages_of_valdrix_import_each_other_one_way() -> None:
    graph = package_graph()
    assert {"kit", "connections", "costs"} <= graph["scanning"], "the graph was read"
    found = [c for c in cycles(graph) if frozenset(c) not in ALLOWED_CYCLES]
    explained = [
        " <-> ".join(c) + ": " + "; ".join(f"{a} imports {sorted(graph[a] & set(c))}" for a in c)
        for c in found
    ]
    assert not found, "import cycles between packages:\n" + "\n".join(explained)


def test_imports_inside_functions_and_relative_ones_count() -> None:
    code = "def f():\n    from valdrix.costs import billing\nfrom . import engine\n"
    assert set(imported_modules(code, "valdrix.scanning")) == {
        "valdrix.scanning.engine",
        "valdrix.costs",
    }
    assert cycles({"kit": {"scanning"}, "scanning": {"kit"}, "app": {"kit"}}) == [
        ["kit", "scanning"]
    ]
