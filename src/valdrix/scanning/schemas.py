"""Request and response bodies of the scans and findings API."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from valdrix.kit.money import PlainDecimal
from valdrix.scanning.models import FindingStatus, ScanStatus


class ScanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection_id: uuid.UUID


class ScanUnitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    region: str
    detector: str
    status: str
    reason: str | None
    findings_count: int
    started_at: dt.datetime
    finished_at: dt.datetime


class ScanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    connection_id: uuid.UUID
    trigger: str
    status: ScanStatus
    status_reason: str | None
    regions: list[str]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    resources_seen: int
    findings_count: int
    monthly_waste_usd: PlainDecimal


class ScanDetailOut(ScanOut):
    units: list[ScanUnitOut]
    unit_counts: dict[str, int]


class FindingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    detector: str
    provider: str
    account_id: str
    region: str
    resource_id: str
    resource_type: str
    resource_name: str | None
    reason: str
    status: FindingStatus
    monthly_cost_usd: PlainDecimal | None
    cost_basis: str = Field(description="`list_price` (shipped catalog) or `unknown`")
    price_detail: dict[str, Any]
    evidence: dict[str, Any]
    tags: dict[str, str]
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    resolved_at: dt.datetime | None
    snoozed_until: dt.datetime | None
    status_note: str | None
    connection_id: uuid.UUID


class FindingPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: FindingStatus
    snoozed_until: dt.datetime | None = None
    note: str | None = Field(default=None, max_length=1000)


class FindingHistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    created_at: dt.datetime
    from_status: str | None
    to_status: str
    actor: str
    note: str | None
    scan_id: uuid.UUID | None


class WasteSummaryRow(BaseModel):
    provider: str
    detector: str
    open_findings: int
    monthly_usd: PlainDecimal


class WasteSummaryOut(BaseModel):
    total_monthly_usd: PlainDecimal
    open_findings: int
    by_detector: list[WasteSummaryRow]
    by_provider: dict[str, Decimal]
