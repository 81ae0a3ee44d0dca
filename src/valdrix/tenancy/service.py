"""Tenants and their members. Services flush; the caller's boundary commits."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from dataclasses import dataclass

from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.config import Settings
from valdrix.errors import Conflict, Forbidden, InvalidInput, NotFound
from valdrix.kit.crypto import KeyRing, hash_token, new_token
from valdrix.kit.db import current_tenant_id
from valdrix.kit.orm import utcnow
from valdrix.mail import Mail, link_base, send_mail
from valdrix.tenancy.audit import record_audit
from valdrix.tenancy.auth import Principal
from valdrix.tenancy.models import InviteDelivery, Membership, Role, Tenant, Tier, User
from valdrix.tenancy.passwords import hash_password
from valdrix.tenancy.repository import (
    ApiKeyRepository,
    BrowserSessionRepository,
    MemberRow,
    MembershipRepository,
    TenantRepository,
    UserRepository,
)

INVITE_TTL = dt.timedelta(days=7)
# The dashboard's page for accepting an invitation (the mail links to it).
ACCEPT_INVITE_PAGE_PATH = "/accept-invite"
INVITE_TOKEN_PREFIX = "vdxinv_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True)
class AddedMember:
    row: MemberRow
    invite_token: str | None  # for the inviter only when no mail is configured


def system_principal(tenant_id: uuid.UUID, actor: str = "cli") -> Principal:
    """The operator acting through the CLI: full rights on exactly one tenant."""
    return Principal(tenant_id=tenant_id, role=Role.owner, kind="cli", actor_id=actor)


async def create_tenant(
    session: AsyncSession,
    settings: Settings,
    keyring: KeyRing,
    *,
    tenant_id: uuid.UUID,
    name: str,
    tier: Tier,
    owner_email: str,
    owner_password: str | None = None,
) -> tuple[Tenant, AddedMember]:
    """Create a tenant and its first owner. The session must be bound to ``tenant_id``.

    The owner is invited like anyone else (the token mailed, or returned to the operator), so an
    address that already has an account anywhere joins only by accepting. With
    ``owner_password`` (the demo, tests) the operator instead creates a new account bound to this
    tenant: it never touches an account that exists elsewhere.
    """
    if current_tenant_id.get() != tenant_id:
        raise RuntimeError("create_tenant needs a transaction bound to the new tenant id")
    if not name.strip():
        raise InvalidInput("tenant name must not be empty")
    owner_email = checked_email(owner_email)
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
    if owner_password is None:
        owner = await invite_member(
            session, actor, settings, keyring, email=owner_email, role=Role.owner
        )
    else:
        owner = await _add_bound_account(
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


async def invite_member(
    session: AsyncSession,
    actor: Principal,
    settings: Settings,
    keyring: KeyRing,
    *,
    email: str,
    role: Role,
) -> AddedMember:
    """Invite an address. Nothing about any account is read or changed, so the answer is the
    same whether the address has an account anywhere or not.

    With mail configured the token goes only to the address (accepting it proves the address);
    without, it is returned to the inviter, and an account it creates stays bound to this tenant.
    """
    _check_may_assign(actor, role)
    email = checked_email(email)
    indexes = keyring.blind_indexes(email)
    memberships = MembershipRepository(session)
    # Row-level security limits both lookups to this tenant's own people.
    if await memberships.pending_for_email(indexes) or await memberships.active_for_email(indexes):
        raise Conflict("this person is already a member or has a pending invitation")
    delivery = InviteDelivery.mail if settings.mail.enabled else InviteDelivery.inviter
    token = new_token(INVITE_TOKEN_PREFIX)
    membership = await memberships.add(
        Membership(
            tenant_id=actor.tenant_id,
            role=role.value,
            invite_email=email,
            invite_email_index=keyring.blind_index(email),
            invite_delivery=delivery.value,
            invite_token_hash=hash_token(token),
            invite_expires_at=utcnow() + INVITE_TTL,
        )
    )
    await record_audit(
        session,
        actor,
        "member.invite",
        target_type="membership",
        target_id=membership.id,
        details={"role": role.value, "delivery": delivery.value},
    )
    if delivery is InviteDelivery.mail:
        tenant = await get_tenant(session, actor)
        await send_mail(
            settings,
            _invitation_mail(settings, email, tenant.name, role, token),
            purpose="invitation",
        )
        return AddedMember(MemberRow(membership, None), None)
    return AddedMember(MemberRow(membership, None), token)


_EMAIL = TypeAdapter(EmailStr)


def checked_email(email: str) -> str:
    """The address as the API's own validation accepts it (the CLI passes raw text)."""
    try:
        return str(_EMAIL.validate_python(email.strip()))
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise InvalidInput(f"email: {email!r} is not an email address ({reason})") from exc


def _invitation_mail(
    settings: Settings, email: str, tenant_name: str, role: Role, token: str
) -> Mail:
    base = link_base(settings)
    # The name is the tenant's own text: one line, so it can never add a mail header.
    tenant_name = " ".join(tenant_name.split())
    return Mail(
        to=email,
        subject=f"You are invited to {tenant_name} on Valdrix",
        body=(
            f"You have been invited to join {tenant_name} on Valdrix as {role.value}.\n\n"
            f"Accept it here (the link is valid for {INVITE_TTL.days} days) and choose a"
            f" password:\n\n    {base}{ACCEPT_INVITE_PAGE_PATH}?token={token}\n\n"
            " If you already have a Valdrix account under this address, use its existing"
            f" password. The API takes the same token at {base}/api/v1/auth/accept-invite."
            "\n\nIf you did not expect this, ignore this mail: nothing happens without you.\n"
        ),
    )


async def _add_bound_account(
    session: AsyncSession,
    actor: Principal,
    keyring: KeyRing,
    *,
    email: str,
    role: Role,
    password: str,
) -> AddedMember:
    """Operator path: a new account with a password, bound to this tenant, active at once."""
    email = checked_email(email)
    user = await UserRepository(session).add(
        User(
            email=email,
            email_index=keyring.blind_index(email),
            password_hash=hash_password(password),
            home_tenant_id=actor.tenant_id,
        )
    )
    membership = await MembershipRepository(session).add(
        Membership(
            tenant_id=actor.tenant_id, user_id=user.id, role=role.value, accepted_at=utcnow()
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
    return AddedMember(MemberRow(membership, user), None)


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
    user = await UserRepository(session).get(membership.user_id) if membership.user_id else None
    return MemberRow(membership, user)


async def remove_member(session: AsyncSession, actor: Principal, membership_id: uuid.UUID) -> None:
    """Remove a member (or withdraw an invitation). Their sessions here end and the API keys
    they created here are revoked; the account itself stays (other tenants may hold it, and the
    keys and audit log still name it) but reaches nothing here."""
    memberships = MembershipRepository(session)
    membership = await _get_membership(session, membership_id)
    _check_may_assign(actor, Role(membership.role))
    if membership.role == Role.owner and membership.accepted_at is not None:
        await _keep_an_owner(memberships)
    revoked: list[uuid.UUID] = []
    user_id = membership.user_id
    if user_id is not None:
        now = utcnow()
        await BrowserSessionRepository(session).revoke_for_user(user_id, now)
        revoked = await ApiKeyRepository(session).revoke_created_by(user_id, now)
    await memberships.delete(membership)
    await record_audit(
        session,
        actor,
        "member.remove",
        target_type="membership",
        target_id=membership_id,
        details={"revoked_api_keys": [str(key_id) for key_id in revoked]},
    )


async def _get_membership(session: AsyncSession, membership_id: uuid.UUID) -> Membership:
    membership = await MembershipRepository(session).get(membership_id)
    if membership is None:
        raise NotFound("member not found")
    return membership


def may_assign(actor: Principal, role: Role) -> bool:
    """Nobody grants, or touches someone holding, a role above their own; owners need owners."""
    return actor.role.at_least(role) and (role != Role.owner or actor.role == Role.owner)


def _check_may_assign(actor: Principal, role: Role) -> None:
    if not may_assign(actor, role):
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
