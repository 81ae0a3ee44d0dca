"""The scan engine: (region x detector) units run concurrently under budgets.

- The connection's provider (``scanning.providers``) opens it, names the scan's regions (its
  partitions: AWS regions, Azure subscriptions x locations, GCP projects x regions ...), builds
  the clients its detectors use, prices what they find and classifies their errors; the engine
  names no cloud.
- Each scan runs its units on its own threads (``VALDRIX_SCAN_CONCURRENCY`` of them, see
  ``unit_pool``): cloud SDKs are synchronous, and a thread stuck on a hung cloud must cost only
  its own scan.
- Each region has a budget (``VALDRIX_SCAN_REGION_BUDGET_SECONDS``, 30 s) from its first unit's
  start, shared by its units until one of them answers; from then on each of its units has the
  whole budget from when it has its thread (waiting for one is not its region's fault), until
  one runs out of it (``RegionBudgets``). The clients' timeouts derive from what is left of the
  budget. The whole scan has ``VALDRIX_SCAN_BUDGET_SECONDS`` (300 s). A unit that overruns, is
  denied, or fails is recorded with its own status and reason; the others carry on.
- Findings are persisted as each unit finishes (never held until the end), with an event per
  finding for the SSE stream. A unit is written once: a retried job resumes its scan with the
  units not yet written, and the scan ends once (``_finish`` under the scan's row lock), its
  totals read back from what was written.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import traceback
import uuid
import weakref
from collections import Counter
from typing import Any

import structlog

from valdrix.connections.models import CloudConnection
from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.logging import log_with_alias
from valdrix.runtime import Runtime
from valdrix.scanning.base import IGNORE_TAG, Detector, DetectorSkipped, RegionScope, Waste
from valdrix.scanning.flows import ScanFinished, scan_finished
from valdrix.scanning.models import FINISHED_SCAN_STATUSES, ScanStatus, UnitStatus
from valdrix.scanning.providers.base import ProviderAccessError, ProviderSession, ScanProvider
from valdrix.scanning.registry import load_all_detectors, load_all_providers
from valdrix.scanning.repository import ScanEventRepository, ScanRepository
from valdrix.scanning.resources import account_size
from valdrix.scanning.scan_context import ScanContext, UnitOutcome
from valdrix.scanning.shared_reads import SharedReads
from valdrix.scanning.summary import scan_overlap_usd
from valdrix.scanning.unit_pool import Thread, UnitPool
from valdrix.scanning.unit_writes import UnitWriter, store_units

log = structlog.get_logger(__name__)


def excluded(waste: Waste, rules: list[dict[str, Any]]) -> bool:
    """``valdrix:ignore=true`` and the tenant's tag rules (null value: any) skip a resource."""
    if waste.tags.get(IGNORE_TAG, "").strip().lower() == "true":
        return True
    return any(
        rule["key"] in waste.tags and rule.get("value") in (None, waste.tags[rule["key"]])
        for rule in rules
    )


async def run_scan(
    runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID, *, job_id: int | None = None
) -> str:
    """Run one scan to its end, as job ``job_id`` when a job runs it; returns its final
    status. A scan an earlier attempt began (its worker died) is resumed: the units it wrote
    are kept, the others run."""
    started = time.monotonic()
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        scan = await ScanRepository(session).for_update(scan_id)
        if scan is None or scan.status not in (ScanStatus.queued, ScanStatus.running):
            return scan.status if scan else "missing"
        connection = await session.get(CloudConnection, scan.connection_id)
        assert connection is not None
        resumed = scan.status == ScanStatus.running
        written = {(u.region, u.detector) for u in await ScanRepository(session).units(scan_id)}
        scan.status, scan.job_id = ScanStatus.running.value, job_id
        scan.started_at = scan.started_at or utcnow()
        ScanEventRepository(session).add_event(
            tenant_id,
            scan_id,
            "scan.resumed" if resumed else "scan.started",
            {"units_kept": len(written)} if resumed else {},
            utcnow(),
        )
    with structlog.contextvars.bound_contextvars(
        scan_id=str(scan_id), connection_id=str(connection.id)
    ):
        if resumed:
            log.warning("scan.resumed", tenant_id=str(tenant_id), units_kept=len(written))
        return await _scan_connection(runtime, tenant_id, scan_id, connection, written, started)


async def _scan_connection(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    scan_id: uuid.UUID,
    connection: CloudConnection,
    written: set[tuple[str, str]],
    started: float,
) -> str:
    settings = runtime.settings
    pool = UnitPool(settings.scans.concurrency)
    try:
        try:
            provider, provider_session, regions = await asyncio.to_thread(
                _prepare, runtime, connection
            )
        except ProviderAccessError as exc:
            return await finish_scan(
                runtime, tenant_id, scan_id, ScanStatus.failed, exc.reason, 0, started=started
            )
        context = ScanContext(
            runtime,
            tenant_id,
            scan_id,
            connection,
            provider,
            provider_session,
            pool,
            partitions=tuple(regions),
        )
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            scan = await ScanRepository(session).get(scan_id)
            assert scan is not None
            scan.regions = regions
        detectors = load_all_detectors().for_provider(provider.key)
        # Many scans at once must not queue for more connections than the pool has.
        store_slots = max(1, settings.db_pool_size // 2)
        writer = UnitWriter(context, lambda: _slots("store", store_slots))
        tasks = {
            asyncio.create_task(_run_unit(context, writer, region, detector)): (
                region,
                detector.key,
            )
            for region, detector in provider.units(regions, detectors)
            if (region, detector.key) not in written
        }
        budget_hit = False
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=settings.scans.budget_seconds)
            budget_hit = bool(pending)
            await _cut_off(context, writer, {task: tasks[task] for task in pending})
            await _record_unstored(context, {task: tasks[task] for task in done})
        return await finish_scan(
            runtime,
            tenant_id,
            scan_id,
            ScanStatus.timed_out if budget_hit else None,
            None,
            provider_session.resources_seen,
            started=started,
        )
    finally:
        pool.close()


async def _cut_off(
    context: ScanContext, writer: UnitWriter, pending: dict[asyncio.Task[UnitOutcome], Any]
) -> None:
    """The scan's budget ran out: cancel the unfinished units, wait until they have let go
    and the units being written have committed or rolled back, then record each one not
    written as timed out."""
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await writer.flush()
    if not pending:
        return
    reason = f"the scan's {context.runtime.settings.scans.budget_seconds:g} s budget ran out"
    await store_units(
        context, [UnitOutcome(r, key, UnitStatus.timed_out, reason) for r, key in pending.values()]
    )


async def _record_unstored(
    context: ScanContext, done: dict[asyncio.Task[UnitOutcome], tuple[str, str]]
) -> None:
    """Units whose outcome could not be written (even alone: e.g. a value their cloud gave
    that does not fit its column) are recorded ``failed`` with the error, without findings:
    a scan must not look complete with a unit's results missing."""
    failed = []
    for task, (region, key) in done.items():
        if task.cancelled() or (raised := task.exception()) is None:
            continue
        error = _first_line(raised)
        log.error(
            "scan.unit_unstored",
            tenant_id=str(context.tenant_id),
            region=region,
            detector=key,
            error=error,
            # Preformatted: a renderer's rich traceback of a database error's locals is slow.
            traceback="".join(traceback.format_exception(raised))[-8000:],
        )
        reason = f"its results could not be stored: {error}"[:500]
        failed.append(UnitOutcome(region, key, UnitStatus.failed, reason))
    if failed:
        await store_units(context, failed)


def _first_line(error: BaseException) -> str:
    """The database's own words (not the statement and its parameters SQLAlchemy adds)."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


def _prepare(
    runtime: Runtime, connection: CloudConnection
) -> tuple[ScanProvider[Any], ProviderSession, list[str]]:
    provider_class = load_all_providers().find(connection.provider)
    if provider_class is None:
        raise ProviderAccessError(f"Valdrix cannot scan {connection.provider!r} connections")
    provider = provider_class()
    session = provider.open(runtime, connection)
    return provider, session, provider.partitions(session)


async def _run_unit(
    context: ScanContext, writer: UnitWriter, region: str, detector_cls: type[Detector]
) -> UnitOutcome:
    budget = context.runtime.settings.scans.region_budget_seconds
    async with context.pool.thread() as thread:
        started_at = utcnow()
        deadline = context.budgets.deadline(region, time.monotonic(), budget)
        outcome = await _detect(context, thread, region, detector_cls, deadline, started_at)
    outcome.started_at = started_at
    await writer.store(outcome)
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
    thread: Thread,
    region: str,
    detector_cls: type[Detector],
    deadline: float,
    started_at: dt.datetime,
) -> UnitOutcome:
    settings = context.runtime.settings
    budgets = context.budgets
    unanswered = (
        f"{context.provider.partition} {region} did not answer within its "
        f"{settings.scans.region_budget_seconds:g} s budget"
    )

    def detect() -> list[Waste]:
        # In the unit's thread: what the region did is known before the thread is free again.
        detector = detector_cls()
        overrides = context.connection.thresholds.get(detector_cls.key, {})
        thresholds = detector_cls.thresholds.model_validate(overrides)
        scope = RegionScope(
            account_id=context.session.account_id,
            region=region,
            client=context.provider.client_factory(context.session, region, deadline),
            prices=context.provider.prices(),
            now=started_at,
            shared=context.shared_reads.setdefault(region, SharedReads()),
        )
        try:
            wastes = list(detector.detect(scope, thresholds))
        except Exception as exc:
            if context.provider.classify(exc)[0] == UnitStatus.timed_out:
                budgets.timed_out(region, time.monotonic())
            else:
                budgets.answered(region)
            raise
        budgets.answered(region)
        return _kept(context, detector_cls, wastes)

    try:
        if deadline <= time.monotonic():
            raise TimeoutError  # its region has not answered within the budget it shares
        wastes = await asyncio.wait_for(thread.start(detect), timeout=deadline - time.monotonic())
    except TimeoutError:
        budgets.timed_out(region, time.monotonic())
        return UnitOutcome(region, detector_cls.key, UnitStatus.timed_out, unanswered)
    except DetectorSkipped as skipped:
        return UnitOutcome(region, detector_cls.key, UnitStatus.skipped, skipped.reason[:500])
    except Exception as exc:
        status, reason = context.provider.classify(exc)
        # The provider's own timeouts come from the same budget: the same answer.
        reason = unanswered if status == UnitStatus.timed_out else reason
        return UnitOutcome(region, detector_cls.key, status, reason)
    return UnitOutcome(region, detector_cls.key, UnitStatus.ok, None, wastes)


def _kept(context: ScanContext, detector_cls: type[Detector], wastes: list[Waste]) -> list[Waste]:
    """What the unit reports: the tenant's tag exclusions applied, and a connection-wide
    detector's findings kept to the partitions the scan covers."""
    rules = context.connection.tag_exclusions or []
    kept = [w for w in wastes if not excluded(w, rules)]
    if detector_cls.connection_wide:
        # It sees the whole account: of what names its region, only what lies in the partitions
        # the scan covers counts (the connection's allow-list).
        kept = [w for w in kept if w.region is None or w.region in context.partitions]
    return kept


def _scan_status(units: Counter[str]) -> ScanStatus:
    # A skipped unit looked and had nothing to judge: no less complete than an ok one.
    ok = units.get(UnitStatus.ok, 0) + units.get(UnitStatus.skipped, 0)
    if ok and ok == units.total():
        return ScanStatus.completed
    return ScanStatus.partial if ok else ScanStatus.failed


async def finish_scan(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    scan_id: uuid.UUID,
    status: ScanStatus | None,
    reason: str | None,
    resources_seen: int,
    *,
    started: float | None,
) -> str:
    """End the scan, unless something ended it first (then its status stands). ``status``
    None: from its units. Counts and totals are read from what the units wrote, so a resumed
    scan counts the units of every attempt. ``started`` (``time.monotonic()``) times a scan
    that ran to its end; an interrupted one has no latency to report."""
    duration = None if started is None else time.monotonic() - started
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        scans = ScanRepository(session)
        scan = await scans.for_update(scan_id)
        assert scan is not None
        if scan.status in FINISHED_SCAN_STATUSES:
            return scan.status
        units = Counter(u.status for u in await scans.units(scan_id))
        status = status or _scan_status(units)
        findings, monthly_waste = await scans.findings_seen(scan_id)
        scan.status, scan.status_reason = status.value, reason or _reason(units)
        scan.finished_at = utcnow()
        scan.resources_seen = resources_seen
        scan.findings_count = findings
        # Counted once: money several findings price is left out of all but one.
        overlap = await scan_overlap_usd(session, scan_id)
        scan.monthly_waste_usd, scan.monthly_waste_overlap_usd = monthly_waste - overlap, overlap
        ScanEventRepository(session).add_event(
            tenant_id,
            scan_id,
            "scan.finished",
            {
                "status": status.value,
                "reason": scan.status_reason,
                "findings": findings,
                "monthly_waste_usd": str(scan.monthly_waste_usd),
                "monthly_waste_gross_usd": str(monthly_waste),
                "monthly_waste_overlap_usd": str(overlap),
                "units": dict(units),
            },
            utcnow(),
        )
        connection_id, scan_reason = scan.connection_id, scan.status_reason
        # What follows a scan (its analysis job ...) commits with the scan's end; the scan
        # never waits for it.
        await scan_finished(session, runtime.settings, ScanFinished(tenant_id, scan_id))
    size = account_size(resources_seen)
    metrics.SCANS_TOTAL.labels(outcome=status.value).inc()
    if duration is not None:
        metrics.ZOMBIE_SCAN_LATENCY.labels(account_size=size).observe(duration)
    log_with_alias(
        log,
        logging.WARNING if status == ScanStatus.interrupted else logging.INFO,
        _END_EVENTS.get(status, "scan.complete"),
        tenant_id=str(tenant_id),
        scan_id=str(scan_id),
        connection_id=str(connection_id),
        status=status.value,
        reason=scan_reason,
        duration_seconds=None if duration is None else round(duration, 2),
        findings=findings,
        resources_seen=resources_seen,
        account_size=size,
        units=dict(units),
    )
    return status.value


_END_EVENTS = {ScanStatus.timed_out: "scan.timeout", ScanStatus.interrupted: "scan.interrupted"}


def _reason(units: Counter[str]) -> str | None:
    bad = {k: v for k, v in units.items() if k not in (UnitStatus.ok, UnitStatus.skipped)}
    if not bad:
        return None
    return ", ".join(f"{count} unit(s) {status}" for status, count in sorted(bad.items()))
