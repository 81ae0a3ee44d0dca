"""A preliminary reading followed by the final one: new totals at once, restatements alerted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import func, select

from tests.conftest import TenantFixture
from tests.costs.focus_files import synthetic
from tests.observability.helpers import fresh_scrape, value
from valdrix.costs.models import CostReading
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def upload(client: httpx.AsyncClient, tenant: TenantFixture, path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        response = await client.post(
            "/api/v1/costs/imports", files={"file": (path.name, handle)}, headers=tenant.auth
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_final_reading_restates_one_service_day_and_drops_a_vanished_row(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    runtime: Runtime,
    tmp_path: Path,
) -> None:
    tenant = await make_tenant()
    today = utcnow().date()
    first, second = today - dt.timedelta(days=3), today - dt.timedelta(days=2)
    preliminary = {
        (first, "EC2"): Decimal("200.00"),
        (first, "RDS"): Decimal("300.00"),
        (second, "EC2"): Decimal("210.00"),
        (second, "S3"): Decimal("0.40"),  # below the floor: vanishes without an alert
    }
    final = {
        (first, "EC2"): Decimal("210.00"),  # +5 %: a restatement
        (first, "RDS"): Decimal("303.00"),  # +1 %: a new reading, no alert
        (second, "EC2"): Decimal("210.00"),
    }
    window = {"start": str(first), "end": str(today), "group_by": "day,service"}

    await upload(client, tenant, synthetic(tmp_path / "prelim.csv", preliminary))
    before = await client.get("/api/v1/costs", params=window, headers=tenant.auth)
    assert {r["service"]: r["preliminary_billed_cost"] for r in before.json()["rows"]}[
        "S3"
    ] == "0.4"
    assert Decimal(before.json()["totals"][0]["preliminary_billed_cost"]) == Decimal("710.40")
    unchanged = await client.get(
        "/api/v1/costs",
        params=window,
        headers={**tenant.auth, "If-None-Match": before.headers["ETag"]},
    )
    assert unchanged.status_code == 304
    focus = {"source_kind": "focus_file"}
    alerts_before = value(await fresh_scrape(client), "valdrix_cost_restatements_total", **focus)

    with structlog.testing.capture_logs() as logs:
        run = await upload(
            client, tenant, synthetic(tmp_path / "final.csv", final, invoice_id="INV-2026-11")
        )

    after = await client.get(
        "/api/v1/costs",
        params=window,
        headers={**tenant.auth, "If-None-Match": before.headers["ETag"]},
    )
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    rows = {(r["day"], r["service"]): r for r in after.json()["rows"]}
    assert set(rows) == {(str(first), "EC2"), (str(first), "RDS"), (str(second), "EC2")}
    [total] = after.json()["totals"]
    assert Decimal(total["billed_cost"]) == Decimal("723.00")
    assert Decimal(total["final_billed_cost"]) == Decimal("723.00")
    assert Decimal(total["preliminary_billed_cost"]) == 0

    assert run["adjustments"] == 1
    [adjustment] = (await client.get("/api/v1/costs/adjustments", headers=tenant.auth)).json()
    assert (adjustment["day"], adjustment["service"]) == (str(first), "EC2")
    assert Decimal(adjustment["old_billed_cost"]) == Decimal("200")
    assert Decimal(adjustment["new_billed_cost"]) == Decimal("210")
    assert Decimal(adjustment["change_percent"]) == Decimal("5")
    assert adjustment["old_preliminary"] is True and adjustment["new_preliminary"] is False
    alerts = [entry for entry in logs if entry["event"] == "costs.restatement"]
    assert len(alerts) == 1 and alerts[0]["service"] == "EC2"
    assert (
        value(await fresh_scrape(client), "valdrix_cost_restatements_total", **focus)
        == alerts_before + 1
    )

    # Every reading is kept: two of RDS (300, then 303), and S3's last one says 0.
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        readings = {
            service: count
            for service, count in await session.execute(
                select(CostReading.service, func.count()).group_by(CostReading.service)
            )
        }
        s3_last = await session.scalar(
            select(CostReading.billed_cost)
            .where(CostReading.service == "S3")
            .order_by(CostReading.id.desc())
            .limit(1)
        )
    assert readings == {"EC2": 4, "RDS": 2, "S3": 2}
    assert s3_last == 0
