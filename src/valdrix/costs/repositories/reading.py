"""SQL for reading cost data: grouped sums, the data version, runs, adjustments and readings, what
a resource was billed, and what the scheduled pulls look up before they run (RLS throughout,
except the resolver function that lists Cost Explorer targets)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Subquery,
    Table,
    Text,
    and_,
    cast,
    func,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

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

# Dimensions the roll-up (cost_daily) has; the others need the records.
DAILY_GROUPS = (
    "day", "month", "billing_period", "provider", "service", "region", "account",
    "billing_account", "sub_account", "charge_category",
)  # fmt: skip


def _dimension(group: str, table: Table | Subquery) -> ColumnElement[Any]:
    """A group_by dimension (or filter), read from ``table`` (the roll-up or the records)."""
    if group == "month":
        return cast(func.date_trunc("month", table.c.day), Date)
    if group == "billing_period":
        column: ColumnElement[Any] = table.c.billing_period_start
    elif group == "account":
        column = charged_account(table)
    elif group in ("billing_account", "sub_account"):
        column = table.c[f"{group}_id"]
    elif group == "resource":
        column = cost_records.c.resource_id
    elif group.startswith("tag:"):
        column = cost_records.c.tags[group.removeprefix("tag:")].astext
    else:
        column = table.c[group]
    return column


# The roll-ups' columns a grouped read may name (``_dimension``, the amounts, the final flag).
_ROLLED_UP = (
    "currency", "provider", "billing_account_id", "sub_account_id", "service", "region",
    "charge_category", "billing_period_start", "billing_period_end", "preliminary",
    "billed_cost", "effective_cost", "list_cost",
)  # fmt: skip


def _by_month_where_whole(start: dt.date, end: dt.date) -> Table | Subquery:
    """[start, end) as ``cost_daily``'s columns: the whole months from ``cost_monthly`` (each
    month's row dated its first day), the days of a partial first or last month from
    ``cost_daily``; ``cost_daily`` alone when no month is whole. Sums of either add up to the
    same figures: ``cost_monthly`` is ``cost_daily`` summed by month with every other column
    kept."""
    whole_from = start if start.day == 1 else first_of_next_month(start)
    whole_until = end.replace(day=1)
    if whole_from >= whole_until:
        return cost_daily
    months = select(
        *(cost_monthly.c[name] for name in _ROLLED_UP), cost_monthly.c.month.label("day")
    ).where(cost_monthly.c.month >= whole_from, cost_monthly.c.month < whole_until)
    days = select(*(cost_daily.c[name] for name in _ROLLED_UP), cost_daily.c.day).where(
        or_(
            and_(cost_daily.c.day >= start, cost_daily.c.day < whole_from),
            and_(cost_daily.c.day >= whole_until, cost_daily.c.day < end),
        )
    )
    return union_all(months, days).subquery("cost_by_month")


def _keyed_by_accounts(source_prefix: str) -> ColumnElement[bool]:
    """Runs of the sources ``source_prefix:<billing accounts>`` (an S3 connection's
    deliveries)."""
    return CostRun.source_key.startswith(f"{source_prefix}:", autoescape=True)


class CostReadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def grouped_sums(
        self,
        *,
        start: dt.date,
        end: dt.date,
        group_by: Sequence[str],
        filters: Mapping[str, str],
        final_before: dt.date,
        offset: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of billed, effective and list cost per currency and ``group_by`` over
        [start, end), largest first, split preliminary / final, and whether more rows follow.

        Read from the roll-up when it has every dimension asked for, else from the records.
        ``filters`` keeps rows whose dimension equals the value, or (``tag``) whose tag
        ``key=value`` is set."""
        daily = "tag" not in filters and all(g in DAILY_GROUPS for g in group_by)
        table: Table | Subquery = cost_daily if daily else cost_records
        if daily and "day" not in group_by:
            table = _by_month_where_whole(start, end)
        dimensions = {group: _dimension(group, table) for group in group_by}
        conditions = [table.c.day >= start, table.c.day < end]
        for name, value in filters.items():
            if name == "tag":
                key, _, wanted = value.partition("=")
                conditions.append(cost_records.c.tags[key].astext == wanted)
            else:
                conditions.append(_dimension(name, table) == value)
        billed, effective = table.c.billed_cost, table.c.effective_cost
        # Evaluated now, not at import: billing data turns final when its period has closed.
        preliminary = and_(
            table.c.preliminary,
            or_(table.c.billing_period_end.is_(None), table.c.billing_period_end > final_before),
        )
        statement = (
            select(
                table.c.currency,
                *(column.label(name) for name, column in dimensions.items()),
                func.sum(billed).label("billed_cost"),
                func.sum(effective).label("effective_cost"),
                func.sum(table.c.list_cost).label("list_cost"),
                func.coalesce(func.sum(billed).filter(preliminary), 0).label(
                    "preliminary_billed_cost"
                ),
                func.coalesce(func.sum(billed).filter(~preliminary), 0).label("final_billed_cost"),
                func.coalesce(func.sum(effective).filter(preliminary), 0).label(
                    "preliminary_effective_cost"
                ),
                func.coalesce(func.sum(effective).filter(~preliminary), 0).label(
                    "final_effective_cost"
                ),
            )
            .where(*conditions)
            .group_by(table.c.currency, *dimensions.values())
            # Every group key, after the amount: pages follow one order, whatever ties there are.
            .order_by(func.sum(billed).desc(), *dimensions.values(), table.c.currency)
            .offset(offset)
            .limit(limit + 1)
        )
        rows = [dict(row._mapping) for row in await self.session.execute(statement)]
        return rows[:limit], len(rows) > limit

    async def tag_keys(
        self, start: dt.date, end: dt.date, limit: int, *, longest: int
    ) -> list[str]:
        """The tag keys of the records over [start, end) that ``group_by=tag:<key>`` carries
        as they are (no comma, no space around, at most ``longest`` characters), in order, at
        most ``limit``."""
        every = (
            select(func.jsonb_object_keys(cost_records.c.tags, type_=Text).label("key"))
            .where(cost_records.c.day >= start, cost_records.c.day < end)
            .subquery()
        )
        key = every.c.key
        keys = (
            select(key)
            .where(
                func.char_length(key).between(1, longest),
                ~key.regexp_match(r"(^\s|\s$|,)"),
            )
            .distinct()
            .order_by(key)
            .limit(limit)
        )
        return list(await self.session.scalars(keys))

    async def data_version(self) -> int:
        version = await self.session.scalar(select(CostDataVersion.version))
        return int(version or 0)

    async def runs(self, limit: int) -> list[CostRun]:
        rows = await self.session.scalars(
            select(CostRun).order_by(CostRun.started_at.desc(), CostRun.id).limit(limit)
        )
        return list(rows)

    async def readings_of_day(
        self, day: dt.date, filters: dict[str, str], limit: int
    ) -> list[tuple[CostReading, str, Decimal | None]]:
        """Every reading of the day's keys (service, account, currency, each source and billing
        period), oldest first per key, with its source's key and the key's previous reading."""
        key = (
            CostReading.source_id, CostReading.billing_period_start, CostReading.service,
            CostReading.account, CostReading.currency,
        )  # fmt: skip
        previous = func.lag(CostReading.billed_cost).over(
            partition_by=key, order_by=(CostReading.recorded_at, CostReading.id)
        )
        query = (
            select(CostReading, CostSource.key, previous)
            .join(CostSource, CostSource.id == CostReading.source_id)
            .where(
                CostReading.day == day,
                *(getattr(CostReading, name) == value for name, value in filters.items()),
            )
            .order_by(
                CostReading.service,
                CostReading.account,
                CostReading.currency,
                CostSource.key,
                CostReading.billing_period_start,
                CostReading.recorded_at,
                CostReading.id,
            )
            .limit(limit)
        )
        return [(row[0], row[1], row[2]) for row in await self.session.execute(query)]

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

    async def billed_per_resource(
        self, resource_keys: Sequence[str], *, today: dt.date, days: int, fresh_days: int
    ) -> dict[str, tuple[Decimal, dt.date]]:
        """Billed USD per resource over its latest ``days`` of data, and that last day, for the
        resources billed in the ``fresh_days`` up to ``today``."""
        if not resource_keys:
            return {}
        oldest = today - dt.timedelta(days=fresh_days + days)
        billed = cost_resource_days
        recent = (
            select(
                billed.c.resource_key,
                billed.c.day,
                billed.c.billed_cost,
                func.max(billed.c.day).over(partition_by=billed.c.resource_key).label("last_day"),
            )
            .where(
                billed.c.resource_key.in_(list(resource_keys)),
                billed.c.currency == "USD",
                billed.c.day >= oldest,
                billed.c.day <= today,
            )
            .subquery()
        )
        rows = await self.session.execute(
            select(recent.c.resource_key, func.sum(recent.c.billed_cost), recent.c.last_day)
            .where(
                recent.c.day > recent.c.last_day - days,
                recent.c.last_day >= today - dt.timedelta(days=fresh_days),
            )
            .group_by(recent.c.resource_key, recent.c.last_day)
        )
        return {key: (Decimal(total), last) for key, total, last in rows}

    async def delivery_fingerprints(self, source_prefix: str) -> dict[str, str]:
        """Each S3 delivery's fingerprint on the last committed run for it of a source named
        ``source_prefix:<accounts>``, or ``source_prefix`` (as all of a connection's were once)
        if that run's data is still stored: under that one source, another export's delivery of
        the same period deleted it, and the delivery is pulled again."""
        delivery = CostRun.details["delivery"].astext
        still_stored = (
            select(cost_daily.c.run_id)
            .where(cost_daily.c.source_id == CostRun.source_id, cost_daily.c.run_id == CostRun.id)
            .exists()
        )
        rows = await self.session.execute(
            select(delivery, CostRun.details["fingerprint"].astext)
            .where(
                or_(
                    and_(CostRun.source_key == source_prefix, still_stored),
                    _keyed_by_accounts(source_prefix),
                ),
                CostRun.status == RunStatus.committed.value,
                delivery.is_not(None),
            )
            .ext(distinct_on(delivery))
            .order_by(delivery, CostRun.started_at.desc())
        )
        return {str(uri): str(fingerprint) for uri, fingerprint in rows}

    async def sources_of_delivery(self, source_prefix: str, uri: str) -> list[str]:
        """The keys of the sources named as in ``delivery_fingerprints`` with a committed run of
        the S3 delivery at ``uri``."""
        keys = await self.session.scalars(
            select(CostRun.source_key)
            .where(
                or_(CostRun.source_key == source_prefix, _keyed_by_accounts(source_prefix)),
                CostRun.status == RunStatus.committed.value,
                CostRun.details["delivery"].astext == uri,
            )
            .distinct()
        )
        return sorted(key for key in keys if key is not None)

    async def cost_explorer_targets(self) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(tenant, connection) of every active AWS connection, across tenants, through the
        resolver function (ids only)."""
        rows = await self.session.execute(
            text("SELECT tenant_id, connection_id FROM valdrix_cost_explorer_targets()")
        )
        return [(uuid.UUID(str(t)), uuid.UUID(str(c))) for t, c in rows]
