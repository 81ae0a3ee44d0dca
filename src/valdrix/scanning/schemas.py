"""Request and response bodies of the scans and findings API."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    computed_field,
)

from valdrix.kit.money import PlainDecimal
from valdrix.scanning.imported import Sources
from valdrix.scanning.models import Finding, FindingStatus, ScanStatus
from valdrix.scanning.summary import SharedCost, WasteSummary


def _blank_as_none(value: object) -> object:
    """A form's empty field asks for no filter (the dashboard's GET form sends every field)."""
    return None if value == "" else value


Blank = BeforeValidator(_blank_as_none)


class FindingFilter(BaseModel):
    """Which findings a list or an export holds: the API's query and the dashboard's form."""

    model_config = ConfigDict(extra="ignore")

    status: Annotated[FindingStatus | None, Blank] = None
    provider: Annotated[Annotated[str, Field(max_length=16)] | None, Blank] = None
    account_id: Annotated[Annotated[str, Field(max_length=32)] | None, Blank] = None
    region: Annotated[Annotated[str, Field(max_length=32)] | None, Blank] = None
    detector: Annotated[Annotated[str, Field(max_length=64)] | None, Blank] = None
    connection_id: Annotated[uuid.UUID | None, Blank] = None
    min_monthly_cost_usd: Annotated[
        Annotated[Decimal, Field(ge=0, le=10**10)] | None,
        Blank,
        Field(description="Only findings costing at least this a month"),
    ] = None
    sort: Literal["monthly_cost_usd", "last_seen_at", "first_seen_at"] = "monthly_cost_usd"
    order: Literal["asc", "desc"] = "desc"

    def equal_to(self) -> dict[str, Any]:
        """The filters a finding's column must equal (None: any)."""
        return {
            "status": self.status.value if self.status else None,
            "provider": self.provider,
            "account_id": self.account_id,
            "region": self.region,
            "detector": self.detector,
            "connection_id": self.connection_id,
        }


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
    monthly_waste_usd: PlainDecimal = Field(
        description="Monthly cost of the scan's findings, each dollar counted once: "
        "`monthly_waste_gross_usd` less `monthly_waste_overlap_usd`"
    )
    monthly_waste_overlap_usd: PlainDecimal = Field(
        description="Money more than one finding prices (an instance's disks and the disks' own "
        "findings), beyond its one count"
    )

    @computed_field(description="The scan's findings' whole figures, summed")  # type: ignore[prop-decorator]
    @property
    def monthly_waste_gross_usd(self) -> PlainDecimal:
        return self.monthly_waste_usd + self.monthly_waste_overlap_usd


class ScanDetailOut(ScanOut):
    units: list[ScanUnitOut]
    unit_counts: dict[str, int]


class CostPartOut(BaseModel):
    component: str = Field(
        description="A named cost of a resource (e.g. everything a disk bills), as its detector "
        "names it"
    )
    resource_id: str = Field(description="The resource whose cost it is")
    monthly_usd: PlainDecimal


class SharedCostOut(BaseModel):
    """A cost this finding prices that another open finding prices too."""

    model_config = ConfigDict(from_attributes=True)

    component: str
    resource_id: str = Field(description="The resource whose cost it is")
    monthly_usd: PlainDecimal = Field(description="This finding's part of that cost")
    other_finding_id: uuid.UUID
    other_detector: str
    counted_under: uuid.UUID = Field(
        description="The finding totals count this cost under (the larger part; this finding's "
        "own id when it is this one)"
    )


class AlsoReportedOut(BaseModel):
    """A cloud's own recommendation about the resource, imported and shown with this finding."""

    model_config = ConfigDict(from_attributes=True)

    finding_id: uuid.UUID = Field(description="The imported finding (readable by id)")
    detector: str
    source: str = Field(description="Who recommends it, e.g. `AWS Compute Optimizer`")
    monthly_cost_usd: PlainDecimal | None = Field(
        description="The recommendation's estimated monthly saving in USD (null in another "
        "currency: see `currency`)"
    )
    cost_basis: str
    currency: str | None = Field(description="The currency the source gave its saving in")
    estimated_monthly_savings: str | None = Field(description="The saving as the source gave it")
    action: str | None
    recommended: Any = Field(description="The configuration the source recommends")
    reason: str


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
    cost_basis: str = Field(
        description="`list_price` (shipped catalog), `billed` (the tenant's bill), "
        "`recommendation` (the saving a cloud's own recommendation estimates) or `unknown`"
    )
    price_detail: dict[str, Any]
    evidence: dict[str, Any]
    tags: dict[str, str]
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    resolved_at: dt.datetime | None
    snoozed_until: dt.datetime | None
    status_note: str | None
    connection_id: uuid.UUID
    last_scan_id: uuid.UUID | None = Field(
        description="The last scan that saw it: its analysis is at /api/v1/scans/{id}/analysis"
    )
    cost_parts: list[CostPartOut] = Field(
        description="Parts of `monthly_cost_usd` other findings may price too"
    )
    shared_costs: list[SharedCostOut] = Field(
        default_factory=list,
        description="Costs this finding shares with other open findings (none once it is "
        "no longer open)",
    )
    counted_elsewhere_usd: PlainDecimal = Field(
        default=Decimal("0.00"),
        description="The part of `monthly_cost_usd` totals count under other findings",
    )
    also_reported_by: list[AlsoReportedOut] = Field(
        default_factory=list,
        description="Recommendations a cloud's own service (AWS Compute Optimizer, Cost "
        "Optimization Hub) makes for this finding's resource, imported and shown here instead "
        "of on their own; totals count the money once, at the larger figure",
    )
    shown_with: uuid.UUID | None = Field(
        default=None,
        description="For an imported recommendation: the Valdrix finding it is shown with "
        "(lists leave it out while that finding is open)",
    )

    @classmethod
    def of(
        cls, finding: Finding, shared: Sequence[SharedCost] = (), sources: Sources | None = None
    ) -> FindingOut:
        """The finding with the costs it shares (``summary.shared_costs``) and the
        recommendations shown with it (``imported.sources``)."""
        out = cls.model_validate(finding)
        if sources is not None:
            out.also_reported_by = [
                AlsoReportedOut.model_validate(one) for one in sources.also_reported_by
            ]
            out.shown_with = sources.shown_with
        out.shared_costs = [SharedCostOut.model_validate(cost) for cost in shared]
        out.counted_elsewhere_usd = sum(
            (cost.monthly_usd for cost in shared if cost.counted_under != finding.id),
            start=Decimal("0.00"),
        )
        return out


def _utc_unless_zoned(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class FindingPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: FindingStatus
    snoozed_until: Annotated[dt.datetime, AfterValidator(_utc_unless_zoned)] | None = Field(
        default=None, description="When the snooze ends; UTC unless it names a zone"
    )
    note: str | None = Field(default=None, max_length=1000)


class FindingBulkPatch(FindingPatch):
    """Every finding a filter lists changed as PATCH /api/v1/findings/{id} changes one."""

    filter: FindingFilter = Field(
        description="Which findings: the list's filters (GET /api/v1/findings), every page"
    )


class FindingsChangedOut(BaseModel):
    changed: int = Field(description="How many findings were changed")


class FindingCountOut(BaseModel):
    count: int = Field(description="How many findings the list holds, every page")


class FindingHistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    created_at: dt.datetime
    from_status: str | None
    to_status: str
    actor: str
    note: str | None
    scan_id: uuid.UUID | None


class WasteSummaryRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    provider: str
    detector: str
    open_findings: int
    monthly_usd: PlainDecimal = Field(description="Its open findings' whole figures, summed")
    counted_elsewhere_usd: PlainDecimal = Field(
        description="The part of `monthly_usd` the total counts under other findings"
    )
    counted_usd: PlainDecimal = Field(description="What the detector adds to the total")


class WasteOverlapRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    detector: str
    counted_under: str = Field(description="The detector whose findings carry those costs")
    parts: int = Field(description="How many costs of `detector`'s findings are counted there")
    monthly_usd: PlainDecimal


class WasteSummaryOut(BaseModel):
    total_monthly_usd: PlainDecimal = Field(
        description="Monthly cost of the open findings, each dollar counted once: "
        "`gross_monthly_usd` less `overlap_monthly_usd`"
    )
    gross_monthly_usd: PlainDecimal = Field(description="The open findings' figures, summed")
    overlap_monthly_usd: PlainDecimal = Field(
        description="Money more than one open finding prices, beyond its one count"
    )
    open_findings: int
    by_detector: list[WasteSummaryRow]
    by_provider: dict[str, Decimal] = Field(description="Each provider's total, counted once")
    open_findings_by_provider: dict[str, int] = Field(
        description="Each provider's open findings, counted"
    )
    overlaps: list[WasteOverlapRow] = Field(
        description="Which detectors' findings price the same money, and how much is counted "
        "under which"
    )

    @classmethod
    def of(cls, summary: WasteSummary) -> WasteSummaryOut:
        return cls(
            total_monthly_usd=summary.monthly_usd,
            gross_monthly_usd=summary.gross_usd,
            overlap_monthly_usd=summary.overlap_usd,
            open_findings=summary.open_findings,
            by_detector=[WasteSummaryRow.model_validate(row) for row in summary.by_detector],
            by_provider=summary.by_provider,
            open_findings_by_provider=summary.open_findings_by_provider,
            overlaps=[WasteOverlapRow.model_validate(row) for row in summary.overlaps],
        )


class OpenWasteDayOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: dt.date
    open_findings: int = Field(description="Findings open at the end of the day (UTC)")
    monthly_usd: PlainDecimal = Field(
        description="Their monthly figures as they stand now, summed with each dollar counted "
        "once, as the summary's `total_monthly_usd` (today's point is that total)"
    )
