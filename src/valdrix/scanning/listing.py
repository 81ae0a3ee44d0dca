"""Findings as the API and the dashboard show them: each resource's once (imported
recommendations inside the Valdrix finding that prices the same cost), with the costs each
shares with other open findings. One path for the list, the detail, the CSV export and the
pages."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning import findings, imported, summary
from valdrix.scanning.models import Finding
from valdrix.scanning.schemas import FindingFilter, FindingOut
from valdrix.tenancy.auth import Principal

# Rows read per statement while exporting: memory stays flat however many findings match.
EXPORT_BATCH = 500
CSV_COLUMNS = (
    "id",
    "provider",
    "account_id",
    "region",
    "detector",
    "resource_id",
    "resource_type",
    "resource_name",
    "status",
    "monthly_cost_usd",
    "cost_basis",
    "counted_elsewhere_usd",
    "also_reported_by",
    "reason",
    "first_seen_at",
    "last_seen_at",
)


async def describe(
    session: AsyncSession, actor: Principal, rows: Sequence[Finding]
) -> list[FindingOut]:
    """The findings with the costs they share and the recommendations shown with them."""
    shared = await summary.shared_costs(session, actor, rows)
    sources = await imported.sources(session, rows, shared)
    return [FindingOut.of(f, shared.get(f.id, []), sources.get(f.id)) for f in rows]


async def list_described(
    session: AsyncSession,
    actor: Principal,
    chosen: FindingFilter,
    *,
    offset: int,
    limit: int,
) -> list[FindingOut]:
    """A page of findings, each resource's once: an imported recommendation for a resource
    one of Valdrix's own open findings prices is listed inside that finding, unless the
    filter asks for the importing detector's findings."""
    importers = imported.importing_detectors()
    rows = await findings.list_findings(
        session,
        actor,
        filters=chosen.equal_to(),
        sort=chosen.sort,
        descending=chosen.order == "desc",
        offset=offset,
        limit=limit,
        shown_with_others=[] if chosen.detector in importers else list(importers),
        min_monthly_cost_usd=chosen.min_monthly_cost_usd,
    )
    return await describe(session, actor, rows)


async def read_described(
    session: AsyncSession, actor: Principal, finding_id: uuid.UUID
) -> FindingOut:
    finding = await findings.get_finding(session, actor, finding_id)
    return (await describe(session, actor, [finding]))[0]


def csv_row(finding: FindingOut) -> list[str]:
    also = " ".join(sorted({one.detector for one in finding.also_reported_by}))
    values = finding.model_dump(mode="json") | {"also_reported_by": also}
    return ["" if values[name] is None else str(values[name]) for name in CSV_COLUMNS]


async def export_csv(
    runtime: Runtime, actor: Principal, chosen: FindingFilter
) -> AsyncIterator[str]:
    """Every finding the filter selects, as CSV, a batch at a time in one transaction of its
    own (the request's has ended by the time the body streams)."""
    yield _line(CSV_COLUMNS)
    async with unit_of_work(runtime.sessions, actor.tenant_id) as session:
        offset = 0
        while True:
            batch = await list_described(session, actor, chosen, offset=offset, limit=EXPORT_BATCH)
            yield "".join(_line(csv_row(finding)) for finding in batch)
            if len(batch) < EXPORT_BATCH:
                return
            offset += EXPORT_BATCH


def _line(values: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()
