"""The LLM budget as tests set it up and read it back, in tests/llm and elsewhere."""

from __future__ import annotations

import uuid
from decimal import Decimal

from valdrix.kit.db import unit_of_work
from valdrix.llm import budget
from valdrix.llm.models import LlmBudget
from valdrix.runtime import Runtime


async def give_tenant_llm_spend(runtime: Runtime, tenant_id: uuid.UUID) -> None:
    """One settled call above the spike floor on a first day of spend (a growth-tier tenant's
    $2.00 cap allows it): fills the budget row, a reservation and a spend-spike alert."""
    reservation = await budget.reserve(
        runtime,
        tenant_id,
        estimate=Decimal("1.50"),
        purpose="analysis",
        subject_id=None,
        provider="probe",
        model="probe-model",
    )
    await budget.settle(
        runtime, reservation, cost=Decimal("1.20"), prompt_tokens=1000, completion_tokens=100
    )


async def budget_row(runtime: Runtime, tenant_id: uuid.UUID) -> LlmBudget | None:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await session.get(LlmBudget, tenant_id)
