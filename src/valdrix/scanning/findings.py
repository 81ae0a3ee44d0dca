"""The findings lifecycle: record what scans see, resolve what they stop seeing, let people
snooze or dismiss, and keep the history of every change."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.errors import InvalidInput, NotFound
from valdrix.kit.orm import utcnow
from valdrix.scanning.base import Waste
from valdrix.scanning.models import Finding, FindingHistory, FindingStatus
from valdrix.scanning.repository import FindingHistoryRepository, FindingRepository
from valdrix.tenancy.audit import record_audit
from valdrix.tenancy.auth import Principal

SCANNER_ACTOR = "scanner"
SYSTEM_ACTOR = "system"


def fingerprint(
    provider: str, account_id: str, region: str, resource_id: str, detector: str
) -> str:
    """Stable identity of a finding across scans."""
    raw = "|".join((provider, account_id, region, resource_id, detector))
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def _history(
    session: AsyncSession,
    finding: Finding,
    to_status: str,
    *,
    from_status: str | None,
    actor: str,
    note: str | None = None,
    scan_id: uuid.UUID | None = None,
) -> None:
    session.add(
        FindingHistory(
            tenant_id=finding.tenant_id,
            finding_id=finding.id,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            note=note,
            scan_id=scan_id,
        )
    )


@dataclass(frozen=True)
class RecordedFinding:
    """What the scan engine needs to announce a finding it wrote."""

    id: uuid.UUID
    region: str
    resource_id: str
    monthly_cost_usd: Decimal | None
    cost_basis: str


@dataclass(frozen=True)
class UnitWastes:
    """What one (region x detector) unit found."""

    region: str
    detector: str
    wastes: Sequence[Waste]


async def record_findings(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    scan_id: uuid.UUID,
    connection_id: uuid.UUID,
    provider: str,
    account_id: str,
    units: Sequence[UnitWastes],
    now: dt.datetime,
) -> list[list[RecordedFinding]]:
    """Insert new findings, refresh known ones; a resolved finding seen again reopens. Each
    finding is of its unit's region, or of the region its waste names (a detector run once
    per connection). What each unit recorded, in the order of ``units``.

    Written in bulk (one statement per kind of row, for all the units at once): a large
    account yields thousands.
    """
    by_unit = [
        {
            fingerprint(provider, account_id, w.region or u.region, w.resource_id, u.detector): w
            for w in u.wastes
        }
        for u in units
    ]
    existing = await FindingRepository(session).by_fingerprints(
        [print_ for prints in by_unit for print_ in prints]
    )
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    recorded: list[list[RecordedFinding]] = []
    for unit, by_print in zip(units, by_unit, strict=True):
        region, detector = unit.region, unit.detector
        recorded.append([])
        for print_, waste in by_print.items():
            values: dict[str, Any] = {
                "resource_type": waste.resource_type,
                "resource_name": waste.resource_name,
                "reason": waste.reason,
                "monthly_cost_usd": waste.price.monthly_usd,
                "cost_basis": waste.price.basis,
                "price_detail": waste.price.detail,
                "cost_parts": [part.as_json() for part in waste.cost_parts],
                "evidence": waste.evidence,
                "tags": waste.tags,
                "last_seen_at": now,
                "last_scan_id": scan_id,
            }
            finding = existing.get(print_)
            if finding is None:
                finding_id = uuid.uuid4()
                inserts.append(
                    {
                        "id": finding_id,
                        "tenant_id": tenant_id,
                        "fingerprint": print_,
                        "connection_id": connection_id,
                        "provider": provider,
                        "account_id": account_id,
                        "region": waste.region or region,
                        "detector": detector,
                        "resource_id": waste.resource_id,
                        "status": FindingStatus.open.value,
                        "first_seen_at": now,
                        **values,
                    }
                )
                history.append(
                    _history_row(
                        tenant_id, finding_id, None, FindingStatus.open.value, "first seen", scan_id
                    )
                )
            else:
                finding_id = finding.id
                if finding.status == FindingStatus.resolved.value:
                    values.update(status=FindingStatus.open.value, resolved_at=None)
                    history.append(
                        _history_row(
                            tenant_id,
                            finding_id,
                            finding.status,
                            FindingStatus.open.value,
                            "seen again",
                            scan_id,
                        )
                    )
                updates.append({"id": finding_id, **values})
            recorded[-1].append(
                RecordedFinding(
                    finding_id,
                    waste.region or region,
                    waste.resource_id,
                    waste.price.monthly_usd,
                    waste.price.basis,
                )
            )
    await FindingRepository(session).write_bulk(inserts=inserts, updates=updates, history=history)
    return recorded


def _history_row(
    tenant_id: uuid.UUID,
    finding_id: uuid.UUID,
    from_status: str | None,
    to_status: str,
    note: str,
    scan_id: uuid.UUID,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "finding_id": finding_id,
        "from_status": from_status,
        "to_status": to_status,
        "actor": SCANNER_ACTOR,
        "note": note,
        "scan_id": scan_id,
    }


async def resolve_missing(
    session: AsyncSession,
    *,
    scan_id: uuid.UUID,
    connection_id: uuid.UUID,
    units: Sequence[tuple[str | None, str]],
    now: dt.datetime,
) -> int:
    """After complete (region x detector) units, what they no longer see is resolved (in every
    region where the region is None: a detector run once per connection sees them all)."""
    missing = await FindingRepository(session).not_seen_in(
        connection_id=connection_id, units=units, scan_id=scan_id
    )
    for finding in missing:
        _history(
            session,
            finding,
            FindingStatus.resolved.value,
            from_status=finding.status,
            actor=SCANNER_ACTOR,
            note="not seen in a complete scan",
            scan_id=scan_id,
        )
        finding.status, finding.resolved_at, finding.snoozed_until = (
            FindingStatus.resolved.value,
            now,
            None,
        )
    await session.flush()
    return len(missing)


async def list_findings(
    session: AsyncSession,
    actor: Principal,
    *,
    filters: dict[str, Any],
    sort: str,
    descending: bool,
    offset: int,
    limit: int,
    shown_with_others: Sequence[str] = (),
    min_monthly_cost_usd: Decimal | None = None,
    end_snoozes: bool = True,
) -> list[Finding]:
    """A page of findings; those of the ``shown_with_others`` detectors that another open
    finding prices too are left out (``scanning.imported``). Expired snoozes are ended first,
    unless the caller did that already (``end_snoozes=False``: the read writes nothing)."""
    if end_snoozes:
        await end_expired_snoozes(session)
    return await FindingRepository(session).page(
        filters=filters,
        sort=sort,
        descending=descending,
        offset=offset,
        limit=limit,
        shown_with_others=shown_with_others,
        min_monthly_cost_usd=min_monthly_cost_usd,
    )


async def count_findings(
    session: AsyncSession,
    actor: Principal,
    *,
    filters: dict[str, Any],
    shown_with_others: Sequence[str] = (),
    min_monthly_cost_usd: Decimal | None = None,
) -> int:
    """How many findings ``list_findings`` lists under the same filters, every page."""
    await end_expired_snoozes(session)
    return await FindingRepository(session).count(
        filters=filters,
        shown_with_others=shown_with_others,
        min_monthly_cost_usd=min_monthly_cost_usd,
    )


async def end_expired_snoozes(session: AsyncSession) -> None:
    """A snooze ends by itself: whichever read comes first reopens the finding, with history."""
    for finding in await FindingRepository(session).expired_snoozes(utcnow()):
        _history(
            session,
            finding,
            FindingStatus.open.value,
            from_status=finding.status,
            actor=SYSTEM_ACTOR,
            note="the snooze ended",
        )
        finding.status, finding.snoozed_until = FindingStatus.open.value, None
    await session.flush()


async def get_finding(session: AsyncSession, actor: Principal, finding_id: uuid.UUID) -> Finding:
    await end_expired_snoozes(session)
    finding = await FindingRepository(session).get(finding_id)
    if finding is None:
        raise NotFound("finding not found")
    return finding


async def change_status(
    session: AsyncSession,
    actor: Principal,
    finding_id: uuid.UUID,
    *,
    status: FindingStatus,
    snoozed_until: dt.datetime | None,
    note: str | None,
) -> Finding:
    """People may snooze (until a date, with a reason), dismiss, or reopen a finding."""
    finding = await get_finding(session, actor, finding_id)
    await change_status_of(
        session, actor, [finding], status=status, snoozed_until=snoozed_until, note=note
    )
    return finding


async def change_status_of(
    session: AsyncSession,
    actor: Principal,
    chosen: Sequence[Finding],
    *,
    status: FindingStatus,
    snoozed_until: dt.datetime | None,
    note: str | None,
) -> None:
    """``change_status`` for findings already read (a bulk change: checked once)."""
    if status == FindingStatus.resolved:
        raise InvalidInput("status: findings are resolved by scans, not by hand")
    if status == FindingStatus.snoozed:
        if snoozed_until is None or snoozed_until <= utcnow():
            raise InvalidInput("snoozed_until: snoozing needs a date in the future")
        if not note:
            raise InvalidInput("note: say why the finding is snoozed")
    for finding in chosen:
        previous = finding.status
        finding.status = status.value
        finding.snoozed_until = snoozed_until if status == FindingStatus.snoozed else None
        finding.status_note = note
        _history(
            session,
            finding,
            status.value,
            from_status=previous,
            actor=f"{actor.kind}:{actor.actor_id}",
            note=note,
        )
        await record_audit(
            session,
            actor,
            "finding." + status.value,
            target_type="finding",
            target_id=finding.id,
            details={
                "from": previous,
                "snoozed_until": snoozed_until.isoformat() if snoozed_until else None,
            },
            flush=False,
        )
    # Once for all of them: the changes, history and audit rows go in a few batched statements.
    await session.flush()


async def finding_history(
    session: AsyncSession, actor: Principal, finding_id: uuid.UUID
) -> list[FindingHistory]:
    await get_finding(session, actor, finding_id)
    return await FindingHistoryRepository(session).for_finding(finding_id)


@dataclass(frozen=True)
class OpenWasteDay:
    day: dt.date
    open_findings: int
    monthly_usd: Decimal


async def open_waste_history(
    session: AsyncSession, actor: Principal, *, days: int
) -> list[OpenWasteDay]:
    """Open findings and their monthly figures at the end of each of the last ``days`` days
    (UTC), today included. A snooze that has ended is ended first, as every read of the
    findings does: today's point is the summary's total."""
    await end_expired_snoozes(session)
    today = utcnow().date()
    rows = await FindingHistoryRepository(session).open_waste_by_day(
        today - dt.timedelta(days=days - 1), today
    )
    return [OpenWasteDay(day, count, usd) for day, count, usd in rows]
