"""A tenant's cloud connection: for AWS, a role Valdrix assumes with its own external id."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from valdrix.kit.orm import Base, CreatedAtMixin, EncryptedString, IdMixin


class CloudConnection(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "cloud_connections"
    # A disabled connection gives its name back.
    __table_args__ = (
        Index(
            "uq_cloud_connections_active_name",
            "tenant_id",
            "name",
            unique=True,
            postgresql_where=text("disabled_at IS NULL"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    role_arn: Mapped[str] = mapped_column(String(2048))
    external_id: Mapped[str] = mapped_column(EncryptedString)
    account_id: Mapped[str | None] = mapped_column(String(32))
    regions: Mapped[list[str] | None] = mapped_column(ARRAY(String(32)))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    status_reason: Mapped[str | None] = mapped_column(String(500))
    last_verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Per-detector threshold overrides: {"aws.ec2-idle": {"cpu_percent": 5}}
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    # Tenant tag rules that exclude resources: [{"key": "env", "value": "sandbox"}]
    tag_exclusions: Mapped[list[dict[str, str]]] = mapped_column(
        JSONB, default=list, server_default="[]"
    )
    # Where the account's FOCUS data exports land (s3://bucket/prefix/), pulled daily.
    focus_export_uri: Mapped[str | None] = mapped_column(String(1024))
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
