"""The queue without a cliff (migration 0016): a worker mirrors a job's step in one round trip
under the job's tenant, and a large deferral into a queue whose statistics saw it empty analyzes
it, so procrastinate's fetch keeps its fast plan. Whether the planner would have picked the slow
plan depends on timing, so the plan itself is measured by benchmarks/scheduler_throughput.py,
not asserted here."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.jobs.helpers import give_tenant_a_queued_job
from valdrix.jobs.models import JobStatus
from valdrix.jobs.repository import RunMirror
from valdrix.kit.embedded import bootstrap_roles_and_database
from valdrix.kit.migrator import alembic_config


async def _run_of(superuser_url: str, tenant_id: uuid.UUID) -> tuple[int, uuid.UUID]:
    async with await psycopg.AsyncConnection.connect(superuser_url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT r.procrastinate_job_id, s.id FROM job_runs r"
            " JOIN schedules s ON s.tenant_id = r.tenant_id WHERE r.tenant_id = %s",
            (tenant_id,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return row[0], row[1]


def _messages_sent(trace: Path, kind: str) -> int:
    """Frontend messages of one kind in a libpq trace (``Sync`` ends each round trip).

    Lines read ``F <length> <message> ...`` without timestamps."""
    return sum(
        1 for line in trace.read_text().splitlines() if line.split("\t")[0:3:2] == ["F", kind]
    )


async def test_a_mirrored_step_is_one_round_trip_under_the_jobs_tenant(
    database, make_tenant, runtime, superuser_url
):
    tenant = await make_tenant()
    await give_tenant_a_queued_job(runtime, tenant.tenant_id)
    job_id, schedule_id = await _run_of(superuser_url, tenant.tenant_id)
    with tempfile.TemporaryDirectory() as directory:
        trace = Path(directory) / "libpq.trace"
        async with await psycopg.AsyncConnection.connect(
            database.urls.app, autocommit=True
        ) as conn:
            with trace.open("w") as sink:
                conn.pgconn.trace(os.dup(sink.fileno()))
                conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
                mirrored = await RunMirror(conn).record_step(
                    tenant.tenant_id, job_id, JobStatus.succeeded, schedule_id=schedule_id
                )
                conn.pgconn.untrace()
            tenant_after = await (
                await conn.execute("SELECT current_setting('valdrix.tenant_id', true)")
            ).fetchone()
        round_trips = _messages_sent(trace, "Sync") + _messages_sent(trace, "Query")
    assert mirrored is True
    assert round_trips == 1
    assert tenant_after in ((None,), ("",)), "the step's tenant must not outlive its statement"
    async with await psycopg.AsyncConnection.connect(superuser_url, autocommit=True) as conn:
        run = await (
            await conn.execute(
                "SELECT r.status, r.finished_at IS NOT NULL, s.last_completed_at IS NOT NULL"
                " FROM job_runs r, schedules s WHERE r.procrastinate_job_id = %s AND s.id = %s",
                (job_id, schedule_id),
            )
        ).fetchone()
    assert run == ("succeeded", True, True)


async def test_a_step_named_under_another_tenant_changes_nothing(
    database, make_tenant, runtime, superuser_url
):
    owner, other = await make_tenant(), await make_tenant()
    await give_tenant_a_queued_job(runtime, owner.tenant_id)
    job_id, _ = await _run_of(superuser_url, owner.tenant_id)
    async with await psycopg.AsyncConnection.connect(database.urls.app, autocommit=True) as conn:
        mirrored = await RunMirror(conn).record_step(other.tenant_id, job_id, JobStatus.running)
    assert mirrored is False
    async with await psycopg.AsyncConnection.connect(superuser_url, autocommit=True) as conn:
        status = await (
            await conn.execute(
                "SELECT status FROM job_runs WHERE procrastinate_job_id = %s", (job_id,)
            )
        ).fetchone()
    assert status == ("queued",)


@pytest.fixture(scope="module")
def scratch_database(database) -> Iterator[tuple[str, str, str]]:
    """A database of its own migrated to head (owner, app and superuser URLs): these tests
    analyze, downgrade and upgrade it."""
    name = f"valdrix_queue_{uuid.uuid4().hex[:8]}"

    def url(base: str) -> str:
        return make_conninfo(base, dbname=name)

    bootstrap_roles_and_database(database.superuser, name)
    command.upgrade(alembic_config(_as_url(url(database.urls.owner))), "head")
    try:
        yield url(database.urls.owner), url(database.urls.app), url(database.superuser)
    finally:
        with psycopg.connect(database.superuser, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _as_url(conninfo: str) -> str:
    return "postgresql://?" + make_conninfo(**conninfo_to_dict(conninfo)).replace(" ", "&")


def _analyze_count(superuser: str) -> int:
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'procrastinate_jobs'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_thousands_of_jobs_in_a_queue_analyzed_empty_get_it_analyzed_once(scratch_database):
    _, app, superuser = scratch_database
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("TRUNCATE procrastinate_jobs CASCADE")
        conn.execute("ANALYZE procrastinate_jobs")  # a fresh installation's statistics
        conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args)"
            " SELECT 'probe', 'probe.noop', 'tenant:' || i % 1000 || ':0', '{}'"
            " FROM generate_series(1, 2000) i"
        )
    before = _analyze_count(superuser)
    with psycopg.connect(app) as conn:  # inside a transaction, as a deferral calls it
        first = conn.execute("SELECT valdrix_refresh_job_queue_statistics()").fetchone()
    with psycopg.connect(app) as conn:
        second = conn.execute("SELECT valdrix_refresh_job_queue_statistics()").fetchone()
    assert (first, second) == ((True,), (False,))
    assert _analyze_count(superuser) == before + 1


def test_a_few_new_jobs_leave_the_statistics_alone(scratch_database):
    _, app, superuser = scratch_database
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("TRUNCATE procrastinate_jobs CASCADE")
        conn.execute("ANALYZE procrastinate_jobs")
        conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args)"
            " SELECT 'probe', 'probe.noop', '{}' FROM generate_series(1, 100)"
        )
    with psycopg.connect(app) as conn:
        refreshed = conn.execute("SELECT valdrix_refresh_job_queue_statistics()").fetchone()
    assert refreshed == (False,)


def test_the_queue_migration_downgrades_and_upgrades_again(scratch_database):
    owner, _, superuser = scratch_database

    def ours() -> set[str]:
        with psycopg.connect(superuser) as conn:
            rows = conn.execute(
                "SELECT proname FROM pg_proc WHERE proname IN"
                " ('valdrix_mirror_job_run', 'valdrix_refresh_job_queue_statistics')"
                " UNION ALL SELECT indexname FROM pg_indexes"
                " WHERE indexname = 'valdrix_procrastinate_jobs_lock_idx'"
            ).fetchall()
        return {row[0] for row in rows}

    everything = {
        "valdrix_mirror_job_run",
        "valdrix_refresh_job_queue_statistics",
        "valdrix_procrastinate_jobs_lock_idx",
    }
    assert ours() == everything
    command.downgrade(alembic_config(_as_url(owner)), "0015")
    assert ours() == set()
    command.upgrade(alembic_config(_as_url(owner)), "head")
    assert ours() == everything
