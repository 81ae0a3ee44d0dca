"""Storing a unit's outcome: its row, its findings (priced from the tenant's bill where it
knows their resources), what it no longer sees resolved, and its events for the SSE stream, in
one transaction, written once (a second writer of the same unit, the scan budget's cut-off or a
retried job, writes nothing)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.scanning.billed_prices import price_from_bill
from valdrix.scanning.findings import RecordedFinding, record_findings, resolve_missing
from valdrix.scanning.models import UnitStatus
from valdrix.scanning.registry import load_all_detectors
from valdrix.scanning.repository import ScanEventRepository, ScanRepository
from valdrix.scanning.scan_context import ScanContext, UnitOutcome


async def store_unit(context: ScanContext, outcome: UnitOutcome) -> None:
    """One transaction per unit: its status, its findings, its events (a consistent step),
    written once."""
    now = utcnow()
    async with unit_of_work(context.runtime.sessions, context.tenant_id) as session:
        scans = ScanRepository(session)
        unit_id = await scans.claim_unit(
            {
                "tenant_id": context.tenant_id,
                "scan_id": context.scan_id,
                "region": outcome.region,
                "detector": outcome.detector,
                "status": outcome.status.value,
                "reason": outcome.reason,
                "findings_count": 0,
                "started_at": outcome.started_at or now,
                "finished_at": now,
            }
        )
        if unit_id is None:
            return  # written by an earlier attempt, or just before the scan budget's end
        metrics.SCAN_UNITS_TOTAL.labels(detector=outcome.detector, outcome=outcome.status).inc()
        findings: list[RecordedFinding] = []
        if outcome.status == UnitStatus.ok:
            detector = load_all_detectors().get(outcome.detector)
            findings = await _record(context, session, outcome, now) if outcome.wastes else []
            await resolve_missing(
                session,
                scan_id=context.scan_id,
                connection_id=context.connection.id,
                # A connection-wide detector saw every region.
                region=None if detector.connection_wide else outcome.region,
                detector=outcome.detector,
                now=now,
            )
            if findings:
                await scans.count_unit_findings(unit_id, len(findings))
        metrics.FINDINGS_RECORDED_TOTAL.labels(detector=outcome.detector).inc(len(findings))
        announced: list[tuple[str, dict[str, Any]]] = [
            (
                "finding",
                {
                    "finding_id": str(finding.id),
                    "detector": outcome.detector,
                    "region": finding.region,
                    "resource_id": finding.resource_id,
                    "monthly_cost_usd": None
                    if finding.monthly_cost_usd is None
                    else str(finding.monthly_cost_usd),
                    "cost_basis": finding.cost_basis,
                },
            )
            for finding in findings
        ]
        announced.append(
            (
                "unit.finished",
                {
                    "region": outcome.region,
                    "detector": outcome.detector,
                    "status": outcome.status.value,
                    "reason": outcome.reason,
                    "findings": len(findings),
                },
            )
        )
        await ScanEventRepository(session).add_many(
            context.tenant_id, context.scan_id, announced, now
        )


async def _record(
    context: ScanContext, session: AsyncSession, outcome: UnitOutcome, now: dt.datetime
) -> list[RecordedFinding]:
    """The unit's findings, priced from the tenant's bill where it knows their resources."""
    detector = load_all_detectors().get(outcome.detector)
    outcome.wastes = await price_from_bill(
        session, outcome.wastes, now.date(), whole_resource=detector.prices_whole_resource
    )
    return await record_findings(
        session,
        tenant_id=context.tenant_id,
        scan_id=context.scan_id,
        connection_id=context.connection.id,
        provider=context.provider.key,
        account_id=context.session.account_id,
        region=outcome.region,
        detector=outcome.detector,
        wastes=outcome.wastes,
        now=now,
    )
