"""Reading cost data: grouped costs a page at a time (JSON or CSV), runs, adjustments, and every
reading of a day's keys."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.costs.ingest.focus_values import LAST_DAY
from valdrix.costs.models import CostAdjustment, CostReading, CostRun
from valdrix.costs.repositories.reading import DAILY_GROUPS, CostReadRepository
from valdrix.errors import Conflict, InvalidInput
from valdrix.kit.csv_export import csv_lines
from valdrix.kit.money import plain_text
from valdrix.kit.orm import utcnow
from valdrix.tenancy.auth import Principal

MAX_GROUPS = 3
MAX_ROWS = 5000
MAX_RANGE_DAYS = 731
# The most tag keys listed for the explorer's chooser (a tenant with more types the key).
MAX_TAG_KEYS = 200
MAX_TAG_KEY_LENGTH = 128  # of ``group_by=tag:<key>``'s key
# Dimensions only the records have (the roll-up has ``DAILY_GROUPS``).
RECORD_ONLY_GROUPS = ("service_category", "charge_class", "resource", "tag:<key>")
FILTERS = ("provider", "service", "region", "account", "tag")


@dataclass(frozen=True)
class CostQuery:
    start: dt.date
    end: dt.date
    group_by: list[str]
    # Preliminary billing data whose period ended before this day reads as final.
    final_before: dt.date
    filters: dict[str, str] = field(default_factory=dict)
    limit: int = MAX_ROWS
    offset: int = 0
    # The data version the first page was read at (pages of one listing never mix versions).
    version: int | None = None

    def cursor(self, version: int, offset: int) -> str:
        """An opaque token for the page at ``offset`` of this very query at ``version``."""
        token = f"{version}:{offset}:{self._fingerprint()}".encode()
        return base64.urlsafe_b64encode(token).decode().rstrip("=")

    def after(self, cursor: str) -> CostQuery:
        """The query of the page ``cursor`` names; refused if it came from another query."""
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            version, offset, fingerprint = base64.urlsafe_b64decode(padded).decode().split(":")
            page = dataclasses.replace(self, offset=int(offset), version=int(version))
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("cursor is not one this API gave") from None
        if fingerprint != self._fingerprint() or page.offset < 0:
            raise InvalidInput("cursor belongs to another query: repeat its parameters")
        return page

    def _fingerprint(self) -> str:
        """The parameters a page depends on (the day preliminary data is read as of too)."""
        asked = (self.start, self.end, self.group_by, self.final_before, self.filters, self.limit)
        return hashlib.sha256(repr(asked).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CostAnswer:
    rows: list[dict[str, Any]]
    totals: list[dict[str, Any]]
    data_version: int
    next_cursor: str | None

    @property
    def truncated(self) -> bool:
        return self.next_cursor is not None


def final_before(close_days: int) -> dt.date:
    """Billing data whose period ended before this day reads as final today."""
    return utcnow().date() - dt.timedelta(days=close_days)


AFTER_LAST_DAY = LAST_DAY + dt.timedelta(days=1)


def check_window(start: dt.date, end: dt.date) -> None:
    if end <= start:
        raise InvalidInput("end must be after start (end is exclusive)")
    if end > AFTER_LAST_DAY:
        # No cost is stored for a later day (an import refuses one), and month arithmetic
        # past it would leave the calendar at 9999.
        raise InvalidInput(f"end must be {AFTER_LAST_DAY} or earlier: costs end with {LAST_DAY}")
    if (end - start).days > MAX_RANGE_DAYS:
        raise InvalidInput(f"the range may cover at most {MAX_RANGE_DAYS} days")


def parse_query(
    start: dt.date,
    end: dt.date,
    group_by: str | list[str] | None,
    *,
    final_before: dt.date,
    filters: dict[str, str | None] | None = None,
    limit: int = MAX_ROWS,
    cursor: str | None = None,
) -> CostQuery:
    """Check a read's parameters (``group_by`` comma-separated, or a list taken as it is);
    ``filters`` keeps rows whose provider, service, region,
    account equal the value, or (``tag``) whose tag ``key=value`` is set; ``cursor`` (from a
    previous answer) asks for the next page of ``limit`` rows."""
    if not 1 <= limit <= MAX_ROWS:
        raise InvalidInput(f"limit must be between 1 and {MAX_ROWS}")
    check_window(start, end)
    if isinstance(group_by, list):
        groups = list(group_by)  # each dimension as it is (a tag key may hold a comma)
    else:
        groups = [g.strip() for g in (group_by or "").split(",") if g.strip()]
    if len(groups) > MAX_GROUPS or len(set(groups)) != len(groups):
        raise InvalidInput(f"group_by takes up to {MAX_GROUPS} distinct dimensions")
    for group in groups:
        if group not in DAILY_GROUPS and group not in RECORD_ONLY_GROUPS and not _tag_key(group):
            allowed = ", ".join([*DAILY_GROUPS, *RECORD_ONLY_GROUPS])
            raise InvalidInput(f"group_by {group!r} is not one of {allowed}")
    kept = {name: value for name, value in (filters or {}).items() if value is not None}
    tag = kept.get("tag")
    if tag is not None and not (_tag_key("tag:" + tag.partition("=")[0]) and "=" in tag):
        raise InvalidInput("tag filter must look like key=value")
    query = CostQuery(start, end, groups, final_before, kept, limit)
    return query.after(cursor) if cursor is not None else query


def _tag_key(group: str) -> str | None:
    key = group.removeprefix("tag:")
    return key if group.startswith("tag:") and 0 < len(key) <= MAX_TAG_KEY_LENGTH else None


async def read_costs(session: AsyncSession, actor: Principal, query: CostQuery) -> CostAnswer:
    """Sums straight from the stored records (no cache), with the data version they reflect,
    a page of rows at a time (largest first).

    The version is read before and after the sums: if a run committed in between, read again,
    so the ETag never claims a version the numbers do not show. A later page of a listing whose
    data changed since its first page is refused: its rows would not add up with the others.
    """
    costs = CostReadRepository(session)
    for _ in range(3):
        version = await costs.data_version()
        if query.version is not None and query.version != version:
            raise Conflict(
                "the cost data changed since the first page was read (an import committed):"
                " read the listing again from its first page"
            )
        rows, more = await _grouped(session, query)
        if query.offset == 0 and not more:  # every group is here: they add up to the totals
            totals = _totals_of(rows)
        else:
            totals, _ = await _grouped(session, dataclasses.replace(query, group_by=[], offset=0))
        if await costs.data_version() == version:
            break
    next_cursor = query.cursor(version, query.offset + query.limit) if more else None
    rows, totals = [_money(row) for row in rows], [_money(row) for row in totals]
    return CostAnswer(rows, totals, version, next_cursor)


async def _grouped(session: AsyncSession, query: CostQuery) -> tuple[list[dict[str, Any]], bool]:
    """One page of the grouped sums (amounts as read), and whether more follow."""
    return await CostReadRepository(session).grouped_sums(
        start=query.start,
        end=query.end,
        group_by=query.group_by,
        filters=query.filters,
        final_before=query.final_before,
        offset=query.offset,
        limit=query.limit,
    )


def _totals_of(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The totals per currency of a listing's every group, as the ungrouped sums would read
    them: exact sums (numeric's, not 28 digits'), a total of no amounts None where SQL's
    ``sum`` is NULL, largest billed cost first, then currency."""
    totals: dict[str, dict[str, Any]] = {}
    with decimal.localcontext() as exact:
        exact.prec = decimal.MAX_PREC
        for group in groups:
            total = totals.setdefault(
                group["currency"], {"currency": group["currency"]} | dict.fromkeys(AMOUNTS)
            )
            for amount in AMOUNTS:
                if group[amount] is not None:
                    before = total[amount]
                    total[amount] = group[amount] if before is None else before + group[amount]
    return sorted(totals.values(), key=lambda total: (-total["billed_cost"], total["currency"]))


# The amounts of a grouped row (``CostReadRepository.grouped_sums``), in the CSV's order.
AMOUNTS = (
    "billed_cost", "effective_cost", "list_cost", "preliminary_billed_cost", "final_billed_cost",
    "preliminary_effective_cost", "final_effective_cost",
)  # fmt: skip


def rows_as_csv(rows: list[dict[str, Any]], group_by: list[str], *, header: bool = True) -> str:
    """The grouped rows as CSV: currency, the dimensions asked for, then the amounts."""
    columns = ["currency", *group_by, *AMOUNTS]
    lines = ([columns] if header else []) + [[row.get(c) for c in columns] for row in rows]
    return csv_lines(lines)


def _money(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: plain_text(value) if isinstance(value, Decimal) else value
        for key, value in row.items()
    }


async def list_tag_keys(
    session: AsyncSession, actor: Principal, *, start: dt.date, end: dt.date
) -> list[str]:
    """The tag keys costs can be grouped by (``tag:<key>``) over [start, end): a key
    ``group_by`` cannot carry as it is (a comma, spaces around it, too long) is left out."""
    check_window(start, end)
    keys = await CostReadRepository(session).tag_keys(
        start, end, MAX_TAG_KEYS, longest=MAX_TAG_KEY_LENGTH
    )
    return [key for key in keys if _tag_key(f"tag:{key}") == key.strip()]


async def list_runs(session: AsyncSession, actor: Principal, *, limit: int) -> list[CostRun]:
    return await CostReadRepository(session).runs(limit)


async def list_adjustments(
    session: AsyncSession,
    actor: Principal,
    *,
    start: dt.date | None,
    end: dt.date | None,
    limit: int,
) -> list[CostAdjustment]:
    return await CostReadRepository(session).adjustments(start, end, limit)


@dataclass(frozen=True)
class Reading:
    """One run's reading of a key, beside the key's previous reading."""

    reading: CostReading
    source_key: str
    previous_billed_cost: Decimal | None

    @property
    def change_percent(self) -> Decimal | None:
        before = self.previous_billed_cost
        if before is None or before == 0:
            return None
        change = (self.reading.billed_cost - before) * 100 / abs(before)
        return change.quantize(Decimal("0.0001"))


async def readings_of_day(
    session: AsyncSession,
    actor: Principal,
    day: dt.date,
    *,
    filters: dict[str, str | None],
    limit: int,
) -> list[Reading]:
    """Every reading of the day's keys, with how each moved from the one before: restatements
    below the 2 % that records an adjustment included."""
    kept = {name: value for name, value in filters.items() if value is not None}
    rows = await CostReadRepository(session).readings_of_day(day, kept, limit)
    return [Reading(reading, key, previous) for reading, key, previous in rows]
