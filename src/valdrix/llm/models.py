"""The per-tenant LLM budget ledger (all tenant tables).

``llm_budgets`` holds one row per tenant: its limits (null means the tier's default) and running
counters for the current UTC day and month. Every reservation changes those counters in the same
statement that checks them, so concurrent calls serialise on the row and never overshoot.
``llm_reservations`` is the per-call record (estimate, actual cost, outcome); ``llm_alerts`` holds
spend spikes.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from valdrix.kit.orm import Base, CreatedAtMixin, IdMixin

USD = Numeric(16, 8)  # sub-cent precision: one small call costs fractions of a cent


class ReservationState(enum.StrEnum):
    reserved = "reserved"
    settled = "settled"
    released = "released"
    expired = "expired"


class LlmBudget(Base):
    __tablename__ = "llm_budgets"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    daily_cap_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    monthly_limit_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    day: Mapped[dt.date] = mapped_column(Date)
    day_settled_usd: Mapped[Decimal] = mapped_column(USD, default=0, server_default="0")
    day_reserved_usd: Mapped[Decimal] = mapped_column(USD, default=0, server_default="0")
    month: Mapped[dt.date] = mapped_column(Date)
    month_settled_usd: Mapped[Decimal] = mapped_column(USD, default=0, server_default="0")
    month_reserved_usd: Mapped[Decimal] = mapped_column(USD, default=0, server_default="0")
    spike_alerted_on: Mapped[dt.date | None] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    updated_by: Mapped[str | None] = mapped_column(String(64))


class LlmReservation(IdMixin, Base):
    __tablename__ = "llm_reservations"
    __table_args__ = (
        Index("ix_llm_reservations_tenant_day", "tenant_id", "day"),
        Index(
            "ix_llm_reservations_open",
            "expires_at",
            postgresql_where=text("state = 'reserved'"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[uuid.UUID | None]
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    estimate_usd: Mapped[Decimal] = mapped_column(USD)
    cost_usd: Mapped[Decimal | None] = mapped_column(USD)
    state: Mapped[str] = mapped_column(String(16))
    day: Mapped[dt.date] = mapped_column(Date)
    month: Mapped[dt.date] = mapped_column(Date)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    usage_reported: Mapped[bool | None] = mapped_column(Boolean)
    reserved_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class LlmAlert(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "llm_alerts"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "day", name="uq_llm_alerts_day"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    day: Mapped[dt.date] = mapped_column(Date)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
