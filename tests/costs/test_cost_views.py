"""Reading costs the ways a FinOps team slices them: by month, account, charge class; filtered;
as CSV; amounts always plain decimals."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.costs.focus_files import APRIL, MAY, focus_rows, write
from tests.costs.helpers import import_file

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def two_accounts(make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path):
    tenant = await make_tenant()
    rows = [
        *focus_rows(APRIL, {dt.date(2026, 4, 3): Decimal("10.00")}),
        *focus_rows(MAY, {dt.date(2026, 5, 3): Decimal("20.00")}),
        *focus_rows(MAY, {dt.date(2026, 5, 4): Decimal("0.0000008")}, account="444455556666"),
        *focus_rows(MAY, {dt.date(2026, 4, 30): Decimal("-1.00")}, charge_class="Correction"),
    ]
    await import_file(client, tenant, write(tmp_path / "two.csv", rows))
    return tenant


async def read(client: httpx.AsyncClient, tenant: Any, **params: str) -> httpx.Response:
    response = await client.get(
        "/api/v1/costs",
        params={"start": "2026-04-01", "end": "2026-06-01", **params},
        headers=tenant.auth,
    )
    assert response.status_code == 200, response.text
    return response


async def test_costs_group_by_month_billing_period_and_charge_class(client, two_accounts):
    by_month = await read(client, two_accounts, group_by="month")
    by_period = await read(client, two_accounts, group_by="billing_period,charge_class")

    assert {r["month"]: r["billed_cost"] for r in by_month.json()["rows"]} == {
        "2026-04-01": "9",
        "2026-05-01": "20.0000008",
    }
    assert {
        (r["billing_period"], r["charge_class"]): r["billed_cost"] for r in by_period.json()["rows"]
    } == {
        ("2026-04-01", None): "10",
        ("2026-05-01", None): "20.0000008",
        ("2026-05-01", "Correction"): "-1",
    }


async def test_costs_group_by_repeated_groups_by_every_dimension_like_a_comma_list(
    client, two_accounts
):
    repeated = await client.get(
        "/api/v1/costs",
        params={
            "start": "2026-04-01",
            "end": "2026-06-01",
            "group_by": ["billing_period", "charge_class"],
        },
        headers=two_accounts.auth,
    )
    comma = await read(client, two_accounts, group_by="billing_period,charge_class")

    assert repeated.status_code == 200, repeated.text
    assert repeated.json()["group_by"] == ["billing_period", "charge_class"]
    assert repeated.json()["rows"] == comma.json()["rows"]


async def test_costs_filter_by_account_and_tag(client, two_accounts):
    one_account = await read(client, two_accounts, account="444455556666")
    tagged = await read(client, two_accounts, tag="team=platform", group_by="billing_account")
    untagged = await read(client, two_accounts, tag="team=finance")

    assert one_account.json()["totals"][0]["billed_cost"] == "0.0000008"
    assert {r["billing_account"] for r in tagged.json()["rows"]} == {
        "111122223333",
        "444455556666",
    }
    assert untagged.json()["totals"] == []


async def test_costs_as_csv_for_a_spreadsheet(client, two_accounts):
    response = await client.get(
        "/api/v1/costs",
        params={"start": "2026-04-01", "end": "2026-06-01", "group_by": "month"},
        headers={**two_accounts.auth, "Accept": "text/csv"},
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["currency"], r["month"], r["billed_cost"]) for r in rows] == [
        ("USD", "2026-05-01", "20.0000008"),
        ("USD", "2026-04-01", "9"),
    ]


async def test_a_bad_filter_is_refused_naming_it(client, two_accounts):
    response = await client.get(
        "/api/v1/costs",
        params={"start": "2026-04-01", "end": "2026-06-01", "tag": "no-equals-sign"},
        headers=two_accounts.auth,
    )

    assert response.status_code == 422
    assert "tag filter" in response.json()["detail"]


async def test_costs_group_by_a_tag_the_api_lists_the_keys_of(client, two_accounts):
    window = {"start": "2026-04-01", "end": "2026-06-01"}
    keys = await client.get("/api/v1/costs/tag-keys", params=window, headers=two_accounts.auth)
    before = await client.get(
        "/api/v1/costs/tag-keys", params={"start": "2026-01-01", "end": "2026-04-01"},
        headers=two_accounts.auth,
    )  # fmt: skip
    backwards = await client.get(
        "/api/v1/costs/tag-keys", params={"start": "2026-06-01", "end": "2026-04-01"},
        headers=two_accounts.auth,
    )  # fmt: skip
    by_team = await read(client, two_accounts, group_by="month,tag:team")

    assert keys.status_code == 200, keys.text
    assert keys.json() == ["team"]
    assert before.json() == []
    assert backwards.status_code == 422
    assert {(r["month"], r["tag:team"]): r["billed_cost"] for r in by_team.json()["rows"]} == {
        ("2026-04-01", "platform"): "9",
        ("2026-05-01", "platform"): "20.0000008",
    }


async def test_only_tag_keys_costs_can_be_grouped_by_are_listed(client, make_tenant, tmp_path):
    """A key with a comma (FOCUS and Azure allow one), with spaces around it or longer than a
    group_by key may be is not offered: grouping by it would be refused or group by another."""
    tenant = await make_tenant()
    long_key = "k" * 129
    tags = {"team": "a", "cost, centre": "b", " padded ": "c", long_key: "d", "k" * 128: "e"}
    rows = focus_rows(APRIL, {dt.date(2026, 4, 3): Decimal("10.00")})
    rows[0][-1] = json.dumps(tags)
    await import_file(client, tenant, write(tmp_path / "tags.csv", rows))

    keys = await client.get(
        "/api/v1/costs/tag-keys", params={"start": "2026-04-01", "end": "2026-06-01"},
        headers=tenant.auth,
    )  # fmt: skip

    assert keys.status_code == 200, keys.text
    assert keys.json() == ["k" * 128, "team"]
    for key in keys.json():
        assert (await read(client, tenant, group_by=f"tag:{key}")).json()["rows"]


async def test_the_csv_keeps_names_that_are_formulas_as_text_and_amounts_as_numbers(
    client, make_tenant, tmp_path
):
    """A service or account name in an uploaded bill is anybody's text: a spreadsheet opening
    the export must not run it. Negative amounts stay numbers."""
    tenant = await make_tenant()
    [charge] = focus_rows(MAY, {dt.date(2026, 5, 3): Decimal("20.00")})
    [refund] = focus_rows(MAY, {dt.date(2026, 5, 4): Decimal("-1.50")}, charge_class="Correction")
    charge[16], refund[16] = '=HYPERLINK("https://example.invalid","x")', "@SUM(1+1)"
    await import_file(client, tenant, write(tmp_path / "named.csv", [charge, refund]))

    response = await client.get(
        "/api/v1/costs",
        params={"start": "2026-05-01", "end": "2026-06-01", "group_by": "service"},
        headers={**tenant.auth, "Accept": "text/csv"},
    )

    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted((r["service"], r["billed_cost"]) for r in rows) == [
        ('\'=HYPERLINK("https://example.invalid","x")', "20"),
        ("'@SUM(1+1)", "-1.5"),
    ]


async def test_a_window_past_the_last_day_costs_are_kept_for_is_refused(client, make_tenant):
    tenant = await make_tenant()
    response = await client.get(
        "/api/v1/costs", params={"start": "9999-12-15", "end": "9999-12-31"}, headers=tenant.auth
    )
    assert response.status_code == 422, response.text
    assert (
        response.json()["detail"] == "end must be 2100-01-01 or earlier: costs end with 2099-12-31"
    )
