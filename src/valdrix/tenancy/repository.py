"""SQL for the tenancy domain. Reads run under the caller's tenant context (RLS), except the
resolver functions, which are the one audited cross-tenant path and return only ids."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import LargeBinary, Row, Table, delete, func, select, text, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from valdrix.kit.repository import Repository
from valdrix.tenancy.models import (
    ApiKey,
    AuditEvent,
    BrowserSession,
    LoginAttempt,
    Membership,
    PasswordReset,
    Tenant,
    User,
)


class TenantRepository(Repository[Tenant]):
    model = Tenant

    async def all_tenant_ids(self) -> list[uuid.UUID]:
        """Every tenant id, through the resolver function (for operator commands)."""
        rows = await self.session.execute(text("SELECT * FROM valdrix_tenant_ids()"))
        return [row[0] for row in rows]


@dataclass(frozen=True)
class Account:
    """An account as login and acceptance see it, found by address across tenants."""

    user_id: uuid.UUID
    password_hash: str | None
    proven: bool
    home_tenant_id: uuid.UUID | None
    disabled: bool


class UserRepository(Repository[User]):
    """Row-level security shows only the current tenant's members (and accounts bound to it)."""

    model = User

    async def get_by_email_indexes(self, indexes: Sequence[bytes]) -> User | None:
        result: User | None = await self.session.scalar(
            select(User)
            .where(User.email_index.in_(indexes))
            .order_by(User.proven_at.is_(None), User.created_at)
            .limit(1)
        )
        return result

    async def accounts_for_email(self, indexes: Sequence[bytes]) -> list[Account]:
        """Every account of an address in any tenant, proven first (through the resolver)."""
        rows = await self.session.execute(
            text(
                "SELECT user_id, password_hash, proven, home_tenant_id, disabled"
                " FROM valdrix_accounts_for_email(:indexes)"
            ),
            {"indexes": list(indexes)},
        )
        return [Account(*row) for row in rows]


@dataclass(frozen=True)
class MemberRow:
    """A member, or a pending invitation (no account attached yet: ``user`` is None)."""

    membership: Membership
    user: User | None

    @property
    def email(self) -> str:
        return self.user.email if self.user else (self.membership.invite_email or "")


class MembershipRepository(Repository[Membership]):
    model = Membership

    async def list_with_users(self) -> list[MemberRow]:
        rows = await self.session.execute(
            select(Membership, User)
            .outerjoin(User, User.id == Membership.user_id)
            .order_by(Membership.created_at, Membership.id)
        )
        return [MemberRow(membership, user) for membership, user in rows.all()]

    async def get_for_user(self, user_id: uuid.UUID) -> Membership | None:
        result: Membership | None = await self.session.scalar(
            select(Membership).where(Membership.user_id == user_id)
        )
        return result

    async def get_active_for_user(self, user_id: uuid.UUID) -> Membership | None:
        """The membership that lets this person act: accepted, and the person not disabled."""
        result: Membership | None = await self.session.scalar(
            select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.user_id == user_id,
                Membership.accepted_at.is_not(None),
                User.disabled_at.is_(None),
            )
        )
        return result

    async def pending_for_email(self, indexes: Sequence[bytes]) -> Membership | None:
        result: Membership | None = await self.session.scalar(
            select(Membership).where(Membership.invite_email_index.in_(indexes)).limit(1)
        )
        return result

    async def active_for_email(self, indexes: Sequence[bytes]) -> Membership | None:
        result: Membership | None = await self.session.scalar(
            select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(User.email_index.in_(indexes))
            .limit(1)
        )
        return result

    async def count_owners(self) -> int:
        """Owners who can act; an invited owner does not count until they accept."""
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(Membership)
                .where(Membership.role == "owner", Membership.accepted_at.is_not(None))
            )
            or 0
        )

    async def tenants_of_user(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        rows = await self.session.execute(
            text("SELECT tenant_id, role FROM valdrix_user_memberships(:user_id)"),
            {"user_id": user_id},
        )
        return [(row[0], row[1]) for row in rows]

    async def resolve_invite(self, token_hash: bytes) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(membership id, tenant id) of a live invitation."""
        row = (
            await self.session.execute(
                text("SELECT membership_id, tenant_id FROM valdrix_resolve_invite(:hash)"),
                {"hash": token_hash},
            )
        ).first()
        return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class ResolvedApiKey:
    api_key_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey

    async def resolve(self, key_hash: bytes) -> ResolvedApiKey | None:
        row = (
            await self.session.execute(
                text("SELECT api_key_id, tenant_id, role FROM valdrix_resolve_api_key(:hash)"),
                {"hash": key_hash},
            )
        ).first()
        return ResolvedApiKey(row[0], row[1], row[2]) if row else None

    async def revoke_created_by(self, user_id: uuid.UUID, now: dt.datetime) -> list[uuid.UUID]:
        revoked = await self.session.scalars(
            update(ApiKey)
            .where(ApiKey.created_by_user_id == user_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(ApiKey.id)
        )
        return list(revoked)

    async def touch(self, api_key_id: uuid.UUID, now: dt.datetime, *, every: dt.timedelta) -> None:
        """Record use, at most once per ``every`` so busy keys do not write on each request."""
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == api_key_id)
            .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - every))
            .values(last_used_at=now)
        )


@dataclass(frozen=True)
class ResolvedSession:
    session_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID


class BrowserSessionRepository(Repository[BrowserSession]):
    model = BrowserSession

    async def resolve(self, token_hash: bytes) -> ResolvedSession | None:
        row = (
            await self.session.execute(
                text("SELECT session_id, tenant_id, user_id FROM valdrix_resolve_session(:hash)"),
                {"hash": token_hash},
            )
        ).first()
        return ResolvedSession(row[0], row[1], row[2]) if row else None

    async def revoke_for_user(self, user_id: uuid.UUID, now: dt.datetime) -> None:
        await self.session.execute(
            update(BrowserSession)
            .where(BrowserSession.user_id == user_id, BrowserSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )


class AuditRepository(Repository[AuditEvent]):
    model = AuditEvent

    async def page(self, *, before_id: int | None, limit: int) -> list[AuditEvent]:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AuditEvent.id < before_id)
        return list(await self.session.scalars(query))


class LoginAttemptRepository(Repository[LoginAttempt]):
    model = LoginAttempt

    async def recent_failures(self, ip: str, email_index: bytes, since: dt.datetime) -> int:
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(LoginAttempt)
                .where(
                    LoginAttempt.ip == ip,
                    LoginAttempt.email_index == email_index,
                    LoginAttempt.attempted_at >= since,
                )
            )
            or 0
        )

    async def recent_failures_from_ip(self, ip: str, since: dt.datetime) -> int:
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(LoginAttempt)
                .where(LoginAttempt.ip == ip, LoginAttempt.attempted_at >= since)
            )
            or 0
        )

    async def clear(self, ip: str, email_index: bytes, older_than: dt.datetime) -> None:
        """Forget this pair's failures, and everyone's failures older than ``older_than``."""
        await self.session.execute(
            delete(LoginAttempt).where(
                ((LoginAttempt.ip == ip) & (LoginAttempt.email_index == email_index))
                | (LoginAttempt.attempted_at < older_than)
            )
        )

    async def prune(self, older_than: dt.datetime) -> None:
        await self.session.execute(
            delete(LoginAttempt).where(LoginAttempt.attempted_at < older_than)
        )


class PasswordResetRepository(Repository[PasswordReset]):
    model = PasswordReset

    async def recent_requests(
        self, since: dt.datetime, *, email_index: bytes | None = None, ip: str | None = None
    ) -> int:
        """Requests since ``since`` for one address, or from one client IP."""
        query = select(func.count()).select_from(PasswordReset)
        query = query.where(PasswordReset.requested_at >= since)
        if email_index is not None:
            query = query.where(PasswordReset.email_index == email_index)
        if ip is not None:
            query = query.where(PasswordReset.ip == ip)
        return int(await self.session.scalar(query) or 0)

    async def supersede(self, user_id: uuid.UUID, now: dt.datetime) -> None:
        """End the account's earlier links: only the newest mail works."""
        await self.session.execute(
            update(PasswordReset)
            .where(
                PasswordReset.user_id == user_id,
                PasswordReset.used_at.is_(None),
                PasswordReset.expires_at > now,
            )
            .values(expires_at=now)
        )

    async def live_user(self, token_hash: bytes, now: dt.datetime) -> uuid.UUID | None:
        """The account a token resets, while it is unused and unexpired."""
        result: uuid.UUID | None = await self.session.scalar(
            select(PasswordReset.user_id).where(
                PasswordReset.token_hash == token_hash,
                PasswordReset.used_at.is_(None),
                PasswordReset.expires_at > now,
            )
        )
        return result

    async def use(self, token_hash: bytes, user_id: uuid.UUID, now: dt.datetime) -> bool:
        """Mark the token used. One statement, so of two uses at once under READ COMMITTED the
        second re-reads the row after the first commits, sees ``used_at`` set and updates
        nothing: a token works once."""
        used = await self.session.scalar(
            update(PasswordReset)
            .where(
                PasswordReset.token_hash == token_hash,
                PasswordReset.user_id == user_id,
                PasswordReset.used_at.is_(None),
                PasswordReset.expires_at > now,
            )
            .values(used_at=now)
            .returning(PasswordReset.id)
        )
        return used is not None

    async def prune(self, older_than: dt.datetime) -> None:
        await self.session.execute(
            delete(PasswordReset).where(PasswordReset.requested_at < older_than)
        )


@dataclass(frozen=True)
class TokensTaken:
    """What the rate-limit buckets gave: ``granted`` tokens, or none, which bucket was empty
    (``credential`` or ``tenant``) and how long until it holds one."""

    granted: int
    limited_by: str | None
    wait_seconds: float


class RequestBucketRepository:
    """The rate limits' token buckets (``valdrix_take_request_tokens``, migration 0018), on a
    connection in autocommit: the function sets the tenant for its own statements, so taking
    tokens is one round trip and holds the buckets' rows no longer than that."""

    def __init__(self, connection: AsyncConnection | AsyncSession) -> None:
        self.connection = connection

    async def take(
        self,
        tenant_id: uuid.UUID,
        subject: str,
        *,
        want: int,
        credential: tuple[float, int],
        tenant: tuple[float, int],
    ) -> TokensTaken:
        """Up to ``want`` tokens from the credential's bucket and the tenant's together, each
        given as (refill per second, burst)."""
        row = (
            await self.connection.execute(
                text(
                    "SELECT granted, limited_by, wait_seconds FROM valdrix_take_request_tokens("
                    ":tenant_id, :subject, :want, :credential_rate, :credential_burst,"
                    " :tenant_rate, :tenant_burst)"
                ),
                {
                    "tenant_id": tenant_id,
                    "subject": subject,
                    "want": want,
                    "credential_rate": credential[0],
                    "credential_burst": credential[1],
                    "tenant_rate": tenant[0],
                    "tenant_burst": tenant[1],
                },
            )
        ).one()
        return TokensTaken(row.granted, row.limited_by, row.wait_seconds)

    async def prune(self, before: dt.datetime) -> int:
        """Every tenant's buckets last refilled before ``before``: how many were deleted."""
        pruned = await self.connection.execute(
            text("SELECT valdrix_prune_request_buckets(:before)"), {"before": before}
        )
        return int(pruned.scalar_one())


class CiphertextRepository:
    """The stored ciphertexts of any table's encrypted columns, for key rotation."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, table: Table, columns: Sequence[str], *, after: uuid.UUID | None, limit: int
    ) -> Sequence[Row[Any]]:
        """Up to ``limit`` rows by id after ``after``: the id and each column's bytes as stored
        (not decrypted)."""
        raw = [type_coerce(table.c[name], LargeBinary).label(name) for name in columns]
        query = select(table.c.id, *raw).order_by(table.c.id).limit(limit)
        if after is not None:
            query = query.where(table.c.id > after)
        return (await self.session.execute(query)).all()

    async def rewrite(self, table: Table, row_id: uuid.UUID, values: dict[str, Any]) -> None:
        """Set ``values`` on one row (encrypted columns are encrypted on bind)."""
        await self.session.execute(update(table).where(table.c.id == row_id).values(**values))
