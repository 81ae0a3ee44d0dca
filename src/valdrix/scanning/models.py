"""Scans, their units and events, and the findings they produce (all tenant tables)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from valdrix.kit.orm import Base, CreatedAtMixin, IdMixin


class ScanStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    partial = "partial"
    timed_out = "timed_out"
    failed = "failed"
    # Its worker stopped and no job will run it again (ended by the sweeper, with the reason).
    interrupted = "interrupted"


FINISHED_SCAN_STATUSES = frozenset(
    {
        ScanStatus.completed,
        ScanStatus.partial,
        ScanStatus.timed_out,
        ScanStatus.failed,
        ScanStatus.interrupted,
    }
)


class UnitStatus(enum.StrEnum):
    ok = "ok"
    timed_out = "timed_out"
    denied = "denied"
    failed = "failed"
    # Nothing to judge, through nobody's fault (a service the account has not turned on); the
    # reason says what.
    skipped = "skipped"


class FindingStatus(enum.StrEnum):
    open = "open"
    snoozed = "snoozed"
    dismissed = "dismissed"
    resolved = "resolved"


class Scan(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "scans"
    __table_args__ = (
        Index("ix_scans_tenant_created", "tenant_id", "created_at"),
        # The sweeper's look for orphaned scans (see migration 0012).
        Index(
            "ix_scans_unfinished",
            "status",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cloud_connections.id", ondelete="CASCADE"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ScanStatus.queued.value)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    regions: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resources_seen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    findings_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Counted once: the findings' figures summed, less ``monthly_waste_overlap_usd``, the money
    # more than one finding prices (``scanning.overlaps``).
    monthly_waste_usd: Mapped[Decimal] = mapped_column(
        Numeric(14, 2), default=Decimal("0"), server_default="0"
    )
    monthly_waste_overlap_usd: Mapped[Decimal] = mapped_column(
        Numeric(14, 2), default=Decimal("0"), server_default="0"
    )
    # The job running the scan (procrastinate's id): a retry of it resumes this scan, and the
    # sweeper ends the scan once that job will not run again.
    job_id: Mapped[int | None] = mapped_column(BigInteger)


class ScanUnit(IdMixin, Base):
    """One (region x detector) piece of a scan, with its own outcome."""

    __tablename__ = "scan_units"
    __table_args__ = (UniqueConstraint("scan_id", "region", "detector", name="uq_scan_units_unit"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    scan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    region: Mapped[str] = mapped_column(String(32))
    detector: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    findings_count: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ScanEvent(Base):
    """What happened during a scan, in order, so a late SSE client can be replayed everything."""

    __tablename__ = "scan_events"
    __table_args__ = (Index("ix_scan_events_scan_seq", "scan_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    scan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Finding(IdMixin, Base):
    """A wasteful resource, tracked across scans by its fingerprint."""

    __tablename__ = "findings"
    __table_args__ = (
        UniqueConstraint("tenant_id", "fingerprint", name="uq_findings_fingerprint"),
        Index("ix_findings_connection_region", "connection_id", "region", "detector"),
        Index("ix_findings_tenant_detector_region", "tenant_id", "detector", "region"),
        # The findings whose figures may be shared, read by totals (migration 0020).
        Index(
            "ix_findings_with_cost_parts",
            "tenant_id",
            "status",
            postgresql_where=text("has_cost_parts"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cloud_connections.id", ondelete="CASCADE")
    )
    provider: Mapped[str] = mapped_column(String(16))
    account_id: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    detector: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(512))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_name: Mapped[str | None] = mapped_column(String(512))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=FindingStatus.open.value)
    monthly_cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    cost_basis: Mapped[str] = mapped_column(String(16))
    price_detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # The parts of its figure other findings may price too (``base.CostPart.as_json``).
    cost_parts: Mapped[list[dict[str, str]]] = mapped_column(
        JSONB, default=list, server_default="[]"
    )
    # Whether ``cost_parts`` names any: a column (not the expression) so that an index serves
    # the app role under row-level security (jsonb operators are not leakproof).
    has_cost_parts: Mapped[bool] = mapped_column(
        Boolean, Computed("cost_parts <> '[]'::jsonb", persisted=True)
    )
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    tags: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_scan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("scans.id", ondelete="SET NULL")
    )
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    snoozed_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    status_note: Mapped[str | None] = mapped_column(String(1000))


# The list's orders (migrations 0020 and 0022): highest cost first, of a status and of every
# status, and last seen first; declared after the class because their orderings are expressions
# of the columns.
Index(
    "ix_findings_tenant_status_cost_order",
    Finding.tenant_id,
    Finding.status,
    Finding.monthly_cost_usd.desc().nulls_last(),
    Finding.id,
    postgresql_include=["provider", "detector"],
)
Index(
    "ix_findings_tenant_cost_order",
    Finding.tenant_id,
    Finding.monthly_cost_usd.desc().nulls_last(),
    Finding.id,
)
Index(
    "ix_findings_tenant_status_seen_order",
    Finding.tenant_id,
    Finding.status,
    Finding.last_seen_at.desc().nulls_last(),
    Finding.id,
)


class FindingCostPart(Base):
    """One part of a finding's figure (an element of ``Finding.cost_parts``) as a row, with
    what the reads of shared costs ask of its finding (place, detector, status).

    Written only by the trigger on ``findings`` (migration 0024), so that every write of a
    finding keeps it, whichever path makes it. Why a table: the hidden imported
    recommendations and the summary's count-each-dollar-once ranking expanded every finding's
    jsonb on each ask; jsonb operators cannot use an index under row-level security (they are
    not leakproof), these plain columns can."""

    __tablename__ = "finding_cost_parts"
    __table_args__ = (
        # The open findings' claims, by the cost they are on: the parts a page's findings
        # share (by resource), those an imported recommendation's part is matched to (a probe
        # each), and every open part for the summary's ranking.
        Index(
            "ix_finding_cost_parts_open_cost",
            "tenant_id",
            "resource_id",
            "component",
            "provider",
            "account_id",
            "region",
            postgresql_where=text("status = 'open'"),
        ),
        # The parts of one detector's findings (the imported recommendations').
        Index("ix_finding_cost_parts_tenant_detector", "tenant_id", "detector"),
    )

    finding_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True
    )
    # The part's place in ``cost_parts`` (from 1).
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # Collated "C", the columns a cost's parts are grouped and ranked by: the summary sorts the
    # open parts by them, and byte order sorts several times faster than the database's
    # language collation; equality is the same in both.
    provider: Mapped[str] = mapped_column(String(16, collation="C"))
    account_id: Mapped[str] = mapped_column(String(32, collation="C"))
    region: Mapped[str] = mapped_column(String(32, collation="C"))
    detector: Mapped[str] = mapped_column(String(64, collation="C"))
    status: Mapped[str] = mapped_column(String(16))
    # Text, as in the jsonb: no length a finding's write could exceed.
    component: Mapped[str] = mapped_column(Text(collation="C"))
    resource_id: Mapped[str] = mapped_column(Text(collation="C"))
    monthly_usd: Mapped[Decimal] = mapped_column(Numeric)
    # The cost is of the finding's own resource (``overlaps.Claim.own``).
    own: Mapped[bool] = mapped_column(Boolean)


class FindingHistory(CreatedAtMixin, Base):
    """Every change of a finding's status (and who or what made it)."""

    __tablename__ = "finding_history"
    __table_args__ = (Index("ix_finding_history_finding", "finding_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    finding_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(1000))
    scan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("scans.id", ondelete="SET NULL"))
