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
