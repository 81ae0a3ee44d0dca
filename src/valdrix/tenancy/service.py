"""Tenants and their members. Services flush; the caller's boundary commits."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.errors import Conflict, Forbidden, InvalidInput, NotFound
from valdrix.kit.crypto import KeyRing, hash_token, new_token
from valdrix.kit.db import current_tenant_id
from valdrix.kit.orm import utcnow
from valdrix.tenancy.audit import record_audit
from valdrix.tenancy.auth import Principal
from valdrix.tenancy.models import Membership, Role, Tenant, Tier, User
from valdrix.tenancy.passwords import hash_password
from valdrix.tenancy.repository import (
    BrowserSessionRepository,
    MemberRow,
    MembershipRepository,
    TenantRepository,
    UserRepository,
)

INVITE_TTL = dt.timedelta(days=7)
INVITE_TOKEN_PREFIX = "vdxinv_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True)
class AddedMember:
    row: MemberRow
    invite_token: str | None


def system_principal(tenant_id: uuid.UUID, actor: str = "cli") -> Principal:
    """The operator acting through the CLI: full rights on exactly one tenant."""
    return Principal(tenant_id=tenant_id, role=Role.owner, kind="cli", actor_id=actor)


async def create_tenant(
    session: AsyncSession,
    keyring: KeyRing,
    *,
    tenant_id: uuid.UUID,
    name: str,
    tier: Tier,
    owner_email: str,
    owner_password: str | None = None,
) -> tuple[Tenant, AddedMember]:
    """Create a tenant and its first owner. The session must be bound to ``tenant_id``."""
    if current_tenant_id.get() != tenant_id:
        raise RuntimeError("create_tenant needs a transaction bound to the new tenant id")
    if not name.strip():
        raise InvalidInput("tenant name must not be empty")
    tenant = await TenantRepository(session).add(
        Tenant(id=tenant_id, name=name.strip(), tier=tier.value)
    )
    actor = system_principal(tenant_id)
    await record_audit(
        session,
        actor,
        "tenant.create",
        target_type="tenant",
        target_id=tenant_id,
        details={"tier": tier.value},
    )
    owner = await add_member(
        session, actor, keyring, email=owner_email, role=Role.owner, password=owner_password
    )
    return tenant, owner


async def update_tenant(
    session: AsyncSession, actor: Principal, *, name: str | None, timezone: str | None
) -> Tenant:
    tenant = await get_tenant(session, actor)
    changed: list[str] = []
    if name is not None:
        if not name.strip():
            raise InvalidInput("name must not be empty")
        tenant.name = name.strip()
        changed.append("name")
    if timezone is not None:
        if timezone not in zoneinfo.available_timezones():
            raise InvalidInput(f"timezone '{timezone}' is not an IANA time zone")
        tenant.timezone = timezone
        changed.append("timezone")
    await session.flush()
    await record_audit(
        session,
        actor,
        "tenant.update",
        target_type="tenant",
        target_id=tenant.id,
        details={"fields": changed},
    )
    return tenant


async def get_tenant(session: AsyncSession, actor: Principal) -> Tenant:
    tenant = await TenantRepository(session).get(actor.tenant_id)
    if tenant is None:
        raise NotFound("tenant not found")
    return tenant


async def list_members(session: AsyncSession, actor: Principal) -> list[MemberRow]:
    return await MembershipRepository(session).list_with_users()


async def add_member(
    session: AsyncSession,
    actor: Principal,
    keyring: KeyRing,
    *,
    email: str,
    role: Role,
    password: str | None = None,
) -> AddedMember:
    """Add a person to the tenant. New people get an invitation token to set their password."""
    _check_may_assign(actor, role)
    users = UserRepository(session)
    user = await users.get_by_email_indexes(keyring.blind_indexes(email))
    now = utcnow()
    if user is None:
        user = await users.add(
            User(
                email=email.strip(),
                email_index=keyring.blind_index(email),
                password_hash=hash_password(password) if password else None,
            )
        )
    elif await MembershipRepository(session).get_for_user(user.id) is not None:
        raise Conflict("this person is already a member")
    invite_token = None if user.password_hash else new_token(INVITE_TOKEN_PREFIX)
    membership = await MembershipRepository(session).add(
        Membership(
            tenant_id=actor.tenant_id,
            user_id=user.id,
            role=role.value,
            accepted_at=None if invite_token else now,
            invite_token_hash=hash_token(invite_token) if invite_token else None,
            invite_expires_at=now + INVITE_TTL if invite_token else None,
        )
    )
    await record_audit(
        session,
        actor,
        "member.add",
        target_type="membership",
        target_id=membership.id,
        details={"role": role.value},
    )
    return AddedMember(MemberRow(membership, user), invite_token)


async def change_member_role(
    session: AsyncSession, actor: Principal, membership_id: uuid.UUID, *, role: Role
) -> MemberRow:
    memberships = MembershipRepository(session)
    membership = await _get_membership(session, membership_id)
    _check_may_assign(actor, Role(membership.role))
    _check_may_assign(actor, role)
    if membership.role == Role.owner and role != Role.owner:
        await _keep_an_owner(memberships)
    old_role, membership.role = membership.role, role.value
    await session.flush()
    await record_audit(
        session,
        actor,
        "member.role_change",
        target_type="membership",
        target_id=membership.id,
        details={"from": old_role, "to": role.value},
    )
    user = await UserRepository(session).get(membership.user_id)
    assert user is not None
    return MemberRow(membership, user)


async def remove_member(session: AsyncSession, actor: Principal, membership_id: uuid.UUID) -> None:
    memberships = MembershipRepository(session)
    membership = await _get_membership(session, membership_id)
    _check_may_assign(actor, Role(membership.role))
    if membership.role == Role.owner:
        await _keep_an_owner(memberships)
    await BrowserSessionRepository(session).revoke_for_user(membership.user_id, utcnow())
    await memberships.delete(membership)
    await record_audit(
        session, actor, "member.remove", target_type="membership", target_id=membership_id
    )


async def _get_membership(session: AsyncSession, membership_id: uuid.UUID) -> Membership:
    membership = await MembershipRepository(session).get(membership_id)
    if membership is None:
        raise NotFound("member not found")
    return membership


def _check_may_assign(actor: Principal, role: Role) -> None:
    """Nobody grants, or touches someone holding, a role above their own; owners need owners."""
    if not actor.role.at_least(role) or (role == Role.owner and actor.role != Role.owner):
        raise Forbidden(
            f"only an {max(role, Role.admin, key=lambda r: r.rank).value}"
            f" or above may manage the {role.value} role"
        )


async def _keep_an_owner(memberships: MembershipRepository) -> None:
    if await memberships.count_owners() <= 1:
        raise Conflict("a tenant must keep at least one owner")


async def set_password(
    session: AsyncSession, keyring: KeyRing, *, email: str, password: str
) -> User:
    """Operator path (the demo): give an existing person a new password."""
    user = await UserRepository(session).get_by_email_indexes(keyring.blind_indexes(email))
    if user is None:
        raise NotFound(f"no user with email {email}")
    user.password_hash = hash_password(password)
    await session.flush()
    return user
