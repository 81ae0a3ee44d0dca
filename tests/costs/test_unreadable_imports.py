"""Uploads that are not FOCUS data, or more of it than an import may hold: a 422 that says why,
and nothing stored but the rejected run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.costs.focus_files import damaged, gzip_copy, parquet_copy, sample_path
from tests.costs.helpers import assert_only_the_rejected_run, stored, upload
from tests.fixtures.http import api_client, assert_problem
from valdrix.runtime import Runtime

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("empty", "the file is empty"),
        ("corrupt-gzip", "not a readable gzip file"),
        ("truncated-gzip", "not a readable gzip file"),
        ("corrupt-parquet", "not a readable Parquet file"),
        ("truncated-parquet", "not a readable Parquet file"),
        ("random-binary", "not a readable CSV file"),
    ],
)
async def test_an_unreadable_upload_is_refused_with_the_reason_and_stores_only_a_rejected_run(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    tmp_path: Path,
    kind: str,
    reason: str,
) -> None:
    tenant = await make_tenant()
    _, costs_before = await stored(client, tenant)

    response = await upload(client, tenant, damaged(kind, tmp_path))

    problem = assert_problem(response, 422)
    assert reason in problem["detail"] and "nothing was stored" in problem["detail"]
    assert reason in problem["errors"][0]["reason"]
    runs, costs_after = await stored(client, tenant)
    assert_only_the_rejected_run(runs, problem)
    assert costs_after == costs_before


@pytest.mark.parametrize("variant", ["gzip", "parquet"])
async def test_an_upload_expanding_past_the_decompressed_limit_is_refused_while_it_streams(
    make_tenant: Callable[..., Any], runtime: Runtime, tmp_path: Path, variant: str
) -> None:
    tenant = await make_tenant()
    limit = 64 * 1024  # the sample is about 600 KB of CSV, 1,000 rows
    small = dataclasses.replace(
        runtime,
        settings=runtime.settings.updated(costs={"max_decompressed_bytes": limit}),
    )
    path = (
        gzip_copy(sample_path(), tmp_path / "focus.csv.gz")
        if variant == "gzip"
        else parquet_copy(sample_path(), tmp_path / "focus.parquet")
    )
    assert path.stat().st_size < limit * 2  # small on the wire; what it expands to is refused

    async with api_client(small) as api:
        response = await upload(api, tenant, path)
        runs, _ = await stored(api, tenant)

    problem = assert_problem(response, 422)
    assert f"VALDRIX_COSTS_MAX_DECOMPRESSED_BYTES ({limit} bytes)" in problem["detail"]
    assert_only_the_rejected_run(runs, problem)
    assert runs[0]["rows_read"] < 1000  # stopped at the limit, not after reading everything


async def test_an_upload_with_more_rows_than_an_import_may_hold_is_refused(
    make_tenant: Callable[..., Any], runtime: Runtime
) -> None:
    tenant = await make_tenant()
    small = dataclasses.replace(
        runtime, settings=runtime.settings.updated(costs={"max_rows_per_import": 300})
    )

    async with api_client(small) as api:
        response = await upload(api, tenant, sample_path())
        runs, _ = await stored(api, tenant)

    problem = assert_problem(response, 422)
    assert "VALDRIX_COSTS_MAX_ROWS_PER_IMPORT (300 rows)" in problem["detail"]
    assert_only_the_rejected_run(runs, problem)
    assert runs[0]["rows_read"] <= 300


@pytest.mark.parametrize(
    ("header", "named"),
    [
        # CUR 2.0 as AWS Data Exports writes it, and the legacy CUR's slash-named columns.
        (["bill_payer_account_id", "line_item_usage_account_id", "line_item_usage_start_date",
          "line_item_product_code", "line_item_unblended_cost"],
         "an AWS Cost and Usage Report (CUR)"),
        (["identity/LineItemId", "lineItem/UsageAccountId", "lineItem/UsageStartDate",
          "lineItem/ProductCode", "lineItem/UnblendedCost"],
         "an AWS Cost and Usage Report (CUR)"),
        (["SubscriptionId", "Date", "MeterCategory", "ResourceId", "CostInBillingCurrency",
          "BillingCurrency"],
         "an Azure cost details export"),
        (["billing_account_id", "service.description", "sku.description", "usage_start_time",
          "cost", "currency"],
         "a Google Cloud billing export"),
        (["Date", "Amount", "Account"], "this is not a FOCUS export"),
    ],
)  # fmt: skip
async def test_a_providers_native_export_is_named_with_the_focus_export_to_take_instead(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    tmp_path: Path,
    header: list[str],
    named: str,
) -> None:
    tenant = await make_tenant()
    path = tmp_path / "export.csv"
    path.write_text(",".join(header) + "\n" + ",".join("1" for _ in header) + "\n")

    response = await upload(client, tenant, path)

    problem = assert_problem(response, 422)
    first = problem["errors"][0]
    assert named in first["reason"] and first["column"] is None
    assert "of FOCUS's 21 mandatory columns" in problem["detail"]
    # Then the missing columns, in one line rather than 21 errors.
    assert problem["errors"][1]["reason"].startswith("missing: BilledCost, EffectiveCost, ")
    assert len(problem["errors"]) == 2
    runs, _ = await stored(client, tenant)
    assert_only_the_rejected_run(runs, problem)
