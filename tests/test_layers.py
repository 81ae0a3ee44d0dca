"""The layers of docs/architecture.md, checked on the source: SQL is built only in repositories,
and who owns a transaction follows from what a function takes (a session: never; a runtime:
its own units of work)."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import valdrix
from valdrix.jobs.app import TASK_MODULES, job_app

SOURCE = Path(valdrix.__file__).parent

STATEMENTS = frozenset({"select", "text", "insert", "update", "delete"})
# text() as the value of these is a fragment of a table definition (a server default, a partial
# index's condition), not a statement.
SCHEMA_KEYWORDS = frozenset({"server_default", "server_onupdate", "postgresql_where"})

# Modules outside repositories that build SQL, and why they may.
SQL_OUTSIDE_REPOSITORIES = {
    "kit/db.py": "sets the tenant at the start of every transaction, under every repository",
    "kit/embedded.py": "creates the embedded server's roles and database, before any app role",
    "kit/listener.py": "LISTENs for the database's notifications on a connection of its own",
}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SOURCE.rglob("*.py")):
        yield path.relative_to(SOURCE).as_posix(), ast.parse(path.read_text(), str(path))


def is_repository(module: str) -> bool:
    path = PurePosixPath(module)
    return (
        path.name == "repository.py"
        or path.name.endswith("_repository.py")
        or "repositories" in path.parts
        or "_migrations" in path.parts
    )


def imported_names(tree: ast.Module) -> dict[str, str]:
    """Each name a module binds by importing, and what it is (``sa`` -> ``sqlalchemy``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.partition(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def qualified_name(node: ast.expr, names: dict[str, str]) -> str | None:
    """``sa.select`` -> ``sqlalchemy.select`` when ``sa`` was imported; None otherwise."""
    attributes: list[str] = []
    while isinstance(node, ast.Attribute):
        attributes.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in names:
        return None
    return ".".join([names[node.id], *reversed(attributes)])


def sql_built(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, what) for every SQL statement the module builds: SQLAlchemy's select, text,
    insert, update and delete (whatever they were imported as), ``.select_from``, psycopg's
    ``sql.SQL``, and a string literal handed to ``execute``."""
    names = imported_names(tree)
    schema_fragments = {
        id(keyword.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg in SCHEMA_KEYWORDS
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = node.func
        name = qualified_name(called, names)
        if name and name.startswith("sqlalchemy.") and name.rpartition(".")[2] in STATEMENTS:
            if id(node) not in schema_fragments:
                found.append((node.lineno, name))
        elif name == "psycopg.sql.SQL":
            found.append((node.lineno, name))
        elif isinstance(called, ast.Attribute) and called.attr == "select_from":
            found.append((node.lineno, ".select_from"))
        elif (
            isinstance(called, ast.Attribute)
            and called.attr in ("execute", "executemany")
            and node.args
            and isinstance(node.args[0], ast.Constant | ast.JoinedStr)
        ):
            found.append((node.lineno, f"SQL text in .{called.attr}"))
    return found


def test_sql_is_built_only_in_repositories() -> None:
    outside = [
        f"{module}:{line}: {what}"
        for module, tree in modules()
        if not is_repository(module) and module not in SQL_OUTSIDE_REPOSITORIES
        for line, what in sql_built(tree)
    ]
    assert not outside, "SQL belongs in a repository:\n" + "\n".join(outside)


def test_every_module_allowed_sql_outside_repositories_still_builds_it() -> None:
    trees = dict(modules())
    stale = [module for module in SQL_OUTSIDE_REPOSITORIES if not sql_built(trees[module])]
    assert not stale, f"no longer build SQL, drop them from the list: {stale}"


def test_sql_is_recognised_under_any_import_name_and_lookalikes_are_not() -> None:
    tree = ast.parse(
        "import sqlalchemy as sa\n"
        "from psycopg import sql\n"
        "from sqlalchemy import Column, Index, select, text as sql_text\n"
        "from sqlalchemy.dialects.postgresql import insert\n"
        "select(1)\n"
        "sa.delete(table)\n"
        "insert(table)\n"
        "sql.SQL('COPY {}')\n"
        "query.select_from(table)\n"
        "connection.execute('SELECT 1')\n"
        "sql_text('SELECT 1')\n"
        "'a'.replace('a', 'b')\n"
        "settings.update(a=1)\n"
        "session.delete(row)\n"
        "connection.execute(statement)\n"
        "Column('at', server_default=sql_text('now()'))\n"
        "Index('ix', 'day', postgresql_where=sql_text('day IS NOT NULL'))\n"
    )
    assert [line for line, _ in sql_built(tree)] == [5, 6, 7, 8, 9, 10, 11]


def functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, str]:
    """Each parameter's name and annotation (as written)."""
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    return {a.arg: ast.unparse(a.annotation) if a.annotation else "" for a in every}


def takes_runtime(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(
        name == "runtime" or annotation.endswith("Runtime")
        for name, annotation in parameters(function).items()
    )


def calls_named(node: ast.AST, wanted: set[str]) -> list[str]:
    called = []
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            function = call.func
            name = function.attr if isinstance(function, ast.Attribute) else None
            name = function.id if isinstance(function, ast.Name) else name
            if name in wanted:
                called.append(f"{name}() at line {call.lineno}")
    return called


def test_service_modules_hold_only_operations_inside_a_callers_transaction() -> None:
    """A service takes the session it works in; what opens transactions lives elsewhere."""
    wrong = []
    for module, tree in modules():
        if PurePosixPath(module).stem != "service" and not module.endswith("_service.py"):
            continue
        wrong += [
            f"{module}: {function.name} takes a runtime"
            for function in functions(tree)
            if takes_runtime(function)
        ]
        wrong += [
            f"{module}: imports unit_of_work"
            for name in imported_names(tree).values()
            if name == "valdrix.kit.db.unit_of_work"
        ]
    assert not wrong, "\n".join(wrong)


def test_functions_given_a_session_leave_its_transaction_to_their_caller() -> None:
    """They never commit, never open a unit of work, and take no runtime to open one with."""
    wrong = []
    for module, tree in modules():
        for function in functions(tree):
            if "session" not in parameters(function):
                continue
            owning = calls_named(function, {"unit_of_work", "commit"})
            if takes_runtime(function):
                owning.append("a runtime parameter")
            wrong += [f"{module}: {function.name} has {what}" for what in owning]
    assert not wrong, "\n".join(wrong)


def test_job_entry_points_live_in_tasks_modules() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)
    ours = [task.func.__module__ for task in job_app.tasks.values()]
    elsewhere = [m for m in ours if m.startswith("valdrix.") and not m.endswith(".tasks")]
    assert not elsewhere, elsewhere
