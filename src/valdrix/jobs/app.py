"""The one procrastinate App of a process, opened from settings.

Tasks register on ``job_app`` at import time (each domain's ``tasks.py``); the connector gets its
pool when a process opens the app. API processes open it only to defer jobs; ``valdrix worker``
is the only thing that runs them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import procrastinate
import psycopg
import structlog
from procrastinate.exceptions import ConnectorException, UniqueViolation
from procrastinate.jobs import Status
from procrastinate.manager import JobManager
from psycopg_pool import AsyncConnectionPool, PoolClosed

log = structlog.get_logger(__name__)

# Task modules a worker loads; domains add theirs here as they gain tasks.
TASK_MODULES = [
    "valdrix.jobs.tasks",
    "valdrix.scanning.tasks",
    "valdrix.analysis.tasks",
    "valdrix.llm.tasks",
    "valdrix.costs.tasks",
]
# Domain tasks a worker runs periodically, each with its interval in seconds (from settings).
PERIODIC_TASKS: list[tuple[Any, Callable[[Any], int]]] = []


class PatientJobManager(JobManager):
    """Records a job's outcome (finished, or to be retried) however long the database is away.

    procrastinate writes the outcome once; if that write meets a lost connection the job stays
    ``doing`` under a worker whose heartbeat carries on, where stalled-job recovery never
    looks, so the job would never finish. Connection errors are retried with backoff instead.
    """

    async def finish_job_by_id_async(self, job_id: int, status: Status, delete_job: bool) -> None:
        write = partial(super().finish_job_by_id_async, job_id, status, delete_job)
        await _retry_while_disconnected(job_id, write)

    async def retry_job_by_id_async(
        self,
        job_id: int,
        retry_at: dt.datetime,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> None:
        await self.retry_or_retire(job_id, retry_at, priority, queue, lock)

    async def retry_or_retire(
        self,
        job_id: int,
        retry_at: dt.datetime,
        priority: int | None = None,
        queue: str | None = None,
        lock: str | None = None,
    ) -> bool:
        """Queue the job again (True); or, when a job of the same target already waits under
        its queueing lock, end this one failed and let that one run (False). Left ``doing``,
        the job would hold its tenant's slot lock for ever."""
        write = partial(super().retry_job_by_id_async, job_id, retry_at, priority, queue, lock)
        try:
            await _retry_while_disconnected(job_id, write)
        except UniqueViolation:
            log.warning("job.retry_superseded", job_id=job_id)
            await self.finish_job_by_id_async(job_id, Status.FAILED, delete_job=False)
            return False
        return True


def is_disconnection(exc: BaseException) -> bool:
    """A lost or refused database connection (not a closed pool: that is this process ending)."""
    cause = exc.__cause__ if isinstance(exc, ConnectorException) else exc
    return isinstance(cause, psycopg.OperationalError) and not isinstance(cause, PoolClosed)


async def _retry_while_disconnected(job_id: int, write: Callable[[], Awaitable[None]]) -> None:
    delay = 0.2
    while True:
        try:
            await write()
            return
        except ConnectorException as exc:
            if not is_disconnection(exc):
                raise
            log.warning("job.outcome_write_retry", job_id=job_id, error=str(exc.__cause__))
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


job_connector = procrastinate.PsycopgConnector()
job_app = procrastinate.App(connector=job_connector, import_paths=list(TASK_MODULES))
job_app.job_manager = PatientJobManager(connector=job_connector)


async def open_job_app(app_url: str, *, max_size: int = 10) -> None:
    """Give the App a pool on the application role (idempotent)."""
    if job_connector._async_pool is not None:
        return
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo=app_url,
        min_size=1,
        max_size=max_size,
        open=False,
        check=AsyncConnectionPool.check_connection,
    )
    await pool.open(wait=True)
    await job_app.open_async(pool)


def job_pool() -> AsyncConnectionPool[Any]:
    """The open App's psycopg pool (application role), for the worker's own bookkeeping."""
    return job_connector.pool


async def close_job_app() -> None:
    pool = job_connector._async_pool
    if pool is not None:
        await pool.close()
        job_connector._async_pool = None
