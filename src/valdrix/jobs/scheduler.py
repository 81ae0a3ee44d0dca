"""``scheduler.tick``: turn due schedules of every tenant into queued jobs, exactly once.

Each batch is one transaction: claim due rows (``FOR UPDATE SKIP LOCKED``, so any number of
workers may tick at once and split the work), advance them along their tier's cadence, defer
their jobs on the same connection, mirror them for tenants, commit. A crash anywhere rolls the
batch back and the rows stay due for the next tick.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import structlog

from valdrix.jobs.enqueue import JobRequest, build_job, defer_in_transaction
from valdrix.jobs.kinds import get_kind
from valdrix.jobs.repository import DueSchedule, ScheduleRepository
from valdrix.jobs.tiers import cadence_seconds
from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime

log = structlog.get_logger(__name__)


@dataclass
class TickReport:
    claimed: int = 0
    deferred: int = 0
    already_queued: int = 0
    batches: int = 0
    seconds: float = 0.0


def _request(due: DueSchedule) -> JobRequest:
    kind = get_kind(due.kind)
    return JobRequest(
        task_name=kind.task_name,
        queue=kind.queue,
        tenant_id=due.tenant_id,
        tier=due.tier,
        tenant_backlog=due.tenant_backlog,
        target_id=due.target_id,
        schedule_id=due.schedule_id,
        due_at=due.due_at,
        queueing_lock=f"{due.kind}:{due.target_id}",
    )


async def run_tick(runtime: Runtime, *, now: dt.datetime | None = None) -> TickReport:
    """Claim and defer due work in batches until nothing is due at ``now`` (default: DB time)."""
    settings = runtime.settings
    cadences = cadence_seconds(settings)
    report = TickReport()
    started = time.perf_counter()
    while True:
        async with unit_of_work(runtime.sessions, None) as session:
            schedules = ScheduleRepository(session)
            at = now or await schedules.database_now()
            claimed = await schedules.claim_due(at, settings.jobs.scheduler_batch_size, cadences)
            jobs = [
                build_job(_request(due), slots=settings.jobs.tenant_job_slots) for due in claimed
            ]
            deferred, skipped = await defer_in_transaction(session, jobs)
        report.batches += 1
        report.claimed += len(claimed)
        report.deferred += len(deferred)
        report.already_queued += skipped
        for due in claimed:
            metrics.SCHEDULE_CLAIM_LAG.labels(tier=due.tier).observe(
                max(0.0, (at - due.due_at).total_seconds())
            )
        if len(claimed) < settings.jobs.scheduler_batch_size:
            break
    report.seconds = time.perf_counter() - started
    if report.claimed:
        log.info(
            "scheduler.tick",
            claimed=report.claimed,
            deferred=report.deferred,
            already_queued=report.already_queued,
            batches=report.batches,
            seconds=round(report.seconds, 3),
        )
    return report
