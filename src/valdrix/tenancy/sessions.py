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
from valdrix.tenancy.models import BrowserSession, InviteDelivery, LoginAttempt, Role, User
from valdrix.tenancy.passwords import hash_password_off_loop, verify_password_off_loop
from valdrix.tenancy.repository import (
    Account,
    BrowserSessionRepository,
    LoginAttemptRepository,
    MembershipRepository,
    TenantRepository,
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
    settings = runtime.settings
    throttle_key = runtime.keyring.blind_index(email)
    now = utcnow()
    async with unit_of_work(runtime.sessions, None) as session:
        attempts = LoginAttemptRepository(session)
        since = now - THROTTLE_WINDOW
        if (
            await attempts.recent_failures(ip, throttle_key, since)
            >= settings.auth.login_max_failures_per_minute
            or await attempts.recent_failures_from_ip(ip, since)
            >= settings.auth.login_max_failures_per_ip_per_minute
        ):
            log.warning("auth.login.throttled", ip=ip)
            raise TooManyRequests(
                "too many failed logins; wait a minute and try again", retry_after_seconds=60
            )
        accounts = await UserRepository(session).accounts_for_email(
            runtime.keyring.blind_indexes(email)
        )
    # Outside any transaction: argon2 is slow, and holds no connection while it runs.
    matched = await _accounts_with_password(runtime, accounts, password)
    async with unit_of_work(runtime.sessions, None) as session:
        memberships = [
            (tenant, role, account.user_id)
            for account in matched
            for tenant, role in await MembershipRepository(session).tenants_of_user(account.user_id)
        ]
        if not memberships:
            await LoginAttemptRepository(session).add(
                LoginAttempt(ip=ip, email_index=throttle_key, attempted_at=now)
            )
            log.info("auth.login.failed", ip=ip)
    if not memberships:
        raise Unauthorized("email or password is wrong")
    chosen_tenant, role, user_id = _choose_tenant(memberships, tenant_id)
    if previous_token:
        await _revoke_token(runtime, previous_token)

    token, csrf_token, browser_session = await _open_session(
        runtime, chosen_tenant, Role(role), user_id, ip=ip, user_agent=user_agent
    )
    async with unit_of_work(runtime.sessions, chosen_tenant) as session:
        await LoginAttemptRepository(session).clear(ip, throttle_key, now - ATTEMPT_RETENTION)
    tenants = list(dict.fromkeys((tenant, role) for tenant, role, _ in memberships))
    return LoginResult(token, csrf_token, browser_session, Role(role), tenants)


async def _open_session(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    role: Role,
    user_id: uuid.UUID,
    *,
    ip: str,
    user_agent: str | None,
) -> tuple[str, str, BrowserSession]:
    """A new browser session (its token, its CSRF token, the row), audited as a login."""
    token, csrf_token = new_token(SESSION_TOKEN_PREFIX), secrets.token_urlsafe(32)
    ttl = dt.timedelta(hours=runtime.settings.auth.session_ttl_hours)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        browser_session = await BrowserSessionRepository(session).add(
            BrowserSession(
                tenant_id=tenant_id,
                user_id=user_id,
                token_hash=hash_token(token),
                csrf_token_hash=hash_token(csrf_token),
                expires_at=utcnow() + ttl,
                ip=ip,
                user_agent=(user_agent or "")[:400] or None,
            )
        )
        actor = Principal(tenant_id, role, "session", str(user_id), user_id)
        await record_audit(
            session, actor, "auth.login", target_type="session", target_id=browser_session.id
        )
    return token, csrf_token, browser_session


async def tenants_of_user(runtime: Runtime, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """(tenant id, role) of each tenant the user is an active member of."""
    async with unit_of_work(runtime.sessions, None) as session:
        return await MembershipRepository(session).tenants_of_user(user_id)


@dataclass(frozen=True)
class TenantChoice:
    tenant_id: uuid.UUID
    name: str
    role: Role


async def tenant_choices(runtime: Runtime, user_id: uuid.UUID) -> list[TenantChoice]:
    """The tenants a user may switch between, by name. Each name is read as its own tenant
    (row-level security shows a tenant only itself), so only for users with several."""
    memberships = await tenants_of_user(runtime, user_id)
    if len(memberships) < 2:
        return []
    choices = []
    for tenant_id, role in memberships:
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            tenant = await TenantRepository(session).get(tenant_id)
        if tenant is not None:
            choices.append(TenantChoice(tenant_id, tenant.name, Role(role)))
    return sorted(choices, key=lambda choice: choice.name.casefold())


async def switch_tenant(
    runtime: Runtime,
    actor: Principal,
    *,
    tenant_id: uuid.UUID,
    ip: str | None,
    user_agent: str | None,
) -> LoginResult:
    """Move a signed-in user to another of their tenants: a new session there (the user proved
    who they are when signing in), the current one ended."""
    if actor.kind != "session" or actor.user_id is None or actor.session_id is None:
        raise Forbidden("only a signed-in browser session can switch tenants")
    memberships = await tenants_of_user(runtime, actor.user_id)
    role = next((Role(r) for tenant, r in memberships if tenant == tenant_id), None)
    if role is None:
        raise Forbidden("you are not a member of that tenant")
    token, csrf_token, browser_session = await _open_session(
        runtime, tenant_id, role, actor.user_id, ip=ip or UNKNOWN_IP, user_agent=user_agent
    )
    async with unit_of_work(runtime.sessions, actor.tenant_id) as session:
        await logout(session, actor)
    return LoginResult(token, csrf_token, browser_session, role, memberships)


# One address may have a proven account and accounts bound to single tenants; each is checked,
# up to this many (an address rarely has more than one or two).
MAX_ACCOUNTS_PER_LOGIN = 5


async def _accounts_with_password(
    runtime: Runtime, accounts: list[Account], password: str
) -> list[Account]:
    concurrency = runtime.settings.auth.password_hash_concurrency
    usable = [a for a in accounts if not a.disabled][:MAX_ACCOUNTS_PER_LOGIN]
    if not usable:  # the same work as a real check, so timing does not tell unknown addresses
        await verify_password_off_loop(None, password, concurrency=concurrency)
        return []
    return [
        account
        for account in usable
        if await verify_password_off_loop(account.password_hash, password, concurrency=concurrency)
    ]


def _choose_tenant(
    memberships: list[tuple[uuid.UUID, str, uuid.UUID]], requested: uuid.UUID | None
) -> tuple[uuid.UUID, str, uuid.UUID]:
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
    """Join the tenant that sent the invitation; returns the tenant id.

    The address's proven account joins only if ``password`` is that account's own (signing in
    as itself). Without one, a new account is made: proven when the token came by mail (it
    reached the address), otherwise bound to this tenant alone. No existing account's password
    is ever set here.
    """
    token_hash = hash_token(token)
    async with unit_of_work(runtime.sessions, None) as session:
        resolved = await MembershipRepository(session).resolve_invite(token_hash)
    if resolved is None:
        raise Unauthorized("invitation is unknown or expired")
    membership_id, tenant_id = resolved
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        invitation = await MembershipRepository(session).get(membership_id)
        if invitation is None or invitation.invite_email is None:
            raise Unauthorized("invitation is unknown or expired")
        email = invitation.invite_email
        delivery = InviteDelivery(invitation.invite_delivery or InviteDelivery.inviter)
        accounts = await UserRepository(session).accounts_for_email(
            runtime.keyring.blind_indexes(email)
        )
    concurrency = runtime.settings.auth.password_hash_concurrency
    proven = next((a for a in accounts if a.proven), None)
    # An account of this address bound to this very tenant (a former member, re-invited): it
    # can be nobody else's, so it is reused with the new password (and proven, if mailed).
    bound_here = next((a for a in accounts if a.home_tenant_id == tenant_id), None)
    new_password_hash: str | None = None
    if proven is not None:
        if proven.disabled or not await verify_password_off_loop(
            proven.password_hash, password, concurrency=concurrency
        ):
            raise Unauthorized(
                "this address already has a Valdrix account: accept with its existing password"
            )
    else:
        new_password_hash = await hash_password_off_loop(password, concurrency=concurrency)
    mailed = delivery is InviteDelivery.mail
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        memberships, users = MembershipRepository(session), UserRepository(session)
        invitation = await memberships.get(membership_id)
        if invitation is None or invitation.invite_token_hash != token_hash:
            raise Unauthorized("invitation is unknown or expired")  # used meanwhile
        if proven is not None:
            user_id, outcome = proven.user_id, "existing account signed in"
        elif bound_here is not None:
            user = await users.get(bound_here.user_id)
            assert user is not None and new_password_hash is not None
            user.password_hash = new_password_hash
            if mailed:
                user.proven_at, user.home_tenant_id = utcnow(), None
            user_id, outcome = user.id, "former member's account reused"
        else:
            # A new proven account is not yet visible to this tenant (it has no membership):
            # inserting it without RETURNING (created_at set here) keeps row-level security
            # from refusing the insert.
            user = await users.add(
                User(
                    email=email,
                    email_index=runtime.keyring.blind_index(email),
                    password_hash=new_password_hash,
                    proven_at=utcnow() if mailed else None,
                    home_tenant_id=None if mailed else tenant_id,
                    created_at=utcnow(),
                )
            )
            user_id, outcome = user.id, "new account"
        invitation.user_id, invitation.accepted_at = user_id, utcnow()
        invitation.invite_token_hash = invitation.invite_expires_at = None
        invitation.invite_email = invitation.invite_email_index = invitation.invite_delivery = None
        await session.flush()
        actor = Principal(tenant_id, Role(invitation.role), "session", str(user_id), user_id)
        await record_audit(
            session,
            actor,
            "member.accept_invite",
            target_type="membership",
            target_id=invitation.id,
            details={"account": outcome, "delivery": delivery.value},
        )
    return tenant_id
