"""Committing a source's batch: the window is replaced atomically and every reading is kept.

One transaction per run: lock the source; delete what the run replaces of its source (the
billing periods a FOCUS delivery is for, or a Cost Explorer window's days); COPY the new records
and roll them up, a group of days at a time (the next group is summed from the spool meanwhile);
settle precedence with other sources of the same charges (see ``BILLING_DATA``); record this
run's reading of every (billing period, day, service, account, currency) (zero for keys that
disappeared); compare each with the key's previous reading and record an adjustment when it
moved more than 2 % and more than the floor; bump the tenant's data version, unless the run
stored exactly what its source's last run did (a re-import of the same file).
Readers see the old window or the new one, never a mix, and never a total older than the last
committed run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing, suppress
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import structlog

from valdrix.costs.ingest.records import RecordSpool, SourceBatch, resource_keys
from valdrix.costs.models import CostAdjustment, CostReading, CostRun, RunStatus, SourceKind
from valdrix.costs.repositories.ingest import (
    STAGE_COLUMNS,
    IngestRepository,
    ReadingKey,
    ReplaceScope,
    seen_by_itself,
    seen_from_its_payer,
)
from valdrix.kit.db import unit_of_work
from valdrix.kit.money import plain_text
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime

log = structlog.get_logger(__name__)

RESTATEMENT_PERCENT = Decimal(2)
ZERO = Decimal(0)
# Precedence between sources of the same charges (account and billing period): billing data
# (FOCUS, what the invoice is made of) over day totals (Cost Explorer); among deliveries of
# billing data, the newest.
BILLING_DATA = (SourceKind.focus_file.value,)
SUPERSEDED_BY_BILLING_DATA = (SourceKind.focus_file.value, SourceKind.aws_cost_explorer.value)
# Among day totals, a payer's Cost Explorer (its organization's bill, split by linked account)
# over a linked account's own (a connection of its own, to scan it): they are the same charges.
DAY_TOTALS = (SourceKind.aws_cost_explorer.value,)
# A change too large to read as a percentage (a fraction of a cent becoming dollars) is shown
# as the old and new amounts alone; the column holds 8 integer digits.
MAX_CHANGE_PERCENT = Decimal("99999999.9999")
# Records per block of CSV sent to COPY (about 10 MB of text).
CSV_BLOCK_RECORDS = 32_768


async def commit_batch(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    batch: SourceBatch,
    *,
    actor: str,
    connection_id: uuid.UUID | None = None,
) -> CostRun:
    """Store ``batch`` as one committed run of its source, replacing its window (and close its
    records' spool)."""
    try:
        return await _commit(runtime, tenant_id, batch, actor=actor, connection_id=connection_id)
    finally:
        batch.records.close()


async def _commit(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    batch: SourceBatch,
    *,
    actor: str,
    connection_id: uuid.UUID | None,
) -> CostRun:
    started = utcnow()
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        costs = IngestRepository(session)
        await costs.ensure_partitions(batch.window_start, batch.window_end)
        source = await costs.source_for_update(
            tenant_id, batch.source_kind, batch.source_key, connection_id
        )
        await costs.serialize_imports(tenant_id)
        last_run = await costs.last_committed_run(source.id)
        run = CostRun(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            source_id=source.id,
            source_kind=batch.source_kind,
            source_key=batch.source_key,
            status=RunStatus.committed.value,
            window_start=batch.window_start,
            window_end=batch.window_end,
            rows_read=batch.rows_read,
            rows_accepted=batch.rows_read,
            rows_rejected=0,
            totals={},
            errors=[],
            details=batch.details,
            records_fingerprint=batch.records.fingerprint,
            actor=actor,
            started_at=started,
        )
        session.add(run)
        await session.flush()
        scope = ReplaceScope(source.id, batch.window_start, batch.window_end, batch.billing_periods)
        previous = await costs.latest_readings(scope)
        await costs.delete_scope(scope)
        if replaced := await _replace_earlier_versions(costs, batch, scope):
            run.details = {**run.details, "replaced": replaced}
        yielded = await _store_records(costs, batch, run, source.id)
        if batch.source_kind in BILLING_DATA:
            superseded = await costs.supersede_other_sources(scope, SUPERSEDED_BY_BILLING_DATA)
        else:
            superseded = await costs.supersede_other_sources(
                scope, DAY_TOTALS, mine=seen_from_its_payer, theirs=seen_by_itself, per_day=True
            )
        if superseded:
            run.details = {**run.details, "superseded": superseded}
        await costs.refresh_monthly(scope)
        readings = await costs.scope_readings(scope)
        adjustments = _record_readings(runtime, costs, run, previous, readings, yielded)
        run.adjustments = len(adjustments)
        if not _stores_the_same(run, last_run):
            await costs.bump_version(tenant_id, utcnow())
        run.finished_at = utcnow()
    _announce(run, adjustments)
    return run


async def _replace_earlier_versions(
    costs: IngestRepository, batch: SourceBatch, scope: ReplaceScope
) -> list[dict[str, Any]]:
    """Delete the batch's billing periods from ``batch.replaces_sources`` too (the months
    are summed again with the run's own); says which sources held which periods."""
    replaced = []
    for key, source_id in (await costs.source_ids(batch.replaces_sources)).items():
        earlier = dataclasses.replace(scope, source_id=source_id)
        if periods := await costs.held_periods(earlier):
            await costs.delete_scope(earlier)
            replaced.append({"source": key, "periods": [p.isoformat() for p in periods]})
    return replaced


async def _store_records(
    costs: IngestRepository, batch: SourceBatch, run: CostRun, source_id: uuid.UUID
) -> set[ReadingKey]:
    """Store the batch's records and their roll-up as the run's, and set its totals: a group
    of days at a time (staged by COPY, then moved), while the next group is summed. Returns
    the reading keys it yielded to a source of higher precedence."""
    staged: list[tuple[str, bool, Decimal, Decimal]] = []
    yielded: set[ReadingKey] = set()
    run.records_written = 0
    async with aclosing(_summed_ahead(batch.records)) as groups:
        async for group in groups:
            await costs.stage_records(_csv_blocks(group))
            if batch.source_kind not in BILLING_DATA:
                yielded |= await costs.drop_staged_covered_by(BILLING_DATA)
                yielded |= await costs.drop_staged_covered_by(
                    DAY_TOTALS, covering=seen_from_its_payer, covered=seen_by_itself, per_day=True
                )
            staged += await costs.staged_totals()  # of what is stored, after the drop
            run.records_written += await costs.store_staged_records(
                run.tenant_id, source_id, run.id
            )
            await costs.roll_up_staged(run.tenant_id, source_id, run.id)
            await costs.roll_up_staged_resources(run.tenant_id, source_id)
    run.totals = _totals(staged)
    return yielded


async def _summed_ahead(records: RecordSpool) -> AsyncGenerator[pa.Table]:
    """The spool's groups of days, each summed in a thread while the database stores the one
    before it: reading the spool back and storing records each take a core."""
    groups = records.groups()
    # A thread of the import's own: its future is waited on, not the loop's wrapper of it
    # (cancelling that does not stop a thread that has started).
    summing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cost-sum")
    upcoming = summing.submit(next, groups, None)
    try:
        while (group := await asyncio.wrap_future(upcoming)) is not None:
            upcoming = summing.submit(next, groups, None)
            yield group
    finally:
        # The spool is closed after the commit (or the cancellation): the thread finishes
        # with it first, whatever ends the import, and its own error is not the import's.
        if not upcoming.cancel():
            await _finished(upcoming)
        summing.shutdown(wait=False)


async def _finished(future: Future[Any]) -> None:
    """Wait until ``future``'s thread is done, through any cancellation of the waiting task
    (the task's own cancellation goes on once this returns)."""
    done = asyncio.wrap_future(future)
    while not done.done():
        with suppress(Exception, asyncio.CancelledError):
            await asyncio.shield(done)
    if not done.cancelled():
        done.exception()  # retrieved: the thread's error is not logged as never retrieved


async def _csv_blocks(records: pa.Table) -> AsyncIterator[bytes]:
    """Records as CSV for COPY, a block at a time, encoded off the event loop.

    Every valid value is quoted, so an empty text stays empty and only a missing one is NULL.
    """
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")

    def encode(block: pa.RecordBatch) -> bytes:
        sink = pa.BufferOutputStream()
        keyed = block.append_column("resource_key", resource_keys(block["resource_id"]))
        pacsv.write_csv(keyed.select(STAGE_COLUMNS), sink, options)
        return bytes(sink.getvalue())

    for block in records.to_batches(max_chunksize=CSV_BLOCK_RECORDS):
        yield await asyncio.to_thread(encode, block)


def _stores_the_same(run: CostRun, last_run: CostRun | None) -> bool:
    """The run replaced its source's last run with the very same records, and moved nothing of
    other sources: what readers see did not change, so neither does the data version (and the
    ETag of every cost answer)."""
    return (
        last_run is not None
        and last_run.records_fingerprint == run.records_fingerprint
        and last_run.window_start == run.window_start
        and last_run.window_end == run.window_end
        and last_run.records_written == run.records_written
        and "superseded" not in run.details
        and "replaced" not in run.details
    )


def _totals(staged: list[tuple[str, bool, Decimal, Decimal]]) -> dict[str, Any]:
    """Billed and effective totals per currency, split preliminary / final."""
    totals: dict[str, dict[str, Decimal]] = {}
    for currency, preliminary, billed, effective in staged:
        state = "preliminary" if preliminary else "final"
        entry = totals.setdefault(currency, {})
        for cost, amount in (
            ("billed_cost", billed or ZERO),
            ("effective_cost", effective or ZERO),
        ):
            entry[cost] = entry.get(cost, ZERO) + amount
            entry[f"{state}_{cost}"] = entry.get(f"{state}_{cost}", ZERO) + amount
    return {
        currency: {name: plain_text(amount) for name, amount in values.items()}
        for currency, values in totals.items()
    }


def _record_readings(
    runtime: Runtime,
    costs: IngestRepository,
    run: CostRun,
    previous: dict[ReadingKey, CostReading],
    readings: dict[ReadingKey, tuple[Decimal, Decimal, bool]],
    yielded: set[ReadingKey],
) -> list[CostAdjustment]:
    """A reading of every key the run holds or its source held before, and an adjustment
    where one moved past the thresholds. A key the run yielded to another source (which
    counts those charges now) is left as it was read: the charges did not change."""
    floor = runtime.settings.costs.restatement_floor
    now = utcnow()
    new_readings: list[CostReading] = []
    adjustments: list[CostAdjustment] = []
    for key in readings.keys() | (previous.keys() - yielded):
        period, day, service, account, currency = key
        billed, effective, preliminary = readings.get(key, (ZERO, ZERO, False))
        new_readings.append(
            CostReading(
                tenant_id=run.tenant_id,
                source_id=run.source_id,
                run_id=run.id,
                billing_period_start=period,
                day=day,
                service=service,
                account=account,
                currency=currency,
                billed_cost=billed,
                effective_cost=effective,
                preliminary=preliminary,
                recorded_at=now,
            )
        )
        before = previous.get(key)
        if before is None:
            continue
        change = billed - before.billed_cost
        threshold = abs(before.billed_cost) * RESTATEMENT_PERCENT / 100
        if abs(change) > threshold and abs(change) > floor:
            adjustments.append(
                CostAdjustment(
                    tenant_id=run.tenant_id,
                    source_id=run.source_id,
                    run_id=run.id,
                    previous_run_id=before.run_id,
                    day=day,
                    service=service,
                    account=account,
                    currency=currency,
                    old_billed_cost=before.billed_cost,
                    new_billed_cost=billed,
                    change_percent=_change_percent(before.billed_cost, change),
                    old_preliminary=before.preliminary,
                    new_preliminary=preliminary,
                )
            )
    costs.add_all(new_readings)
    costs.add_all(adjustments)
    return adjustments


def _change_percent(before: Decimal, change: Decimal) -> Decimal | None:
    if before == 0:
        return None
    percent = (change * 100 / abs(before)).quantize(Decimal("0.0001"))
    return percent if abs(percent) <= MAX_CHANGE_PERCENT else None


def _announce(run: CostRun, adjustments: list[CostAdjustment]) -> None:
    # The run's counts reach /metrics from cost_runs (``metrics.COST_RUNS_TOTAL``).
    for adjustment in adjustments:
        log.warning(
            "costs.restatement",
            tenant_id=str(run.tenant_id),
            run_id=str(run.id),
            source=run.source_key,
            day=adjustment.day.isoformat(),
            service=adjustment.service,
            account=adjustment.account,
            currency=adjustment.currency,
            old_billed_cost=str(adjustment.old_billed_cost),
            new_billed_cost=str(adjustment.new_billed_cost),
            change_percent=None
            if adjustment.change_percent is None
            else str(adjustment.change_percent),
        )
    log.info(
        "costs.run.committed",
        tenant_id=str(run.tenant_id),
        run_id=str(run.id),
        source=run.source_key,
        window_start=str(run.window_start),
        window_end=str(run.window_end),
        rows=run.rows_accepted,
        records=run.records_written,
        adjustments=len(adjustments),
    )


async def record_rejected_run(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    *,
    source_kind: str,
    source_key: str | None,
    rows_read: int,
    rows_rejected: int,
    errors: list[dict[str, Any]],
    details: dict[str, Any],
    actor: str,
    status: RunStatus = RunStatus.rejected,
) -> CostRun:
    """The record of a run that stored nothing (its own transaction; the data is untouched)."""
    now = utcnow()
    run = CostRun(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        source_id=None,
        source_kind=source_kind,
        source_key=source_key,
        status=status.value,
        rows_read=rows_read,
        rows_accepted=0,
        rows_rejected=rows_rejected,
        records_written=0,
        totals={},
        errors=json.loads(json.dumps(errors, default=str)),
        details=details,
        actor=actor,
        started_at=now,
        finished_at=now,
    )
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        session.add(run)
    log.warning(
        "costs.run.rejected",
        tenant_id=str(tenant_id),
        run_id=str(run.id),
        source=source_key,
        errors=len(errors),
        first_error=errors[0] if errors else None,
    )
    return run


async def record_failed_run(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    *,
    source_kind: str,
    source_key: str,
    reason: str,
    actor: str,
) -> CostRun:
    """A scheduled import that could not read its source (access denied, no bucket ...)."""
    return await record_rejected_run(
        runtime,
        tenant_id,
        source_kind=source_kind,
        source_key=source_key,
        rows_read=0,
        rows_rejected=0,
        errors=[{"reason": reason}],
        details={},
        actor=actor,
        status=RunStatus.failed,
    )
