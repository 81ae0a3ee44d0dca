"""Cost imports through the API and what they leave behind, for the cost tests, and cost data for
tests elsewhere that need a tenant with some."""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import TenantFixture
from tests.costs.focus_files import synthetic
from valdrix.costs.sources.focus_files import import_focus_file
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime

SEPTEMBER = {"start": "2024-09-01", "end": "2024-10-01"}


async def upload(
    client: httpx.AsyncClient, tenant: TenantFixture, path: Path, **params: str
) -> httpx.Response:
    """Upload through the API; returns the response, whatever it is."""
    with path.open("rb") as handle:
        return await client.post(
            "/api/v1/costs/imports",
            files={"file": (path.name, handle, "text/csv")},
            params=params,
            headers=tenant.auth,
        )


async def import_file(
    client: httpx.AsyncClient, tenant: TenantFixture, path: Path, source: str | None = None
) -> dict[str, Any]:
    """Upload through the API, which must create an import run (201); returns the run."""
    with path.open("rb") as handle:
        response = await client.post(
            "/api/v1/costs/imports",
            files={"file": (path.name, handle)},
            params={"source": source} if source else {},
            headers=tenant.auth,
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored(client: httpx.AsyncClient, tenant: TenantFixture) -> tuple[Any, Any]:
    """The tenant's runs and costs, to prove an import changed nothing else."""
    runs = (await client.get("/api/v1/costs/runs", headers=tenant.auth)).json()
    costs = await client.get("/api/v1/costs", params=SEPTEMBER, headers=tenant.auth)
    return runs, (costs.json(), costs.headers["ETag"])


def assert_only_the_rejected_run(runs: list[dict[str, Any]], problem: dict[str, Any]) -> None:
    [run] = runs
    assert run["id"] == problem["run_id"]
    assert run["status"] == "rejected"
    assert run["records_written"] == 0 and run["rows_accepted"] == 0
    assert run["errors"] == problem["errors"]


async def give_tenant_cost_data(runtime: Runtime, tenant_id: uuid.UUID) -> None:
    """A preliminary and then a final import of one service-day, 10 % apart: fills sources,
    runs, records, their roll-up, readings, an adjustment and the data version."""
    day = utcnow().date() - dt.timedelta(days=1)
    with tempfile.TemporaryDirectory() as directory:
        for name, billed, invoice in (("a.csv", "100", None), ("b.csv", "110", "INV-1")):
            path = synthetic(
                Path(directory) / name, {(day, "EC2"): Decimal(billed)}, invoice_id=invoice
            )
            await import_focus_file(runtime, tenant_id, path, actor="test")
