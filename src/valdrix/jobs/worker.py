"""``valdrix worker``: run jobs until SIGTERM/SIGINT, then finish (or abandon) gracefully."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterable
from typing import Any

import structlog

from valdrix.config import Settings
from valdrix.jobs.app import TASK_MODULES, close_job_app, job_app, open_job_app
from valdrix.jobs.tasks import register_periodic_tasks
from valdrix.jobs.tracking import track_job
from valdrix.observability.exposition import serve_metrics
from valdrix.runtime import open_runtime

log = structlog.get_logger(__name__)


def load_task_modules(settings: Settings) -> None:
    for module in [*TASK_MODULES, *settings.worker_imports]:
        importlib.import_module(module)


async def run_worker(
    settings: Settings,
    *,
    concurrency: int,
    queues: Iterable[str] | None,
    name: str | None = None,
    metrics_port: int | None = None,
    periodic: bool = True,
) -> None:
    load_task_modules(settings)
    runtime = open_runtime(settings)
    # Each running job briefly needs a connection of its own to mirror its progress.
    await open_job_app(runtime.urls.app, max_size=2 * concurrency + 4)
    if periodic:
        register_periodic_tasks(settings)
    metrics_server = await serve_metrics(runtime, metrics_port) if metrics_port else None
    log.info("worker.start", concurrency=concurrency, queues=list(queues or []) or "all")
    try:
        options: dict[str, Any] = {"queues": list(queues)} if queues else {}
        await job_app.run_worker_async(
            **options,
            concurrency=concurrency,
            name=name or "worker",
            additional_context={"runtime": runtime},
            worker_middleware=[track_job],
            update_heartbeat_interval=settings.worker_heartbeat_seconds,
            stalled_worker_timeout=settings.job_stall_timeout_seconds,
            shutdown_graceful_timeout=settings.worker_shutdown_grace_seconds,
            install_signal_handlers=True,
        )
    finally:
        if metrics_server is not None:
            metrics_server.close()
        await close_job_app()
        await runtime.close()
        log.info("worker.stop")


def run_worker_blocking(settings: Settings, **options: object) -> None:
    asyncio.run(run_worker(settings, **options))  # type: ignore[arg-type]
