"""Findings as the API and the dashboard show them: each resource's once (imported
recommendations inside the Valdrix finding that prices the same cost), with the costs each
shares with other open findings. One path for the list, the detail, the CSV export and the
pages."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.errors import InvalidInput
from valdrix.kit.csv_export import csv_lines
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning import findings, imported, summary
from valdrix.scanning.models import Finding, FindingStatus
from valdrix.scanning.schemas import FindingFilter, FindingOut
from valdrix.tenancy.auth import Principal

# Rows read per statement while exporting: memory stays flat however many findings match.
EXPORT_BATCH = 500
# The most findings one request changes by filter (GET /api/v1/findings/count says how many).
BULK_LIMIT = 1_000
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
    end_snoozes: bool = True,
) -> list[FindingOut]:
    """A page of findings, each resource's once: an imported recommendation for a resource
    one of Valdrix's own open findings prices is listed inside that finding, unless the
    filter asks for the importing detector's findings."""
    rows = await findings.list_findings(
        session,
        actor,
        sort=chosen.sort,
        descending=chosen.order == "desc",
        offset=offset,
        limit=limit,
        end_snoozes=end_snoozes,
        **_narrowed_by(chosen),
    )
    return await describe(session, actor, rows)


def _narrowed_by(chosen: FindingFilter) -> dict[str, Any]:
    """The filter as ``findings.list_findings`` and ``count_findings`` take it."""
    # Asked for one detector's findings, nothing is left out: an importer's are listed on their
    # own, and another detector's list holds no imported recommendation to hide (so the set of
    # hidden ones, most of such a page's SQL, is not worked out).
    importers = imported.importing_detectors()
    return {
        "filters": chosen.equal_to(),
        "shown_with_others": list(importers) if chosen.detector is None else [],
        "min_monthly_cost_usd": chosen.min_monthly_cost_usd,
    }


async def count_listed(session: AsyncSession, actor: Principal, chosen: FindingFilter) -> int:
    """How many findings ``list_described`` lists under ``chosen``, every page."""
    return await findings.count_findings(session, actor, **_narrowed_by(chosen))


async def change_status_of_listed(
    session: AsyncSession,
    actor: Principal,
    chosen: FindingFilter,
    *,
    status: FindingStatus,
    snoozed_until: dt.datetime | None,
    note: str | None,
) -> int:
    """Every finding ``list_described`` lists under ``chosen`` changed as PATCH
    /api/v1/findings/{id} changes one, all or none: how many. More than ``BULK_LIMIT`` is
    refused (each change writes its history and audit rows: a bounded request)."""
    rows = await findings.list_findings(
        session,
        actor,
        sort=chosen.sort,
        descending=chosen.order == "desc",
        offset=0,
        limit=BULK_LIMIT + 1,
        **_narrowed_by(chosen),
    )
    if len(rows) > BULK_LIMIT:
        raise InvalidInput(
            f"more than {BULK_LIMIT:,} findings match: narrow the filter to change them at once"
        )
    await findings.change_status_of(
        session, actor, rows, status=status, snoozed_until=snoozed_until, note=note
    )
    return len(rows)


async def read_described(
    session: AsyncSession, actor: Principal, finding_id: uuid.UUID
) -> FindingOut:
    finding = await findings.get_finding(session, actor, finding_id)
    return (await describe(session, actor, [finding]))[0]


def csv_row(finding: FindingOut) -> list[Any]:
    also = " ".join(sorted({one.detector for one in finding.also_reported_by}))
    values = finding.model_dump(mode="json") | {"also_reported_by": also}
    return [values[name] for name in CSV_COLUMNS]


async def export_csv(
    runtime: Runtime, actor: Principal, chosen: FindingFilter
) -> AsyncIterator[str]:
    """Every finding the filter selects, as CSV, a batch at a time in one transaction of its
    own (the request's has ended by the time the body streams), every batch read from one
    snapshot: a scan that commits mid-export neither repeats a row nor skips one by moving it
    across a batch's edge."""
    yield csv_lines([CSV_COLUMNS])
    async with unit_of_work(runtime.sessions, actor.tenant_id) as session:
        await findings.end_expired_snoozes(session)
    async with unit_of_work(runtime.sessions, actor.tenant_id) as session:
        # Reads only (the snoozes ended above): under REPEATABLE READ a write could fail on a
        # row a scan changed since the snapshot.
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        offset = 0
        while True:
            batch = await list_described(
                session, actor, chosen, offset=offset, limit=EXPORT_BATCH, end_snoozes=False
            )
            yield csv_lines(csv_row(finding) for finding in batch)
            if len(batch) < EXPORT_BATCH:
                return
            offset += EXPORT_BATCH
