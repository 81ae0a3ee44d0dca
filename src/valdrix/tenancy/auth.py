"""Who is calling, for which tenant, with which role.

Credentials, in order: ``Authorization: Bearer vdx_...`` (API key), ``Authorization: Bearer
<JWT>`` (external OIDC, when configured), the ``valdrix_session`` cookie (dashboard; unsafe
methods also need the double-submit CSRF token). The tenant always comes from the credential.
"""

from __future__ import annotations

import datetime as dt
import hmac
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import structlog
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.errors import Forbidden, Unauthorized
from valdrix.kit.crypto import hash_token
from valdrix.kit.db import tenant_context, unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.tenancy import oidc
from valdrix.tenancy.credential_cache import credential_cache
from valdrix.tenancy.models import Role, User
from valdrix.tenancy.rate_limits import RequestRateLimiter
from valdrix.tenancy.repository import (
    ApiKeyRepository,
    BrowserSessionRepository,
    MembershipRepository,
    UserRepository,
)

log = structlog.get_logger(__name__)

API_KEY_PREFIX = "vdx_"
SESSION_COOKIE = "valdrix_session"
CSRF_COOKIE = "valdrix_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
API_KEY_TOUCH_INTERVAL = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    tenant_id: uuid.UUID
    role: Role
    kind: Literal["api_key", "session", "jwt", "cli"]
    actor_id: str
    user_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None


@dataclass
class TenantScope:
    """An authorized caller and its open transaction, already bound to the caller's tenant."""

    principal: Principal
    session: AsyncSession
    runtime: Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def authenticate(request: Request, runtime: Runtime) -> Principal:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credential:
        if credential.startswith(API_KEY_PREFIX):
            return await _from_api_key(runtime, credential)
        if runtime.settings.auth.oidc_hs256_secret or runtime.settings.auth.oidc_jwks_url:
            return await _from_jwt(runtime, credential)
        raise Unauthorized("unrecognised bearer credential")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await _from_session_cookie(request, runtime, cookie)
    raise Unauthorized("authentication required: send an API key or log in")


@dataclass(frozen=True)
class _Resolved:
    """What a credential stands for: the principal, and for a session its CSRF token's hash."""

    principal: Principal
    csrf_token_hash: bytes | None = None


async def _resolve_cached(
    runtime: Runtime, kind: str, secret: str, resolve: Callable[[], Awaitable[_Resolved]]
) -> _Resolved:
    """``resolve()``'s answer, from the credential cache when it holds a fresh one."""
    cache = credential_cache(runtime.notifications)
    return await cache.resolve(
        kind, hash_token(secret), resolve, tenant_of=lambda resolved: resolved.principal.tenant_id
    )


async def _from_api_key(runtime: Runtime, key: str) -> Principal:
    async def resolve() -> _Resolved:
        async with unit_of_work(runtime.sessions, None) as session:
            resolved = await ApiKeyRepository(session).resolve(hash_token(key))
        if resolved is None:
            raise Unauthorized("invalid, expired or revoked API key")
        # Once per cache miss, so at most every few seconds per key and process; the
        # statement itself writes at most once a minute.
        async with unit_of_work(runtime.sessions, resolved.tenant_id) as session:
            await ApiKeyRepository(session).touch(
                resolved.api_key_id, utcnow(), every=API_KEY_TOUCH_INTERVAL
            )
        return _Resolved(
            Principal(
                tenant_id=resolved.tenant_id,
                role=Role(resolved.role),
                kind="api_key",
                actor_id=str(resolved.api_key_id),
            )
        )

    return (await _resolve_cached(runtime, "api_key", key, resolve)).principal


async def _from_session_cookie(request: Request, runtime: Runtime, token: str) -> Principal:
    async def resolve() -> _Resolved:
        async with unit_of_work(runtime.sessions, None) as session:
            resolved = await BrowserSessionRepository(session).resolve(hash_token(token))
        if resolved is None:
            raise Unauthorized("session expired or logged out; log in again")
        async with unit_of_work(runtime.sessions, resolved.tenant_id) as session:
            browser_session = await BrowserSessionRepository(session).get(resolved.session_id)
            membership = await MembershipRepository(session).get_active_for_user(resolved.user_id)
        if browser_session is None or membership is None:
            raise Unauthorized("your membership of this tenant has ended")
        principal = Principal(
            tenant_id=resolved.tenant_id,
            role=Role(membership.role),
            kind="session",
            actor_id=str(resolved.user_id),
            user_id=resolved.user_id,
            session_id=resolved.session_id,
        )
        return _Resolved(principal, browser_session.csrf_token_hash)

    resolved = await _resolve_cached(runtime, "session", token, resolve)
    if request.method not in SAFE_METHODS:
        assert resolved.csrf_token_hash is not None  # every session has one
        _check_csrf(request, resolved.csrf_token_hash)
    return resolved.principal


def _check_csrf(request: Request, expected_hash: bytes) -> None:
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    # As bytes: compare_digest raises TypeError on non-ASCII str, and both values are client-chosen.
    if not header or not hmac.compare_digest(header.encode(), cookie.encode()):
        raise Forbidden("missing or mismatched CSRF token (send the X-CSRF-Token header)")
    if not hmac.compare_digest(hash_token(header), expected_hash):
        raise Forbidden("CSRF token does not belong to this session")


async def _from_jwt(runtime: Runtime, token: str) -> Principal:
    # The signature and expiry are checked on every request; only the membership is cached.
    claims = await oidc.verify(runtime.settings, token)
    try:
        tenant_id = uuid.UUID(str(claims[runtime.settings.auth.oidc_tenant_claim]))
    except (KeyError, ValueError) as exc:
        raise Unauthorized("token names no valid tenant") from exc
    email = claims.get("email")
    if not isinstance(email, str):
        raise Unauthorized("token carries no email claim")
    # Identity providers let people type any address; only one the provider verified names them.
    if claims.get("email_verified") is not True:
        raise Unauthorized("token's email is not verified by the identity provider")

    async def resolve() -> _Resolved:
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            user: User | None = await UserRepository(session).get_by_email_indexes(
                runtime.keyring.blind_indexes(email)
            )
            memberships = MembershipRepository(session)
            membership = await memberships.get_active_for_user(user.id) if user else None
        if user is None or membership is None:
            raise Unauthorized("this identity is not a member of the tenant")
        principal = Principal(
            tenant_id=tenant_id,
            role=Role(membership.role),
            kind="jwt",
            actor_id=str(user.id),
            user_id=user.id,
        )
        return _Resolved(principal)

    return (await _resolve_cached(runtime, "jwt", token, resolve)).principal


async def admit_once(request: Request, runtime: Runtime, principal: Principal) -> None:
    """Count the request against the caller's rate limits, once however many steps ask (the
    guard, then the error page it may end in); raises TooManyRequests past them."""
    if getattr(request.state, "rate_limit_counted", False):
        return
    limiter: RequestRateLimiter = request.app.state.rate_limiter
    await limiter.admit(runtime, principal)
    request.state.rate_limit_counted = True


def require_tenant_access(min_role: Role) -> Callable[..., AsyncIterator[TenantScope]]:
    """Dependency: authenticate, count the request against the caller's rate limits, demand
    ``min_role``, open a transaction as the caller's tenant.

    The transaction commits when the endpoint returns and rolls back if it raises.
    """

    async def tenant_scope(request: Request, runtime: RuntimeDep) -> AsyncIterator[TenantScope]:
        principal = await authenticate(request, runtime)
        await admit_once(request, runtime, principal)
        if not principal.role.at_least(min_role):
            raise Forbidden(f"this needs the {min_role.value} role; you are {principal.role.value}")
        structlog.contextvars.bind_contextvars(tenant_id=str(principal.tenant_id))
        with tenant_context(principal.tenant_id):
            async with runtime.sessions() as session, session.begin():
                yield TenantScope(principal, session, runtime)

    tenant_scope.valdrix_min_role = min_role  # type: ignore[attr-defined]
    return tenant_scope


def is_tenant_guard(dependency: object) -> bool:
    """True for dependencies made by ``require_tenant_access`` (the route-walking test uses it)."""
    return hasattr(dependency, "valdrix_min_role")


ViewerScope = Annotated[TenantScope, Depends(require_tenant_access(Role.viewer), scope="function")]
MemberScope = Annotated[TenantScope, Depends(require_tenant_access(Role.member), scope="function")]
AdminScope = Annotated[TenantScope, Depends(require_tenant_access(Role.admin), scope="function")]
OwnerScope = Annotated[TenantScope, Depends(require_tenant_access(Role.owner), scope="function")]
