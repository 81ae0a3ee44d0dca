"""The scan engine: (region x detector) units run concurrently under budgets.

- The connection's provider (``scanning.providers``) opens it, names the scan's regions (its
  partitions: AWS regions, Azure subscriptions x locations, GCP projects x regions ...), builds
  the clients its detectors use, prices what they find and classifies their errors; the engine
  names no cloud.
- One process-wide thread pool (``VALDRIX_SCAN_CONCURRENCY`` threads) caps cloud work across every
  scan a worker runs; cloud SDKs are synchronous, so each unit runs in a thread.
- Each region has a budget (``VALDRIX_SCAN_REGION_BUDGET_SECONDS``, 30 s) counted from its first
  unit's start; the whole scan has ``VALDRIX_SCAN_BUDGET_SECONDS`` (300 s). A unit that overruns,
  is denied, or fails is recorded with its own status and reason; the others carry on.
- Findings are persisted as each unit finishes (never held until the end), with an event per
  finding for the SSE stream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import structlog

from valdrix.connections.models import CloudConnection
from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.scanning.base import IGNORE_TAG, Detector, RegionScope, Waste
from valdrix.scanning.billed_prices import price_from_bill
from valdrix.scanning.findings import RecordedFinding, record_findings, resolve_missing
from valdrix.scanning.flows import ScanFinished, scan_finished
from valdrix.scanning.models import ScanStatus, ScanUnit, UnitStatus
from valdrix.scanning.providers.base import ProviderAccessError, ProviderSession, ScanProvider
from valdrix.scanning.registry import load_all_detectors, load_all_providers
from valdrix.scanning.repository import ScanEventRepository, ScanRepository
from valdrix.scanning.resources import account_size

log = structlog.get_logger(__name__)


@lru_cache(maxsize=4)
def _thread_pool(size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix="valdrix-scan")


def excluded(waste: Waste, rules: list[dict[str, Any]]) -> bool:
    """``valdrix:ignore=true`` and the tenant's tag rules (null value: any) skip a resource."""
    if waste.tags.get(IGNORE_TAG, "").strip().lower() == "true":
        return True
    return any(
        rule["key"] in waste.tags and rule.get("value") in (None, waste.tags[rule["key"]])
        for rule in rules
    )


@dataclass
class UnitOutcome:
    region: str  # the provider's partition
    detector: str
    status: UnitStatus
    reason: str | None = None
    wastes: list[Waste] = field(default_factory=list)
    started_at: Any = None


@dataclass
class ScanContext:
    runtime: Runtime
    tenant_id: uuid.UUID
    scan_id: uuid.UUID
    connection: CloudConnection
    provider: ScanProvider[Any]
    session: ProviderSession
    region_deadlines: dict[str, float] = field(default_factory=dict)


async def run_scan(runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID) -> str:
    """Run one scan to its end; returns its final status."""
    started = time.monotonic()
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        scan = await ScanRepository(session).get(scan_id)
        if scan is None or scan.status not in (ScanStatus.queued, ScanStatus.running):
            return scan.status if scan else "missing"
        connection = await session.get(CloudConnection, scan.connection_id)
        assert connection is not None
        scan.status, scan.started_at = ScanStatus.running.value, utcnow()
        ScanEventRepository(session).add_event(tenant_id, scan_id, "scan.started", {}, utcnow())
    with structlog.contextvars.bound_contextvars(
        scan_id=str(scan_id), connection_id=str(connection.id)
    ):
        return await _scan_connection(runtime, tenant_id, scan_id, connection, started)


async def _scan_connection(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    scan_id: uuid.UUID,
    connection: CloudConnection,
    started: float,
) -> str:
    settings = runtime.settings
    try:
        context, regions = await asyncio.to_thread(
            _prepare, runtime, tenant_id, scan_id, connection
        )
    except ProviderAccessError as exc:
        return await _finish(
            runtime, tenant_id, scan_id, [], ScanStatus.failed, exc.reason, started, 0
        )
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        scan = await ScanRepository(session).get(scan_id)
        assert scan is not None
        scan.regions = regions
    detectors = load_all_detectors().for_provider(context.provider.key)
    tasks = {
        asyncio.create_task(_run_unit(context, region, detector)): (region, detector.key)
        for region in regions
        for detector in detectors
    }
    done, pending = await asyncio.wait(tasks, timeout=settings.scans.budget_seconds)
    outcomes = [task.result() for task in done]
    for task in pending:
        task.cancel()
        region, key = tasks[task]
        outcome = UnitOutcome(
            region,
            key,
            UnitStatus.timed_out,
            f"the scan's {settings.scans.budget_seconds:g} s budget ran out",
        )
        await _store_unit(context, outcome)
        outcomes.append(outcome)
    status = _scan_status(outcomes, scan_budget_hit=bool(pending))
    return await _finish(
        runtime, tenant_id, scan_id, outcomes, status, None, started, context.session.resources_seen
    )


def _prepare(
    runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID, connection: CloudConnection
) -> tuple[ScanContext, list[str]]:
    provider_class = load_all_providers().find(connection.provider)
    if provider_class is None:
        raise ProviderAccessError(f"Valdrix cannot scan {connection.provider!r} connections")
    provider = provider_class()
    session = provider.open(runtime, connection)
    regions = provider.partitions(session)
    context = ScanContext(runtime, tenant_id, scan_id, connection, provider, session)
    return context, regions


async def _run_unit(context: ScanContext, region: str, detector_cls: type[Detector]) -> UnitOutcome:
    settings = context.runtime.settings
    # Waiting for a free slot is not the region's fault: its budget starts when it runs.
    async with _slots("units", settings.scans.concurrency):
        started_at = utcnow()
        deadline = context.region_deadlines.setdefault(
            region, time.monotonic() + settings.scans.region_budget_seconds
        )
        outcome = await _detect(context, region, detector_cls, deadline, started_at)
    outcome.started_at = started_at
    # Many scans at once must not queue for more connections than the pool has.
    async with _slots("store", max(1, settings.db_pool_size // 2)):
        await _store_unit(context, outcome)
    return outcome


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def _slots(name: str, size: int) -> asyncio.Semaphore:
    """A process-wide cap (one semaphore per event loop and name)."""
    per_loop = _SLOTS.setdefault(asyncio.get_running_loop(), {})
    if name not in per_loop:
        per_loop[name] = asyncio.Semaphore(size)
    return per_loop[name]


async def _detect(
    context: ScanContext,
    region: str,
    detector_cls: type[Detector],
    deadline: float,
    started_at: dt.datetime,
) -> UnitOutcome:
    settings = context.runtime.settings
    detector = detector_cls()
    overrides = context.connection.thresholds.get(detector_cls.key, {})
    thresholds = detector_cls.thresholds.model_validate(overrides)
    scope = RegionScope(
        account_id=context.session.account_id,
        region=region,
        client=context.provider.client_factory(context.session, region),
        prices=context.provider.prices(),
        now=started_at,
    )
    loop = asyncio.get_running_loop()
    pool = _thread_pool(settings.scans.concurrency)
    try:
        wastes = await asyncio.wait_for(
            loop.run_in_executor(pool, lambda: list(detector.detect(scope, thresholds))),
            timeout=max(0.0, deadline - time.monotonic()),
        )
    except TimeoutError:
        return UnitOutcome(
            region,
            detector_cls.key,
            UnitStatus.timed_out,
            f"{context.provider.partition} {region} did not answer within its "
            f"{settings.scans.region_budget_seconds:g} s budget",
        )
    except Exception as exc:
        status, reason = context.provider.classify(exc)
        return UnitOutcome(region, detector_cls.key, status, reason)
    rules = context.connection.tag_exclusions or []
    kept = [w for w in wastes if not excluded(w, rules)]
    return UnitOutcome(region, detector_cls.key, UnitStatus.ok, None, kept)


async def _store_unit(context: ScanContext, outcome: UnitOutcome) -> None:
    """One transaction per unit: its findings, its status, its events (a consistent step)."""
    now = utcnow()
    metrics.SCAN_UNITS_TOTAL.labels(detector=outcome.detector, outcome=outcome.status).inc()
    async with unit_of_work(context.runtime.sessions, context.tenant_id) as session:
        if await ScanRepository(session).has_unit(
            context.scan_id, outcome.region, outcome.detector
        ):
            return  # stored just before the scan budget cancelled its task
        events = ScanEventRepository(session)
        findings: list[RecordedFinding] = []
        if outcome.status == UnitStatus.ok:
            outcome.wastes = await price_from_bill(session, outcome.wastes, now.date())
            findings = await record_findings(
                session,
                tenant_id=context.tenant_id,
                scan_id=context.scan_id,
                connection_id=context.connection.id,
                provider=context.provider.key,
                account_id=context.session.account_id,
                region=outcome.region,
                detector=outcome.detector,
                wastes=outcome.wastes,
                now=now,
            )
            await resolve_missing(
                session,
                scan_id=context.scan_id,
                connection_id=context.connection.id,
                region=outcome.region,
                detector=outcome.detector,
                now=now,
            )
        session.add(
            ScanUnit(
                tenant_id=context.tenant_id,
                scan_id=context.scan_id,
                region=outcome.region,
                detector=outcome.detector,
                status=outcome.status.value,
                reason=outcome.reason,
                findings_count=len(findings),
                started_at=outcome.started_at or now,
                finished_at=now,
            )
        )
        metrics.FINDINGS_RECORDED_TOTAL.labels(detector=outcome.detector).inc(len(findings))
        announced: list[tuple[str, dict[str, Any]]] = [
            (
                "finding",
                {
                    "finding_id": str(finding.id),
                    "detector": outcome.detector,
                    "region": outcome.region,
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
        await events.add_many(context.tenant_id, context.scan_id, announced, now)


def _scan_status(outcomes: list[UnitOutcome], *, scan_budget_hit: bool) -> ScanStatus:
    if scan_budget_hit:
        return ScanStatus.timed_out
    ok = sum(1 for o in outcomes if o.status == UnitStatus.ok)
    if outcomes and ok == len(outcomes):
        return ScanStatus.completed
    return ScanStatus.partial if ok else ScanStatus.failed


async def _finish(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    scan_id: uuid.UUID,
    outcomes: list[UnitOutcome],
    status: ScanStatus,
    reason: str | None,
    started: float,
    resources_seen: int,
) -> str:
    duration = time.monotonic() - started
    units = Counter(o.status.value for o in outcomes)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        scan = await ScanRepository(session).get(scan_id)
        assert scan is not None
        findings = [w for o in outcomes for w in o.wastes]
        scan.status, scan.status_reason = status.value, reason or _reason(units)
        scan.finished_at = utcnow()
        scan.resources_seen = resources_seen
        scan.findings_count = len(findings)
        scan.monthly_waste_usd = sum(
            (w.price.monthly_usd for w in findings if w.price.monthly_usd is not None),
            start=Decimal("0"),
        )
        ScanEventRepository(session).add_event(
            tenant_id,
            scan_id,
            "scan.finished",
            {
                "status": status.value,
                "reason": scan.status_reason,
                "findings": len(findings),
                "monthly_waste_usd": str(scan.monthly_waste_usd),
                "units": dict(units),
            },
            utcnow(),
        )
        connection_id = scan.connection_id
        # What follows a scan (its analysis job ...) commits with the scan's end; the scan
        # never waits for it.
        await scan_finished(session, runtime.settings, ScanFinished(tenant_id, scan_id))
    size = account_size(resources_seen)
    metrics.SCANS_TOTAL.labels(outcome=status.value).inc()
    metrics.ZOMBIE_SCAN_LATENCY.labels(account_size=size).observe(duration)
    event = "scan.timeout" if status == ScanStatus.timed_out else "scan.complete"
    log.info(
        event,
        tenant_id=str(tenant_id),
        scan_id=str(scan_id),
        connection_id=str(connection_id),
        status=status.value,
        duration_seconds=round(duration, 2),
        findings=len(findings),
        resources_seen=resources_seen,
        account_size=size,
        units=dict(units),
    )
    return status.value


def _reason(units: Counter[str]) -> str | None:
    bad = {k: v for k, v in units.items() if k != UnitStatus.ok}
    if not bad:
        return None
    return ", ".join(f"{count} unit(s) {status}" for status, count in sorted(bad.items()))
