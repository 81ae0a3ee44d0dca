"""The scans API: starting a scan (202 at once, its job queued in the same transaction), reading
its outcome, and following it as server-sent events, live or after the fact.

Scans run in-process with ``run_scan`` against a moto server on loopback (workers are tested
elsewhere); the live stream is read from a real HTTP server, since httpx's ASGI transport hands
over a response body only once it is complete.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import TenantFixture
from tests.conftest import TestDatabase as Database
from tests.fixtures.aws import (
    HEALTHY_REGION,
    aws_runtime,
    elastic_ip,
    empty_aws,
    register_connection,
    unattached_volume,
)
from tests.fixtures.http import api_key, assert_problem, parse_sse, served_app
from tests.fixtures.jobs import superuser_rows
from tests.scanning.helpers import create_tenant, scan_events
from valdrix.jobs.app import open_job_app
from valdrix.jobs.tiers import cadence
from valdrix.runtime import Runtime
from valdrix.scanning.engine import run_scan
from valdrix.scanning.registry import load_all_detectors
from valdrix.simulator.aws_server import SimulatedAws
from valdrix.simulator.proxy import FaultProxy, Faults
from valdrix.tenancy.models import Tier

SCANS = "/api/v1/scans"
AWS_DETECTORS = len(load_all_detectors().for_provider("aws"))
# The detectors a role that may not call DescribeAddresses cannot run.
ADDRESS_DETECTORS = sum(
    "ec2:DescribeAddresses" in d.permissions for d in load_all_detectors().for_provider("aws")
)
# The detectors importing AWS's own recommendations, which an account with neither service
# turned on skips.
IMPORTING_DETECTORS = sum(bool(d.imports_from) for d in load_all_detectors().for_provider("aws"))


@pytest.fixture(autouse=True)
async def job_app_open(runtime: Runtime) -> None:
    """Starting a scan defers its job; the API process opens the job app at start-up."""
    await open_job_app(runtime.urls.app)


async def start_scan(
    client: httpx.AsyncClient, auth: dict[str, str], connection_id: uuid.UUID
) -> httpx.Response:
    return await client.post(SCANS, json={"connection_id": str(connection_id)}, headers=auth)


async def scan_jobs(database: Database, connection_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """procrastinate's rows for the connection's scans (global table: read as the superuser)."""
    return await superuser_rows(
        database,
        "SELECT id, task_name, queue_name, status::text, args FROM procrastinate_jobs"
        " WHERE queueing_lock = %s ORDER BY id",
        f"scan:{connection_id}",
    )


async def read_events(
    client: httpx.AsyncClient, auth: dict[str, str], scan_id: Any, **headers: str | bytes
) -> list[dict[str, Any]]:
    """Everything the stream sends until it closes (which it must, within seconds)."""

    async def read() -> str:
        url = f"{SCANS}/{scan_id}/events"
        async with client.stream("GET", url, headers={**auth, **headers}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            return "".join([chunk async for chunk in response.aiter_text()])

    return parse_sse(await asyncio.wait_for(read(), timeout=10))


# --- starting a scan --------------------------------------------------------------------------


async def test_starting_a_scan_answers_202_at_once_and_queues_its_job_in_the_same_transaction(
    runtime: Runtime, client: httpx.AsyncClient, make_tenant: Any, database: Database
) -> None:
    tenant: TenantFixture = await make_tenant()
    connections = [
        await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])
        for _ in range(3)
    ]
    assert (await client.get(SCANS, headers=tenant.auth)).status_code == 200  # warm up

    timings, answers = [], []
    for connection in connections:
        started = time.perf_counter()
        response = await start_scan(client, tenant.auth, connection.id)
        timings.append(time.perf_counter() - started)
        answers.append(response)

    assert statistics.median(timings) < 0.2, f"POST /scans took {timings}"
    for connection, response in zip(connections, answers, strict=True):
        assert response.status_code == 202, response.text
        scan = response.json()
        assert (scan["status"], scan["connection_id"]) == ("queued", str(connection.id))
        [(job_id, task, queue, job_status, args)] = await scan_jobs(database, connection.id)
        assert (task, queue, job_status) == ("scans.run", "scans", "todo")
        assert args == {
            "tenant_id": str(tenant.tenant_id),
            "target_id": str(connection.id),
            "scan_id": scan["id"],
        }
        # The scan row and the job's tenant-visible mirror were written by one transaction.
        [(scan_xid,)] = await superuser_rows(
            database, "SELECT xmin::text FROM scans WHERE id = %s", scan["id"]
        )
        [(mirror_xid, mirror_task, mirror_status)] = await superuser_rows(
            database,
            "SELECT xmin::text, task_name, status FROM job_runs WHERE procrastinate_job_id = %s",
            job_id,
        )
        assert (mirror_task, mirror_status) == ("scans.run", "queued")
        assert mirror_xid == scan_xid
    listed = await client.get("/api/v1/jobs", params={"type": "scans.run"}, headers=tenant.auth)
    assert sorted(j["target_id"] for j in listed.json()["items"]) == sorted(
        str(c.id) for c in connections
    )


async def test_starting_again_while_queued_returns_the_same_scan_and_no_second_job(
    runtime: Runtime, client: httpx.AsyncClient, make_tenant: Any, database: Database
) -> None:
    tenant: TenantFixture = await make_tenant()
    connection = await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])

    first = await start_scan(client, tenant.auth, connection.id)
    second = await start_scan(client, tenant.auth, connection.id)

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] == second.json()["id"]
    assert len(await scan_jobs(database, connection.id)) == 1
    listed = (await client.get(SCANS, headers=tenant.auth)).json()
    assert [s["id"] for s in listed] == [first.json()["id"]]


async def test_a_manual_scan_pushes_the_next_scheduled_scan_a_full_cadence_away(
    runtime: Runtime, client: httpx.AsyncClient, make_tenant: Any, database: Database
) -> None:
    tenant: TenantFixture = await make_tenant(Tier.growth)
    connection = await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])
    schedule_sql = "SELECT next_due_at, now() FROM schedules WHERE target_id = %s"
    [(first_due, registered_at)] = await superuser_rows(database, schedule_sql, connection.id)
    assert first_due <= registered_at, "registering schedules the first scan at once"

    response = await start_scan(client, tenant.auth, connection.id)

    assert response.status_code == 202, response.text
    [(next_due, started_at)] = await superuser_rows(database, schedule_sql, connection.id)
    # The scheduler's next tick finds nothing due: the manual scan is the only one.
    full_cadence = cadence(runtime.settings, Tier.growth)
    assert next_due >= started_at + full_cadence - dt.timedelta(minutes=1)


async def test_viewers_cannot_start_scans_and_other_tenants_scans_are_not_found(
    runtime: Runtime, client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    outsider: TenantFixture = await make_tenant()
    connection = await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])
    viewer = await api_key(client, tenant.auth, "viewer")

    assert_problem(await start_scan(client, viewer, connection.id), 403)
    assert_problem(await start_scan(client, outsider.auth, connection.id), 404)
    scan_id = (await start_scan(client, tenant.auth, connection.id)).json()["id"]
    assert (await client.get(f"{SCANS}/{scan_id}", headers=viewer)).status_code == 200
    for path in (f"{SCANS}/{scan_id}", f"{SCANS}/{scan_id}/events"):
        assert_problem(await client.get(path, headers=outsider.auth), 404)


# --- after a scan ran -------------------------------------------------------------------------


@dataclass(frozen=True)
class FinishedScan:
    tenant: TenantFixture
    scan_id: str
    volume_id: str


@pytest.fixture(scope="module")
async def finished_scan(
    runtime: Runtime, client: httpx.AsyncClient, simulated_aws: SimulatedAws
) -> AsyncIterator[FinishedScan]:
    """A scan started over the API and run to its end, of one region with an unattached volume
    and an Elastic IP that the role may not describe."""
    endpoint = empty_aws(simulated_aws)
    volume_id = unattached_volume(endpoint, HEALTHY_REGION)
    elastic_ip(endpoint, HEALTHY_REGION)
    tenant = await create_tenant(runtime)
    connection = await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])
    await open_job_app(runtime.urls.app)
    scan_id = (await start_scan(client, tenant.auth, connection.id)).json()["id"]
    proxy = FaultProxy(endpoint, Faults(deny_operations={"DescribeAddresses"})).start()
    try:
        status = await run_scan(aws_runtime(runtime, proxy.url), tenant.tenant_id, scan_id)
    finally:
        proxy.stop()
    assert status == "partial"
    yield FinishedScan(tenant, scan_id, volume_id)


async def test_scan_detail_shows_status_unit_outcomes_and_counts(
    client: httpx.AsyncClient, finished_scan: FinishedScan
) -> None:
    response = await client.get(
        f"{SCANS}/{finished_scan.scan_id}", headers=finished_scan.tenant.auth
    )

    assert response.status_code == 200, response.text
    scan = response.json()
    assert scan["status"] == "partial"
    assert scan["status_reason"] == f"{ADDRESS_DETECTORS} unit(s) denied"
    assert scan["regions"] == [HEALTHY_REGION]
    assert scan["findings_count"] == 1
    assert float(scan["monthly_waste_usd"]) > 0
    assert scan["started_at"] and scan["finished_at"]
    assert scan["unit_counts"] == {
        "ok": AWS_DETECTORS - ADDRESS_DETECTORS - IMPORTING_DETECTORS,
        "denied": ADDRESS_DETECTORS,
        "skipped": IMPORTING_DETECTORS,
    }
    units = {u["detector"]: u for u in scan["units"]}
    assert len(units) == AWS_DETECTORS
    assert (units["aws.eip-unassociated"]["status"], units["aws.eip-unassociated"]["reason"]) == (
        "denied",
        "DescribeAddresses: UnauthorizedOperation",
    )
    assert units["aws.ebs-unattached"]["findings_count"] == 1
    # Connection-wide detectors (Cost Explorer, Savings Plans, the hub) run once, as `global`.
    assert {u["region"] for u in scan["units"]} == {HEALTHY_REGION, "global"}


async def test_a_client_connecting_after_the_scan_receives_everything_then_the_stream_closes(
    runtime: Runtime, client: httpx.AsyncClient, finished_scan: FinishedScan
) -> None:
    tenant = finished_scan.tenant

    received = await read_events(client, tenant.auth, finished_scan.scan_id)

    stored = await scan_events(runtime, tenant.tenant_id, uuid.UUID(finished_scan.scan_id))
    assert [(int(e["id"]), e["event"]) for e in received] == [(s.id, s.type) for s in stored]
    types = [e["event"] for e in received]
    assert types[:2] == ["scan.queued", "scan.started"]
    assert types[-1] == "scan.finished"
    assert types.count("unit.finished") == AWS_DETECTORS
    [finding] = [json.loads(e["data"]) for e in received if e["event"] == "finding"]
    assert (finding["detector"], finding["resource_id"]) == (
        "aws.ebs-unattached",
        finished_scan.volume_id,
    )
    assert finding["cost_basis"] == "list_price"
    assert json.loads(received[-1]["data"])["status"] == "partial"


async def test_last_event_id_resumes_the_stream_after_that_event(
    client: httpx.AsyncClient, finished_scan: FinishedScan
) -> None:
    auth = finished_scan.tenant.auth
    everything = await read_events(client, auth, finished_scan.scan_id)
    resume_after = everything[len(everything) // 2]["id"]

    resumed = await read_events(
        client, auth, finished_scan.scan_id, **{"Last-Event-ID": resume_after}
    )

    assert [e["id"] for e in resumed] == [
        e["id"] for e in everything if int(e["id"]) > int(resume_after)
    ]
    assert resumed[-1]["event"] == "scan.finished"


@pytest.mark.parametrize(
    "offered",
    ["²".encode("latin-1"), "9" * 5000, "-3", "12abc", "99999999999999999999"],
    ids=["superscript-two", "5000-digits", "negative", "not-a-number", "past-bigint"],
)
async def test_a_last_event_id_this_stream_never_sent_replays_it_from_the_start(
    client: httpx.AsyncClient, finished_scan: FinishedScan, offered: str | bytes
) -> None:
    auth = finished_scan.tenant.auth
    everything = await read_events(client, auth, finished_scan.scan_id)

    replayed = await read_events(client, auth, finished_scan.scan_id, **{"Last-Event-ID": offered})

    assert [e["id"] for e in replayed] == [e["id"] for e in everything]


async def test_a_client_watching_a_running_scan_receives_findings_before_it_finishes(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str, fault_proxy: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    address_id = elastic_ip(aws_endpoint, HEALTHY_REGION)
    connection = await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])
    # Every AWS call takes 0.8 s: the Elastic IP unit (one call) finishes well before those
    # that make two calls in a row, and the scan after them. The budgets are not what this is
    # about: long enough for 30 units of slow calls on a loaded machine (10 s per region was
    # seen to time seven of them out in CI).
    slow_aws = aws_runtime(
        runtime, fault_proxy(latency_seconds=0.8).url, region_budget=60.0, scan_budget=120.0
    )

    async with served_app(runtime) as server:
        scan_id = (await start_scan(server, tenant.auth, connection.id)).json()["id"]
        # (event, payload, whether the scan had finished when the event arrived)
        seen: list[tuple[str, dict[str, Any], bool]] = []
        async with (
            asyncio.timeout(120),
            server.stream("GET", f"{SCANS}/{scan_id}/events", headers=tenant.auth) as response,
        ):
            assert response.status_code == 200
            scanning = asyncio.create_task(run_scan(slow_aws, tenant.tenant_id, scan_id))
            block: list[str] = []
            async for line in response.aiter_lines():
                if line:
                    block.append(line)
                    continue
                for event in parse_sse("\n".join(block)):
                    seen.append((event["event"], json.loads(event["data"]), scanning.done()))
                block = []
        status = await scanning

    assert status == "completed"
    types = [event for event, _, _ in seen]
    assert types[0] == "scan.queued"
    assert types[-1] == "scan.finished"
    findings = [(payload, done) for event, payload, done in seen if event == "finding"]
    assert [payload["resource_id"] for payload, _ in findings] == [address_id]
    # Delivered while the scan was still running, not replayed after it.
    assert [done for _, done in findings] == [False]
    # ... and other units (beyond the Elastic IP's own) finished after it arrived.
    assert types[types.index("finding") :].count("unit.finished") > 1
