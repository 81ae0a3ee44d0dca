"""Statements slower than ``VALDRIX_DB_SLOW_STATEMENT_MS`` are logged, with their duration and
the statement without its values, and every statement is timed in a histogram by the
repository method that ran it."""

from __future__ import annotations

import ast
from pathlib import Path

import structlog
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.kit.db import unit_of_work
from valdrix.kit.statement_timing import MAX_NAMES
from valdrix.runtime import Runtime, open_runtime


class SleepyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def nap(self, seconds: float) -> None:
        await self.session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})


def timed(statement: str) -> float:
    return (
        REGISTRY.get_sample_value("valdrix_db_statement_seconds_count", {"statement": statement})
        or 0.0
    )


async def test_a_slow_statement_is_logged_without_its_values_and_timed_by_method(
    runtime: Runtime,
) -> None:
    watched = open_runtime(runtime.settings.updated(db_slow_statement_ms=40), runtime.urls)
    before = timed("SleepyRepository.nap")
    try:
        with structlog.testing.capture_logs() as captured:
            async with unit_of_work(watched.sessions, None) as session:
                await SleepyRepository(session).nap(0.1)
                await SleepyRepository(session).nap(0)
    finally:
        await watched.engine.dispose()

    [slow] = [e for e in captured if e["event"] == "db.slow_statement"]
    assert slow["statement_name"] == "SleepyRepository.nap"
    assert slow["duration_ms"] >= 100
    assert "pg_sleep" in slow["statement"] and "0.1" not in slow["statement"]
    assert slow["log_level"] == "warning"
    assert timed("SleepyRepository.nap") == before + 2


def test_every_repository_method_can_have_a_label_of_its_own() -> None:
    """A long-lived process ends up using every repository method: if the code had more than
    the cap, those it happened to use last would all be timed as ``other``."""
    source = Path(__file__).resolve().parents[2] / "src" / "valdrix"
    classes = [
        node
        for path in source.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.name.endswith("Repository")
    ]

    def methods(cls: ast.ClassDef) -> int:
        return sum(isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) for f in cls.body)

    inherited = max(methods(cls) for cls in classes if cls.name == "Repository")
    names = sum(methods(cls) for cls in classes) + inherited * len(classes)
    assert 200 < names < MAX_NAMES
