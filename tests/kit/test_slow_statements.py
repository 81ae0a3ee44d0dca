"""Statements slower than ``VALDRIX_DB_SLOW_STATEMENT_MS`` are logged, with their duration and
the statement without its values, and every statement is timed in a histogram by the
repository method that ran it."""

from __future__ import annotations

import structlog
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.kit.db import unit_of_work
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
