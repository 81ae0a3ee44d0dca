"""Gauges and counters that say what is true: a queue gauge read from the database is exact
for every task name, and the missing-tenant counter moves only for statements that really
read or write a tenant table without a tenant."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text

from tests.conftest import TestDatabase as Database
from tests.fixtures.jobs import IDLE_QUEUE, RawJobs
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.observability.exposition import refresh_database_gauges
from valdrix.runtime import Runtime


def queued(task_name: str) -> float:
    return (
        REGISTRY.get_sample_value("valdrix_background_jobs_queued", {"job_type": task_name}) or 0.0
    )


def unscoped(table: str) -> float:
    return REGISTRY.get_sample_value("valdrix_rls_context_missing_total", {"table": table}) or 0.0


async def test_the_queue_gauge_drops_to_zero_for_a_task_this_process_does_not_know(
    runtime: Runtime, raw_jobs: RawJobs
) -> None:
    """The API process imports no task modules: the gauge of a task only workers run must
    still follow the database, down to zero."""
    job = raw_jobs.insert("elsewhere.only_workers_run_this")
    await refresh_database_gauges(runtime)
    assert queued("elsewhere.only_workers_run_this") == 1

    raw_jobs.delete(job)
    await refresh_database_gauges(runtime)

    assert queued("elsewhere.only_workers_run_this") == 0


def test_ddl_whose_body_names_a_tenant_table_is_not_an_unscoped_read(
    database: Database,
) -> None:
    """Migrations create functions whose bodies read tenant tables (for the resolver role):
    creating them reads nothing."""
    engine = create_sync_engine(
        database.urls.owner.replace("postgresql://", "postgresql+psycopg://")
    )
    before = unscoped("findings")
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE FUNCTION pg_temp.valdrix_counts_findings() RETURNS bigint"
                    " LANGUAGE sql AS $$ SELECT count(*) FROM findings $$"
                )
            )
            conn.execute(
                text(
                    "COMMENT ON FUNCTION pg_temp.valdrix_counts_findings()"
                    " IS 'counts what it reads FROM findings'"
                )
            )
    finally:
        engine.dispose()
    assert unscoped("findings") == before


async def test_a_read_without_a_tenant_is_still_counted(runtime: Runtime) -> None:
    before = unscoped("findings")
    async with unit_of_work(runtime.sessions, None) as session:
        rows: list[Any] = list(await session.execute(text("SELECT id FROM findings LIMIT 1")))
    assert rows == []  # row-level security: nothing visible
    assert unscoped("findings") == before + 1


async def test_the_oldest_wait_of_a_queue_this_process_does_not_serve_drops_to_zero(
    runtime: Runtime, raw_jobs: RawJobs
) -> None:
    def oldest() -> float:
        return (
            REGISTRY.get_sample_value("valdrix_queue_oldest_due_seconds", {"queue": IDLE_QUEUE})
            or 0.0
        )

    job = raw_jobs.insert("elsewhere.late", scheduled_at=utcnow() - dt.timedelta(minutes=5))
    await refresh_database_gauges(runtime)
    assert oldest() >= 300

    raw_jobs.delete(job)
    await refresh_database_gauges(runtime)

    assert oldest() == 0
