"""SQL for scan analyses and the findings they analyse (tenant tables, RLS)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import Select, Uuid, func, select

from valdrix.analysis.models import ScanAnalysis
from valdrix.kit.repository import Repository
from valdrix.scanning.models import Finding, FindingStatus, ScanEvent


def _found_by(scan_id: uuid.UUID) -> Select[tuple[uuid.UUID]]:
    """Ids of the findings a scan reported (its ``finding`` events): a finding seen again by a
    later scan still belongs to this scan's analysis."""
    return select(ScanEvent.payload["finding_id"].astext.cast(Uuid)).where(
        ScanEvent.scan_id == scan_id, ScanEvent.type == "finding"
    )


class AnalysisRepository(Repository[ScanAnalysis]):
    model = ScanAnalysis

    async def for_scan(self, scan_id: uuid.UUID, *, lock: bool = False) -> ScanAnalysis | None:
        query = select(ScanAnalysis).where(ScanAnalysis.scan_id == scan_id)
        if lock:
            query = query.with_for_update()
        result: ScanAnalysis | None = await self.session.scalar(
            query.execution_options(populate_existing=True)
        )
        return result

    async def costliest_open_findings(self, scan_id: uuid.UUID, limit: int) -> list[Finding]:
        """The open findings the scan reported, costliest first (unpriced ones last)."""
        rows = await self.session.scalars(
            select(Finding)
            .where(Finding.id.in_(_found_by(scan_id)), Finding.status == FindingStatus.open.value)
            .order_by(Finding.monthly_cost_usd.desc().nulls_last(), Finding.resource_id)
            .limit(limit)
        )
        return list(rows)

    async def open_findings_total(self, scan_id: uuid.UUID) -> tuple[int, Decimal]:
        """How many of the scan's findings are open, and their figures' sum (gross: money two
        findings price is in it twice)."""
        count, total = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(Finding.monthly_cost_usd), 0)).where(
                    Finding.id.in_(_found_by(scan_id)),
                    Finding.status == FindingStatus.open.value,
                )
            )
        ).one()
        return int(count), Decimal(total or 0)

    @staticmethod
    def open_finding_ids(scan_id: uuid.UUID) -> Select[uuid.UUID]:
        """The ids of the scan's open findings, as a subquery."""
        return select(Finding.id).where(
            Finding.id.in_(_found_by(scan_id)), Finding.status == FindingStatus.open.value
        )
