"""Tenants, users, memberships, API keys, browser sessions and the audit log."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql import func

from valdrix.kit.orm import Base, CreatedAtMixin, EncryptedString, IdMixin, utcnow


class Tier(enum.StrEnum):
    free = "free"
    starter = "starter"
    growth = "growth"
    pro = "pro"
    enterprise = "enterprise"


class Role(enum.StrEnum):
    """Membership and API-key roles, each including every power of the roles below it."""

    viewer = "viewer"
    member = "member"
    admin = "admin"
    owner = "owner"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


def _in(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Tenant(IdMixin, CreatedAtMixin, Base):
    """A customer. Row-level security keys this table on ``id`` rather than ``tenant_id``."""

    __tablename__ = "tenants"
    __table_args__ = (CheckConstraint(_in("tier", Tier), name="tier"),)

    name: Mapped[str] = mapped_column(EncryptedString)
    tier: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")


class User(IdMixin, CreatedAtMixin, Base):
    """An account. A *proven* one (its address received a secret by mail) may belong to several
    tenants; any other is bound to the one tenant whose invitation created it. Row-level security
    shows a tenant only its own members."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("(proven_at IS NULL) <> (home_tenant_id IS NULL)", name="proven_or_bound"),
        # One proven account per address; bound accounts are unique within their tenant.
        Index(
            "uq_users_proven_email",
            "email_index",
            unique=True,
            postgresql_where=text("home_tenant_id IS NULL"),
        ),
        Index(
            "uq_users_bound_email",
            "home_tenant_id",
            "email_index",
            unique=True,
            postgresql_where=text("home_tenant_id IS NOT NULL"),
        ),
    )

    email: Mapped[str] = mapped_column(EncryptedString, info={"blind_index": "email_index"})
    email_index: Mapped[bytes] = mapped_column(LargeBinary, index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    proven_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    home_tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE")
    )


class InviteDelivery(enum.StrEnum):
    mail = "mail"  # the token went to the invited address: accepting proves it
    inviter = "inviter"  # the token went back to the inviter (no mail configured): proves nothing


class Membership(IdMixin, CreatedAtMixin, Base):
    """A person in a tenant, or a pending invitation of an address (no account attached yet)."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", name="uq_memberships_tenant_user"),
        UniqueConstraint(
            "tenant_id", "invite_email_index", name="uq_memberships_tenant_invite_email"
        ),
        CheckConstraint(_in("role", Role), name="role"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    invite_email: Mapped[str | None] = mapped_column(
        EncryptedString, info={"blind_index": "invite_email_index"}
    )
    invite_email_index: Mapped[bytes | None] = mapped_column(LargeBinary)
    invite_delivery: Mapped[str | None] = mapped_column(String(16))
    invite_token_hash: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)
    invite_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(_in("role", Role), name="role"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class BrowserSession(IdMixin, CreatedAtMixin, Base):
    """A dashboard login: cookie token and CSRF token are stored only as hashes."""

    __tablename__ = "browser_sessions"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    csrf_token_hash: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(400))


class AuditEvent(CreatedAtMixin, Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    # What the API shows: random, so ids say nothing about other tenants' activity.
    public_id: Mapped[uuid.UUID] = mapped_column(
        unique=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(INET)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")


class LoginAttempt(Base):
    """Failed logins per (IP, email) and per IP for throttling; global because the tenant is not
    yet known."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_lookup", "ip", "email_index", "attempted_at"),
        Index("ix_login_attempts_ip", "ip", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    ip: Mapped[str] = mapped_column(INET)
    email_index: Mapped[bytes] = mapped_column(LargeBinary)
    attempted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PasswordReset(Base):
    """A request to reset a password: every request is a row (the per-address and per-IP limit
    counts them), and a request for an address with an account also holds the mailed token's
    hash. Global, like ``login_attempts``: the tenant is not known, and the rows hold only ids,
    hashes, an IP and times."""

    __tablename__ = "password_resets"
    __table_args__ = (
        Index("ix_password_resets_email", "email_index", "requested_at"),
        Index("ix_password_resets_ip", "ip", "requested_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    email_index: Mapped[bytes] = mapped_column(LargeBinary)
    ip: Mapped[str] = mapped_column(INET)
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class RequestBucket(Base):
    """A token bucket of the API rate limits (``tenancy/rate_limits.py``): the tenant's own
    (subject ``tenant``) and one per credential (``api_key:<id>``, ``user:<id>``). Unlogged: a
    crash empties the table and every bucket starts full again, which is what a limit that
    only smooths load can afford; no write of it waits for the WAL."""

    __tablename__ = "request_buckets"
    __table_args__ = ({"prefixes": ["UNLOGGED"]},)

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double)
    refilled_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
