"""The findings lifecycle: record what scans see, resolve what they stop seeing, let people
snooze or dismiss, and keep the history of every change."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
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


async def record_findings(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    scan_id: uuid.UUID,
    connection_id: uuid.UUID,
    account_id: str,
    region: str,
    detector: str,
    wastes: Sequence[Waste],
    now: dt.datetime,
) -> list[Finding]:
    """Insert new findings, refresh known ones; a resolved finding seen again reopens."""
    by_print = {fingerprint("aws", account_id, region, w.resource_id, detector): w for w in wastes}
    existing = await FindingRepository(session).by_fingerprints(list(by_print))
    recorded: list[Finding] = []
    for print_, waste in by_print.items():
        finding = existing.get(print_)
        values: dict[str, Any] = {
            "resource_type": waste.resource_type,
            "resource_name": waste.resource_name,
            "reason": waste.reason,
            "monthly_cost_usd": waste.price.monthly_usd,
            "cost_basis": waste.price.basis,
            "price_detail": waste.price.detail,
            "evidence": waste.evidence,
            "tags": waste.tags,
            "last_seen_at": now,
            "last_scan_id": scan_id,
        }
        if finding is None:
            finding = Finding(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                fingerprint=print_,
                connection_id=connection_id,
                provider="aws",
                account_id=account_id,
                region=region,
                detector=detector,
                resource_id=waste.resource_id,
                status=FindingStatus.open.value,
                first_seen_at=now,
                **values,
            )
            session.add(finding)
            _history(
                session,
                finding,
                FindingStatus.open.value,
                from_status=None,
                actor=SCANNER_ACTOR,
                note="first seen",
                scan_id=scan_id,
            )
        else:
            for name, value in values.items():
                setattr(finding, name, value)
            if finding.status == FindingStatus.resolved.value:
                _history(
                    session,
                    finding,
                    FindingStatus.open.value,
                    from_status=finding.status,
                    actor=SCANNER_ACTOR,
                    note="seen again",
                    scan_id=scan_id,
                )
                finding.status, finding.resolved_at = FindingStatus.open.value, None
        recorded.append(finding)
    await session.flush()
    return recorded


async def resolve_missing(
    session: AsyncSession,
    *,
    scan_id: uuid.UUID,
    connection_id: uuid.UUID,
    region: str,
    detector: str,
    now: dt.datetime,
) -> int:
    """After a complete (region x detector) unit, what it no longer sees is resolved."""
    missing = await FindingRepository(session).not_seen_in(
        connection_id=connection_id, region=region, detector=detector, scan_id=scan_id
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
) -> list[Finding]:
    await end_expired_snoozes(session)
    return await FindingRepository(session).page(
        filters=filters, sort=sort, descending=descending, offset=offset, limit=limit
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
    if status == FindingStatus.resolved:
        raise InvalidInput("status: findings are resolved by scans, not by hand")
    if status == FindingStatus.snoozed:
        if snoozed_until is None or snoozed_until <= utcnow():
            raise InvalidInput("snoozed_until: snoozing needs a date in the future")
        if not note:
            raise InvalidInput("note: say why the finding is snoozed")
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
    await session.flush()
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
    )
    return finding


async def finding_history(
    session: AsyncSession, actor: Principal, finding_id: uuid.UUID
) -> list[FindingHistory]:
    await get_finding(session, actor, finding_id)
    return await FindingHistoryRepository(session).for_finding(finding_id)


async def waste_summary(
    session: AsyncSession, actor: Principal
) -> list[tuple[str, str, int, Decimal]]:
    await end_expired_snoozes(session)
    return await FindingRepository(session).summary()
