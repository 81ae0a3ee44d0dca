"""A FOCUS file billed in several currencies (consolidated billing): accepted, and every
amount reported in its own currency, never summed across currencies."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.costs.focus_files import sample_rows, sample_sums, write_csv
from tests.costs.helpers import SEPTEMBER, upload

pytestmark = pytest.mark.asyncio(loop_scope="session")

CENT = Decimal("0.01")


def billed_in_euros_for_microsoft(path: Path) -> Path:
    """The sample with its Microsoft rows billed in EUR, the others in USD."""
    header, rows = sample_rows()
    provider, currency = header.index("ProviderName"), header.index("BillingCurrency")
    for row in rows:
        if row[provider] == "Microsoft":
            row[currency] = "EUR"
    return write_csv(path, header, rows)


def cents(amounts: dict[str, Any], column: str) -> dict[str, Decimal]:
    return {currency: Decimal(value[column]).quantize(CENT) for currency, value in amounts.items()}


async def test_a_file_billed_in_two_currencies_is_imported_and_totalled_per_currency(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    sums = sample_sums("BilledCost")
    expected = {
        "EUR": sums["Microsoft"].quantize(CENT),
        "USD": (sums["AWS"] + sums["Oracle"]).quantize(CENT),
    }

    response = await upload(client, tenant, billed_in_euros_for_microsoft(tmp_path / "two.csv"))

    assert response.status_code == 201, response.text
    run = response.json()
    assert run["details"]["currencies"] == ["EUR", "USD"]
    assert cents(run["totals"], "billed_cost") == expected
    costs = await client.get(
        "/api/v1/costs", params={**SEPTEMBER, "group_by": "provider"}, headers=tenant.auth
    )
    body = costs.json()
    totals = {total["currency"]: total for total in body["totals"]}
    assert cents(totals, "billed_cost") == expected
    assert {(row["provider"], row["currency"]) for row in body["rows"]} == {
        ("AWS", "USD"),
        ("Oracle", "USD"),
        ("Microsoft", "EUR"),
    }


async def test_a_grouped_listing_totals_each_currency_exactly_as_the_ungrouped_one(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    await upload(client, tenant, billed_in_euros_for_microsoft(tmp_path / "two.csv"))

    async def listing(group_by: str) -> dict[str, Any]:
        params = {**SEPTEMBER, "group_by": group_by} if group_by else SEPTEMBER
        response = await client.get("/api/v1/costs", params=params, headers=tenant.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    ungrouped = await listing("")
    for group_by in ("provider", "service,day"):
        grouped = await listing(group_by)
        # To the last digit, every amount (preliminary and final ones too), in the same order.
        assert grouped["totals"] == ungrouped["totals"] == ungrouped["rows"]
        assert [total["currency"] for total in grouped["totals"]] == ["USD", "EUR"]
