"""Findings imported from a cloud's own recommendation services (``Detector.imports_from``),
shown once with Valdrix's own.

When one of Valdrix's own findings prices the same cost of a resource as an imported
recommendation (they share a cost part, ``scanning.overlaps``), the two are one finding to
whoever reads them: lists show Valdrix's, which names the recommendation under
``also_reported_by``, and the imported one, still readable by id, says which finding it is
``shown_with``. Totals already count that money once, at the larger of the two figures.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.scanning.models import Finding
from valdrix.scanning.registry import load_all_detectors
from valdrix.scanning.repository import FindingRepository
from valdrix.scanning.summary import SharedCost


def importing_detectors() -> dict[str, str]:
    """The key of every detector that imports a cloud's recommendations, with its source."""
    return {d.key: d.imports_from for d in load_all_detectors() if d.imports_from}


@dataclass(frozen=True)
class AlsoReported:
    """An imported recommendation about a resource a Valdrix finding prices."""

    finding_id: uuid.UUID
    detector: str
    source: str
    monthly_cost_usd: Decimal | None
    cost_basis: str
    currency: str | None
    estimated_monthly_savings: str | None
    action: str | None
    recommended: Any
    reason: str


@dataclass
class Sources:
    also_reported_by: list[AlsoReported] = field(default_factory=list)
    # For an imported finding: the Valdrix finding it is shown with.
    shown_with: uuid.UUID | None = None


async def sources(
    session: AsyncSession,
    findings: Sequence[Finding],
    shared: dict[uuid.UUID, list[SharedCost]],
) -> dict[uuid.UUID, Sources]:
    """For each of ``findings`` (with the costs it shares with other open findings, from
    ``summary.shared_costs``): the recommendations shown with it, or the finding it is shown
    with."""
    importers = importing_detectors()
    answer: defaultdict[uuid.UUID, Sources] = defaultdict(Sources)
    wanted: set[uuid.UUID] = set()
    for finding in findings:
        for cost in shared.get(finding.id, []):
            ours = finding.detector not in importers
            if ours and cost.other_detector in importers:
                wanted.add(cost.other_finding_id)
            elif not ours and cost.other_detector not in importers:
                # Shown with the Valdrix finding about the resource itself when there is one.
                current = answer[finding.id].shown_with
                if current is None or cost.resource_id == finding.resource_id:
                    answer[finding.id].shown_with = cost.other_finding_id
    others = {f.id: f for f in await FindingRepository(session).by_ids(wanted)}
    for finding in findings:
        seen: set[uuid.UUID] = set()
        for cost in shared.get(finding.id, []):
            other = others.get(cost.other_finding_id)
            if finding.detector in importers or other is None or other.id in seen:
                continue
            seen.add(other.id)
            answer[finding.id].also_reported_by.append(_also_reported(other, importers))
    return dict(answer)


def _also_reported(finding: Finding, importers: dict[str, str]) -> AlsoReported:
    detail, evidence = finding.price_detail or {}, finding.evidence or {}
    return AlsoReported(
        finding_id=finding.id,
        detector=finding.detector,
        source=importers[finding.detector],
        monthly_cost_usd=finding.monthly_cost_usd,
        cost_basis=finding.cost_basis,
        currency=detail.get("currency"),
        estimated_monthly_savings=detail.get("estimated_monthly_savings"),
        action=evidence.get("action"),
        recommended=evidence.get("recommended"),
        reason=finding.reason,
    )
