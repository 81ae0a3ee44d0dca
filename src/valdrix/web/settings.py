"""Settings: members and invitations, API keys (admins), the LLM budget and the audit log
(admins). Each section is read by the service behind the /api/v1 endpoint named under it; each
change goes through that endpoint's request body and service, and answers with its section
again (a refusal shown as the API's problem detail, nothing changed)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from pydantic import ValidationError

from valdrix.kit.pagination import DEFAULT_LIMIT
from valdrix.llm import service as llm
from valdrix.llm.schemas import BudgetPatch
from valdrix.tenancy import api_keys, audit, service
from valdrix.tenancy.auth import AdminScope, TenantScope, ViewerScope
from valdrix.tenancy.models import Role
from valdrix.tenancy.schemas import ApiKeyCreate, MemberInvite, MemberPatch
from valdrix.web.chrome import page_context
from valdrix.web.forms import attempt, invalid_input
from valdrix.web.routing import PageRoute
from valdrix.web.sign_in import ACCEPT_INVITE_PATH
from valdrix.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _chrome(scope: TenantScope) -> dict[str, Any]:
    """What a section needs of the page around it, when it is sent alone; a control shows only
    where the service would allow it (``service.may_assign``)."""
    principal = scope.principal
    return {
        "principal": principal,
        "can_administer": principal.role.at_least(Role.admin),
        "assignable": [role for role in Role if service.may_assign(principal, role)],
        "may_manage": lambda role: service.may_assign(principal, Role(role)),
    }


async def _members(scope: TenantScope) -> dict[str, Any]:
    """``GET /api/v1/members``: people and pending invitations."""
    return {"members": await service.list_members(scope.session, scope.principal)}


async def _keys(scope: TenantScope) -> dict[str, Any]:
    """``GET /api/v1/api-keys`` (admins)."""
    return {"keys": await api_keys.list_api_keys(scope.session, scope.principal)}


async def _budget(scope: TenantScope) -> dict[str, Any]:
    """``GET /api/v1/llm/budget``."""
    budget = await llm.read_budget(scope.session, scope.principal, scope.runtime.settings)
    return {"budget": budget}


async def _audit(scope: TenantScope, cursor: str | None) -> dict[str, Any]:
    """``GET /api/v1/audit-log`` (admins), newest first, a page at a time; people by email."""
    events, next_cursor = await audit.audit_page(
        scope.session, scope.principal, scope.runtime.keyring, cursor=cursor, limit=DEFAULT_LIMIT
    )
    members = await service.list_members(scope.session, scope.principal)
    people = {str(m.user.id): m.email for m in members if m.user is not None}
    return {"events": events, "older_cursor": next_cursor, "cursor": cursor, "people": people}


@router.get("/settings")
async def settings_page(
    request: Request,
    scope: ViewerScope,
    audit_cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    context = await page_context(scope, **_chrome(scope))
    context |= await _members(scope) | await _budget(scope)
    if context["can_administer"]:
        context |= await _keys(scope) | await _audit(scope, audit_cursor)
    return render(request, "settings.html", context)


async def _members_section(
    request: Request, scope: TenantScope, *, error: str | None, **shown: Any
) -> Response:
    context = _chrome(scope) | await _members(scope) | {"error": error} | shown
    return render(request, "settings_members.html", context)


@router.post("/settings/members")
async def invite_member(
    request: Request,
    scope: AdminScope,
    email: Annotated[str, Form(max_length=1000)],
    role: Annotated[str, Form(max_length=20)],
) -> Response:
    """``POST /api/v1/members``: without mail configured, the invitation link is shown once."""
    try:
        body = MemberInvite.model_validate({"email": email, "role": role})
    except ValidationError as invalid:
        return await _members_section(request, scope, error=invalid_input(invalid))
    invited, error = await attempt(
        scope,
        service.invite_member(
            scope.session,
            scope.principal,
            scope.runtime.settings,
            scope.runtime.keyring,
            email=body.email,
            role=body.role,
        ),
    )
    token = invited.invite_token if invited else None
    link = f"{request.base_url}{ACCEPT_INVITE_PATH.lstrip('/')}?token={token}" if token else None
    message = None if error else f"Invited {body.email} as {body.role.value}."
    return await _members_section(request, scope, error=error, message=message, invite_link=link)


@router.patch("/settings/members/{membership_id}")
async def change_member_role(
    request: Request,
    membership_id: uuid.UUID,
    scope: AdminScope,
    role: Annotated[str, Form(max_length=20)],
) -> Response:
    """``PATCH /api/v1/members/{id}``."""
    try:
        body = MemberPatch.model_validate({"role": role})
    except ValidationError as invalid:
        return await _members_section(request, scope, error=invalid_input(invalid))
    _, error = await attempt(
        scope,
        service.change_member_role(scope.session, scope.principal, membership_id, role=body.role),
    )
    return await _members_section(request, scope, error=error, message=None if error else "Saved.")


@router.delete("/settings/members/{membership_id}")
async def remove_member(request: Request, membership_id: uuid.UUID, scope: AdminScope) -> Response:
    """``DELETE /api/v1/members/{id}``: a member removed, or an invitation revoked."""
    _, error = await attempt(
        scope, service.remove_member(scope.session, scope.principal, membership_id)
    )
    return await _members_section(
        request, scope, error=error, message=None if error else "Removed."
    )


async def _keys_section(
    request: Request, scope: TenantScope, *, error: str | None, **shown: Any
) -> Response:
    context = _chrome(scope) | await _keys(scope) | {"error": error} | shown
    return render(request, "settings_keys.html", context)


@router.post("/settings/api-keys")
async def create_api_key(
    request: Request,
    scope: AdminScope,
    name: Annotated[str, Form(max_length=1000)],
    role: Annotated[str, Form(max_length=20)],
    expires_in_days: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """``POST /api/v1/api-keys``: the key is in this answer alone (Valdrix keeps a hash)."""
    try:
        body = ApiKeyCreate.model_validate(
            {"name": name, "role": role, "expires_in_days": expires_in_days.strip() or None}
        )
    except ValidationError as invalid:
        return await _keys_section(request, scope, error=invalid_input(invalid))
    issued, error = await attempt(
        scope,
        api_keys.create_api_key(
            scope.session,
            scope.principal,
            name=body.name,
            role=body.role,
            expires_in_days=body.expires_in_days,
        ),
    )
    return await _keys_section(request, scope, error=error, issued=issued)


@router.delete("/settings/api-keys/{api_key_id}")
async def revoke_api_key(request: Request, api_key_id: uuid.UUID, scope: AdminScope) -> Response:
    """``DELETE /api/v1/api-keys/{id}``."""
    revoke = api_keys.revoke_api_key(scope.session, scope.principal, api_key_id)
    _, error = await attempt(scope, revoke)
    return await _keys_section(request, scope, error=error, message=None if error else "Revoked.")


@router.patch("/settings/llm-budget")
async def update_llm_budget(
    request: Request,
    scope: AdminScope,
    daily_cap_usd: Annotated[str, Form(max_length=40)] = "",
    monthly_limit_usd: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """``PATCH /api/v1/llm/budget``: an empty field goes back to the tier's default."""
    error: str | None
    try:
        patch = BudgetPatch.model_validate(
            {
                "daily_cap_usd": daily_cap_usd.strip() or None,
                "monthly_limit_usd": monthly_limit_usd.strip() or None,
            }
        )
    except ValidationError as invalid:
        error = invalid_input(invalid)
    else:
        _, error = await attempt(
            scope,
            llm.update_budget(scope.session, scope.principal, scope.runtime.settings, patch),
        )
    context = _chrome(scope) | await _budget(scope) | {"error": error}
    context["message"] = None if error else "Saved."
    return render(request, "settings_budget.html", context)
