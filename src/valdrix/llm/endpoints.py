"""HTTP routes for the tenant's LLM budget."""

from __future__ import annotations

from fastapi import APIRouter

from valdrix.llm import service
from valdrix.llm.schemas import BudgetOut, BudgetPatch
from valdrix.tenancy.auth import AdminScope, ViewerScope

router = APIRouter(prefix="/api/v1/llm", tags=["llm"])


@router.get("/budget")
async def read_budget(scope: ViewerScope) -> BudgetOut:
    """Limits (the tier's defaults unless an admin set them), today's and this month's spend,
    open reservations and recent spend alerts."""
    return await service.read_budget(scope.session, scope.principal, scope.runtime.settings)


@router.patch("/budget")
async def update_budget(patch: BudgetPatch, scope: AdminScope) -> BudgetOut:
    return await service.update_budget(
        scope.session, scope.principal, scope.runtime.settings, patch
    )
