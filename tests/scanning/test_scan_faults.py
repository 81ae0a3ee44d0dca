"""A scan's faults stay its own: a hung region costs only its own scan, a scan whose worker
dies is resumed by its retried job or ended ``interrupted`` (once, its finished units' findings
kept), and the next scan of its connection still runs."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tests.conftest import TenantFixture
from tests.fixtures.aws import (
    HEALTHY_REGION,
    OTHER_REGION,
    aws_runtime,
    register_connection,
    unattached_volume,
)
from tests.fixtures.jobs import SuperuserDb, WorkerPool
from tests.jobs.helpers import retire_tenant_jobs, wait_until
from tests.scanning.helpers import (
    new_scan,
    scan_events,
    scan_once,
    scan_units,
    tenant_findings,
    warm_the_simulator,
)
from valdrix.jobs.service import defer_for_target
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning.engine import finish_scan, run_scan
from valdrix.scanning.models import Scan, ScanStatus
from valdrix.scanning.registry import load_all_detectors
from valdrix.scanning.repository import ScanRepository
from valdrix.scanning.service import start_scan
from valdrix.simulator.aws_server import SIMULATED_AWS_ENV
from valdrix.tenancy.service import system_principal

# Units per region; connection-wide detectors run once per scan, in ``global`` (us-east-1).
DETECTORS = sum(not d.connection_wide for d in load_all_detectors().for_provider("aws"))
CONNECTION_WIDE = sum(d.connection_wide for d in load_all_detectors().for_provider("aws"))
# More hung units than a scan has threads by default (32): with one pool for every scan of a
# worker, they would hold all of its threads.
HUNG_REGIONS = {"eu-west-1", "eu-central-1", "ap-south-1"}


async def scan_row(runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID) -> Scan:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        scan = await ScanRepository(session).get(scan_id)
    assert scan is not None
    return scan


async def finished_events(runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID) -> list[Any]:
    return [e for e in await scan_events(runtime, tenant_id, scan_id) if e.type == "scan.finished"]


async def test_a_hung_region_in_one_tenants_scan_does_not_slow_another_tenants_scan(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str, fault_proxy: Any
) -> None:
    """Two tenants' scans on one worker, with its default pool size: three regions of the
    first never answer; the second scan's healthy region completes within its budget."""
    stuck, healthy = await make_tenant(), await make_tenant()
    region_budget = 8.0
    proxy = fault_proxy(hang_regions=HUNG_REGIONS)
    scanner = aws_runtime(runtime, proxy.url, region_budget=region_budget)
    volume = unattached_volume(aws_endpoint, HEALTHY_REGION)
    hung = await register_connection(scanner, stuck.tenant_id, regions=sorted(HUNG_REGIONS))
    fine = await register_connection(scanner, healthy.tenant_id, regions=[HEALTHY_REGION])
    hung_scan = await new_scan(scanner, stuck.tenant_id, hung.id)
    await warm_the_simulator(runtime, aws_endpoint, [HEALTHY_REGION])
    fine_scan = await new_scan(scanner, healthy.tenant_id, fine.id)

    stuck_run = asyncio.create_task(run_scan(scanner, stuck.tenant_id, hung_scan))
    await asyncio.sleep(1.0)  # its calls are all hanging by now
    started = time.monotonic()
    status = await run_scan(scanner, healthy.tenant_id, fine_scan)
    elapsed = time.monotonic() - started

    assert status == "completed", [
        (u.detector, u.status, u.reason)
        for u in await scan_units(scanner, healthy.tenant_id, fine_scan)
        if u.status != "ok"
    ]
    assert elapsed < region_budget, f"the healthy scan took {elapsed:.1f} s"
    found = [(f.detector, f.resource_id) for f in await tenant_findings(scanner, healthy.tenant_id)]
    assert found == [("aws.ebs-unattached", volume)]
    # Only its connection-wide units, answered in us-east-1, came back.
    assert await stuck_run == "partial"
    units = await scan_units(scanner, stuck.tenant_id, hung_scan)
    assert len(units) == len(HUNG_REGIONS) * DETECTORS + CONNECTION_WIDE
    assert {u.status for u in units if u.region in HUNG_REGIONS} == {"timed_out"}


async def test_a_hung_region_holding_the_scans_threads_leaves_its_neighbour_its_budget(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str, fault_proxy: Any
) -> None:
    """One scan, two regions, one more thread than the hung region has units: the healthy
    region runs on that one thread while the hung region's calls hold all the others. It has
    answered, so each of its units still gets the whole budget (the wait for a thread is not
    its region's fault); the hung region, which never answered, costs one budget."""
    tenant: TenantFixture = await make_tenant()
    region_budget = 4.0
    # 0.2 s a call: the healthy region's units in a row on one thread take longer than a budget.
    proxy = fault_proxy(latency_seconds=0.2, hang_regions={OTHER_REGION})
    scanner = aws_runtime(
        runtime, proxy.url, region_budget=region_budget, scans={"concurrency": DETECTORS + 1}
    )
    volume = unattached_volume(aws_endpoint, HEALTHY_REGION)
    await warm_the_simulator(runtime, aws_endpoint, [HEALTHY_REGION])
    # Sorted, the hung region comes first and takes its threads first.
    assert sorted([HEALTHY_REGION, OTHER_REGION])[0] == OTHER_REGION
    connection = await register_connection(
        scanner, tenant.tenant_id, regions=[HEALTHY_REGION, OTHER_REGION]
    )

    scan_id, status = await scan_once(scanner, tenant.tenant_id, connection.id)

    assert status == "partial"
    units = await scan_units(scanner, tenant.tenant_id, scan_id)
    assert {u.status for u in units if u.region == OTHER_REGION} == {"timed_out"}
    assert [
        (u.detector, u.status, u.reason)
        for u in units
        if u.region == HEALTHY_REGION and u.status not in ("ok", "skipped")
    ] == []
    found = [(f.detector, f.resource_id) for f in await tenant_findings(scanner, tenant.tenant_id)]
    assert found == [("aws.ebs-unattached", volume)]


async def test_a_scan_cut_off_mid_way_is_resumed_by_its_retried_job_keeping_what_it_wrote(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str, fault_proxy: Any
) -> None:
    """The first attempt stops (as when its worker dies) after the healthy region's units are
    written; the retried job finishes the scan with them, running only the others."""
    tenant: TenantFixture = await make_tenant()
    proxy = fault_proxy(hang_regions={OTHER_REGION})
    scanner = aws_runtime(runtime, proxy.url, region_budget=8.0)
    volume = unattached_volume(aws_endpoint, HEALTHY_REGION)
    await warm_the_simulator(runtime, aws_endpoint, [HEALTHY_REGION])
    connection = await register_connection(
        scanner, tenant.tenant_id, regions=[HEALTHY_REGION, OTHER_REGION]
    )
    scan_id = await new_scan(scanner, tenant.tenant_id, connection.id)
    job_id = 4_000_000_000 + uuid.uuid4().int % 1_000_000

    first = asyncio.create_task(run_scan(scanner, tenant.tenant_id, scan_id, job_id=job_id))

    async def healthy_region_written() -> bool:
        units = await scan_units(scanner, tenant.tenant_id, scan_id)
        return sum(u.region == HEALTHY_REGION for u in units) == DETECTORS

    await wait_until(healthy_region_written, within=15, message="the healthy region's units")
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    kept = {u.id: u.started_at for u in await scan_units(scanner, tenant.tenant_id, scan_id)}
    assert (await scan_row(scanner, tenant.tenant_id, scan_id)).status == "running"

    status = await run_scan(scanner, tenant.tenant_id, scan_id, job_id=job_id)

    assert status == "partial"
    units = await scan_units(scanner, tenant.tenant_id, scan_id)
    assert len(units) == 2 * DETECTORS + CONNECTION_WIDE  # each unit once
    assert {u.id: u.started_at for u in units if u.id in kept} == kept
    assert {u.status for u in units if u.region == OTHER_REGION} == {"timed_out"}
    events = await scan_events(scanner, tenant.tenant_id, scan_id)
    [resumed] = [e for e in events if e.type == "scan.resumed"]
    assert resumed.payload == {"units_kept": len(kept)}
    [finished] = [e for e in events if e.type == "scan.finished"]
    assert finished.payload["findings"] == 1
    scan = await scan_row(scanner, tenant.tenant_id, scan_id)
    assert (scan.findings_count, scan.job_id) == (1, job_id)
    found = [(f.detector, f.resource_id) for f in await tenant_findings(scanner, tenant.tenant_id)]
    assert found == [("aws.ebs-unattached", volume)]


async def test_a_scan_ended_twice_at_once_ends_once(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str
) -> None:
    tenant: TenantFixture = await make_tenant()
    connection = await register_connection(
        aws_runtime(runtime, aws_endpoint), tenant.tenant_id, regions=[HEALTHY_REGION]
    )
    scan_id = await new_scan(runtime, tenant.tenant_id, connection.id)

    ends = await asyncio.gather(
        finish_scan(runtime, tenant.tenant_id, scan_id, ScanStatus.failed, "one", 0, started=None),
        finish_scan(
            runtime, tenant.tenant_id, scan_id, ScanStatus.interrupted, "two", 0, started=None
        ),
    )

    assert ends[0] == ends[1]
    assert len(await finished_events(runtime, tenant.tenant_id, scan_id)) == 1
    assert (await scan_row(runtime, tenant.tenant_id, scan_id)).status == ends[0]


async def drop_other_tenants_scan_jobs(db: SuperuserDb, tenant_id: uuid.UUID) -> None:
    """Scan jobs earlier tests left queued (the session shares one database) would take the
    workers this test starts."""
    await db.rows(
        "SELECT procrastinate_cancel_job_v1(id, false, true) FROM procrastinate_jobs"
        " WHERE queue_name = 'scans' AND status = 'todo'"
        " AND coalesce(args ->> 'tenant_id', '') <> %s",
        str(tenant_id),
    )


async def test_a_killed_workers_scan_ends_interrupted_once_and_its_connections_next_scan_runs(
    runtime: Runtime,
    make_tenant: Any,
    aws_endpoint: str,
    fault_proxy: Any,
    workers: WorkerPool,
    superuser_db: SuperuserDb,
) -> None:
    """SIGKILL the worker in the middle of a manual scan while the scheduler has queued the
    connection's next scan. Retrying the dead job would take the queued job's queueing lock:
    recovery retires it instead, the sweeper ends its scan ``interrupted`` (the finished
    region's findings kept, its stream ended), and the queued scan runs on the tenant's slot
    the dead job held."""
    tenant: TenantFixture = await make_tenant()
    region_budget = 10.0
    proxy = fault_proxy(hang_regions={OTHER_REGION})
    scanner = aws_runtime(runtime, proxy.url, region_budget=region_budget)
    volume = unattached_volume(aws_endpoint, HEALTHY_REGION)
    connection = await register_connection(
        scanner, tenant.tenant_id, regions=[HEALTHY_REGION, OTHER_REGION]
    )
    env = {
        **SIMULATED_AWS_ENV,
        "VALDRIX_AWS_ENDPOINT_URL": proxy.url,
        "VALDRIX_SCAN_REGION_BUDGET_SECONDS": str(region_budget),
    }
    actor = system_principal(tenant.tenant_id)
    try:
        async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
            scan_id = (
                await start_scan(session, actor, runtime.settings, connection_id=connection.id)
            ).id
        await drop_other_tenants_scan_jobs(superuser_db, tenant.tenant_id)
        [doomed] = await workers.start(queues="scans", env=env)

        async def healthy_region_written() -> bool:
            units = await scan_units(runtime, tenant.tenant_id, scan_id)
            return sum(u.region == HEALTHY_REGION for u in units) == DETECTORS

        await wait_until(healthy_region_written, within=30, message="the healthy region")
        async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
            queued = await defer_for_target(
                session,
                runtime.settings,
                tenant_id=tenant.tenant_id,
                task_name="scans.run",
                queue="scans",
                target_id=connection.id,
                queueing_lock=f"scan:{connection.id}",
            )
        assert queued is not None
        doomed.kill()
        # Recovery and the sweeper only, so that the queued job waits while they decide.
        [keeper] = await workers.start(queues="system", periodic=True, env=env)

        async def ended() -> bool:
            scan = await scan_row(runtime, tenant.tenant_id, scan_id)
            return scan.status != "running"

        await wait_until(ended, within=30, message="the killed worker's scan to end")
        await drop_other_tenants_scan_jobs(superuser_db, tenant.tenant_id)
        await workers.start(queues="scans", env=env)

        async def next_scan_ended() -> bool:
            status = await superuser_db.value(
                "SELECT status FROM procrastinate_jobs WHERE id = %s", queued
            )
            return status in ("succeeded", "failed")

        await wait_until(next_scan_ended, within=45, message="the queued scan's job")
    finally:
        await retire_tenant_jobs(runtime, tenant.tenant_id)

    scan = await scan_row(runtime, tenant.tenant_id, scan_id)
    assert scan.status == "interrupted"
    assert scan.status_reason == "its worker stopped and its job will not run again"
    [finished] = await finished_events(runtime, tenant.tenant_id, scan_id)
    assert finished.payload["status"] == "interrupted"
    assert finished.payload["findings"] == scan.findings_count == 1
    units = await scan_units(runtime, tenant.tenant_id, scan_id)
    # Ok, or skipped: the demo account has not turned on AWS Compute Optimizer.
    answered = ("ok", "skipped")
    assert sum(u.status in answered for u in units if u.region == HEALTHY_REGION) == DETECTORS
    found = [(f.detector, f.resource_id) for f in await tenant_findings(runtime, tenant.tenant_id)]
    assert found == [("aws.ebs-unattached", volume)]
    retired = [
        e
        for e in keeper.log_events()
        if e.get("event") == "job.stalled_recovered" and e.get("outcome") == "retired"
    ]
    assert len(retired) == 1, keeper.log_tail()
    assert not [e for e in keeper.log_events() if e.get("event") == "job.stalled_recovery_failed"]
    assert (
        await superuser_db.value("SELECT status FROM procrastinate_jobs WHERE id = %s", queued)
        == "succeeded"
    )
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        scans = await ScanRepository(session).page(limit=10, connection_id=connection.id)
    [next_scan] = [s for s in scans if s.id != scan_id]
    assert next_scan.status == "partial"  # its own hung region; it ran and ended
