"""Resetting a forgotten password: a single-use link mailed to the address, then a new password.

Asking never tells whether an address has an account: every request gets the same answer, is
counted against the address and the client IP alike, and does the same database work; the mail
is sent after the answer. Only a *proven* account (its address has received mail from Valdrix
before) is reset: an account bound to one tenant was made without mail, and its tenant's
admins re-invite that person instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.errors import ProblemError, TooManyRequests
from valdrix.kit.crypto import hash_token, new_token
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.mail import Mail, MailNotSent, link_base, send_mail
from valdrix.runtime import Runtime
from valdrix.tenancy.audit import record_audit
from valdrix.tenancy.auth import Principal
from valdrix.tenancy.models import PasswordReset, Role
from valdrix.tenancy.passwords import hash_password_off_loop
from valdrix.tenancy.repository import (
    BrowserSessionRepository,
    MembershipRepository,
    PasswordResetRepository,
    UserRepository,
)
from valdrix.tenancy.sessions import UNKNOWN_IP

log = structlog.get_logger(__name__)

RESET_TOKEN_PREFIX = "vdxpw_"  # noqa: S105 (a prefix, not a secret)
RESET_TTL = dt.timedelta(minutes=30)
REQUEST_WINDOW = dt.timedelta(minutes=15)
MAX_REQUESTS_PER_ADDRESS = 3
MAX_REQUESTS_PER_IP = 10
REQUEST_RETENTION = dt.timedelta(days=1)
ACCEPTED = "if that address has a Valdrix account, a link to reset its password is on its way"
RESET_PAGE_PATH = "/reset-password"


class ResetLinkInvalid(ProblemError):
    status, title = 400, "Reset link not valid"


async def request_reset(runtime: Runtime, *, email: str, ip: str | None) -> Mail | None:
    """Record the request and, for an address with a proven account, a new token (earlier ones
    end). Returns the mail to send after answering, or None; raises ``TooManyRequests`` past the
    limit for the address or the IP, whether or not the address has an account."""
    ip, now = ip or UNKNOWN_IP, utcnow()
    keyring = runtime.keyring
    email_index = keyring.blind_index(email)
    async with unit_of_work(runtime.sessions, None) as session:
        resets = PasswordResetRepository(session)
        since = now - REQUEST_WINDOW
        if (
            await resets.recent_requests(since, email_index=email_index) >= MAX_REQUESTS_PER_ADDRESS
            or await resets.recent_requests(since, ip=ip) >= MAX_REQUESTS_PER_IP
        ):
            log.warning("auth.password_reset.throttled", ip=ip)
            raise TooManyRequests(
                "too many password reset requests; wait a few minutes and try again",
                retry_after_seconds=int(REQUEST_WINDOW.total_seconds()),
            )
        await resets.prune(now - REQUEST_RETENTION)
        accounts = await UserRepository(session).accounts_for_email(keyring.blind_indexes(email))
        account = next((a for a in accounts if a.proven and not a.disabled), None)
        request = PasswordReset(email_index=email_index, ip=ip, requested_at=now)
        token = None
        if account is not None and runtime.settings.mail.enabled:
            await resets.supersede(account.user_id, now)
            token = new_token(RESET_TOKEN_PREFIX)
            request.user_id, request.token_hash = account.user_id, hash_token(token)
            request.expires_at = now + RESET_TTL
        elif account is not None:
            log.warning("auth.password_reset.no_mail")
        await resets.add(request)
    return None if token is None else _reset_mail(runtime, email, token)


async def deliver(runtime: Runtime, mail: Mail) -> None:
    """Send a reset mail after the answer went out. A failure is logged (``mail.failed``) and
    not shown: the answer must not differ by address, and the person may simply ask again."""
    with contextlib.suppress(MailNotSent):
        await send_mail(runtime.settings, mail, purpose="password_reset")


async def confirm_reset(runtime: Runtime, *, token: str, password: str) -> uuid.UUID:
    """Set the account's new password, use up the token and end the account's sessions in
    every tenant (each tenant's audit log says so). Returns the account's id.

    The password is set, with the first tenant's sessions ended, in one transaction; the other
    tenants' sessions end after it, each in its own (row-level security shows a session only to
    its tenant). A session opened in between needed the new password.
    """
    token_hash, now = hash_token(token), utcnow()
    async with unit_of_work(runtime.sessions, None) as session:
        user_id = await PasswordResetRepository(session).live_user(token_hash, now)
        tenants = [] if user_id is None else await _tenants_of(session, user_id)
    if user_id is None or not tenants:
        raise ResetLinkInvalid("this reset link is unknown, expired or already used")
    concurrency = runtime.settings.auth.password_hash_concurrency
    password_hash = await hash_password_off_loop(password, concurrency=concurrency)
    (first_tenant, first_role), *others = tenants
    async with unit_of_work(runtime.sessions, first_tenant) as session:
        if not await PasswordResetRepository(session).use(token_hash, user_id, now):
            raise ResetLinkInvalid("this reset link is unknown, expired or already used")
        user = await UserRepository(session).get(user_id)
        assert user is not None  # a member of this tenant: row-level security shows it
        user.password_hash = password_hash
        await _end_sessions(session, first_tenant, first_role, user_id, now)
    for tenant_id, role in others:
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            await _end_sessions(session, tenant_id, role, user_id, now)
    return user_id


async def _tenants_of(session: AsyncSession, user_id: uuid.UUID) -> list[tuple[uuid.UUID, Role]]:
    memberships = await MembershipRepository(session).tenants_of_user(user_id)
    return [(tenant_id, Role(role)) for tenant_id, role in memberships]


async def _end_sessions(
    session: AsyncSession, tenant_id: uuid.UUID, role: Role, user_id: uuid.UUID, now: dt.datetime
) -> None:
    await BrowserSessionRepository(session).revoke_for_user(user_id, now)
    actor = Principal(tenant_id, role, "session", str(user_id), user_id)
    await record_audit(session, actor, "auth.password_reset", target_type="user", target_id=user_id)


def _reset_mail(runtime: Runtime, email: str, token: str) -> Mail:
    base = link_base(runtime.settings)
    minutes = int(RESET_TTL.total_seconds() // 60)
    return Mail(
        to=email,
        subject="Reset your Valdrix password",
        body=(
            "Someone (we hope you) asked to reset the password of the Valdrix account of this"
            f" address. Choose a new password here (the link works once, for {minutes}"
            f" minutes):\n\n    {base}{RESET_PAGE_PATH}?token={token}\n\n"
            "Every signed-in session of the account ends when the password changes.\n\n"
            "If you did not ask, ignore this mail: your password stays as it is.\n"
        ),
    )
