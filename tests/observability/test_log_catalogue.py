"""Every event Valdrix logs is in the documented catalogue (docs/operations/logging.md)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = (REPO_ROOT / "docs" / "operations" / "logging.md").read_text()
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
# Event names built at run time, with the literal part the catalogue documents.
DYNAMIC = {"'job.' + outcome": "job.", "'audit.' + action": "audit.", "event": "scan."}


def logged_events() -> tuple[set[str], set[str]]:
    """(constant event names, dynamic event expressions) of every ``log.<level>(...)`` call."""
    constant, dynamic = set(), set()
    for path in (REPO_ROOT / "src" / "valdrix").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "log"
                and node.func.attr in LEVELS
                and node.args
            ):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                constant.add(first.value)
            else:
                dynamic.add(ast.unparse(first))
    return constant, dynamic


def test_every_logged_event_is_in_the_catalogue() -> None:
    constant, dynamic = logged_events()
    assert len(constant) > 20
    missing = sorted(event for event in constant if f"`{event}`" not in CATALOGUE)
    assert not missing, f"add these events to docs/operations/logging.md: {missing}"
    unknown = sorted(dynamic - set(DYNAMIC))
    assert not unknown, f"document these dynamic events and list them in DYNAMIC: {unknown}"
    for prefix in DYNAMIC.values():
        assert f"`{prefix}" in CATALOGUE
    for outcome in ("retried", "failed", "cancelled"):
        assert f"`job.{outcome}`" in CATALOGUE
    assert "`scan.complete`" in CATALOGUE and "`scan.timeout`" in CATALOGUE
