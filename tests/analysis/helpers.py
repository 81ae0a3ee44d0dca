"""Scans, findings and analyses seeded as rows (as a scan would leave them), and an in-process
worker on the ``analysis`` queue, for the analysis and budget tests."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

from valdrix.analysis.models import AnalysisStatus, ScanAnalysis
from valdrix.analysis.repository import AnalysisRepository
from valdrix.connections.models import CloudConnection
from valdrix.jobs.app import job_app, open_job_app
from valdrix.jobs.tracking import track_job
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.scanning.models import Finding, Scan, ScanEvent, ScanStatus


@dataclasses.dataclass(frozen=True)
class SeededScan:
    scan_id: uuid.UUID
    finding_ids: list[uuid.UUID]


async def seed_scans(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    count: int,
    *,
    findings_per_scan: int = 2,
    tags: dict[str, str] | None = None,
    analysis_status: AnalysisStatus | None = AnalysisStatus.pending,
) -> list[SeededScan]:
    """``count`` finished scans of one connection, each with its own open findings and their
    ``finding`` events (as a scan leaves them) and, unless ``analysis_status`` is None, its
    analysis row."""
    now = utcnow()
    seeded = []
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        connection = CloudConnection(
            tenant_id=tenant_id,
            provider="aws",
            name=f"seeded-{uuid.uuid4().hex[:6]}",
            role_arn="arn:aws:iam::123456789012:role/ValdrixScanRole",
            external_id="seeded",
            account_id="123456789012",
            status="verified",
        )
        session.add(connection)
        await session.flush()
        for index in range(count):
            scan = Scan(
                tenant_id=tenant_id,
                connection_id=connection.id,
                trigger="scheduled",
                status=ScanStatus.completed.value,
                started_at=now,
                finished_at=now,
                findings_count=findings_per_scan,
            )
            session.add(scan)
            await session.flush()
            ids = []
            for number in range(findings_per_scan):
                volume = f"vol-{index:04d}{number:02d}{uuid.uuid4().hex[:8]}"
                finding = Finding(
                    tenant_id=tenant_id,
                    fingerprint=uuid.uuid4().hex,
                    connection_id=connection.id,
                    provider="aws",
                    account_id="123456789012",
                    region="us-east-1",
                    detector="aws.ebs-unattached",
                    resource_id=volume,
                    resource_type="ebs-volume",
                    resource_name=f"data-{number}",
                    reason="Volume has been unattached for 21 days.",
                    monthly_cost_usd=Decimal(8 * (number + 1)),
                    cost_basis="list_price",
                    evidence={"unattached_days": 21, "size_gb": 100 * (number + 1)},
                    tags=tags or {"team": "data"},
                    first_seen_at=now,
                    last_seen_at=now,
                    last_scan_id=scan.id,
                )
                session.add(finding)
                await session.flush()
                session.add(
                    ScanEvent(
                        tenant_id=tenant_id,
                        scan_id=scan.id,
                        type="finding",
                        payload={"finding_id": str(finding.id)},
                        created_at=now,
                    )
                )
                ids.append(finding.id)
            if analysis_status is not None:
                session.add(
                    ScanAnalysis(
                        tenant_id=tenant_id,
                        scan_id=scan.id,
                        status=analysis_status.value,
                        queued_at=now,
                    )
                )
            seeded.append(SeededScan(scan.id, ids))
    return seeded


async def analysis_of(runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID) -> ScanAnalysis:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        analysis = await AnalysisRepository(session).for_scan(scan_id)
    assert analysis is not None
    return analysis


@asynccontextmanager
async def analysis_worker(runtime: Runtime, *, concurrency: int = 4) -> AsyncIterator[None]:
    """A procrastinate worker in this process serving the ``analysis`` queue with ``runtime``."""
    await open_job_app(runtime.urls.app)
    worker = asyncio.create_task(
        job_app.run_worker_async(
            queues=["analysis"],
            concurrency=concurrency,
            name="analysis-test",
            additional_context={"runtime": runtime},
            worker_middleware=[track_job],
            install_signal_handlers=False,
            fetch_job_polling_interval=0.2,
        )
    )
    try:
        yield
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
