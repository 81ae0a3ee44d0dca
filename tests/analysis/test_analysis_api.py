"""The analysis API as a tenant sees it: each state of a scan's analysis, and asking for another."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.analysis.helpers import seed_scans
from tests.fixtures.http import api_client, api_key
from tests.jobs.helpers import retire_tenant_jobs
from tests.scanning.helpers import give_tenant_a_scanned_connection
from valdrix.analysis.runs import run_analysis
from valdrix.runtime import Runtime
from valdrix.tenancy.models import Tier

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_analysis_endpoint_reports_each_state_and_requests_a_new_run(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    runtime: Runtime,
    llm_runtime: Callable[..., Runtime],
) -> None:
    tenant = await make_tenant()
    # Scanned without a provider configured: the analysis is disabled, with the reason.
    scanned = await give_tenant_a_scanned_connection(runtime, tenant.tenant_id)
    disabled = (
        await client.get(f"/api/v1/scans/{scanned.scan_id}/analysis", headers=tenant.auth)
    ).json()
    assert disabled["status"] == "disabled"
    assert "VALDRIX_LLM_API_KEY" in disabled["reason"]
    conflict = await client.post(f"/api/v1/scans/{scanned.scan_id}/analysis", headers=tenant.auth)
    assert conflict.status_code == 409

    with_llm = llm_runtime()
    [scan] = await seed_scans(with_llm, tenant.tenant_id, 1)
    async with api_client(with_llm) as api:
        pending = (
            await api.get(f"/api/v1/scans/{scan.scan_id}/analysis", headers=tenant.auth)
        ).json()
        assert pending["status"] == "pending" and pending["result"] is None

        await run_analysis(with_llm, tenant.tenant_id, scan.scan_id)
        ready = (
            await api.get(f"/api/v1/scans/{scan.scan_id}/analysis", headers=tenant.auth)
        ).json()
        assert ready["status"] == "ready"
        assert len(ready["result"]["findings"]) == 2
        assert Decimal(ready["cost_usd"]) > 0 and ready["attempts"] == 1

        viewer = await api_key(api, tenant.auth, "viewer")
        forbidden = await api.post(f"/api/v1/scans/{scan.scan_id}/analysis", headers=viewer)
        assert forbidden.status_code == 403
        try:
            again = await api.post(f"/api/v1/scans/{scan.scan_id}/analysis", headers=tenant.auth)
            assert again.status_code == 202
            assert again.json()["status"] == "pending"
            jobs = (await api.get("/api/v1/jobs", headers=tenant.auth)).json()["items"]
            assert jobs[0]["type"] == "analysis.run" and jobs[0]["status"] == "queued"
        finally:
            await retire_tenant_jobs(with_llm, tenant.tenant_id)
        missing = await api.get(
            "/api/v1/scans/00000000-0000-4000-8000-000000000000/analysis", headers=tenant.auth
        )
        assert missing.status_code == 404


async def test_asking_again_keeps_the_last_good_result_beside_the_new_attempts_status(
    make_tenant: Callable[..., Any], llm_runtime: Callable[..., Runtime]
) -> None:
    tenant = await make_tenant()
    with_llm = llm_runtime()
    [scan] = await seed_scans(with_llm, tenant.tenant_id, 1)
    await run_analysis(with_llm, tenant.tenant_id, scan.scan_id)
    broke = llm_runtime(daily_cap_usd={tier.value: Decimal("0.000001") for tier in Tier})
    async with api_client(broke) as api:
        first = await api.get(f"/api/v1/scans/{scan.scan_id}/analysis", headers=tenant.auth)
        try:
            again = await api.post(f"/api/v1/scans/{scan.scan_id}/analysis", headers=tenant.auth)
            assert again.status_code == 202
            assert again.json()["result"] == first.json()["result"]
            assert await run_analysis(broke, tenant.tenant_id, scan.scan_id) == "skipped_budget"
        finally:
            await retire_tenant_jobs(broke, tenant.tenant_id)
        now = (await api.get(f"/api/v1/scans/{scan.scan_id}/analysis", headers=tenant.auth)).json()

    assert now["status"] == "skipped_budget" and "daily cap" in now["reason"]
    assert now["result"] == first.json()["result"]
    assert len(now["result"]["findings"]) == 2
    assert now["result_at"] == first.json()["result_at"] is not None
