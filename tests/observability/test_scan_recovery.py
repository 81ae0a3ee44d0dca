"""Scan recovery (MTTR): for each connection, the time from the first failed, timed-out or
interrupted scan to the next completed one is recorded in ``valdrix_scan_recovery_seconds``;
and each scan's end is logged under the review's names too (``scan_complete``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from tests.fixtures.aws import aws_runtime, elastic_ip, register_connection
from tests.observability.helpers import scrape, value
from tests.scanning.helpers import scan_once
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.scanning.models import Scan, ScanStatus

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations"
RECOVERY = "valdrix_scan_recovery_seconds"


async def give_connection_ended_scans(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    ended: list[tuple[ScanStatus, dt.timedelta]],
) -> None:
    """Scans of the connection that ended with ``status`` so long ago, as earlier runs left
    them."""
    now = utcnow()
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        for status, ago in ended:
            session.add(
                Scan(
                    tenant_id=tenant_id,
                    connection_id=connection_id,
                    trigger="scheduled",
                    status=status.value,
                    created_at=now - ago - dt.timedelta(minutes=1),
                    started_at=now - ago - dt.timedelta(minutes=1),
                    finished_at=now - ago,
                )
            )


@pytest.mark.asyncio(loop_scope="session")
async def test_a_completed_scan_after_failures_records_the_time_since_the_first_failure(
    client: httpx.AsyncClient,
    runtime: Runtime,
    make_tenant: Callable[..., Any],
    aws_endpoint: str,
) -> None:
    tenant = await make_tenant()
    scanning = aws_runtime(runtime, aws_endpoint)
    elastic_ip(aws_endpoint, "us-east-1")
    connection = await register_connection(scanning, tenant.tenant_id, regions=["us-east-1"])
    # Completed five hours ago, interrupted 20 minutes ago, timed out 10 minutes ago (a partial
    # scan between them ends nothing): the outage began with the first failure.
    await give_connection_ended_scans(
        runtime,
        tenant.tenant_id,
        connection.id,
        [
            (ScanStatus.completed, dt.timedelta(hours=5)),
            (ScanStatus.interrupted, dt.timedelta(minutes=20)),
            (ScanStatus.partial, dt.timedelta(minutes=15)),
            (ScanStatus.timed_out, dt.timedelta(minutes=10)),
        ],
    )
    before = await scrape(client)
    assert (await scan_once(scanning, tenant.tenant_id, connection.id))[1] == "completed"
    recovered = await scrape(client)
    assert value(recovered, f"{RECOVERY}_count") == value(before, f"{RECOVERY}_count") + 1
    took = value(recovered, f"{RECOVERY}_sum") - value(before, f"{RECOVERY}_sum")
    assert 20 * 60 <= took < 22 * 60
    for le, moved in (("900.0", 0), ("1800.0", 1)):
        bucket = value(recovered, f"{RECOVERY}_bucket", le=le)
        assert bucket - value(before, f"{RECOVERY}_bucket", le=le) == moved, le

    # The next completed scan has nothing left to recover from.
    await scan_once(scanning, tenant.tenant_id, connection.id)
    again = await scrape(client)
    assert value(again, f"{RECOVERY}_count") == value(recovered, f"{RECOVERY}_count")


def test_the_recovery_target_and_how_the_runbook_meets_it_are_documented() -> None:
    text = "\n".join(p.read_text() for p in OPERATIONS.glob("*.md"))
    assert RECOVERY in text
    assert "Scan recovery" in (OPERATIONS / "runbook.md").read_text()
    assert "under 15 minutes" in text


@pytest.mark.asyncio(loop_scope="session")
async def test_a_scans_end_is_logged_under_the_reviews_name_too(
    runtime: Runtime, make_tenant: Callable[..., Any], aws_endpoint: str
) -> None:
    tenant = await make_tenant()
    scanning = aws_runtime(runtime, aws_endpoint)
    connection = await register_connection(scanning, tenant.tenant_id, regions=["us-east-1"])
    with structlog.testing.capture_logs() as logs:
        scan_id, _ = await scan_once(scanning, tenant.tenant_id, connection.id)
    ends = [e for e in logs if e.get("scan_id") == str(scan_id)]
    by_name = {e["event"]: e for e in ends}
    assert {"scan.complete", "scan_complete"} <= by_name.keys()
    assert by_name["scan_complete"]["status"] == by_name["scan.complete"]["status"]
    assert by_name["scan_complete"]["alias_of"] == "scan.complete"
