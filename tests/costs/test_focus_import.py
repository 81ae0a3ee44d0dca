"""FOCUS imports through the API and the CLI: totals to the cent, whole-file rejection."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TenantFixture
from tests.costs.focus_files import (
    gzip_copy,
    parquet_copy,
    sample_path,
    sample_rows,
    sample_sums,
    write_csv,
)
from tests.costs.helpers import SEPTEMBER, upload
from tests.fixtures.http import api_client
from valdrix.runtime import Runtime

pytestmark = pytest.mark.asyncio(loop_scope="session")

CENT = Decimal("0.01")


async def by_provider(client: httpx.AsyncClient, tenant: TenantFixture) -> httpx.Response:
    return await client.get(
        "/api/v1/costs", params={**SEPTEMBER, "group_by": "provider"}, headers=tenant.auth
    )


def provider_totals(body: dict[str, Any], column: str) -> dict[str, Decimal]:
    return {row["provider"]: Decimal(row[column]) for row in body["rows"]}


async def test_the_real_sample_imported_by_api_adds_up_to_the_files_own_sums(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient
) -> None:
    tenant = await make_tenant()
    response = await upload(client, tenant, sample_path())
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "committed"
    assert run["rows_read"] == run["rows_accepted"] == 1000 and run["rows_rejected"] == 0
    assert "Id" in run["details"]["columns_kept_aside"]

    costs = await by_provider(client, tenant)
    assert costs.status_code == 200
    body = costs.json()
    billed = provider_totals(body, "billed_cost")
    assert {p: v.quantize(CENT) for p, v in billed.items()} == {
        "AWS": Decimal("18.01"),
        "Microsoft": Decimal("1.98"),
        "Oracle": Decimal("0.54"),
    }
    for column, source in (("billed_cost", "BilledCost"), ("effective_cost", "EffectiveCost")):
        expected = {p: v.quantize(CENT) for p, v in sample_sums(source).items()}
        assert {p: v.quantize(CENT) for p, v in provider_totals(body, column).items()} == expected
    [total] = body["totals"]
    assert total["currency"] == "USD"
    assert Decimal(total["final_billed_cost"]) == sum(billed.values())
    assert Decimal(total["preliminary_billed_cost"]) == 0  # September 2024 is long closed


@pytest.mark.parametrize("variant", ["gzip", "parquet"])
async def test_gzip_and_parquet_exports_give_the_same_totals(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path, variant: str
) -> None:
    tenant = await make_tenant()
    copy = (
        gzip_copy(sample_path(), tmp_path / "focus.csv.gz")
        if variant == "gzip"
        else parquet_copy(sample_path(), tmp_path / "focus.parquet")
    )
    response = await upload(client, tenant, copy)
    assert response.status_code == 201, response.text
    assert response.json()["details"]["format"] == {"gzip": "csv.gz", "parquet": "parquet"}[variant]
    body = (await by_provider(client, tenant)).json()
    expected = sample_sums("BilledCost")
    assert {p: v.quantize(CENT) for p, v in provider_totals(body, "billed_cost").items()} == {
        p: v.quantize(CENT) for p, v in expected.items()
    }


async def test_importing_the_same_export_again_replaces_it_instead_of_adding(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient
) -> None:
    tenant = await make_tenant()
    first = await upload(client, tenant, sample_path())
    before = await by_provider(client, tenant)
    second = await upload(client, tenant, sample_path())
    after = await by_provider(client, tenant)
    assert first.status_code == second.status_code == 201
    assert provider_totals(after.json(), "billed_cost") == provider_totals(
        before.json(), "billed_cost"
    )
    assert second.json()["adjustments"] == 0
    # Nothing a reader sees changed, so a cached answer stays valid.
    assert after.headers["ETag"] == before.headers["ETag"]
    runs = (await client.get("/api/v1/costs/runs", headers=tenant.auth)).json()
    assert [r["status"] for r in runs] == ["committed", "committed"]


@pytest.mark.parametrize(
    ("damage", "column", "reason"),
    [("bad_number", "BilledCost", "not a number"), ("no_column", "ServiceName", "missing")],
)
async def test_a_damaged_file_is_rejected_whole_with_row_and_column_and_nothing_changes(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    tmp_path: Path,
    damage: str,
    column: str,
    reason: str,
) -> None:
    tenant = await make_tenant()
    assert (await upload(client, tenant, sample_path())).status_code == 201
    before = await by_provider(client, tenant)
    header, rows = sample_rows()
    if damage == "bad_number":
        rows[41][header.index("BilledCost")] = "12,5 USD"
    else:
        index = header.index("ServiceName")
        header = header[:index] + header[index + 1 :]
        rows = [row[:index] + row[index + 1 :] for row in rows]
    damaged = write_csv(tmp_path / "damaged.csv", header, rows)

    response = await upload(client, tenant, damaged)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    first = problem["errors"][0]
    assert first["column"] == column and reason in first["reason"]
    if damage == "bad_number":
        assert first["row"] == 42
        assert "row 42, column BilledCost" in problem["detail"]
    after = await by_provider(client, tenant)
    assert after.json() == before.json()
    assert after.headers["ETag"] == before.headers["ETag"]
    runs = (await client.get("/api/v1/costs/runs", headers=tenant.auth)).json()
    assert runs[0]["status"] == "rejected"
    assert runs[0]["rows_rejected"] == (1 if damage == "bad_number" else 0)
    assert runs[0]["id"] == problem["run_id"]


async def test_an_upload_over_the_size_limit_is_refused_before_it_is_read(
    make_tenant: Callable[..., Any], runtime: Runtime
) -> None:
    tenant = await make_tenant()
    small = dataclasses.replace(
        runtime, settings=runtime.settings.updated(costs={"max_upload_bytes": 4096})
    )
    async with api_client(small) as api:
        response = await upload(api, tenant, sample_path())  # about 600 KB
        runs = (await api.get("/api/v1/costs/runs", headers=tenant.auth)).json()
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert runs == []
