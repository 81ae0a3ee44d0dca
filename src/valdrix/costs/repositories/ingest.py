"""SQL for committing a run: its source locked, its scope replaced, its records staged (COPY) and
stored, precedence between sources settled, the roll-up, readings and data version written."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg import sql
from sqlalchemy import (
    ColumnElement,
    Date,
    FromClause,
    Table,
    and_,
    cast,
    column,
    delete,
    func,
    literal,
    or_,
    select,
    table,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.costs.ingest.records import KEY_NAMES, SUM_NAMES
from valdrix.costs.models import (
    CostAdjustment,
    CostDataVersion,
    CostReading,
    CostRun,
    CostSource,
    RunStatus,
    charged_account,
    cost_daily,
    cost_monthly,
    cost_records,
    cost_resource_days,
    first_of_next_month,
)
from valdrix.jobs.enqueue import driver_connection

STAGE_COLUMNS = [*KEY_NAMES, *SUM_NAMES, "source_rows", "resource_key"]
# Tags are parsed as JSON while COPY runs (beside the encoding of the next block), not later.
_STAGE_TYPES = {"day": "date", "billing_period_start": "date", "billing_period_end": "date",
                "preliminary": "boolean", "source_rows": "bigint", "tags": "jsonb"}  # fmt: skip
STAGE_TABLE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS cost_records_stage ("
    + ", ".join(
        f"{name} {_STAGE_TYPES.get(name, 'numeric' if name in SUM_NAMES else 'text')}"
        for name in STAGE_COLUMNS
    )
    + ") ON COMMIT DELETE ROWS"
)
# The staged records as SQL expressions can name them (a temporary table: not in the models).
stage = table("cost_records_stage", *(column(name) for name in STAGE_COLUMNS))
_KEYS = ", ".join(KEY_NAMES)
STORE_STAGED = f"""
    INSERT INTO cost_records (tenant_id, source_id, run_id, resource_key,
        {_KEYS}, {", ".join(SUM_NAMES)}, source_rows)
    SELECT :tenant, :source, :run, resource_key,
        {_KEYS},
        {", ".join(SUM_NAMES)}, source_rows
    FROM cost_records_stage
"""  # noqa: S608  (column names from this module)
DAILY_KEYS = [
    "tenant_id", "day", "source_id", "run_id", "currency", "provider", "billing_account_id",
    "sub_account_id", "service", "region", "charge_category", "billing_period_start",
    "billing_period_end", "preliminary",
]  # fmt: skip
RESOURCE_DAY_KEYS = [
    "day", "billing_period_start", "currency", "billing_account_id", "sub_account_id",
    "resource_key",
]  # fmt: skip
# The tables that hold a run's records, each replaced with them: a run's scope is deleted
# from all three, and so is what another source's run supersedes.
STORED = (cost_records, cost_daily, cost_resource_days)
ReadingKey = tuple[dt.date, dt.date, str, str, str]  # period, day, service, account, currency
AnyTable = Table | FromClause


RowKind = Callable[[AnyTable], ColumnElement[bool]]


def _charges(stored: AnyTable, per_day: bool) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """What identifies the same charges: the account and the billing period, or the day for
    sources of days (Cost Explorer reads a window of days, not whole months)."""
    return charged_account(stored), stored.c.day if per_day else stored.c.billing_period_start


def _any_row(stored: AnyTable) -> ColumnElement[bool]:
    return true()


def seen_from_its_payer(stored: AnyTable) -> ColumnElement[bool]:
    """Rows of an account's charges as its payer's bill shows them (billed to another
    account: AWS's management account splits its bill by linked account)."""
    return stored.c.sub_account_id != stored.c.billing_account_id


def seen_by_itself(stored: AnyTable) -> ColumnElement[bool]:
    """Rows of an account's charges as the account itself shows them (billed to itself)."""
    return or_(
        stored.c.sub_account_id.is_(None), stored.c.sub_account_id == stored.c.billing_account_id
    )


@dataclass(frozen=True)
class ReplaceScope:
    """What a run replaces of its source: the billing periods it is for, or, for a source
    without periods (Cost Explorer), its days [start, end)."""

    source_id: uuid.UUID
    start: dt.date
    end: dt.date
    periods: list[dt.date] | None

    def of(self, stored: AnyTable) -> ColumnElement[bool]:
        if self.periods is None:
            return and_(
                stored.c.source_id == self.source_id,
                stored.c.day >= self.start,
                stored.c.day < self.end,
            )
        return and_(
            stored.c.source_id == self.source_id,
            stored.c.billing_period_start.in_(self.periods),
        )


class IngestRepository:
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

    async def delete_scope(self, scope: ReplaceScope) -> None:
        for stored in STORED:
            await self.session.execute(delete(stored).where(scope.of(stored)))

    async def held_periods(self, scope: ReplaceScope) -> list[dt.date]:
        """The billing periods of which ``scope`` holds data."""
        periods = await self.session.scalars(
            select(cost_daily.c.billing_period_start)
            .where(scope.of(cost_daily))
            .distinct()
            .order_by(cost_daily.c.billing_period_start)
        )
        return list(periods)

    async def source_ids(self, keys: Sequence[str]) -> dict[str, uuid.UUID]:
        """The ids of the tenant's sources named ``keys`` (those that exist)."""
        if not keys:
            return {}
        rows = await self.session.execute(
            select(CostSource.key, CostSource.id).where(CostSource.key.in_(keys))
        )
        return {key: source_id for key, source_id in rows}

    async def supersede_other_sources(
        self,
        scope: ReplaceScope,
        kinds: Sequence[str],
        *,
        mine: RowKind = _any_row,
        theirs: RowKind = _any_row,
        per_day: bool = False,
    ) -> list[dict[str, Any]]:
        """Delete what sources of ``kinds`` other than this one hold (their rows of kind
        ``theirs``) of the (account, billing period) pairs, or ``per_day`` (account, day)
        pairs, this run now holds (in rows of kind ``mine``): the same charges never count
        twice. Returns what was superseded, per source and account; the superseded sources'
        months are summed again."""
        held = select(*_charges(cost_daily, per_day)).where(scope.of(cost_daily), mine(cost_daily))
        kinds_sources = select(CostSource.id).where(CostSource.kind.in_(kinds))

        def held_by_others(stored: AnyTable) -> ColumnElement[bool]:
            return and_(
                stored.c.source_id != scope.source_id,
                stored.c.source_id.in_(kinds_sources),
                theirs(stored),
                tuple_(*_charges(stored, per_day)).in_(held),
            )

        found = await self.session.execute(
            select(
                CostSource.key,
                charged_account(cost_daily),
                cost_daily.c.billing_period_start,
                CostSource.id,
                func.min(cost_daily.c.day),
                func.max(cost_daily.c.day),
            )
            .join(CostSource, CostSource.id == cost_daily.c.source_id)
            .where(held_by_others(cost_daily))
            .group_by(
                CostSource.key,
                charged_account(cost_daily),
                cost_daily.c.billing_period_start,
                CostSource.id,
            )
            .order_by(
                CostSource.key, charged_account(cost_daily), cost_daily.c.billing_period_start
            )
        )
        superseded: dict[tuple[str, str], list[str]] = {}
        their_days: dict[uuid.UUID, tuple[dt.date, dt.date]] = {}
        for key, account, period, source_id, first, last in found:
            superseded.setdefault((key, account), []).append(period.isoformat())
            earlier = their_days.get(source_id, (first, last))
            their_days[source_id] = (min(earlier[0], first), max(earlier[1], last))
        if superseded:
            for stored in STORED:
                await self.session.execute(delete(stored).where(held_by_others(stored)))
            if scope.periods is None:
                # A source of days: its months (not the run's periods) are summed again below
                # only for its own rows; those it superseded are summed again here.
                for source_id, (first, last) in their_days.items():
                    days = ReplaceScope(source_id, first, last + dt.timedelta(days=1), None)
                    await self.refresh_monthly(days)
        return [
            {"source": key, "account": account, "periods": periods}
            for (key, account), periods in superseded.items()
        ]

    async def drop_staged_covered_by(
        self,
        kinds: Sequence[str],
        *,
        covering: RowKind = _any_row,
        covered: RowKind = _any_row,
        per_day: bool = False,
    ) -> set[ReadingKey]:
        """Drop the staged records (of kind ``covered``) of (account, billing period) pairs,
        or ``per_day`` (account, day) pairs, that sources of ``kinds`` already hold in rows of
        kind ``covering`` (a lower-precedence source yields to them). Returns the reading keys
        of what was dropped."""
        held = (
            select(*_charges(cost_daily, per_day))
            .join(CostSource, CostSource.id == cost_daily.c.source_id)
            .where(CostSource.kind.in_(kinds), covering(cost_daily))
        )
        dropped = await self.session.execute(
            delete(stage)
            .where(covered(stage), tuple_(*_charges(stage, per_day)).in_(held))
            .returning(
                stage.c.billing_period_start,
                stage.c.day,
                stage.c.service,
                charged_account(stage),
                stage.c.currency,
            )
        )
        return {
            (period, day, service, account, currency)
            for period, day, service, account, currency in dropped
        }

    async def stage_records(self, csv_blocks: AsyncIterator[bytes]) -> None:
        """Load some of a run's records (CSV in ``STAGE_COLUMNS`` order) into a temporary table
        on the session's own connection, in place of those staged before.

        PostgreSQL refuses COPY into a table under row-level security; ``store_staged_records``
        moves them with one INSERT ... SELECT, which the tenant policy checks like any other.
        """
        connection = await driver_connection(self.session)
        columns = sql.SQL(", ").join(map(sql.Identifier, STAGE_COLUMNS))
        async with connection.cursor() as cursor:
            await cursor.execute(STAGE_TABLE)
            await cursor.execute("TRUNCATE cost_records_stage")
            copy_in = sql.SQL("COPY cost_records_stage ({}) FROM STDIN (FORMAT csv)").format(
                columns
            )
            async with cursor.copy(copy_in) as copy:
                async for block in csv_blocks:
                    await copy.write(block)

    async def store_staged_records(
        self, tenant_id: uuid.UUID, source_id: uuid.UUID, run_id: uuid.UUID
    ) -> int:
        """The staged records as the run's; returns how many."""
        result = await self.session.execute(
            text(STORE_STAGED), {"tenant": tenant_id, "source": source_id, "run": run_id}
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def staged_totals(self) -> list[tuple[str, bool, Decimal, Decimal]]:
        """(currency, preliminary, billed, effective) over the staged records, exactly."""
        rows = await self.session.execute(
            text(
                "SELECT currency, preliminary, sum(billed_cost), sum(effective_cost)"
                " FROM cost_records_stage GROUP BY currency, preliminary"
                " ORDER BY currency, preliminary"
            )
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    async def roll_up_staged(
        self, tenant_id: uuid.UUID, source_id: uuid.UUID, run_id: uuid.UUID
    ) -> None:
        """The run's records without resources and tags, for the reads that need neither
        (summed from the staged copy: a temporary table, read without the tenant policy's
        checks and outside the shared buffers)."""
        constants = {"tenant_id": tenant_id, "source_id": source_id, "run_id": run_id}
        keys = [name for name in DAILY_KEYS if name not in constants]
        rolled = select(
            *(literal(value).label(name) for name, value in constants.items()),
            *(stage.c[name] for name in keys),
            func.sum(stage.c.billed_cost),
            func.sum(stage.c.effective_cost),
            func.sum(stage.c.list_cost),
        ).group_by(*(stage.c[name] for name in keys))
        # The day totals of a million records (a file of one day stages them at once) fit in
        # memory when grouping may use 64 MB instead of the default 4 MB (which spills to disk
        # and takes four times as long).
        await self.session.execute(text("SET LOCAL work_mem = '64MB'"))
        await self.session.execute(
            insert(cost_daily).from_select(
                [*constants, *keys, "billed_cost", "effective_cost", "list_cost"], rolled
            )
        )
        await self.session.execute(text("RESET work_mem"))

    async def serialize_imports(self, tenant_id: uuid.UUID) -> None:
        """Wait for the tenant's other import to commit, and hold the tenant until this one
        does (a lock held until commit). Which source's charges count (supersession, records
        covered by billing data) and the monthly sums are then decided on the other imports'
        committed rows, under READ COMMITTED: two imports never both count the same charges,
        nor leave a month summed from what only one of them saw."""
        await self.session.execute(
            select(
                func.pg_advisory_xact_lock(func.hashtextextended(f"cost_imports:{tenant_id}", 0))
            )
        )

    async def refresh_monthly(self, scope: ReplaceScope) -> None:
        """Sum again by month what this run changed of ``cost_daily``, once its changes are
        all made: for billing periods, every source's rows of those periods (the run's own and
        those it superseded, which share its periods); for days, its source's months that
        overlap them (a month's days outside them included). Under ``serialize_imports``."""
        month = cast(func.date_trunc("month", cost_daily.c.day), Date)
        if scope.periods is not None:
            daily: ColumnElement[bool] = cost_daily.c.billing_period_start.in_(scope.periods)
            monthly: ColumnElement[bool] = cost_monthly.c.billing_period_start.in_(scope.periods)
        else:
            first = scope.start.replace(day=1)
            after = first_of_next_month(max(scope.end - dt.timedelta(days=1), first))
            daily = and_(
                cost_daily.c.source_id == scope.source_id,
                cost_daily.c.day >= first,
                cost_daily.c.day < after,
            )
            monthly = and_(
                cost_monthly.c.source_id == scope.source_id,
                cost_monthly.c.month >= first,
                cost_monthly.c.month < after,
            )
        await self.session.execute(delete(cost_monthly).where(monthly))
        keys = [name for name in DAILY_KEYS if name != "day"]
        summed = (
            select(
                *(cost_daily.c[name] for name in keys),
                month,
                func.sum(cost_daily.c.billed_cost),
                func.sum(cost_daily.c.effective_cost),
                func.sum(cost_daily.c.list_cost),
            )
            .where(daily)
            .group_by(*(cost_daily.c[name] for name in keys), month)
        )
        await self.session.execute(
            insert(cost_monthly).from_select(
                [*keys, "month", "billed_cost", "effective_cost", "list_cost"], summed
            )
        )

    async def roll_up_staged_resources(self, tenant_id: uuid.UUID, source_id: uuid.UUID) -> None:
        """The run's billed cost per resource and day (findings' billed prices), summed from
        the staged copy like ``roll_up_staged``: of the amounts as the records store them."""
        constants = {"tenant_id": tenant_id, "source_id": source_id}
        billed = cast(stage.c.billed_cost, cost_resource_days.c.billed_cost.type)
        rolled = (
            select(
                *(literal(value).label(name) for name, value in constants.items()),
                *(stage.c[name] for name in RESOURCE_DAY_KEYS),
                func.sum(billed),
            )
            .where(stage.c.resource_key.is_not(None))
            .group_by(*(stage.c[name] for name in RESOURCE_DAY_KEYS))
        )
        await self.session.execute(text("SET LOCAL work_mem = '64MB'"))
        await self.session.execute(
            insert(cost_resource_days).from_select(
                [*constants, *RESOURCE_DAY_KEYS, "billed_cost"], rolled
            )
        )
        await self.session.execute(text("RESET work_mem"))

    async def scope_readings(
        self, scope: ReplaceScope
    ) -> dict[ReadingKey, tuple[Decimal, Decimal, bool]]:
        """Totals per (billing period, day, service, account, currency) of the source's data
        in the scope."""
        account = charged_account(cost_daily)
        keys = (
            cost_daily.c.billing_period_start,
            cost_daily.c.day,
            cost_daily.c.service,
            account,
            cost_daily.c.currency,
        )
        rows = await self.session.execute(
            select(
                *keys,
                func.sum(cost_daily.c.billed_cost),
                func.sum(cost_daily.c.effective_cost),
                func.bool_or(cost_daily.c.preliminary),
            )
            .where(scope.of(cost_daily))
            .group_by(*keys)
        )
        return {(p, d, s, a, c): (b, e, pre) for p, d, s, a, c, b, e, pre in rows}

    async def latest_readings(self, scope: ReplaceScope) -> dict[ReadingKey, CostReading]:
        """The last reading of every key of the source in the scope (before this run)."""
        readings = CostReading.__table__
        keys = (
            CostReading.billing_period_start,
            CostReading.day,
            CostReading.service,
            CostReading.account,
            CostReading.currency,
        )
        rows = await self.session.scalars(
            select(CostReading)
            .where(scope.of(readings))
            .ext(distinct_on(*keys))
            .order_by(*keys, CostReading.id.desc())
        )
        return {(r.billing_period_start, r.day, r.service, r.account, r.currency): r for r in rows}

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

    async def last_committed_run(self, source_id: uuid.UUID) -> CostRun | None:
        return await self.session.scalar(
            select(CostRun)
            .where(CostRun.source_id == source_id, CostRun.status == RunStatus.committed.value)
            .order_by(CostRun.started_at.desc(), CostRun.id)
            .limit(1)
        )
