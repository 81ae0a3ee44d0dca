"""API keys: shown once, stored as a hash, scoped to one tenant and a role, revocable."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.errors import Forbidden, InvalidInput, NotFound
from valdrix.kit.crypto import hash_token, new_token
from valdrix.kit.orm import utcnow
from valdrix.tenancy.audit import record_audit
from valdrix.tenancy.auth import API_KEY_PREFIX, Principal
from valdrix.tenancy.models import ApiKey, Role
from valdrix.tenancy.repository import ApiKeyRepository

DISPLAY_PREFIX_LENGTH = 12


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    secret: str


async def create_api_key(
    session: AsyncSession,
    actor: Principal,
    *,
    name: str,
    role: Role,
    expires_in_days: int | None = None,
) -> IssuedApiKey:
    if not actor.role.at_least(role):
        raise Forbidden(f"you cannot create a key with more rights ({role.value}) than your own")
    if not name.strip():
        raise InvalidInput("name must not be empty")
    if expires_in_days is not None and expires_in_days <= 0:
        raise InvalidInput("expires_in_days must be positive")
    secret = new_token(API_KEY_PREFIX)
    api_key = await ApiKeyRepository(session).add(
        ApiKey(
            tenant_id=actor.tenant_id,
            name=name.strip(),
            prefix=secret[:DISPLAY_PREFIX_LENGTH],
            key_hash=hash_token(secret),
            role=role.value,
            created_by_user_id=actor.user_id,
            expires_at=utcnow() + dt.timedelta(days=expires_in_days) if expires_in_days else None,
        )
    )
    await record_audit(
        session,
        actor,
        "api_key.create",
        target_type="api_key",
        target_id=api_key.id,
        details={"role": role.value, "name": api_key.name},
    )
    return IssuedApiKey(api_key, secret)


async def list_api_keys(session: AsyncSession, actor: Principal) -> list[ApiKey]:
    return await ApiKeyRepository(session).list_all(ApiKey.created_at.desc(), ApiKey.id)


async def revoke_api_key(session: AsyncSession, actor: Principal, api_key_id: uuid.UUID) -> ApiKey:
    api_key = await ApiKeyRepository(session).get(api_key_id)
    if api_key is None:
        raise NotFound("API key not found")
    if not actor.role.at_least(Role(api_key.role)):
        raise Forbidden("you cannot revoke a key with more rights than your own")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        await session.flush()
        await record_audit(
            session, actor, "api_key.revoke", target_type="api_key", target_id=api_key.id
        )
    return api_key
