"""SQL for scans, scan units, scan events and findings (tenant tables, RLS)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.kit.repository import Repository
from valdrix.scanning.models import (
    Finding,
    FindingCostPart,
    FindingHistory,
    FindingStatus,
    Scan,
    ScanEvent,
    ScanStatus,
    ScanUnit,
)

SORTABLE = {
    "monthly_cost_usd": Finding.monthly_cost_usd,
    "last_seen_at": Finding.last_seen_at,
    "first_seen_at": Finding.first_seen_at,
}


class ClaimedPart(NamedTuple):
    """One shared part of a finding's figure (``Finding.cost_parts``), with its finding."""

    finding_id: uuid.UUID
    provider: str
    account_id: str
    region: str
    detector: str
    # The cost is of the finding's own resource.
    own: bool
    component: str
    resource_id: str
    monthly_usd: Decimal


class ScanRepository(Repository[Scan]):
    model = Scan

    async def queued_for(self, connection_id: uuid.UUID) -> Scan | None:
        result: Scan | None = await self.session.scalar(
            select(Scan)
            .where(Scan.connection_id == connection_id, Scan.status == ScanStatus.queued.value)
            .order_by(Scan.created_at.desc())
            .limit(1)
        )
        return result

    async def page(self, *, limit: int, connection_id: uuid.UUID | None) -> list[Scan]:
        query = select(Scan).order_by(Scan.created_at.desc(), Scan.id.desc()).limit(limit)
        if connection_id:
            query = query.where(Scan.connection_id == connection_id)
        return list(await self.session.scalars(query))

    async def for_update(self, scan_id: uuid.UUID) -> Scan | None:
        """The scan, locked: whoever ends it first ends it, once."""
        return await self.session.scalar(
            select(Scan)
            .where(Scan.id == scan_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )

    async def started_by_job(self, job_id: int) -> Scan | None:
        """The scan a job opened (a retried job finds the scan its first attempt began)."""
        return await self.session.scalar(select(Scan).where(Scan.job_id == job_id).limit(1))

    async def claim_units(
        self, units: Sequence[dict[str, Any]]
    ) -> dict[tuple[str, str], uuid.UUID]:
        """Record units' outcomes, each unless it was recorded already (by an earlier attempt
        of the scan, or just before the scan's budget cancelled it), in one statement; the ids
        of those this call wrote, by (region, detector). A concurrent writer of the same unit
        waits for the first and then writes nothing."""
        if not units:
            return {}
        rows = await self.session.execute(
            pg_insert(ScanUnit)
            .values([{"id": uuid.uuid4(), **unit} for unit in units])
            .on_conflict_do_nothing(constraint="uq_scan_units_unit")
            .returning(ScanUnit.id, ScanUnit.region, ScanUnit.detector)
        )
        return {(region, detector): unit_id for unit_id, region, detector in rows}

    async def findings_seen(self, scan_id: uuid.UUID) -> tuple[int, Decimal]:
        """How many findings the scan saw, and their monthly cost."""
        row = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(Finding.monthly_cost_usd), 0)).where(
                    Finding.last_scan_id == scan_id
                )
            )
        ).one()
        return int(row[0]), row[1] or Decimal(0)

    async def units(self, scan_id: uuid.UUID) -> list[ScanUnit]:
        rows = await self.session.scalars(
            select(ScanUnit)
            .where(ScanUnit.scan_id == scan_id)
            .order_by(ScanUnit.region, ScanUnit.detector)
        )
        return list(rows)


class ScanEventRepository(Repository[ScanEvent]):
    model = ScanEvent

    def add_event(
        self,
        tenant_id: uuid.UUID,
        scan_id: uuid.UUID,
        type_: str,
        payload: dict[str, Any],
        at: dt.datetime,
    ) -> None:
        self.session.add(
            ScanEvent(
                tenant_id=tenant_id, scan_id=scan_id, type=type_, payload=payload, created_at=at
            )
        )

    async def add_many(
        self,
        tenant_id: uuid.UUID,
        scan_id: uuid.UUID,
        events: list[tuple[str, dict[str, Any]]],
        at: dt.datetime,
    ) -> None:
        """Events in order, in one statement. Units of one scan commit concurrently: without
        the scan's lock, held to the commit, a unit could take lower ids and commit after a
        reader had passed them (``after`` reads by id), and its events would never be streamed.
        """
        if events:
            await self.session.execute(
                select(func.pg_advisory_xact_lock(func.hashtext(f"scan-events:{scan_id}")))
            )
            await self.session.execute(
                insert(ScanEvent),
                [
                    {
                        "tenant_id": tenant_id,
                        "scan_id": scan_id,
                        "type": kind,
                        "payload": payload,
                        "created_at": at,
                    }
                    for kind, payload in events
                ],
            )

    async def after(self, scan_id: uuid.UUID, last_id: int, limit: int = 500) -> list[ScanEvent]:
        rows = await self.session.scalars(
            select(ScanEvent)
            .where(ScanEvent.scan_id == scan_id, ScanEvent.id > last_id)
            .order_by(ScanEvent.id)
            .limit(limit)
        )
        return list(rows)


# Not an imported finding that shares a cost part with an open finding of Valdrix's own. The
# findings to leave out are one uncorrelated set, computed once per query and hashed: as a
# correlated EXISTS it scanned the tenant's open findings once per imported finding (5 s for a
# page of 10,000 findings, benchmarks/dashboard.py). Read from the parts' table (migration
# 0024): the imported findings' parts by detector, each matched to the open parts of the same
# cost through their index; expanding the findings' jsonb took 9 to 13 ms of each list's SQL.
_NOT_SHOWN_WITH_OTHERS = text(
    """findings.id NOT IN (
        SELECT imported.finding_id FROM finding_cost_parts imported
        JOIN finding_cost_parts own
          ON own.resource_id = imported.resource_id AND own.component = imported.component
         AND own.provider = imported.provider AND own.account_id = imported.account_id
         AND own.region = imported.region
        WHERE imported.detector IN :importers
          AND own.status = 'open' AND own.detector NOT IN :importers)"""
).bindparams(bindparam("importers", expanding=True))


def _listed(
    query: Select[Any],
    filters: dict[str, Any],
    shown_with_others: Sequence[str],
    min_monthly_cost_usd: Decimal | None,
) -> Select[Any]:
    """``query`` narrowed to the findings a list shows (``FindingRepository.page``)."""
    if min_monthly_cost_usd is not None:
        query = query.where(Finding.monthly_cost_usd >= min_monthly_cost_usd)
    if shown_with_others:
        query = query.where(_NOT_SHOWN_WITH_OTHERS.bindparams(importers=list(shown_with_others)))
    for name, value in filters.items():
        if value is not None:
            query = query.where(getattr(Finding, name) == value)
    return query


# The open parts, read through their partial index (migration 0024) rather than expanded from
# every open finding's jsonb; their grouping columns are collated "C", so ranking them sorts
# by bytes (16 to 23 ms for the whole statement at 10,000 findings before, 4 after).
_COUNTED_ELSEWHERE = text(
    """
    WITH parts AS (
        SELECT finding_id AS id, detector, provider, account_id, region, component,
               resource_id, monthly_usd AS usd,
               detector = ANY(CAST(:importers AS text[])) AS imported, NOT own AS not_own
        FROM finding_cost_parts
        WHERE status = 'open'
    ), ranked AS (
        SELECT detector, usd, count(*) OVER same_cost AS pricing,
               row_number() OVER carrying AS place,
               first_value(detector) OVER carrying AS carrier
        FROM parts
        WINDOW same_cost AS (PARTITION BY resource_id, component, provider, account_id, region),
               carrying AS (same_cost ORDER BY usd DESC, imported, not_own,
                            detector COLLATE "C", id)
    )
    SELECT detector, carrier, count(*), sum(usd)
    FROM ranked WHERE pricing > 1 AND place > 1
    GROUP BY detector, carrier
    ORDER BY detector COLLATE "C", carrier COLLATE "C"
    """
)


class FindingRepository(Repository[Finding]):
    model = Finding

    async def by_fingerprints(self, fingerprints: Sequence[str]) -> dict[str, Finding]:
        if not fingerprints:
            return {}
        rows = await self.session.scalars(
            select(Finding).where(Finding.fingerprint.in_(list(fingerprints)))
        )
        return {finding.fingerprint: finding for finding in rows}

    async def by_ids(self, ids: Collection[uuid.UUID]) -> list[Finding]:
        if not ids:
            return []
        return list(await self.session.scalars(select(Finding).where(Finding.id.in_(list(ids)))))

    async def write_bulk(
        self,
        *,
        inserts: list[dict[str, Any]],
        updates: list[dict[str, Any]],
        history: list[dict[str, Any]],
    ) -> None:
        """New findings, refreshed findings (by primary key) and their history rows."""
        if inserts:
            await self.session.execute(insert(Finding), inserts)
        if updates:
            await self.session.execute(update(Finding), updates)
        if history:
            await self.session.execute(insert(FindingHistory), history)

    async def not_seen_in(
        self,
        *,
        connection_id: uuid.UUID,
        units: Sequence[tuple[str | None, str]],
        scan_id: uuid.UUID,
    ) -> list[Finding]:
        """Open or snoozed findings of the connection this scan missed, of each (region,
        detector) in ``units`` (of every region where the region is None)."""
        if not units:
            return []
        rows = await self.session.scalars(
            select(Finding).where(
                Finding.connection_id == connection_id,
                or_(
                    *(
                        and_(
                            (Finding.region == region) if region is not None else true(),
                            Finding.detector == detector,
                        )
                        for region, detector in units
                    )
                ),
                Finding.status.in_([FindingStatus.open.value, FindingStatus.snoozed.value]),
                (Finding.last_scan_id.is_(None)) | (Finding.last_scan_id != scan_id),
            )
        )
        return list(rows)

    async def page(
        self,
        *,
        filters: dict[str, Any],
        sort: str,
        descending: bool,
        offset: int,
        limit: int,
        shown_with_others: Sequence[str] = (),
        min_monthly_cost_usd: Decimal | None = None,
    ) -> list[Finding]:
        """A page of findings; those of the ``shown_with_others`` detectors (imported
        recommendations) are left out where an open finding of another detector prices the
        same cost: they are shown with it."""
        column = SORTABLE[sort]
        order = column.desc().nulls_last() if descending else column.asc().nulls_first()
        query = select(Finding).order_by(order, Finding.id).offset(offset).limit(limit)
        query = _listed(query, filters, shown_with_others, min_monthly_cost_usd)
        return list(await self.session.scalars(query))

    async def count(
        self,
        *,
        filters: dict[str, Any],
        shown_with_others: Sequence[str] = (),
        min_monthly_cost_usd: Decimal | None = None,
    ) -> int:
        """How many findings ``page`` would list under the same filters, every page."""
        query = _listed(
            select(func.count()).select_from(Finding),
            filters,
            shown_with_others,
            min_monthly_cost_usd,
        )
        return int(await self.session.scalar(query) or 0)

    async def summary(self) -> list[tuple[str, str, int, Decimal]]:
        """(provider, detector, open findings, monthly USD) over open findings."""
        rows = await self.session.execute(
            select(
                Finding.provider,
                Finding.detector,
                func.count(),
                func.coalesce(func.sum(Finding.monthly_cost_usd), 0),
            )
            .where(Finding.status == FindingStatus.open.value)
            .group_by(Finding.provider, Finding.detector)
            .order_by(Finding.provider, Finding.detector)
        )
        return [(r[0], r[1], int(r[2]), Decimal(r[3] or 0)) for r in rows]

    async def open_cost_parts(self, resource_ids: Collection[str]) -> list[ClaimedPart]:
        """The cost parts several open findings price that are the costs of ``resource_ids``."""
        return await self._cost_parts(
            FindingCostPart.status == FindingStatus.open.value,
            FindingCostPart.resource_id.in_(list(resource_ids)),
        )

    async def open_counted_elsewhere(
        self, importers: Collection[str]
    ) -> list[tuple[str, str, int, Decimal]]:
        """(detector, carrier's detector, parts, their monthly USD): the open findings' cost
        parts that totals count under another open finding, by the pair of detectors.

        ``scanning.overlaps.counted_under_others`` in SQL, for the summary (it read every
        shared part into Python, most of the overview's time at 10,000 findings,
        benchmarks/dashboard.py): of the parts pricing one cost, the carrier is the largest,
        then Valdrix's own finding before an imported one, then the finding about the resource
        itself, then detector in byte order (``COLLATE "C"``, as Python compares strings) and
        finding id (a uuid compares by its bytes, as its hex text does in Python)."""
        rows = await self.session.execute(_COUNTED_ELSEWHERE, {"importers": list(importers)})
        return [(row[0], row[1], int(row[2]), Decimal(row[3])) for row in rows]

    async def scan_cost_parts(self, scan_id: uuid.UUID) -> list[ClaimedPart]:
        """The cost parts several of the findings a scan saw price."""
        return await self.cost_parts_among(
            # The findings naming any part, through their index (migration 0020).
            select(Finding.id).where(Finding.has_cost_parts, Finding.last_scan_id == scan_id)
        )

    async def cost_parts_among(self, finding_ids: Select[uuid.UUID]) -> list[ClaimedPart]:
        """The cost parts several of the findings ``finding_ids`` selects price."""
        return await self._cost_parts(FindingCostPart.finding_id.in_(finding_ids))

    async def _cost_parts(self, *criteria: ColumnElement[bool]) -> list[ClaimedPart]:
        """The parts, of those ``criteria`` select, that more than one finding prices (the same
        component of the same resource in one account and region): only these count under
        another finding, and most parts are one finding's alone, so the rest stay in SQL (the
        overview read every open finding's parts into Python, benchmarks/dashboard.py)."""
        part = FindingCostPart
        same_cost = (part.resource_id, part.component, part.provider, part.account_id, part.region)
        claimed = (
            part.finding_id,
            part.provider,
            part.account_id,
            part.region,
            part.detector,
            part.own,
            part.component,
            part.resource_id,
            part.monthly_usd,
        )
        parts = (
            select(*claimed, func.count().over(partition_by=same_cost).label("pricing"))
            .where(*criteria)
            .subquery()
        )
        rows = await self.session.execute(
            select(*(c for c in parts.c if c.name != "pricing")).where(parts.c.pricing > 1)
        )
        return [ClaimedPart(*row) for row in rows]

    async def expired_snoozes(self, now: dt.datetime) -> list[Finding]:
        """Snoozed findings whose snooze has ended, locked (a concurrent reader waits, then no
        longer sees them as snoozed)."""
        rows = await self.session.scalars(
            select(Finding)
            .where(Finding.status == FindingStatus.snoozed.value, Finding.snoozed_until <= now)
            .with_for_update()
        )
        return list(rows)


class FindingHistoryRepository(Repository[FindingHistory]):
    model = FindingHistory

    async def for_finding(self, finding_id: uuid.UUID) -> list[FindingHistory]:
        rows = await self.session.scalars(
            select(FindingHistory)
            .where(FindingHistory.finding_id == finding_id)
            .order_by(FindingHistory.created_at, FindingHistory.id)
        )
        return list(rows)

    async def open_waste_by_day(
        self, first_day: dt.date, last_day: dt.date
    ) -> list[tuple[dt.date, int, Decimal]]:
        """(day, findings open at the day's end, their monthly figures summed with each dollar
        counted once), a row for every day. A finding's history is a run of statuses, each
        lasting until the next: a finding counts on a day when an ``open`` spell covers the
        day's end. Each at its current figure and cost parts; a cost several of the day's open
        findings price counts once, at the largest of their parts (the carrier the summary's
        ``open_counted_elsewhere`` chooses), so today's point is the summary's total.

        Worked out from the days where something changes, not day by day: a finding open for
        the whole window is two rows, not one a day (440 ms to 76 ms over 30 days of 10,000
        findings, benchmarks/dashboard.py)."""
        rows = await self.session.execute(
            text(
                """
                WITH spells AS (
                    SELECT finding_id, to_status, created_at AS since,
                           lead(created_at) OVER (
                               PARTITION BY finding_id ORDER BY created_at, id
                           ) AS until
                    FROM finding_history
                ),
                counted AS (
                    -- The days an open spell counts on, [start, stop): those whose end it
                    -- covers (it began before the day's end and lasted to it), in the window;
                    -- with its finding's figure as it stands now.
                    SELECT spell.finding_id, start, stop,
                           coalesce(findings.monthly_cost_usd, 0) AS usd
                    FROM (
                        SELECT finding_id,
                               greatest(date_trunc('day', since),
                                        CAST(:first_day AS timestamptz)) AS start,
                               least(coalesce(date_trunc('day', until - interval '1 day')
                                              + interval '1 day', 'infinity'),
                                     CAST(:last_day AS timestamptz) + interval '1 day') AS stop
                        FROM spells WHERE to_status = 'open'
                    ) AS spell
                    JOIN findings ON findings.id = spell.finding_id
                    WHERE start < stop
                ),
                changes AS (
                    -- A spell adds its finding on its first day and takes it away after its
                    -- last: each day's figures are the changes up to it, summed.
                    SELECT day, sum(findings) AS findings, sum(usd) AS usd
                    FROM (
                        SELECT start AS day, 1 AS findings, usd FROM counted
                        UNION ALL
                        SELECT stop, -1, -usd FROM counted
                        WHERE stop <= CAST(:last_day AS timestamptz)
                    ) AS change
                    GROUP BY day
                ),
                shareable AS (
                    -- The parts some other finding prices too (most are one finding's alone),
                    -- each cost numbered: a day's parts are grouped by that number.
                    SELECT finding_id, monthly_usd, cost
                    FROM (
                        SELECT finding_id, monthly_usd,
                               count(*) OVER same_cost AS pricing,
                               dense_rank() OVER (ORDER BY resource_id, component, provider,
                                                  account_id, region) AS cost
                        FROM finding_cost_parts
                        WINDOW same_cost AS (
                            PARTITION BY resource_id, component, provider, account_id, region
                        )
                    ) AS part
                    WHERE pricing > 1
                ),
                shared_spells AS (
                    SELECT parts.cost, parts.monthly_usd AS usd, counted.start, counted.stop
                    FROM counted JOIN shareable parts ON parts.finding_id = counted.finding_id
                ),
                elsewhere AS (
                    -- A cost several of a day's open findings price counts once, at the
                    -- largest of their parts: the rest is counted elsewhere. That amount only
                    -- changes on a day one of the cost's spells begins or ends: it is worked
                    -- out on those days, and each day takes the changes up to it.
                    SELECT day, sum(change) AS usd
                    FROM (
                        SELECT day, usd - coalesce(
                                   lag(usd) OVER (PARTITION BY cost ORDER BY day), 0
                               ) AS change
                        FROM (
                            SELECT turn.cost, turn.day,
                                   coalesce(sum(open.usd) - max(open.usd), 0) AS usd
                            FROM (
                                SELECT cost, start AS day FROM shared_spells
                                UNION
                                SELECT cost, stop FROM shared_spells
                                WHERE stop <= CAST(:last_day AS timestamptz)
                            ) AS turn
                            LEFT JOIN shared_spells open
                              ON open.cost = turn.cost AND open.start <= turn.day
                             AND turn.day < open.stop
                            GROUP BY turn.cost, turn.day
                        ) AS at_turn
                    ) AS changed
                    GROUP BY day
                ),
                days AS (
                    SELECT day
                    FROM generate_series(
                        CAST(:first_day AS timestamptz), CAST(:last_day AS timestamptz),
                        interval '1 day'
                    ) AS day
                )
                SELECT days.day::date,
                       sum(coalesce(changes.findings, 0)) OVER running,
                       sum(coalesce(changes.usd, 0) - coalesce(elsewhere.usd, 0)) OVER running
                FROM days
                LEFT JOIN changes ON changes.day = days.day
                LEFT JOIN elsewhere ON elsewhere.day = days.day
                WINDOW running AS (ORDER BY days.day)
                ORDER BY days.day
                """
            ),
            {"first_day": first_day, "last_day": last_day},
        )
        return [(row[0], int(row[1]), Decimal(row[2])) for row in rows]


@dataclass(frozen=True)
class OrphanedScan:
    tenant_id: uuid.UUID
    scan_id: uuid.UUID
    status: str


async def orphaned_scans(
    session: AsyncSession, *, queued_before: dt.datetime, running_before: dt.datetime
) -> list[OrphanedScan]:
    """Unfinished scans, of every tenant, that no job will run any more (see migration 0012)."""
    rows = await session.execute(
        text(
            "SELECT tenant_id, scan_id, status"
            " FROM valdrix_orphaned_scans(:queued_before, :running_before)"
        ),
        {"queued_before": queued_before, "running_before": running_before},
    )
    return [OrphanedScan(*row) for row in rows]
