"""``valdrix worker``: run jobs until SIGTERM/SIGINT, then finish (or abandon) gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import time
from collections.abc import Iterable
from typing import Any

import structlog

from valdrix.config import Settings
from valdrix.jobs.app import (
    TASK_MODULES,
    close_job_app,
    is_disconnection,
    job_app,
    open_job_app,
)
from valdrix.jobs.tasks import register_periodic_tasks
from valdrix.jobs.tracking import track_job
from valdrix.observability.exposition import serve_metrics
from valdrix.runtime import open_runtime
from valdrix.wiring import wire

log = structlog.get_logger(__name__)

# Pause before starting procrastinate's worker again after it stopped by itself (doubling while
# the database stays away, back to the minimum once a run has lasted longer than the maximum).
RESTART_DELAY_SECONDS = (0.5, 10.0)
# How often a worker started with ``parent_pid`` looks whether its parent is still there.
PARENT_CHECK_SECONDS = 1.0


def load_task_modules(settings: Settings) -> None:
    for module in [*TASK_MODULES, *settings.jobs.worker_imports]:
        importlib.import_module(module)


async def run_worker(
    settings: Settings,
    *,
    concurrency: int,
    queues: Iterable[str] | None,
    name: str | None = None,
    metrics_port: int | None = None,
    periodic: bool = True,
    parent_pid: int | None = None,
) -> None:
    wire()
    load_task_modules(settings)
    runtime = open_runtime(settings)
    address = metrics_address(settings, metrics_port)
    # First: an address already taken stops the worker before it holds any connection.
    metrics_server = await serve_metrics(runtime, *address) if address else None
    # Each running job briefly needs a connection of its own to mirror its progress.
    await open_job_app(runtime.urls.app, max_size=2 * concurrency + 4)
    if periodic:
        register_periodic_tasks(settings)
    log.info("worker.start", concurrency=concurrency, queues=list(queues or []) or "all")
    try:
        options: dict[str, Any] = {"queues": list(queues)} if queues else {}
        await _run_until_signalled(
            parent_pid,
            **options,
            concurrency=concurrency,
            name=name or "worker",
            additional_context={"runtime": runtime},
            worker_middleware=[track_job],
            update_heartbeat_interval=settings.jobs.worker_heartbeat_seconds,
            stalled_worker_timeout=settings.jobs.stall_timeout_seconds,
            shutdown_graceful_timeout=settings.jobs.worker_shutdown_grace_seconds,
            install_signal_handlers=False,  # ours, which outlive each run of procrastinate's
        )
    finally:
        if metrics_server is not None:
            metrics_server.close()
        await close_job_app()
        await runtime.close()
        log.info("worker.stop")


def metrics_address(settings: Settings, port: int | None) -> tuple[str, int] | None:
    """Where this worker serves metrics: ``VALDRIX_METRICS_LISTEN``, whose port ``--metrics-port``
    replaces (several workers on one machine each need their own); without it, the API host."""
    listen = settings.metrics.address
    if port is None:
        return listen
    return (listen[0] if listen else settings.api.host), port


async def _run_until_signalled(parent_pid: int | None, **options: Any) -> None:
    """Run procrastinate's worker until SIGTERM/SIGINT (or, given ``parent_pid``, until that
    process, the one that started this worker, is gone), and start it again when it stops by
    itself for want of the database: it does when its LISTEN connection or heartbeat cannot
    reconnect or a fetch fails, and a restarted database must not take the worker down with it.
    Jobs the stopped run left ``doing`` are re-queued by stalled-job recovery."""
    stop = _stop_on_signals()
    watching = None if parent_pid is None else asyncio.create_task(_stop_without(parent_pid, stop))
    try:
        await _run_until(stop, **options)
    finally:
        if watching is not None:
            watching.cancel()


async def _stop_without(parent_pid: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``parent_pid`` is no longer this process's parent (it died, killed or
    not, and the process was handed to another): a worker its program started must not outlive
    it. Named by the program rather than read here, a parent that died while this worker was
    still starting is noticed too."""
    while True:
        if os.getppid() != parent_pid:
            break
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    log.warning("worker.parent_gone", parent_pid=parent_pid)
    stop.set()


async def _run_until(stop: asyncio.Event, **options: Any) -> None:
    delay = RESTART_DELAY_SECONDS[0]
    while not stop.is_set():
        started = time.monotonic()
        run = asyncio.create_task(job_app.run_worker_async(**options))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stop.is_set():
            run.cancel()  # procrastinate then stops gracefully, giving running jobs the grace
            with contextlib.suppress(asyncio.CancelledError):
                await run
            return
        error = run.exception()  # None when procrastinate stopped on a failed side task
        if error is not None and not is_disconnection(error):
            raise error  # a bug, not an outage: fail loudly
        if time.monotonic() - started > RESTART_DELAY_SECONDS[1]:
            delay = RESTART_DELAY_SECONDS[0]
        log.error(
            "worker.restart",
            error=f"{type(error).__name__}: {error.__cause__ or error}".strip() if error else None,
            restart_in=delay,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, RESTART_DELAY_SECONDS[1])


def _stop_on_signals() -> asyncio.Event:
    """An event SIGTERM or SIGINT sets; a second signal gets the default action (exit now)."""
    loop, stop = asyncio.get_running_loop(), asyncio.Event()

    def on_signal() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    return stop


def run_worker_blocking(settings: Settings, **options: object) -> None:
    asyncio.run(run_worker(settings, **options))  # type: ignore[arg-type]
