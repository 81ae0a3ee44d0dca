"""Values at the edges of what an export holds: a number in exponent form beside a large one,
Parquet text that is not UTF-8, a source name longer than a source key may be."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.costs.focus_files import sample_path, sample_rows, write_csv
from tests.costs.helpers import SEPTEMBER, assert_only_the_rejected_run, stored, upload
from tests.fixtures.http import assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="session")

CENT = Decimal("0.01")


async def test_a_tiny_number_in_exponent_form_beside_a_large_one_imports_exactly(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    header, rows = sample_rows()
    billed = header.index("BilledCost")
    # 1.5e-20 has more decimal places than are kept (18), so Arrow cannot cast the column.
    rows[1][billed], rows[2][billed] = "1.5e-20", "12345678901.5"
    expected = sum(Decimal(row[billed]) for row in rows)

    response = await upload(client, tenant, write_csv(tmp_path / "edge.csv", header, rows))

    assert response.status_code == 201, response.text
    costs = await client.get("/api/v1/costs", params=SEPTEMBER, headers=tenant.auth)
    [total] = costs.json()["totals"]
    assert Decimal(total["billed_cost"]).quantize(CENT) == expected.quantize(CENT)


async def test_parquet_text_that_is_not_utf8_is_refused_naming_row_and_column(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    table = pacsv.read_csv(
        sample_path(),
        convert_options=pacsv.ConvertOptions(null_values=["NULL"], strings_can_be_null=True),
    )
    index = table.schema.get_field_index("ServiceName")
    raw = [value.encode() for value in table.column(index).to_pylist()]
    raw[2] = b"EC\xff2"  # a Parquet writer that does not check its strings
    binary = pa.array(raw, pa.binary())
    unchecked = pa.Array.from_buffers(pa.string(), len(binary), binary.buffers())
    pq.write_table(table.set_column(index, "ServiceName", unchecked), tmp_path / "bad.parquet")

    response = await upload(client, tenant, tmp_path / "bad.parquet")

    problem = assert_problem(response, 422)
    first = problem["errors"][0]
    assert (first["row"], first["column"]) == (3, "ServiceName"), first
    assert "not UTF-8" in first["reason"]
    runs, _ = await stored(client, tenant)
    assert_only_the_rejected_run(runs, problem)


async def test_the_cli_refuses_a_source_name_longer_than_the_api_allows(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    worker_env: dict[str, str],
) -> None:
    tenant = await make_tenant()

    refused = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "valdrix", "costs", "import", str(sample_path()),
         "--tenant", str(tenant.tenant_id), "--source", "s" * 300],
        env=worker_env, capture_output=True, text=True,
    )  # fmt: skip

    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert "source" in refused.stderr and "200 characters" in refused.stderr
    runs, _ = await stored(client, tenant)
    assert runs == []


async def test_a_number_with_an_exponent_past_decimal_range_is_refused_naming_its_row(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    header, rows = sample_rows()
    rows[2][header.index("BilledCost")] = "1e99999999999"

    response = await upload(client, tenant, write_csv(tmp_path / "huge.csv", header, rows))

    problem = assert_problem(response, 422)
    first = problem["errors"][0]
    assert (first["row"], first["column"]) == (3, "BilledCost"), first
    assert "too large" in first["reason"]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("BilledCost", "1e9999999999999999999", "not a number"),
        ("ListCost", "1e-9999999999999999999", "not a number"),
        ("BilledCost", "10e999999999999999999", "too large to store"),
        ("Tags", "[" * 100_000, "not a JSON object of tags"),
    ],
    ids=[
        "exponent-too-long-to-hold",
        "negative-exponent-too-long",
        "past-the-largest-decimal",
        "tags-nested-100000-deep",
    ],
)
async def test_a_value_no_decimal_or_json_reader_can_hold_is_refused_naming_its_row(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    tmp_path: Path,
    column: str,
    value: str,
    reason: str,
) -> None:
    tenant = await make_tenant()
    header, rows = sample_rows()
    rows[4][header.index(column)] = value

    response = await upload(client, tenant, write_csv(tmp_path / "odd.csv", header, rows))

    problem = assert_problem(response, 422)
    [error] = problem["errors"]
    assert (error["row"], error["column"]) == (5, column), error
    assert reason in error["reason"]
    runs, _ = await stored(client, tenant)
    assert_only_the_rejected_run(runs, problem)
