"""A scan's LLM analysis: queued with the scan's own last transaction or on request, and read.

A finished scan gets its analysis row and its ``analysis.run`` job in the scan's own last
transaction, so the analysis never holds up the scan. What the job does is in ``runs``.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.analysis.models import AnalysisStatus, ScanAnalysis
from valdrix.analysis.repository import AnalysisRepository
from valdrix.config import Settings
from valdrix.errors import Conflict, NotFound
from valdrix.jobs.service import defer_for_target
from valdrix.kit.orm import utcnow
from valdrix.scanning.models import FINISHED_SCAN_STATUSES, Scan
from valdrix.tenancy.audit import record_audit
from valdrix.tenancy.auth import Principal

TASK_NAME = "analysis.run"
QUEUE = "analysis"
DISABLED_REASON = (
    "no LLM provider is configured (set VALDRIX_LLM_API_KEY, or VALDRIX_LLM_BASE_URL for a"
    " provider without keys)"
)
WORKING = (AnalysisStatus.pending, AnalysisStatus.running)


async def queue_for_finished_scan(
    session: AsyncSession, settings: Settings, tenant_id: uuid.UUID, scan_id: uuid.UUID
) -> None:
    """In the scan's final transaction: the analysis row and, if a provider is set, its job."""
    enabled = settings.llm.enabled
    await AnalysisRepository(session).add(
        ScanAnalysis(
            tenant_id=tenant_id,
            scan_id=scan_id,
            status=(AnalysisStatus.pending if enabled else AnalysisStatus.disabled).value,
            reason=None if enabled else DISABLED_REASON,
            queued_at=utcnow(),
        )
    )
    if enabled:
        await defer_analysis(session, settings, tenant_id, scan_id)


async def defer_analysis(
    session: AsyncSession,
    settings: Settings,
    tenant_id: uuid.UUID,
    scan_id: uuid.UUID,
    at: dt.datetime | None = None,
) -> None:
    """Queue the scan's ``analysis.run`` job (at ``at``) in the session's transaction."""
    await defer_for_target(
        session,
        settings,
        tenant_id=tenant_id,
        task_name=TASK_NAME,
        queue=QUEUE,
        target_id=scan_id,
        queueing_lock=f"analysis:{scan_id}",
        scheduled_at=at,
    )


async def get_analysis(
    session: AsyncSession, actor: Principal, scan_id: uuid.UUID
) -> tuple[Scan, ScanAnalysis | None]:
    scan = await session.get(Scan, scan_id)
    if scan is None:
        raise NotFound("scan not found")
    return scan, await AnalysisRepository(session).for_scan(scan_id)


async def request_analysis(
    session: AsyncSession, actor: Principal, settings: Settings, scan_id: uuid.UUID
) -> ScanAnalysis:
    """Analyse a finished scan again (or for the first time); a queued or running analysis is
    returned as it is."""
    scan = await session.get(Scan, scan_id)
    if scan is None:
        raise NotFound("scan not found")
    if not settings.llm.enabled:
        raise Conflict(DISABLED_REASON)
    if scan.status not in FINISHED_SCAN_STATUSES:
        raise Conflict("the scan has not finished; its analysis is queued when it does")
    analyses = AnalysisRepository(session)
    analysis = await analyses.for_scan(scan_id, lock=True)
    if analysis is not None and analysis.status in WORKING:
        return analysis
    if analysis is None:
        analysis = await analyses.add(
            ScanAnalysis(
                tenant_id=actor.tenant_id,
                scan_id=scan_id,
                status=AnalysisStatus.pending.value,
                queued_at=utcnow(),
            )
        )
    analysis.status, analysis.reason = AnalysisStatus.pending.value, None
    analysis.queued_at, analysis.next_attempt_at, analysis.updated_at = utcnow(), None, utcnow()
    await defer_analysis(session, settings, actor.tenant_id, scan_id)
    await record_audit(session, actor, "analysis.request", target_type="scan", target_id=scan_id)
    return analysis
