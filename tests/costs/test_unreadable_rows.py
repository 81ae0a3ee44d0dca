"""Files that are almost FOCUS CSV, and values the database cannot hold: each is refused with
the row and column where there is one, by the API (422) and the CLI (a message, exit 1), and
nothing is stored but the rejected run."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.costs.focus_files import damaged, sample_rows, write_csv
from tests.costs.helpers import assert_only_the_rejected_run, stored, upload
from tests.fixtures.http import assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass(frozen=True)
class Refusal:
    """Where the first error must point, and words its reason must hold."""

    row: int | None
    column: str | None
    words: tuple[str, ...]


def semicolons(path: Path) -> Path:
    header, rows = sample_rows()
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue())
    return path


def windows_1252(path: Path) -> Path:
    """Row 500's description written as Windows-1252 ("Caf\\xe9"), the rest as ASCII."""
    header, rows = sample_rows()
    rows[499][header.index("ChargeDescription")] = "Café"
    with path.open("w", newline="", encoding="cp1252") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def ragged(path: Path, row: int, change: int) -> Path:
    header, rows = sample_rows()
    fields = rows[row - 1]
    rows[row - 1] = fields[:change] if change < 0 else [*fields, *["x"] * change]
    return write_csv(path, header, rows)


def with_value(path: Path, column: str, value: str) -> Path:
    """The sample with ``value`` in ``column`` of row 3."""
    header, rows = sample_rows()
    rows[2][header.index(column)] = value
    return write_csv(path, header, rows)


# Each case: how to make the file, and what the refusal says.
CASES: dict[str, tuple[Callable[[Path], Path], Refusal]] = {
    "semicolons": (semicolons, Refusal(None, None, ("';'", "','"))),
    "windows-1252": (windows_1252, Refusal(500, "ChargeDescription", ("not UTF-8", "0xE9"))),
    "short-row-700": (lambda p: ragged(p, 700, -3), Refusal(700, None, ("41 fields", "44"))),
    "long-row-990": (lambda p: ragged(p, 990, 1), Refusal(990, None, ("45 fields", "44"))),
    "cost-past-numeric-24-10": (
        lambda p: with_value(p, "BilledCost", "123456789012345.5"),
        Refusal(3, "BilledCost", ("too large",)),
    ),
    "quantity-1e30": (
        lambda p: with_value(p, "PricingQuantity", "1e30"),
        Refusal(3, "PricingQuantity", ("too large",)),
    ),
    "currency-name": (
        lambda p: with_value(p, "BillingCurrency", "US Dollar"),
        Refusal(3, "BillingCurrency", ("ISO 4217",)),
    ),
    "service-name-300-chars": (
        lambda p: with_value(p, "ServiceName", "S" * 300),
        Refusal(3, "ServiceName", ("longer than 200",)),
    ),
    "nul-in-service-name": (
        lambda p: with_value(p, "ServiceName", "EC\x002"),
        Refusal(3, "ServiceName", ("NUL",)),
    ),
    "nul-in-tag": (
        lambda p: with_value(p, "Tags", '{"team": "a\\u0000b"}'),
        Refusal(3, "Tags", ("NUL",)),
    ),
    "year-9999": (
        lambda p: with_value(p, "ChargePeriodStart", "9999-12-31T00:00:00Z"),
        Refusal(3, "ChargePeriodStart", ("9999-12-31",)),
    ),
    # Through the API in test_unreadable_imports; here for the CLI.
    "empty": (lambda p: damaged("empty", p.parent), Refusal(None, None, ("the file is empty",))),
    "truncated-gzip": (
        lambda p: damaged("truncated-gzip", p.parent),
        Refusal(None, None, ("not a readable gzip file",)),
    ),
    "truncated-parquet": (
        lambda p: damaged("truncated-parquet", p.parent),
        Refusal(None, None, ("not a readable Parquet file",)),
    ),
}
THROUGH_THE_API = sorted(set(CASES) - {"empty", "truncated-gzip", "truncated-parquet"})


def make(kind: str, directory: Path) -> tuple[Path, Refusal]:
    build, refusal = CASES[kind]
    return build(directory / f"{kind}.csv"), refusal


def assert_points_at(error: dict[str, Any], refusal: Refusal) -> None:
    assert (error["row"], error["column"]) == (refusal.row, refusal.column), error
    for words in refusal.words:
        assert words in error["reason"], error


@pytest.mark.parametrize("kind", THROUGH_THE_API)
async def test_an_unreadable_row_or_value_is_a_422_naming_it_and_stores_only_the_rejected_run(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path, kind: str
) -> None:
    tenant = await make_tenant()
    _, costs_before = await stored(client, tenant)
    path, refusal = make(kind, tmp_path)

    response = await upload(client, tenant, path)

    problem = assert_problem(response, 422)
    assert "nothing was stored" in problem["detail"]
    assert_points_at(problem["errors"][0], refusal)
    if refusal.row:
        assert f"row {refusal.row}" in problem["detail"]
    runs, costs_after = await stored(client, tenant)
    assert_only_the_rejected_run(runs, problem)
    assert costs_after == costs_before


@pytest.mark.parametrize(
    "kind",
    [
        "empty", "truncated-gzip", "truncated-parquet", "semicolons", "windows-1252",
        "short-row-700", "cost-past-numeric-24-10",
    ],
)  # fmt: skip
async def test_the_cli_refuses_the_same_inputs_with_a_readable_message_and_exit_1(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    worker_env: dict[str, str],
    tmp_path: Path,
    kind: str,
) -> None:
    tenant = await make_tenant()
    path, refusal = make(kind, tmp_path)

    rejected = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "valdrix", "costs", "import", str(path),
         "--tenant", str(tenant.tenant_id), "--json"],
        env=worker_env, capture_output=True, text=True,
    )  # fmt: skip

    assert rejected.returncode == 1, rejected.stderr
    assert "Traceback" not in rejected.stderr and "Aborted" not in rejected.stderr
    assert f"{path.name} was rejected; nothing was stored" in rejected.stderr
    where = f"row {refusal.row}: " if refusal.row else ""
    assert f"{where}{refusal.column + ': ' if refusal.column else ''}" in rejected.stderr
    answer = json.loads(rejected.stdout.splitlines()[-1])
    assert answer["status"] == "rejected"
    assert_points_at(answer["errors"][0], refusal)
    runs, _ = await stored(client, tenant)
    assert [run["id"] for run in runs] == [answer["run_id"]]
