"""Scan recovery (MTTR): when a completed scan ends an outage of its connection, the time
since the outage's first failed, timed-out or interrupted scan goes into
``valdrix_scan_recovery_seconds``.

Plugged into ``scanning.flows.SCAN_FINISHED``, so it runs once per scan, in the transaction
that ends the scan under its row lock; the observation is made only once that transaction has
committed (a rolled-back end is ended again later, and must not count twice). A partial scan
neither begins nor ends an outage: some of its units ran, so the connection works, but it is
not yet fully scanned.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from valdrix.config import Settings
from valdrix.kit import metrics
from valdrix.observability.repository import MetricsRepository
from valdrix.scanning.flows import ScanFinished

log = structlog.get_logger(__name__)


async def record_scan_recovery(
    session: AsyncSession, settings: Settings, finished: ScanFinished
) -> None:
    """Observe the outage the just-finished scan ends, if it completed one."""
    await session.flush()  # the scan's final status, for the query below
    outage = await MetricsRepository(session).outage_ended_by(finished.scan_id)
    if outage is None:
        return
    connection_id, failed_at, recovered_at = outage
    seconds = (recovered_at - failed_at).total_seconds()

    def observe() -> None:
        metrics.SCAN_RECOVERY.observe(seconds)
        log.info(
            "scan.recovered",
            tenant_id=str(finished.tenant_id),
            scan_id=str(finished.scan_id),
            connection_id=str(connection_id),
            first_failure_at=failed_at.isoformat(),
            recovery_seconds=round(seconds, 1),
        )

    _after_commit(session, observe)


def _after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's current transaction commits, never if it rolls back."""
    pending = True

    def committed(_: Session) -> None:
        nonlocal pending
        if pending:
            pending = False
            action()

    def rolled_back(_: Session) -> None:
        nonlocal pending
        pending = False

    event.listen(session.sync_session, "after_commit", committed, once=True)
    event.listen(session.sync_session, "after_rollback", rolled_back, once=True)
