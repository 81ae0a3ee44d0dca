"""What a delivery replaces, what it may never double, and when its numbers become final.

- A delivery replaces exactly the billing periods it is for; a correction it carries for an
  earlier charge day is added to that day, never a reason to delete it.
- The same charges (billing account and billing period) never count twice, whatever sources
  they arrive through: the newest delivery supersedes the others' data for them.
- Preliminary data becomes final when its billing period has closed, at read time, with no
  re-import.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.conftest import TenantFixture
from tests.costs.focus_files import APRIL, HEADER, MAY, focus_rows, write
from tests.costs.helpers import import_file
from valdrix.app import create_app
from valdrix.runtime import Runtime

pytestmark = pytest.mark.asyncio(loop_scope="session")


def month_of(period: dt.date, cost: str) -> dict[dt.date, Decimal]:
    end = (period + dt.timedelta(days=32)).replace(day=1)
    return {period + dt.timedelta(days=n): Decimal(cost) for n in range((end - period).days)}


async def total(
    client: httpx.AsyncClient, tenant: TenantFixture, start: dt.date, end: dt.date
) -> dict[str, Decimal]:
    response = await client.get(
        "/api/v1/costs", params={"start": str(start), "end": str(end)}, headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    [totals] = response.json()["totals"]
    return {name: Decimal(value) for name, value in totals.items() if name.endswith("_cost")}


async def test_a_prior_period_correction_is_added_to_its_day_and_deletes_nothing(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    april = month_of(APRIL, "100.00")
    await import_file(client, tenant, write(tmp_path / "april.csv", focus_rows(APRIL, april)))
    correction = focus_rows(
        MAY, {dt.date(2026, 4, 30): Decimal("-1.00")}, charge_class="Correction"
    )
    may_file = write(tmp_path / "may.csv", [*focus_rows(MAY, month_of(MAY, "50.00")), *correction])

    run = await import_file(client, tenant, may_file)

    assert (await total(client, tenant, APRIL, MAY))["billed_cost"] == Decimal("2999.00")
    assert (await total(client, tenant, MAY, dt.date(2026, 6, 1)))["billed_cost"] == Decimal(
        "1550.00"
    )
    assert run["adjustments"] == 0
    adjustments = (await client.get("/api/v1/costs/adjustments", headers=tenant.auth)).json()
    assert adjustments == []


async def test_the_same_charges_through_another_source_never_count_twice(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    april = write(tmp_path / "april.csv", focus_rows(APRIL, month_of(APRIL, "100.00")))
    await import_file(client, tenant, april, source="finance-share")

    second = await import_file(client, tenant, april, source="platform-share")

    assert (await total(client, tenant, APRIL, MAY))["billed_cost"] == Decimal("3000.00")
    superseded = second["details"]["superseded"]
    assert superseded == [
        {"source": "focus:finance-share", "account": "111122223333", "periods": ["2026-04-01"]}
    ]


async def test_a_restated_file_whose_accounts_changed_replaces_the_earlier_one(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    one_account = focus_rows(APRIL, month_of(APRIL, "100.00"))
    await import_file(client, tenant, write(tmp_path / "first.csv", one_account))
    restated = [
        *focus_rows(APRIL, month_of(APRIL, "101.00")),
        *focus_rows(APRIL, {dt.date(2026, 4, 1): Decimal("7.00")}, account="444455556666"),
    ]

    await import_file(client, tenant, write(tmp_path / "restated.csv", restated))

    assert (await total(client, tenant, APRIL, MAY))["billed_cost"] == Decimal("3037.00")


async def test_two_files_of_many_accounts_alike_in_their_first_ones_are_two_sources(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A file's source names its billing accounts; 30 of them are too many for a key. A
    second file sharing the first 29 is another source: the 30th account's April stays."""
    tenant = await make_tenant()
    shared = [f"{100000000000 + n}" for n in range(29)]
    day = {dt.date(2026, 4, 1): Decimal("1.00")}
    first = [row for a in [*shared, "999999999999"] for row in focus_rows(APRIL, day, account=a)]
    second = [row for a in [*shared, "888888888888"] for row in focus_rows(APRIL, day, account=a)]
    await import_file(client, tenant, write(tmp_path / "first.csv", first))

    run = await import_file(client, tenant, write(tmp_path / "second.csv", second))

    [superseded] = {entry["source"] for entry in run["details"]["superseded"]}
    assert len(run["details"]["superseded"]) == len(shared)
    assert superseded != run["source_key"]
    assert (await total(client, tenant, APRIL, MAY))["billed_cost"] == Decimal("31.00")


@pytest.fixture
async def later_client(runtime: Runtime) -> AsyncIterator[Callable[[int], httpx.AsyncClient]]:
    """The API as it answers when its reads happen ``n`` days closer to the close: the same
    database, with the close that many days shorter."""
    opened: list[httpx.AsyncClient] = []

    def at(days_later: int) -> httpx.AsyncClient:
        close_days = runtime.settings.costs.focus_close_days - days_later
        settings = runtime.settings.updated(costs={"focus_close_days": close_days})
        app = create_app(dataclasses.replace(runtime, settings=settings))
        later = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        opened.append(later)
        return later

    yield at
    for later in opened:
        await later.aclose()


async def test_a_month_becomes_final_after_its_close_without_a_reimport(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    later_client: Callable[[int], httpx.AsyncClient],
    tmp_path: Path,
) -> None:
    tenant = await make_tenant()
    today = dt.date.today()
    period = (today - dt.timedelta(days=2)).replace(day=1)
    # The period ended two days ago (or ends soon): preliminary with a 5-day close.
    period_end = today - dt.timedelta(days=2)
    days = {period_end - dt.timedelta(days=1): Decimal("80.00")}
    rows = focus_rows(period, days)
    for row in rows:
        row[8] = f"{period_end} 00:00:00"
    await import_file(client, tenant, write(tmp_path / "month.csv", rows))
    window = (period, period_end)
    before = await total(client, tenant, *window)
    etag = (
        await client.get(
            "/api/v1/costs",
            params={"start": str(period), "end": str(period_end)},
            headers=tenant.auth,
        )
    ).headers["ETag"]

    after = await total(later_client(4), tenant, *window)
    revalidated = await later_client(4).get(
        "/api/v1/costs",
        params={"start": str(period), "end": str(period_end)},
        headers={**tenant.auth, "If-None-Match": etag},
    )

    assert before["preliminary_billed_cost"] == Decimal("80.00")
    assert after["final_billed_cost"] == Decimal("80.00")
    assert after["preliminary_billed_cost"] == 0
    assert revalidated.status_code == 200, "an ETag must not vouch for flags that have flipped"
    adjustments = (await client.get("/api/v1/costs/adjustments", headers=tenant.auth)).json()
    assert adjustments == [], "the flip is not a restatement"


async def test_a_restatement_too_large_for_a_percentage_is_recorded_with_its_amounts(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    day = {dt.date(2026, 4, 2): Decimal("0.0000008")}
    await import_file(client, tenant, write(tmp_path / "tiny.csv", focus_rows(APRIL, day)))

    run = await import_file(
        client,
        tenant,
        write(tmp_path / "large.csv", focus_rows(APRIL, {dt.date(2026, 4, 2): Decimal("5")})),
    )

    assert run["adjustments"] == 1
    [adjustment] = (await client.get("/api/v1/costs/adjustments", headers=tenant.auth)).json()
    old, new = adjustment["old_billed_cost"], adjustment["new_billed_cost"]
    assert "E" not in old + new, "amounts are plain decimals"
    assert (Decimal(old), Decimal(new)) == (Decimal("0.0000008"), Decimal("5"))
    assert adjustment["change_percent"] is None


@pytest.mark.parametrize("dictionary", [False, True], ids=["plain-text", "dictionary-encoded"])
async def test_parquet_files_of_two_accounts_with_empty_sub_accounts_both_count(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path, dictionary: bool
) -> None:
    """An empty SubAccountId is no sub-account, in Parquet as in CSV: two billing accounts'
    files that leave it empty are two accounts, not one named "" whose later file supersedes
    the earlier one's charges."""
    tenant = await make_tenant()
    runs = []
    for account, cost in (("111122223333", "100.00"), ("444455556666", "10.00")):
        rows = focus_rows(APRIL, month_of(APRIL, cost), account=account)
        for row in rows:
            row[HEADER.index("SubAccountId")] = ""
        as_text = pacsv.read_csv(
            write(tmp_path / f"{account}.csv", rows),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(HEADER, pa.string()), strings_can_be_null=False
            ),
        )
        if dictionary:  # as pandas writes a categorical column
            index = as_text.schema.get_field_index("SubAccountId")
            encoded = pc.dictionary_encode(as_text.column(index))
            as_text = as_text.set_column(index, "SubAccountId", encoded)
        pq.write_table(as_text, tmp_path / f"{account}.parquet")
        runs.append(await import_file(client, tenant, tmp_path / f"{account}.parquet"))

    assert runs[1]["details"].get("superseded", []) == []
    assert (await total(client, tenant, APRIL, MAY))["billed_cost"] == Decimal("3300.00")
