"""What findings add up to, each dollar counted once (``scanning.overlaps``): a scan's total, the
waste summary of open findings by detector and provider, and the costs a finding shares with
other findings."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.scanning.findings import end_expired_snoozes
from valdrix.scanning.models import Finding, FindingStatus
from valdrix.scanning.overlaps import Claim, CountedUnder, counted_under_others
from valdrix.scanning.registry import load_all_detectors
from valdrix.scanning.repository import ClaimedPart, FindingRepository
from valdrix.tenancy.auth import Principal

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class DetectorWaste:
    provider: str
    detector: str
    open_findings: int
    # Its open findings' whole figures, summed.
    monthly_usd: Decimal
    # The parts of those figures that totals count under other findings.
    counted_elsewhere_usd: Decimal

    @property
    def counted_usd(self) -> Decimal:
        """What the detector adds to the total."""
        return self.monthly_usd - self.counted_elsewhere_usd


@dataclass(frozen=True)
class DetectorOverlap:
    """Parts of ``detector``'s findings counted under ``counted_under``'s findings."""

    detector: str
    counted_under: str
    parts: int
    monthly_usd: Decimal


@dataclass(frozen=True)
class WasteSummary:
    by_detector: list[DetectorWaste]
    overlaps: list[DetectorOverlap]

    @property
    def open_findings(self) -> int:
        return sum(row.open_findings for row in self.by_detector)

    @property
    def gross_usd(self) -> Decimal:
        """Every open finding's whole figure, summed."""
        return sum((row.monthly_usd for row in self.by_detector), start=ZERO)

    @property
    def overlap_usd(self) -> Decimal:
        """What more than one finding prices, beyond its one count."""
        return sum((row.counted_elsewhere_usd for row in self.by_detector), start=ZERO)

    @property
    def monthly_usd(self) -> Decimal:
        """The total: each dollar counted once."""
        return self.gross_usd - self.overlap_usd

    @property
    def by_provider(self) -> dict[str, Decimal]:
        """Each provider's total, each dollar counted once."""
        totals: dict[str, Decimal] = {}
        for row in self.by_detector:
            totals[row.provider] = totals.get(row.provider, ZERO) + row.counted_usd
        return totals

    @property
    def open_findings_by_provider(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.by_detector:
            counts[row.provider] = counts.get(row.provider, 0) + row.open_findings
        return counts


async def waste_summary(session: AsyncSession, actor: Principal) -> WasteSummary:
    """Open findings and their monthly dollars by detector; the parts counted under other
    findings, by the pair of detectors involved."""
    await end_expired_snoozes(session)
    repository = FindingRepository(session)
    rows = await repository.summary()
    overlaps = [
        DetectorOverlap(detector, carrier, parts, usd)
        for detector, carrier, parts, usd in await repository.open_counted_elsewhere(_importers())
    ]
    elsewhere: defaultdict[str, Decimal] = defaultdict(lambda: ZERO)
    for overlap in overlaps:
        elsewhere[overlap.detector] += overlap.monthly_usd
    return WasteSummary(
        by_detector=[
            DetectorWaste(provider, detector, count, usd, elsewhere[detector])
            for provider, detector, count, usd in rows
        ],
        overlaps=overlaps,
    )


@dataclass(frozen=True)
class SharedCost:
    """A cost one finding prices (``monthly_usd``, its part) that another open finding prices
    too; totals count it under ``counted_under`` (the one of the two with the larger part)."""

    component: str
    resource_id: str
    monthly_usd: Decimal
    other_finding_id: uuid.UUID
    other_detector: str
    counted_under: uuid.UUID


async def shared_costs(
    session: AsyncSession, actor: Principal, findings: Sequence[Finding]
) -> dict[uuid.UUID, list[SharedCost]]:
    """For each of ``findings`` that is open, the costs it shares with other open findings."""
    resource_ids = {
        part["resource_id"]
        for finding in findings
        if finding.status == FindingStatus.open.value
        for part in finding.cost_parts
    }
    if not resource_ids:
        return {}
    shared: defaultdict[uuid.UUID, list[SharedCost]] = defaultdict(list)
    parts = await FindingRepository(session).open_cost_parts(resource_ids)
    for left in _counted_under_others(parts):
        claim, carrier = left.claim, left.carrier
        shared[claim.finding].append(
            SharedCost(
                claim.component,
                claim.resource_id,
                claim.monthly_usd,
                carrier.finding,
                carrier.detector,
                carrier.finding,
            )
        )
        shared[carrier.finding].append(
            SharedCost(
                carrier.component,
                carrier.resource_id,
                carrier.monthly_usd,
                claim.finding,
                claim.detector,
                carrier.finding,
            )
        )
    wanted = {finding.id for finding in findings}
    return {finding_id: costs for finding_id, costs in shared.items() if finding_id in wanted}


async def scan_overlap_usd(session: AsyncSession, scan_id: uuid.UUID) -> Decimal:
    """The money more than one of the findings a scan saw prices (whatever their status since),
    beyond its one count: what the scan's total leaves out of its findings' figures."""
    return _overlap_usd(await FindingRepository(session).scan_cost_parts(scan_id))


async def overlap_usd_among(session: AsyncSession, finding_ids: Select[uuid.UUID]) -> Decimal:
    """The money more than one of the selected findings prices, beyond its one count."""
    return _overlap_usd(await FindingRepository(session).cost_parts_among(finding_ids))


def _overlap_usd(parts: list[ClaimedPart]) -> Decimal:
    return sum((left.claim.monthly_usd for left in _counted_under_others(parts)), start=ZERO)


def _importers() -> set[str]:
    return {d.key for d in load_all_detectors() if d.imports_from}


def _counted_under_others(parts: list[ClaimedPart]) -> list[CountedUnder]:
    importers = _importers()
    claims = [
        Claim(
            finding=part.finding_id,
            detector=part.detector,
            place=(part.provider, part.account_id, part.region),
            component=part.component,
            resource_id=part.resource_id,
            monthly_usd=part.monthly_usd,
            own=part.own,
            imported=part.detector in importers,
        )
        for part in parts
    ]
    return counted_under_others(claims)
