"""HTTP routes of the tenancy domain. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response, status

from valdrix.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from valdrix.kit.request_context import client_ip_var
from valdrix.tenancy import api_keys, audit, password_reset, service, sessions
from valdrix.tenancy.auth import SESSION_COOKIE, AdminScope, RuntimeDep, ViewerScope
from valdrix.tenancy.cookies import clear_session_cookies, set_session_cookies
from valdrix.tenancy.repository import MemberRow
from valdrix.tenancy.schemas import (
    AcceptInviteIn,
    ApiKeyCreate,
    ApiKeyIssued,
    ApiKeyOut,
    AuditEventOut,
    LoginIn,
    LoginOut,
    MemberInvite,
    MemberInvited,
    MemberOut,
    MemberPatch,
    PasswordResetAccepted,
    PasswordResetConfirmIn,
    PasswordResetIn,
    TenantChoice,
    TenantOut,
    TenantPatch,
    WhoAmI,
)

router = APIRouter(prefix="/api/v1")


def _member_out(row: MemberRow) -> MemberOut:
    return MemberOut(
        id=row.membership.id,
        user_id=row.user.id if row.user else None,
        email=row.email,
        role=row.membership.role,
        status="active" if row.membership.accepted_at else "invited",
        created_at=row.membership.created_at,
    )


# --- authentication -------------------------------------------------------------------------


@router.post("/auth/login", tags=["auth"])
async def log_in(
    body: LoginIn, request: Request, response: Response, runtime: RuntimeDep
) -> LoginOut:
    result = await sessions.login(
        runtime,
        email=body.email,
        password=body.password,
        tenant_id=body.tenant_id,
        ip=client_ip_var.get(),
        user_agent=request.headers.get("user-agent"),
        previous_token=request.cookies.get(SESSION_COOKIE),
    )
    set_session_cookies(request, response, runtime, result)
    return LoginOut(
        tenant_id=result.session.tenant_id,
        role=result.role,
        expires_at=result.session.expires_at,
        csrf_token=result.csrf_token,
        tenants=[TenantChoice(tenant_id=t, role=r) for t, r in result.tenants],
    )


@router.post("/auth/logout", tags=["auth"], status_code=status.HTTP_204_NO_CONTENT)
async def log_out(scope: ViewerScope, response: Response) -> None:
    await sessions.logout(scope.session, scope.principal)
    clear_session_cookies(response)


@router.post("/auth/accept-invite", tags=["auth"], status_code=status.HTTP_204_NO_CONTENT)
async def accept_invitation(body: AcceptInviteIn, runtime: RuntimeDep) -> None:
    await sessions.accept_invite(runtime, token=body.token, password=body.password)


@router.post("/auth/password-reset", tags=["auth"], status_code=status.HTTP_202_ACCEPTED)
async def request_password_reset(
    body: PasswordResetIn, background: BackgroundTasks, runtime: RuntimeDep
) -> PasswordResetAccepted:
    """Mail a single-use reset link to the address if it has an account; the answer is the same
    either way, and the mail goes out after it."""
    mail = await password_reset.request_reset(runtime, email=body.email, ip=client_ip_var.get())
    if mail is not None:
        background.add_task(password_reset.deliver, runtime, mail)
    return PasswordResetAccepted(detail=password_reset.ACCEPTED)


@router.post("/auth/password-reset/confirm", tags=["auth"], status_code=status.HTTP_204_NO_CONTENT)
async def confirm_password_reset(body: PasswordResetConfirmIn, runtime: RuntimeDep) -> None:
    """Set a new password with a reset link's token; every session of the account ends."""
    await password_reset.confirm_reset(runtime, token=body.token, password=body.password)


@router.get("/auth/me", tags=["auth"])
async def who_am_i(scope: ViewerScope) -> WhoAmI:
    p = scope.principal
    return WhoAmI(tenant_id=p.tenant_id, role=p.role, kind=p.kind, actor_id=p.actor_id)


# --- tenant settings ------------------------------------------------------------------------


@router.get("/tenant", tags=["tenant"])
async def read_tenant(scope: ViewerScope) -> TenantOut:
    return TenantOut.model_validate(await service.get_tenant(scope.session, scope.principal))


@router.patch("/tenant", tags=["tenant"])
async def update_tenant(body: TenantPatch, scope: AdminScope) -> TenantOut:
    tenant = await service.update_tenant(
        scope.session, scope.principal, name=body.name, timezone=body.timezone
    )
    return TenantOut.model_validate(tenant)


# --- members --------------------------------------------------------------------------------


@router.get("/members", tags=["members"])
async def list_members(scope: ViewerScope) -> list[MemberOut]:
    return [_member_out(row) for row in await service.list_members(scope.session, scope.principal)]


@router.post("/members", tags=["members"], status_code=status.HTTP_201_CREATED)
async def invite_member(body: MemberInvite, scope: AdminScope) -> MemberInvited:
    added = await service.invite_member(
        scope.session,
        scope.principal,
        scope.runtime.settings,
        scope.runtime.keyring,
        email=body.email,
        role=body.role,
    )
    return MemberInvited(**_member_out(added.row).model_dump(), invite_token=added.invite_token)


@router.patch("/members/{membership_id}", tags=["members"])
async def change_member_role(
    membership_id: uuid.UUID, body: MemberPatch, scope: AdminScope
) -> MemberOut:
    row = await service.change_member_role(
        scope.session, scope.principal, membership_id, role=body.role
    )
    return _member_out(row)


@router.delete("/members/{membership_id}", tags=["members"], status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(membership_id: uuid.UUID, scope: AdminScope) -> None:
    await service.remove_member(scope.session, scope.principal, membership_id)


# --- API keys -------------------------------------------------------------------------------


@router.get("/api-keys", tags=["api-keys"])
async def list_api_keys(scope: AdminScope) -> list[ApiKeyOut]:
    keys = await api_keys.list_api_keys(scope.session, scope.principal)
    return [ApiKeyOut.model_validate(key) for key in keys]


@router.post("/api-keys", tags=["api-keys"], status_code=status.HTTP_201_CREATED)
async def create_api_key(body: ApiKeyCreate, scope: AdminScope) -> ApiKeyIssued:
    issued = await api_keys.create_api_key(
        scope.session,
        scope.principal,
        name=body.name,
        role=body.role,
        expires_in_days=body.expires_in_days,
    )
    out = ApiKeyOut.model_validate(issued.api_key)
    return ApiKeyIssued(**out.model_dump(), key=issued.secret)


@router.delete("/api-keys/{api_key_id}", tags=["api-keys"])
async def revoke_api_key(api_key_id: uuid.UUID, scope: AdminScope) -> ApiKeyOut:
    revoked = await api_keys.revoke_api_key(scope.session, scope.principal, api_key_id)
    return ApiKeyOut.model_validate(revoked)


# --- audit log ------------------------------------------------------------------------------


@router.get("/audit-log", tags=["audit-log"])
async def list_audit_events(
    scope: AdminScope,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[AuditEventOut]:
    events, next_cursor = await audit.audit_page(
        scope.session, scope.principal, scope.runtime.keyring, cursor=cursor, limit=limit
    )
    return Page[AuditEventOut](
        items=[AuditEventOut.model_validate(event) for event in events], next_cursor=next_cursor
    )
