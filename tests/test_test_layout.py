"""The test tree keeps its own rules (tests/README.md): a test module is never imported by
another module, a fixture reaches its tests through a conftest.py rather than an import, and
problem+json answers are checked by one ``assert_problem``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def modules() -> Iterator[tuple[str, ast.Module]]:
    """Every Python module under tests/, as (dotted name, syntax tree); a package's own module
    keeps its ``__init__``, so that a relative import resolves from it like from its siblings."""
    for path in sorted(TESTS.rglob("*.py")):
        name = ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)
        yield name, ast.parse(path.read_text(), filename=str(path))


def imports(name: str, tree: ast.Module) -> Iterator[tuple[int, str, str | None]]:
    """(line, module, imported name or None) for each import in ``tree``, relative ones resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                package = name.split(".")[: -node.level]
                module = ".".join([*package, module] if module else package)
            for alias in node.names:
                yield node.lineno, module, alias.name


def is_fixture(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if ast.unparse(target) in ("pytest.fixture", "fixture"):
            return True
    return False


def test_no_module_imports_a_test_module() -> None:
    found = []
    for name, tree in modules():
        for line, module, imported in imports(name, tree):
            if module.split(".")[0] != "tests":
                continue
            dotted = f"{module}.{imported}" if imported else module
            if any(part.startswith("test_") for part in dotted.split(".")):
                found.append(f"{name}:{line} imports {dotted}")
    assert found == [], "move what is shared into a helper or fixture module:\n" + "\n".join(found)


def test_no_fixture_is_imported_pytest_finds_each_through_a_conftest() -> None:
    trees = dict(modules())
    fixtures = {
        (name, node.name)
        for name, tree in trees.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and is_fixture(node)
    }
    found = [
        f"{name}:{line} imports the fixture {imported} from {module}"
        for name, tree in trees.items()
        for line, module, imported in imports(name, tree)
        if (module, imported) in fixtures
    ]
    assert found == [], (
        "define it in the conftest.py above its tests, or in tests/fixtures/ (registered in "
        "tests/conftest.py) when several domains use it:\n" + "\n".join(found)
    )


def test_assert_problem_is_defined_once() -> None:
    definitions = [
        f"{name}:{node.lineno}"
        for name, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name == "assert_problem"
    ]
    assert len(definitions) == 1, f"one assert_problem, in tests/fixtures/http.py: {definitions}"
