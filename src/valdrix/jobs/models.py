"""Schedules (what is due when) and job runs (what tenants may see of their jobs)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from valdrix.kit.orm import Base, CreatedAtMixin, IdMixin


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    retrying = "retrying"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class Schedule(IdMixin, CreatedAtMixin, Base):
    """Recurring work for one target (e.g. a scan of one cloud connection)."""

    __tablename__ = "schedules"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "target_id", name="uq_schedules_target"),
        Index("ix_schedules_due", "next_due_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[uuid.UUID]
    next_due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_enqueued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    enabled: Mapped[bool] = mapped_column(default=True, server_default="true")


class JobRun(IdMixin, CreatedAtMixin, Base):
    """The tenant-visible mirror of one procrastinate job (procrastinate's tables are global)."""

    __tablename__ = "job_runs"
    __table_args__ = (
        Index("ix_job_runs_tenant_created", "tenant_id", "created_at"),
        Index("ix_job_runs_tenant_status", "tenant_id", "status"),
        Index("ix_job_runs_queued_due", "due_at", postgresql_where=text("status = 'queued'")),
        # Recent failures per tenant, for /metrics (see migration 0014).
        Index(
            "ix_job_runs_failed_finished",
            "finished_at",
            postgresql_where=text("status = 'failed'"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    procrastinate_job_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    task_name: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[uuid.UUID | None]
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    error_summary: Mapped[str | None] = mapped_column(Text)
