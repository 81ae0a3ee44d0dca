"""A worker killed in the middle of a paid call: the sweeper gives its reservation back, and the
analysis runs again on another worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.analysis.helpers import analysis_of, seed_scans
from tests.fixtures.jobs import WorkerPool
from tests.fixtures.llm import MODEL
from tests.jobs.helpers import retire_tenant_jobs, wait_until
from tests.llm.helpers import budget_row
from valdrix.analysis.service import request_analysis
from valdrix.kit.db import unit_of_work
from valdrix.llm.budget import expire_reservations
from valdrix.llm.models import LlmReservation
from valdrix.runtime import Runtime
from valdrix.simulator.llm_server import SimulatedLLM
from valdrix.tenancy.service import system_principal

pytestmark = pytest.mark.asyncio(loop_scope="session")

TTL_SECONDS = 2.0


async def test_reservation_of_a_killed_worker_is_expired_and_released(
    make_tenant: Callable[..., Any],
    llm_runtime: Callable[..., Runtime],
    llm_server: SimulatedLLM,
    prices_file: Path,
    workers: WorkerPool,
) -> None:
    tenant = await make_tenant()
    runtime = llm_runtime(reservation_ttl_seconds=TTL_SECONDS)
    [scan] = await seed_scans(runtime, tenant.tenant_id, 1, analysis_status=None)
    llm_env = {
        "VALDRIX_LLM_BASE_URL": llm_server.base_url,
        "VALDRIX_LLM_MODEL": MODEL,
        "VALDRIX_LLM_PRICES_FILE": str(prices_file),
        "VALDRIX_LLM_RESERVATION_TTL_SECONDS": str(TTL_SECONDS),
        "VALDRIX_LLM_READ_TIMEOUT_SECONDS": "60",
    }
    llm_server.delay_seconds = 60  # the call is in flight when the worker dies
    [doomed] = await workers.start(queues="analysis", env=llm_env)
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await request_analysis(
            session, system_principal(tenant.tenant_id), runtime.settings, scan.scan_id
        )

    async def reservations() -> list[LlmReservation]:
        async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
            return list(await session.scalars(select(LlmReservation)))

    async def call_in_flight() -> bool:
        return llm_server.calls == 1 and [r.state for r in await reservations()] == ["reserved"]

    try:
        await wait_until(call_in_flight, within=30, message="the worker to reserve and call")
        doomed.kill()
        held = await budget_row(runtime, tenant.tenant_id)
        assert held is not None and held.day_reserved_usd > 0
        before = REGISTRY.get_sample_value("valdrix_llm_reservations_expired_total") or 0.0

        assert await expire_reservations(runtime) == 0  # not expired yet: it may still settle
        await asyncio.sleep(TTL_SECONDS + 0.5)
        assert await expire_reservations(runtime) == 1

        [reservation] = await reservations()
        assert reservation.state == "expired" and reservation.closed_at is not None
        released = await budget_row(runtime, tenant.tenant_id)
        assert released is not None
        assert released.day_reserved_usd == 0 and released.month_reserved_usd == 0
        assert released.day_settled_usd == 0
        after = REGISTRY.get_sample_value("valdrix_llm_reservations_expired_total")
        assert after == before + 1
        assert await expire_reservations(runtime) == 0  # closed once only

        # The dead worker's job is recovered by another worker and the analysis completes.
        llm_server.delay_seconds = 0
        await workers.start(queues="analysis,system", periodic=True, env=llm_env)

        async def ready() -> bool:
            return (await analysis_of(runtime, tenant.tenant_id, scan.scan_id)).status == "ready"

        await wait_until(ready, within=60, message="the analysis to complete on a new worker")
        states = sorted(r.state for r in await reservations())
        assert states == ["expired", "settled"]
    finally:
        await retire_tenant_jobs(runtime, tenant.tenant_id)
