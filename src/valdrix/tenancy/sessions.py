"""Dashboard login and logout: argon2 passwords, throttling, rotating cookie sessions."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.errors import Forbidden, TooManyRequests, Unauthorized
from valdrix.kit.crypto import hash_token, new_token
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.tenancy.audit import record_audit
from valdrix.tenancy.auth import Principal
from valdrix.tenancy.models import BrowserSession, LoginAttempt, Role
from valdrix.tenancy.passwords import hash_password, verify_password
from valdrix.tenancy.repository import (
    BrowserSessionRepository,
    LoginAttemptRepository,
    MembershipRepository,
    UserRepository,
)

log = structlog.get_logger(__name__)

THROTTLE_WINDOW = dt.timedelta(minutes=1)
ATTEMPT_RETENTION = dt.timedelta(hours=1)
SESSION_TOKEN_PREFIX = "vdxs_"  # noqa: S105 (a prefix, not a secret)
UNKNOWN_IP = "0.0.0.0"  # noqa: S104 (a placeholder address for throttling, not a bind)


@dataclass(frozen=True)
class LoginResult:
    token: str
    csrf_token: str
    session: BrowserSession
    role: Role
    tenants: list[tuple[uuid.UUID, str]]


async def login(
    runtime: Runtime,
    *,
    email: str,
    password: str,
    tenant_id: uuid.UUID | None,
    ip: str | None,
    user_agent: str | None,
    previous_token: str | None,
) -> LoginResult:
    ip = ip or UNKNOWN_IP
    throttle_key = runtime.keyring.blind_index(email)
    now = utcnow()
    async with unit_of_work(runtime.sessions, None) as session:
        attempts = LoginAttemptRepository(session)
        failures = await attempts.recent_failures(ip, throttle_key, now - THROTTLE_WINDOW)
        if failures >= runtime.settings.login_max_failures_per_minute:
            log.warning("auth.login.throttled", ip=ip)
            raise TooManyRequests(
                "too many failed logins; wait a minute and try again", retry_after_seconds=60
            )
        user = await UserRepository(session).get_by_email_indexes(
            runtime.keyring.blind_indexes(email)
        )
        password_ok = verify_password(user.password_hash if user else None, password)
        memberships = (
            await MembershipRepository(session).tenants_of_user(user.id)
            if user and password_ok and user.disabled_at is None
            else []
        )
        if not memberships:
            await attempts.add(LoginAttempt(ip=ip, email_index=throttle_key, attempted_at=now))
            log.info("auth.login.failed", ip=ip)
    if user is None or not memberships:
        raise Unauthorized("email or password is wrong")
    chosen = _choose_tenant(memberships, tenant_id)
    if previous_token:
        await _revoke_token(runtime, previous_token)

    token, csrf_token = new_token(SESSION_TOKEN_PREFIX), secrets.token_urlsafe(32)
    async with unit_of_work(runtime.sessions, chosen[0]) as session:
        browser_session = await BrowserSessionRepository(session).add(
            BrowserSession(
                tenant_id=chosen[0],
                user_id=user.id,
                token_hash=hash_token(token),
                csrf_token_hash=hash_token(csrf_token),
                expires_at=now + dt.timedelta(hours=runtime.settings.session_ttl_hours),
                ip=ip,
                user_agent=(user_agent or "")[:400] or None,
            )
        )
        await LoginAttemptRepository(session).clear(ip, throttle_key, now - ATTEMPT_RETENTION)
        actor = Principal(chosen[0], Role(chosen[1]), "session", str(user.id), user.id)
        await record_audit(
            session, actor, "auth.login", target_type="session", target_id=browser_session.id
        )
    return LoginResult(token, csrf_token, browser_session, Role(chosen[1]), memberships)


def _choose_tenant(
    memberships: list[tuple[uuid.UUID, str]], requested: uuid.UUID | None
) -> tuple[uuid.UUID, str]:
    if requested is None:
        return memberships[0]
    for membership in memberships:
        if membership[0] == requested:
            return membership
    raise Forbidden("you are not a member of that tenant")


async def _revoke_token(runtime: Runtime, token: str) -> None:
    """End the session a browser held before logging in again (no session fixation)."""
    async with unit_of_work(runtime.sessions, None) as session:
        resolved = await BrowserSessionRepository(session).resolve(hash_token(token))
    if resolved is not None:
        async with unit_of_work(runtime.sessions, resolved.tenant_id) as session:
            old = await BrowserSessionRepository(session).get(resolved.session_id)
            if old is not None:
                old.revoked_at = utcnow()


async def logout(session: AsyncSession, actor: Principal) -> None:
    if actor.session_id is None:
        return
    browser_session = await BrowserSessionRepository(session).get(actor.session_id)
    if browser_session is not None and browser_session.revoked_at is None:
        browser_session.revoked_at = utcnow()
        await session.flush()
        await record_audit(
            session, actor, "auth.logout", target_type="session", target_id=actor.session_id
        )


async def accept_invite(runtime: Runtime, *, token: str, password: str) -> uuid.UUID:
    """Set the invited person's password and activate the membership; returns the tenant id."""
    password_hash = hash_password(password)
    async with unit_of_work(runtime.sessions, None) as session:
        resolved = await MembershipRepository(session).resolve_invite(hash_token(token))
    if resolved is None:
        raise Unauthorized("invitation is unknown or expired")
    membership_id, tenant_id = resolved
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        membership = await MembershipRepository(session).get(membership_id)
        user = await UserRepository(session).get(membership.user_id) if membership else None
        if membership is None or user is None:
            raise Unauthorized("invitation is unknown or expired")
        if user.password_hash is None:
            user.password_hash = password_hash
        membership.accepted_at = utcnow()
        membership.invite_token_hash = None
        membership.invite_expires_at = None
        actor = Principal(tenant_id, Role(membership.role), "session", str(user.id), user.id)
        await record_audit(
            session,
            actor,
            "member.accept_invite",
            target_type="membership",
            target_id=membership.id,
        )
    return tenant_id
