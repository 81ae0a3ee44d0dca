"""The one procrastinate App of a process, opened from settings.

Tasks register on ``job_app`` at import time (each domain's ``tasks.py``); the connector gets its
pool when a process opens the app. API processes open it only to defer jobs; ``valdrix worker``
is the only thing that runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import procrastinate
from psycopg_pool import AsyncConnectionPool

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

job_connector = procrastinate.PsycopgConnector()
job_app = procrastinate.App(connector=job_connector, import_paths=list(TASK_MODULES))


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
