"""The job platform's own tasks: the scheduler tick and queue maintenance."""

from __future__ import annotations

import datetime as dt
from typing import Any

from procrastinate import JobContext

from valdrix.config import Settings
from valdrix.jobs import maintenance
from valdrix.jobs.app import PERIODIC_TASKS, job_app
from valdrix.jobs.scheduler import run_tick
from valdrix.jobs.tiers import SYSTEM_PRIORITY
from valdrix.jobs.tracking import job_runtime

SYSTEM_QUEUE = "system"


@job_app.task(
    name="scheduler.tick", queue=SYSTEM_QUEUE, priority=SYSTEM_PRIORITY, pass_context=True
)
async def scheduler_tick(
    context: JobContext, timestamp: int | None = None, now: str | None = None
) -> int:
    """Defer every due schedule's job. ``now`` (ISO time) lets tests drive simulated time."""
    at = dt.datetime.fromisoformat(now) if now else None
    return (await run_tick(job_runtime(context), now=at)).deferred


@job_app.task(
    name="jobs.recover_stalled", queue=SYSTEM_QUEUE, priority=SYSTEM_PRIORITY, pass_context=True
)
async def recover_stalled(context: JobContext, timestamp: int | None = None) -> int:
    return await maintenance.recover_stalled_jobs(job_runtime(context))


@job_app.task(
    name="jobs.detect_stuck", queue=SYSTEM_QUEUE, priority=SYSTEM_PRIORITY, pass_context=True
)
async def detect_stuck(context: JobContext, timestamp: int | None = None) -> int:
    return await maintenance.detect_stuck_jobs(job_runtime(context))


@job_app.task(name="jobs.prune", queue=SYSTEM_QUEUE, priority=SYSTEM_PRIORITY, pass_context=True)
async def prune(context: JobContext, timestamp: int | None = None) -> None:
    await maintenance.prune_finished(job_runtime(context))


def every(seconds: int) -> str:
    """A procrastinate cron (seconds as the sixth field) firing every ``seconds``."""
    if seconds % 60 == 0 and seconds < 3600:
        return f"*/{seconds // 60} * * * *"
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"0 */{max(1, seconds // 3600)} * * *"


def register_periodic_tasks(settings: Settings) -> None:
    """Periodic schedules come from settings; the database dedupes them across workers."""
    registry = job_app.periodic_registry
    if registry.periodic_tasks:
        return
    plan: list[tuple[Any, str]] = [
        (scheduler_tick, every(settings.jobs.scheduler_tick_seconds)),
        (recover_stalled, every(settings.jobs.recovery_interval_seconds)),
        (detect_stuck, every(300)),
        (prune, every(3600)),
        *((task, every(interval(settings))) for task, interval in PERIODIC_TASKS),
    ]
    for task, cron in plan:
        registry.register_task(task=task, cron=cron, periodic_id="", configure_kwargs={})
