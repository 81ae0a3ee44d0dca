"""With the LLM provider down, scans complete untouched and their analyses wait it out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.analysis.helpers import analysis_of, analysis_worker
from tests.fixtures.aws import aws_runtime, elastic_ip, register_connection, unattached_volume
from tests.jobs.helpers import retire_tenant_jobs, wait_until
from tests.scanning.helpers import scan_once
from valdrix.analysis.models import ScanAnalysis
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning.models import Finding, Scan
from valdrix.simulator.llm_server import SimulatedLLM

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCANS = 8
REGION = "us-east-1"


async def test_scans_finish_while_the_provider_is_down_and_analyses_complete_when_it_returns(
    make_tenant: Callable[..., Any],
    llm_runtime: Callable[..., Runtime],
    llm_server: SimulatedLLM,
    aws_endpoint: str,
) -> None:
    tenant = await make_tenant()
    runtime = aws_runtime(llm_runtime(), aws_endpoint)
    waste = {unattached_volume(aws_endpoint, REGION) for _ in range(2)}
    waste |= {elastic_ip(aws_endpoint, REGION) for _ in range(2)}
    connection = await register_connection(runtime, tenant.tenant_id, regions=[REGION])
    llm_server.kill()

    scan_ids: list[uuid.UUID] = []
    for _ in range(SCANS):
        scan_id, status = await scan_once(runtime, tenant.tenant_id, connection.id)
        assert status == "completed"
        scan_ids.append(scan_id)
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        counts = list(
            await session.scalars(select(Scan.findings_count).where(Scan.id.in_(scan_ids)))
        )
        found = set(await session.scalars(select(Finding.resource_id)))
    assert counts == [len(waste)] * SCANS
    assert found == waste

    async def all_in(status: str) -> bool:
        analyses = [await analysis_of(runtime, tenant.tenant_id, s) for s in scan_ids]
        return all(a.status == status for a in analyses)

    # Each analysis retries every second or so, passing through ``running``: wait until every
    # one has been seen unavailable, not for all of them to be so at one instant.
    seen_unavailable: dict[uuid.UUID, ScanAnalysis] = {}

    async def each_seen_unavailable() -> bool:
        for scan_id in set(scan_ids) - seen_unavailable.keys():
            analysis = await analysis_of(runtime, tenant.tenant_id, scan_id)
            if analysis.status == "provider_unavailable":
                seen_unavailable[scan_id] = analysis
        return len(seen_unavailable) == SCANS

    try:
        async with analysis_worker(runtime):
            await wait_until(
                each_seen_unavailable,
                within=60,
                message="every analysis to find the provider unavailable",
            )
            for unavailable in seen_unavailable.values():
                assert unavailable.next_attempt_at is not None
                assert unavailable.reason is not None
            assert llm_server.calls == 0

            llm_server.revive()
            await wait_until(
                lambda: all_in("ready"), within=90, message="every analysis to complete"
            )
    finally:
        await retire_tenant_jobs(runtime, tenant.tenant_id)

    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        scans_now = await session.scalar(select(func.count()).select_from(Scan))
    assert scans_now == SCANS  # nothing was rescanned
    assert llm_server.calls >= SCANS
    for scan_id in scan_ids:
        result = (await analysis_of(runtime, tenant.tenant_id, scan_id)).result
        assert result is not None
        assert {f["resource_id"] for f in result["findings"]} == waste
