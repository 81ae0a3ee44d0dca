"""The analysis domain's part in what follows a scan (plugged in by ``valdrix.wiring``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.analysis.service import queue_for_finished_scan
from valdrix.config import Settings
from valdrix.scanning.flows import ScanFinished


async def queue_analysis(session: AsyncSession, settings: Settings, event: ScanFinished) -> None:
    """A finished scan gets its analysis row and, if a provider is set, its job."""
    await queue_for_finished_scan(session, settings, event.tenant_id, event.scan_id)
