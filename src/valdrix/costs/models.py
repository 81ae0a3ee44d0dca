"""Cost tables (all tenant tables).

``cost_records`` holds daily-grain cost lines (one per day, account, service, region, resource,
charge category ... per source), ``cost_daily`` their roll-up without resources and tags,
which answers most reads, and ``cost_resource_days`` their billed cost per resource and day
(findings' billed prices). All three are partitioned by month of ``day``: a partition per month is
created (with its row-level security) by ``valdrix_ensure_cost_partitions`` when data for that
month first arrives. ``cost_monthly`` rolls ``cost_daily`` up once more, by month, for reads
that do not group by day (kept by each import in its own transaction). Every import is a
``cost_runs`` row; each committed run's totals per (day, service, account) are kept in
``cost_readings``, and significant changes between readings in ``cost_adjustments``.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Date,
    DateTime,
    ForeignKey,
    FromClause,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from valdrix.kit.orm import Base, CreatedAtMixin, IdMixin

MONEY = Numeric(24, 10)
# A month's sum of up to 31 days, each of which fits MONEY (the import checks days only).
MONTH_MONEY = Numeric(28, 10)
QUANTITY = Numeric(28, 10)
SOURCE_KEY_CHARS = 300


class SourceKind(enum.StrEnum):
    focus_file = "focus_file"
    aws_cost_explorer = "aws_cost_explorer"


class RunStatus(enum.StrEnum):
    committed = "committed"
    rejected = "rejected"
    failed = "failed"


class CostSource(IdMixin, CreatedAtMixin, Base):
    """Where cost data comes from: one FOCUS export stream, or one connection's Cost Explorer.
    A newer run of the same source replaces the window it covers."""

    __tablename__ = "cost_sources"
    __table_args__ = (UniqueConstraint("tenant_id", "key", name="uq_cost_sources_key"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(SOURCE_KEY_CHARS))
    connection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cloud_connections.id", ondelete="SET NULL")
    )


class CostRun(IdMixin, Base):
    """One import (a reconciliation run): what it read, accepted or rejected, and its totals."""

    __tablename__ = "cost_runs"
    __table_args__ = (Index("ix_cost_runs_tenant_started", "tenant_id", "started_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cost_sources.id", ondelete="CASCADE")
    )
    source_kind: Mapped[str] = mapped_column(String(32))
    source_key: Mapped[str | None] = mapped_column(String(SOURCE_KEY_CHARS))
    status: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[dt.date | None] = mapped_column(Date)
    window_end: Mapped[dt.date | None] = mapped_column(Date)
    rows_read: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    records_written: Mapped[int] = mapped_column(BigInteger, default=0)
    # SHA-256 of the records a committed run stored (see ``reconcile``).
    records_fingerprint: Mapped[str | None] = mapped_column(String(64))
    totals: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    adjustments: Mapped[int] = mapped_column(Integer, default=0)
    actor: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


def _cost_columns(*, tenant_key: bool = True, money: Numeric[Decimal] = MONEY) -> list[Column[Any]]:
    """The columns records and their roll-ups share; ``tenant_key=False`` for the records,
    whose tenant the policy alone checks (see migration 0010)."""
    tenant = [ForeignKey("tenants.id", ondelete="CASCADE")] if tenant_key else []
    return [
        Column("tenant_id", Uuid, *tenant, nullable=False),
        Column("day", Date, nullable=False),
        Column("source_id", Uuid, nullable=False),
        Column("run_id", Uuid, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("provider", String(100), nullable=False),
        Column("billing_account_id", String(100), nullable=False),
        Column("sub_account_id", String(100)),
        Column("service", String(200), nullable=False),
        Column("region", String(64)),
        Column("charge_category", String(16), nullable=False),
        # The period the charge is billed in (a correction may be billed after its day).
        Column("billing_period_start", Date, nullable=False),
        # Set for FOCUS data: preliminary rows turn final once it is far enough in the past.
        Column("billing_period_end", Date),
        Column("preliminary", Boolean, nullable=False),
        Column("billed_cost", money, nullable=False),
        Column("effective_cost", money, nullable=False),
        Column("list_cost", money),
    ]


cost_records = Table(
    "cost_records",
    Base.metadata,
    *_cost_columns(tenant_key=False),
    Column("service_category", String(64)),
    Column("charge_class", String(16)),
    Column("resource_id", Text),
    # The resource's own id (the last part of an ARN or Azure resource path), matched to findings.
    Column("resource_key", String(256)),
    Column("resource_type", String(100)),
    Column("pricing_unit", String(100)),
    Column("contracted_cost", MONEY),
    Column("pricing_quantity", QUANTITY),
    Column("consumed_quantity", QUANTITY),
    Column("tags", JSONB),
    Column("source_rows", Integer, nullable=False),
    # One index for replacing and reading a tenant's records (see migration 0011).
    Index(
        "ix_cost_records_source_period_day",
        "tenant_id",
        "source_id",
        "billing_period_start",
        "day",
    ),
    postgresql_partition_by="RANGE (day)",
)

# The records' billed cost per resource and day, for pricing findings from the bill (see
# migration 0021): the resource look-ups read this, so the records need no resource index.
cost_resource_days = Table(
    "cost_resource_days",
    Base.metadata,
    Column("tenant_id", Uuid, nullable=False),
    Column("day", Date, nullable=False),
    Column("source_id", Uuid, nullable=False),
    Column("billing_period_start", Date, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("billing_account_id", String(100), nullable=False),
    Column("sub_account_id", String(100)),
    Column("resource_key", String(256), nullable=False),
    Column("billed_cost", MONEY, nullable=False),
    Index(
        "ix_cost_resource_days_source_period_day",
        "tenant_id",
        "source_id",
        "billing_period_start",
        "day",
    ),
    Index("ix_cost_resource_days_resource", "tenant_id", "resource_key", "day"),
    postgresql_partition_by="RANGE (day)",
)

cost_daily = Table(
    "cost_daily",
    Base.metadata,
    *_cost_columns(),
    Index("ix_cost_daily_tenant_day", "tenant_id", "day"),
    Index("ix_cost_daily_source_day", "tenant_id", "source_id", "day"),
    Index("ix_cost_daily_source_period", "tenant_id", "source_id", "billing_period_start"),
    postgresql_partition_by="RANGE (day)",
)


cost_monthly = Table(
    "cost_monthly",
    Base.metadata,
    *(column for column in _cost_columns(money=MONTH_MONEY) if column.name != "day"),
    # The first day of the month the sums are of (``day`` in cost_daily's other columns' place).
    Column("month", Date, nullable=False),
    Index("ix_cost_monthly_tenant_month", "tenant_id", "month"),
    Index("ix_cost_monthly_source_month", "tenant_id", "source_id", "month"),
    Index("ix_cost_monthly_period", "tenant_id", "billing_period_start"),
)


def first_of_next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def charged_account(table: Table | FromClause) -> ColumnElement[str]:
    """The account charges belong to: the sub-account (AWS linked account, Azure subscription,
    GCP project), else the billing account."""
    return func.coalesce(table.c.sub_account_id, table.c.billing_account_id)


class CostReading(Base):
    """A run's total for one (billing period, day, service, account, currency) of its source."""

    __tablename__ = "cost_readings"
    __table_args__ = (
        Index(
            "ix_cost_readings_key",
            "tenant_id",
            "source_id",
            "billing_period_start",
            "day",
            "service",
            "account",
        ),
        Index("ix_cost_readings_day", "tenant_id", "day"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cost_sources.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cost_runs.id", ondelete="CASCADE"))
    billing_period_start: Mapped[dt.date] = mapped_column(Date)
    day: Mapped[dt.date] = mapped_column(Date)
    service: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    billed_cost: Mapped[Decimal] = mapped_column(MONEY)
    effective_cost: Mapped[Decimal] = mapped_column(MONEY)
    preliminary: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CostAdjustment(IdMixin, CreatedAtMixin, Base):
    """A reading that moved more than the threshold since the previous reading of its key."""

    __tablename__ = "cost_adjustments"
    __table_args__ = (Index("ix_cost_adjustments_tenant_created", "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cost_sources.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cost_runs.id", ondelete="CASCADE"))
    previous_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cost_runs.id", ondelete="SET NULL")
    )
    day: Mapped[dt.date] = mapped_column(Date)
    service: Mapped[str] = mapped_column(String(200))
    account: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    old_billed_cost: Mapped[Decimal] = mapped_column(MONEY)
    new_billed_cost: Mapped[Decimal] = mapped_column(MONEY)
    change_percent: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    old_preliminary: Mapped[bool] = mapped_column(Boolean)
    new_preliminary: Mapped[bool] = mapped_column(Boolean)


class CostDataVersion(Base):
    """Bumped by every committed run: the ETag of every cost read."""

    __tablename__ = "cost_data_versions"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
