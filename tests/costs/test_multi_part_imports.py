"""An export delivered as several part files, imported through the API or the CLI: the parts are
one run, equal to the whole file; a part that cannot be read rejects them all, naming it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TenantFixture
from tests.costs.focus_files import sample_path, sample_rows, sample_sums, write_csv
from tests.costs.helpers import SEPTEMBER, assert_only_the_rejected_run, stored, upload
from tests.fixtures.http import api_client, assert_problem
from valdrix.runtime import Runtime

pytestmark = pytest.mark.asyncio(loop_scope="session")

CENT = Decimal("0.01")


def two_parts(directory: Path, *, ragged_row_in_part_2: int | None = None) -> list[Path]:
    """The sample split as a provider splits a large export: rows 1-500 and 501-1000, each
    part with the header."""
    header, rows = sample_rows()
    second = rows[500:]
    if ragged_row_in_part_2:
        second[ragged_row_in_part_2 - 1] = second[ragged_row_in_part_2 - 1][:-1]
    return [
        write_csv(directory / "part-1.csv", header, rows[:500]),
        write_csv(directory / "part-2.csv", header, second),
    ]


async def upload_parts(
    client: httpx.AsyncClient, tenant: TenantFixture, paths: list[Path]
) -> httpx.Response:
    with ExitStack() as stack:
        files = [
            ("file", (path.name, stack.enter_context(path.open("rb")), "text/csv"))
            for path in paths
        ]
        return await client.post("/api/v1/costs/imports", files=files, headers=tenant.auth)


async def costs_by_provider(client: httpx.AsyncClient, tenant: TenantFixture) -> Any:
    response = await client.get(
        "/api/v1/costs", params={**SEPTEMBER, "group_by": "provider"}, headers=tenant.auth
    )
    body = response.json()
    return body["rows"], body["totals"]


async def test_two_parts_uploaded_together_are_one_run_equal_to_the_whole_file(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    whole, parted = await make_tenant(), await make_tenant()
    assert (await upload(client, whole, sample_path())).status_code == 201

    response = await upload_parts(client, parted, two_parts(tmp_path))

    assert response.status_code == 201, response.text
    run = response.json()
    assert run["rows_read"] == 1000
    assert run["details"]["files"] == ["part-1.csv", "part-2.csv"]
    runs, _ = await stored(client, parted)
    assert [r["id"] for r in runs] == [run["id"]]
    assert await costs_by_provider(client, parted) == await costs_by_provider(client, whole)


async def test_a_part_that_cannot_be_read_rejects_every_part_and_is_named(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    _, costs_before = await stored(client, tenant)

    response = await upload_parts(client, tenant, two_parts(tmp_path, ragged_row_in_part_2=200))

    problem = assert_problem(response, 422)
    assert problem["errors"][0] == {
        "file": "part-2.csv",
        "row": 200,
        "column": None,
        "reason": "has 43 fields where the header has 44",
    }
    assert "part-2.csv: row 200" in problem["detail"]
    runs, costs_after = await stored(client, tenant)
    assert_only_the_rejected_run(runs, problem)
    assert runs[0]["details"]["files"] == ["part-1.csv", "part-2.csv"]
    assert costs_after == costs_before


async def test_the_upload_limit_counts_every_part(
    make_tenant: Callable[..., Any], runtime: Runtime, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    parts = two_parts(tmp_path)
    limit = max(path.stat().st_size for path in parts) + 10_000  # each part fits, not both
    small = dataclasses.replace(
        runtime, settings=runtime.settings.updated(costs={"max_upload_bytes": limit})
    )

    async with api_client(small) as api:
        alone = await upload_parts(api, tenant, parts[:1])
        together = await upload_parts(api, tenant, parts)

    assert alone.status_code == 201, alone.text
    assert_problem(together, 413)


async def test_the_cli_imports_several_parts_as_one_run(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    tenant = await make_tenant()
    parts = two_parts(tmp_path)

    imported = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "valdrix", "costs", "import", *map(str, parts),
         "--tenant", str(tenant.tenant_id), "--json"],
        env=worker_env, capture_output=True, text=True,
    )  # fmt: skip

    assert imported.returncode == 0, imported.stderr
    run = json.loads(imported.stdout.splitlines()[-1])
    assert (run["status"], run["rows_read"]) == ("committed", 1000)
    billed = Decimal(run["totals"]["USD"]["billed_cost"])
    assert billed.quantize(CENT) == sum(sample_sums("BilledCost").values()).quantize(CENT)
    runs, _ = await stored(client, tenant)
    assert [r["id"] for r in runs] == [run["id"]]


async def test_the_cli_names_the_part_that_cannot_be_read(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    tenant = await make_tenant()
    parts = two_parts(tmp_path, ragged_row_in_part_2=200)

    rejected = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "valdrix", "costs", "import", *map(str, parts),
         "--tenant", str(tenant.tenant_id)],
        env=worker_env, capture_output=True, text=True,
    )  # fmt: skip

    assert rejected.returncode == 1
    assert "part-2.csv: row 200: has 43 fields where the header has 44" in rejected.stderr
    assert "part-1.csv, part-2.csv were rejected; nothing was stored" in rejected.stderr
    runs, _ = await stored(client, tenant)
    assert [r["status"] for r in runs] == ["rejected"]
