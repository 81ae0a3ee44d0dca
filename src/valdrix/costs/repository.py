"""SQL for cost sources, runs, records, readings, adjustments and the data version (RLS)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from psycopg import sql
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.costs.models import (
    CostAdjustment,
    CostDataVersion,
    CostReading,
    CostRun,
    CostSource,
    RunStatus,
    cost_daily,
    cost_records,
)
from valdrix.jobs.enqueue import driver_connection

RECORD_COLUMNS = [
    "tenant_id", "day", "source_id", "run_id", "currency", "provider", "billing_account_id",
    "sub_account_id", "service", "region", "charge_category", "preliminary", "billed_cost",
    "effective_cost", "list_cost", "service_category", "charge_class", "resource_id",
    "resource_key", "resource_type", "pricing_unit", "contracted_cost", "pricing_quantity",
    "consumed_quantity", "tags", "source_rows",
]  # fmt: skip
DAILY_KEYS = [
    "tenant_id", "day", "source_id", "run_id", "currency", "provider", "billing_account_id",
    "sub_account_id", "service", "region", "charge_category", "preliminary",
]  # fmt: skip
ReadingKey = tuple[dt.date, str, str, str]  # day, service, account, currency


class CostRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def source_for_update(
        self, tenant_id: uuid.UUID, kind: str, key: str, connection_id: uuid.UUID | None
    ) -> CostSource:
        """The source (created on first use), locked: runs of one source commit one at a time."""
        await self.session.execute(
            insert(CostSource)
            .values(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                kind=kind,
                key=key,
                connection_id=connection_id,
            )
            .on_conflict_do_nothing(constraint="uq_cost_sources_key")
        )
        source = await self.session.scalar(
            select(CostSource)
            .where(CostSource.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert source is not None
        return source

    async def ensure_partitions(self, start: dt.date, end: dt.date) -> None:
        await self.session.execute(
            text("SELECT valdrix_ensure_cost_partitions(:start, :end)"),
            {"start": start, "end": end},
        )

    async def delete_window(self, source_id: uuid.UUID, start: dt.date, end: dt.date) -> int:
        deleted = 0
        for table in (cost_records, cost_daily):
            result = await self.session.execute(
                delete(table).where(
                    table.c.source_id == source_id, table.c.day >= start, table.c.day < end
                )
            )
            deleted += result.rowcount if table is cost_records else 0  # type: ignore[attr-defined]
        return deleted

    async def copy_records(self, rows: Iterable[Sequence[Any]]) -> int:
        """Bulk-load the rows (in ``RECORD_COLUMNS`` order) on the session's own connection, so
        they commit or roll back with everything else in the run.

        PostgreSQL refuses COPY into a table under row-level security, so the rows are copied
        into a temporary table and moved with one INSERT ... SELECT, which the tenant policy
        checks like any other insert.
        """
        connection = await driver_connection(self.session)
        columns = sql.SQL(", ").join(map(sql.Identifier, RECORD_COLUMNS))
        written = 0
        async with connection.cursor() as cursor:
            await cursor.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS cost_records_load"
                " (LIKE cost_records) ON COMMIT DELETE ROWS"
            )
            copy_in = sql.SQL("COPY cost_records_load ({}) FROM STDIN").format(columns)
            async with cursor.copy(copy_in) as copy:
                for row in rows:
                    await copy.write_row(row)
                    written += 1
            await cursor.execute(
                sql.SQL("INSERT INTO cost_records ({}) SELECT {} FROM cost_records_load").format(
                    columns, columns
                )
            )
            await cursor.execute("TRUNCATE cost_records_load")
        return written

    async def roll_up(self, source_id: uuid.UUID, start: dt.date, end: dt.date) -> None:
        """The source's records in the window without resources and tags, for the reads that
        need neither (called after the window was replaced, so they are the new run's)."""
        keys = [cost_records.c[name] for name in DAILY_KEYS]
        rolled = (
            select(
                *keys,
                func.sum(cost_records.c.billed_cost),
                func.sum(cost_records.c.effective_cost),
                func.sum(cost_records.c.list_cost),
            )
            .where(
                cost_records.c.source_id == source_id,
                cost_records.c.day >= start,
                cost_records.c.day < end,
            )
            .group_by(*keys)
        )
        await self.session.execute(
            insert(cost_daily).from_select(
                [*DAILY_KEYS, "billed_cost", "effective_cost", "list_cost"], rolled
            )
        )

    async def window_readings(
        self, source_id: uuid.UUID, start: dt.date, end: dt.date
    ) -> dict[ReadingKey, tuple[Decimal, Decimal, bool]]:
        """Totals per (day, service, account, currency) of the source's data in the window."""
        account = func.coalesce(cost_daily.c.sub_account_id, cost_daily.c.billing_account_id)
        rows = await self.session.execute(
            select(
                cost_daily.c.day,
                cost_daily.c.service,
                account,
                cost_daily.c.currency,
                func.sum(cost_daily.c.billed_cost),
                func.sum(cost_daily.c.effective_cost),
                func.bool_or(cost_daily.c.preliminary),
            )
            .where(
                cost_daily.c.source_id == source_id,
                cost_daily.c.day >= start,
                cost_daily.c.day < end,
            )
            .group_by(cost_daily.c.day, cost_daily.c.service, account, cost_daily.c.currency)
        )
        return {(d, s, a, c): (b, e, p) for d, s, a, c, b, e, p in rows}

    async def latest_readings(
        self, source_id: uuid.UUID, start: dt.date, end: dt.date
    ) -> dict[ReadingKey, CostReading]:
        """The last reading of every key of the source in the window (before this run)."""
        rows = await self.session.scalars(
            select(CostReading)
            .where(
                CostReading.source_id == source_id,
                CostReading.day >= start,
                CostReading.day < end,
            )
            .ext(
                distinct_on(
                    CostReading.day, CostReading.service, CostReading.account, CostReading.currency
                )
            )
            .order_by(
                CostReading.day,
                CostReading.service,
                CostReading.account,
                CostReading.currency,
                CostReading.id.desc(),
            )
        )
        return {(r.day, r.service, r.account, r.currency): r for r in rows}

    def add_all(self, rows: Iterable[CostReading | CostAdjustment]) -> None:
        self.session.add_all(list(rows))

    async def bump_version(self, tenant_id: uuid.UUID, now: dt.datetime) -> int:
        version = await self.session.scalar(
            insert(CostDataVersion)
            .values(tenant_id=tenant_id, version=1, updated_at=now)
            .on_conflict_do_update(
                index_elements=["tenant_id"],
                set_={"version": CostDataVersion.version + 1, "updated_at": now},
            )
            .returning(CostDataVersion.version)
        )
        return int(version or 0)

    async def data_version(self) -> int:
        version = await self.session.scalar(select(CostDataVersion.version))
        return int(version or 0)

    async def delivery_fingerprints(self, source_key: str) -> dict[str, str]:
        """Each S3 delivery's fingerprint on its source's last committed run for it."""
        delivery = CostRun.details["delivery"].astext
        rows = await self.session.execute(
            select(delivery, CostRun.details["fingerprint"].astext)
            .where(
                CostRun.source_key == source_key,
                CostRun.status == RunStatus.committed.value,
                delivery.is_not(None),
            )
            .ext(distinct_on(delivery))
            .order_by(delivery, CostRun.started_at.desc())
        )
        return {str(uri): str(fingerprint) for uri, fingerprint in rows}

    async def cost_explorer_targets(self) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(tenant, connection) of every active AWS connection, across tenants, through the
        resolver function (ids only)."""
        rows = await self.session.execute(
            text("SELECT tenant_id, connection_id FROM valdrix_cost_explorer_targets()")
        )
        return [(uuid.UUID(str(t)), uuid.UUID(str(c))) for t, c in rows]

    async def runs(self, limit: int) -> list[CostRun]:
        rows = await self.session.scalars(
            select(CostRun).order_by(CostRun.started_at.desc(), CostRun.id).limit(limit)
        )
        return list(rows)

    async def adjustments(
        self, start: dt.date | None, end: dt.date | None, limit: int
    ) -> list[CostAdjustment]:
        query = select(CostAdjustment)
        if start is not None:
            query = query.where(CostAdjustment.day >= start)
        if end is not None:
            query = query.where(CostAdjustment.day < end)
        rows = await self.session.scalars(
            query.order_by(CostAdjustment.created_at.desc(), CostAdjustment.day).limit(limit)
        )
        return list(rows)
