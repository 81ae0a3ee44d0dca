"""Request and response bodies of the tenancy API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, IPvAnyAddress, field_validator

from valdrix.tenancy.models import Role, Tier


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    tier: Tier
    timezone: str
    created_at: dt.datetime


class TenantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)


class MemberOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID | None = Field(description="The account, once the invitation is accepted")
    email: str
    role: Role
    status: str = Field(description="`active`, or `invited` until the invitation is accepted")
    created_at: dt.datetime


class MemberInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    role: Role = Role.member


class MemberInvited(MemberOut):
    invite_token: str | None = Field(
        description="Only when no mail is configured (otherwise it goes to the invited address"
        " alone): shown once, for the invitee to accept at /api/v1/auth/accept-invite"
    )


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Something visible, and (as all text) no NUL.
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
    role: Role = Role.viewer
    expires_in_days: int | None = Field(default=None, gt=0, le=3650)

    @field_validator("expires_in_days", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        # JSON true is no number of days (lax mode would read it as 1).
        if isinstance(value, bool):
            raise ValueError("must be a number of days, not true or false")
        return value


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    role: Role
    created_by_user_id: uuid.UUID | None = Field(
        description="The person who made the key (none for operator keys); the key works only"
        " while they are an active member, with at most their role"
    )
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class ApiKeyIssued(ApiKeyOut):
    key: str = Field(description="Shown once; Valdrix keeps only a hash")


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(validation_alias="public_id")
    created_at: dt.datetime
    actor_type: str
    actor_id: str | None
    action: str
    target_type: str | None
    target_id: str | None
    request_id: str | None
    ip: IPvAnyAddress | None
    details: dict[str, Any]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)
    tenant_id: uuid.UUID | None = None


class TenantChoice(BaseModel):
    tenant_id: uuid.UUID
    role: Role


class LoginOut(BaseModel):
    tenant_id: uuid.UUID
    role: Role
    expires_at: dt.datetime
    csrf_token: str = Field(description="Send as X-CSRF-Token on POST/PATCH/PUT/DELETE")
    tenants: list[TenantChoice]


class AcceptInviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=8, max_length=200)
    password: str = Field(
        min_length=12,
        max_length=1024,
        description="A new password; or, if the address already has a Valdrix account in another"
        " tenant, that account's existing password",
    )


class PasswordResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr


class PasswordResetAccepted(BaseModel):
    detail: str = Field(
        description="The same answer for every address, whether or not it has an account"
    )


class PasswordResetConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=8, max_length=200)
    password: str = Field(min_length=12, max_length=1024, description="The new password")


class WhoAmI(BaseModel):
    tenant_id: uuid.UUID
    role: Role
    kind: str
    actor_id: str
