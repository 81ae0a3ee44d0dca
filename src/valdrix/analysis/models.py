"""One analysis per scan (tenant table)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, Numeric, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from valdrix.kit.orm import Base, CreatedAtMixin, IdMixin


class AnalysisStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    ready = "ready"
    skipped_budget = "skipped_budget"
    provider_unavailable = "provider_unavailable"
    failed = "failed"
    disabled = "disabled"


class ScanAnalysis(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "scan_analyses"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    scan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("scans.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(String(1000))
    # The last good result, kept while a later attempt runs or is skipped; and when it came.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    result_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    provider: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(200))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(16, 8), default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
