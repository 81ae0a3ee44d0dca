"""Request and response bodies of the connections API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from valdrix.connections.providers.aws import ROLE_ARN_SHAPE, account_of_role


class AwsSetupOut(BaseModel):
    external_id: str = Field(description="Use it in the role's trust policy and when registering")
    valdrix_principal_arn: str | None = Field(
        description="The identity your role must trust (null: ask your Valdrix operator)"
    )
    required_permissions: list[str]
    iam_policy: dict[str, Any]
    trust_policy: dict[str, Any] | None
    cloudformation_template: dict[str, Any]
    cloudformation_quick_create_url: str | None = Field(
        description="The CloudFormation console's quick-create page for the role, every parameter"
        " filled in (null: the operator has not published the template; upload"
        " cloudformation_template instead)"
    )


class TagRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=128)
    value: str | None = Field(default=None, max_length=256, description="null matches any value")


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["aws"] = "aws"
    name: str = Field(min_length=1, max_length=200)
    role_arn: str = Field(min_length=20, max_length=2048)
    external_id: str = Field(min_length=8, max_length=128)
    regions: list[str] | None = Field(
        default=None, description="Allow-list; null scans every region the account has enabled"
    )
    thresholds: dict[str, dict[str, Any]] = Field(default_factory=dict)
    tag_exclusions: list[TagRule] = Field(default_factory=list)
    focus_export_uri: str | None = Field(
        default=None,
        max_length=1024,
        description="s3://<bucket>/<prefix>/ where the account's FOCUS data exports land;"
        " pulled daily (null: none)",
    )

    @field_validator("role_arn")
    @classmethod
    def _role_arn_shape(cls, value: str) -> str:
        if account_of_role(value) is None:
            raise ValueError(f"must look like {ROLE_ARN_SHAPE}, with no spaces or line breaks")
        return value


class ConnectionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    regions: list[str] | None = None
    thresholds: dict[str, dict[str, Any]] | None = None
    tag_exclusions: list[TagRule] | None = None
    focus_export_uri: str | None = Field(
        default=None,
        max_length=1024,
        description="s3://<bucket>/<prefix>/ where the account's FOCUS data exports land;"
        " pulled daily (null: stop pulling)",
    )


class ConnectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    provider: str
    name: str
    role_arn: str
    account_id: str | None
    regions: list[str] | None
    status: str
    status_reason: str | None
    last_verified_at: dt.datetime | None
    thresholds: dict[str, dict[str, Any]]
    tag_exclusions: list[TagRule]
    focus_export_uri: str | None
    created_at: dt.datetime
    disabled_at: dt.datetime | None = Field(description="When it was disabled (null: active)")


class VerifyOut(BaseModel):
    ok: bool
    account_id: str | None
    reason: str | None
