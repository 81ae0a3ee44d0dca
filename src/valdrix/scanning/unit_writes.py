"""Storing units' outcomes: each unit's row, its findings (priced from the tenant's bill where it
knows their resources), what it no longer sees resolved, and its events for the SSE stream, in
one transaction, written once (a second writer of the same unit, the scan budget's cut-off or a
retried job, writes nothing).

A scan's units finish by the hundred, a few milliseconds apart, and a transaction costs the
same dozen statements for one unit as for fifty (the claim, the bill, the known findings, the
inserts and updates with their history, the resolution, the events under the scan's lock). So
a scan's ``UnitWriter`` writes the units that finished while it was writing the previous ones
together, in one transaction: one unit waits at most for one other transaction of its scan.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.scanning.billed_prices import price_from_bill
from valdrix.scanning.findings import RecordedFinding, UnitWastes, record_findings, resolve_missing
from valdrix.scanning.models import UnitStatus
from valdrix.scanning.registry import load_all_detectors
from valdrix.scanning.repository import ScanEventRepository, ScanRepository
from valdrix.scanning.scan_context import ScanContext, UnitOutcome

# Units written in one transaction at most (their findings are read and written in bulk).
BATCH_UNITS = 64


class UnitWriter:
    """One scan's unit writes: ``store`` returns once the unit is written (or found written
    before); units stored while a transaction of the scan is open go together in the next.
    ``slot`` bounds the transactions the process's scans hold at once."""

    def __init__(
        self,
        context: ScanContext,
        slot: Callable[[], AbstractAsyncContextManager[Any]],
    ) -> None:
        self._context, self._slot = context, slot
        self._waiting: list[tuple[UnitOutcome, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def store(self, outcome: UnitOutcome) -> None:
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, written))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_waiting())
        # A unit cancelled here (the scan's budget ran out) leaves its write to go on: the
        # cut-off waits for it with ``flush`` and writes only the units still unwritten.
        await written

    async def flush(self) -> None:
        """Wait until every unit stored so far is written (or has failed)."""
        while self._writing is not None and not self._writing.done():
            await asyncio.shield(self._writing)

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:BATCH_UNITS], self._waiting[BATCH_UNITS:]
            try:
                async with self._slot():
                    await store_units(self._context, [outcome for outcome, _ in batch])
            except asyncio.CancelledError:
                # The writer itself cancelled (the worker stopping): no unit waits forever.
                for _, written in batch + self._waiting:
                    written.cancel()
                raise
            except Exception:
                # One unit's trouble must not cost the others theirs: each alone, then.
                for outcome, written in batch:
                    try:
                        async with self._slot():
                            await store_units(self._context, [outcome])
                    except Exception as exc:  # its own unit's error, raised to it
                        _settle(written, exc)
                    else:
                        _settle(written, None)
            else:
                for _, written in batch:
                    _settle(written, None)


def _settle(written: asyncio.Future[None], error: Exception | None) -> None:
    if written.done():  # its unit was cancelled meanwhile
        return
    if error is None:
        written.set_result(None)
    else:
        written.set_exception(error)


async def store_units(context: ScanContext, outcomes: Sequence[UnitOutcome]) -> None:
    """One transaction for the units: their statuses, their findings, their events (a
    consistent step), each unit written once (the first outcome of a unit given twice)."""
    now = utcnow()
    async with unit_of_work(context.runtime.sessions, context.tenant_id) as session:
        first_of: dict[tuple[str, str], UnitOutcome] = {}
        for outcome in outcomes:
            first_of.setdefault((outcome.region, outcome.detector), outcome)
        firsts = list(first_of.values())
        # In one order for every writer: two writing the same units (a retried job beside its
        # first attempt) wait for each other instead of deadlocking.
        claimed = await ScanRepository(session).claim_units(
            [
                {
                    "tenant_id": context.tenant_id,
                    "scan_id": context.scan_id,
                    "region": outcome.region,
                    "detector": outcome.detector,
                    "status": outcome.status.value,
                    "reason": outcome.reason,
                    "findings_count": _findings_count(outcome),
                    "started_at": outcome.started_at or now,
                    "finished_at": now,
                }
                for outcome in sorted(firsts, key=lambda o: (o.region, o.detector))
            ]
        )
        # The others were written by an earlier attempt, or just before the scan budget's end.
        mine = [o for o in firsts if (o.region, o.detector) in claimed]
        if not mine:
            return
        ok = [o for o in mine if o.status == UnitStatus.ok]
        recorded = await _record(context, session, [o for o in ok if o.wastes], now)
        detectors = load_all_detectors()
        await resolve_missing(
            session,
            scan_id=context.scan_id,
            connection_id=context.connection.id,
            # A connection-wide detector saw every region.
            units=[
                (None if detectors.get(o.detector).connection_wide else o.region, o.detector)
                for o in ok
            ],
            now=now,
        )
        announced: list[tuple[str, dict[str, Any]]] = []
        for outcome in mine:
            findings = recorded.get((outcome.region, outcome.detector), [])
            announced += [
                (
                    "finding",
                    {
                        "finding_id": str(finding.id),
                        "detector": outcome.detector,
                        "region": finding.region,
                        "resource_id": finding.resource_id,
                        "monthly_cost_usd": None
                        if finding.monthly_cost_usd is None
                        else str(finding.monthly_cost_usd),
                        "cost_basis": finding.cost_basis,
                    },
                )
                for finding in findings
            ]
            announced.append(
                (
                    "unit.finished",
                    {
                        "region": outcome.region,
                        "detector": outcome.detector,
                        "status": outcome.status.value,
                        "reason": outcome.reason,
                        "findings": len(findings),
                    },
                )
            )
        await ScanEventRepository(session).add_many(
            context.tenant_id, context.scan_id, announced, now
        )
    # Counted once committed: a batch that fails is written again, unit by unit.
    for outcome in mine:
        metrics.SCAN_UNITS_TOTAL.labels(detector=outcome.detector, outcome=outcome.status).inc()
        found = len(recorded.get((outcome.region, outcome.detector), []))
        metrics.FINDINGS_RECORDED_TOTAL.labels(detector=outcome.detector).inc(found)


def _findings_count(outcome: UnitOutcome) -> int:
    """The findings an ok unit records: one per resource (and region) it reports."""
    if outcome.status != UnitStatus.ok:
        return 0
    return len({(w.region or outcome.region, w.resource_id) for w in outcome.wastes})


async def _record(
    context: ScanContext, session: AsyncSession, outcomes: list[UnitOutcome], now: dt.datetime
) -> dict[tuple[str, str], list[RecordedFinding]]:
    """The units' findings, priced from the tenant's bill where it knows their resources."""
    if not outcomes:
        return {}
    detectors = load_all_detectors()
    priced = await price_from_bill(
        session,
        [(o.wastes, detectors.get(o.detector).prices_whole_resource) for o in outcomes],
        now.date(),
    )
    # Not written back into the outcomes: a batch that fails is written again unit by unit,
    # and pricing already-priced wastes would take their billed figure for the list price.
    recorded = await record_findings(
        session,
        tenant_id=context.tenant_id,
        scan_id=context.scan_id,
        connection_id=context.connection.id,
        provider=context.provider.key,
        account_id=context.session.account_id,
        units=[
            UnitWastes(o.region, o.detector, wastes)
            for o, wastes in zip(outcomes, priced, strict=True)
        ],
        now=now,
    )
    return {(o.region, o.detector): r for o, r in zip(outcomes, recorded, strict=True)}
