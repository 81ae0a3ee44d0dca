"""Ending the scans no job will finish: their worker died and the job was retired or gave up.

The sweeper (``scans.sweep_interrupted``, as often as stalled-job recovery runs) ends each
such scan ``interrupted``, with the reason, its totals from the units that did finish (their
findings are kept), and the ``scan.finished`` event that ends its SSE streams. A scan whose
job will run again (a retry waiting) is left to that retry, which resumes it.
"""

from __future__ import annotations

import datetime as dt

import structlog

from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.scanning.engine import finish_scan
from valdrix.scanning.models import ScanStatus
from valdrix.scanning.repository import orphaned_scans

log = structlog.get_logger(__name__)

# A queued scan's job is deferred in the scan's own transaction; the grace covers clocks and
# the moment between a scheduled job's adoption of a manual scan and its start.
QUEUED_GRACE = dt.timedelta(minutes=2)
# A scan run without a job (in-process) cannot outlive its budget by this much.
RUNNING_GRACE = dt.timedelta(minutes=5)
REASONS = {
    ScanStatus.running.value: "its worker stopped and its job will not run again",
    ScanStatus.queued.value: "its job ended or was removed before the scan started",
}


async def end_orphaned_scans(runtime: Runtime) -> int:
    """End every orphaned scan; returns how many were ended."""
    now = utcnow()
    budget = dt.timedelta(seconds=runtime.settings.scans.budget_seconds)
    async with unit_of_work(runtime.sessions, None) as session:
        orphans = await orphaned_scans(
            session,
            queued_before=now - QUEUED_GRACE,
            running_before=now - budget - RUNNING_GRACE,
        )
    ended = 0
    for orphan in orphans:
        status = await finish_scan(
            runtime,
            orphan.tenant_id,
            orphan.scan_id,
            ScanStatus.interrupted,
            REASONS[orphan.status],
            0,
            started=None,
        )
        ended += status == ScanStatus.interrupted
    return ended
