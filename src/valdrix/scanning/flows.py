"""What follows a scan, declared here and carried out by the domains that own each step.

When a scan finishes, every handler plugged into ``SCAN_FINISHED`` runs in the scan's final
transaction (its writes commit with the scan's end, or not at all). The analysis domain plugs in
queueing the scan's analysis (``valdrix.wiring``); notifications and remediation re-checks
will plug in the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.config import Settings
from valdrix.kit.hooks import Hook


@dataclass(frozen=True)
class ScanFinished:
    tenant_id: uuid.UUID
    scan_id: uuid.UUID


ScanFinishedHandler = Callable[[AsyncSession, Settings, ScanFinished], Awaitable[None]]
SCAN_FINISHED: Hook[ScanFinishedHandler] = Hook("scan finished")


async def scan_finished(session: AsyncSession, settings: Settings, event: ScanFinished) -> None:
    """Run every step that follows a scan, in the caller's transaction."""
    for handler in SCAN_FINISHED.plugged:
        await handler(session, settings, event)
