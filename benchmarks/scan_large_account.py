"""Benchmark: one large AWS account (5,000 resources over 17 regions) at 50 ms per API call,
scanned by Valdrix and by Cloud Custodian, the peer it replaces.

The account is the demo's region (``valdrix.simulator.demo_region``) at scale in every region:
waste and keep resources for every AWS detector (EC2, EBS, AMIs, addresses, NAT gateways, VPC
endpoints, load balancers, RDS, ElastiCache, DynamoDB, EFS, Redshift, SageMaker, EKS, logs,
S3), each tagged with what a scan should report. AWS is a moto server behind a proxy that adds
the latency and counts the calls, both in a process of their own (``simulator_process.py``),
whose CPU is reported apart. The database is a private embedded PostgreSQL in a temporary
directory.

1. One Valdrix scan (``run_scan``: region x detector units in parallel, CloudWatch batched with
   GetMetricData); its findings are checked against the seeded truth.
2. ``custodian run --dryrun`` with a policy for every detector Custodian can express
   (``custodian_peer.py``), over the same regions, bounded by ``--custodian-timeout``; its
   matches are compared with Valdrix's findings for those detectors.
3. Ten Valdrix scans of the account at once (ten connections) on one worker process.

    python benchmarks/scan_large_account.py [--quick] [--latency-ms 50]
        [--custodian PATH] [--custodian-timeout 600] [--skip-custodian]

Prints its figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from custodian_peer import (
    NOT_EXPRESSIBLE,
    POLICIES,
    PeerRun,
    find_custodian,
    run_custodian,
)
from simulator_process import SimulatorProcess, SimulatorStats

from valdrix.simulator.aws_server import SIMULATED_AWS_ENV
from valdrix.simulator.demo_region import RegionSeeder
from valdrix.simulator.demo_seeding import SeededResource

REGIONS_17 = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "sa-east-1",
]
Finding3 = tuple[str, str, str]  # (region, detector, resource id)

os.environ.update(SIMULATED_AWS_ENV)


def seed_account(moto_url: str, regions: list[str], total: int) -> list[SeededResource]:
    """About ``total`` resources, as many per region: the demo account's region
    (``valdrix.simulator.demo_region``: waste and keep for every detector, each tagged with what
    a scan should report), at the scale that gives that many. Seeded on moto directly: the
    latency is the scanners' to pay, not the seeder's."""
    per_region = total / len(regions)
    # A demo region holds about 78 resources plus 17 per step of scale (measured).
    scale = max(1, round((per_region - 78) / 17))
    now = dt.datetime.now(dt.UTC)
    with ThreadPoolExecutor(max_workers=4) as pool:
        seeded = pool.map(lambda r: RegionSeeder(moto_url, r, scale, now).seed(), regions)
        return [resource for batch in seeded for resource in batch]


def ground_truth(resources: list[SeededResource]) -> set[tuple[str, str, str]]:
    return {(r.region, d, r.resource_id) for r in resources for d in r.detectors}


async def valdrix_scans(
    runtime: Any, tenant_id: uuid.UUID, connections: list[uuid.UUID]
) -> list[dict[str, Any]]:
    """One scan of each connection, all at once; each one's time, status and findings."""
    from sqlalchemy import select

    from valdrix.kit.db import unit_of_work
    from valdrix.scanning import service
    from valdrix.scanning.engine import run_scan
    from valdrix.scanning.models import Finding, ScanUnit
    from valdrix.tenancy.service import system_principal

    actor = system_principal(tenant_id)
    scan_ids = []
    for connection_id in connections:
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            scan = await service.start_scan(
                session, actor, runtime.settings, connection_id=connection_id
            )
            scan_ids.append(scan.id)

    async def one(scan_id: uuid.UUID) -> dict[str, Any]:
        started = time.perf_counter()
        status = await run_scan(runtime, tenant_id, scan_id)
        seconds = time.perf_counter() - started
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            rows = await session.execute(
                select(Finding.region, Finding.detector, Finding.resource_id).where(
                    Finding.last_scan_id == scan_id
                )
            )
            findings = {(r.region, r.detector, r.resource_id) for r in rows}
            units = await session.execute(
                select(ScanUnit.region, ScanUnit.detector, ScanUnit.started_at)
                .add_columns(ScanUnit.finished_at)
                .where(ScanUnit.scan_id == scan_id)
                .order_by(ScanUnit.started_at)
            )
            timeline = [(u.region, u.detector, u.started_at, u.finished_at) for u in units]
        return {"status": status, "seconds": seconds, "findings": findings, "units": timeline}

    return list(await asyncio.gather(*(one(s) for s in scan_ids)))


async def open_valdrix(home: Path, endpoint_url: str, regions: list[str]) -> tuple[Any, ...]:
    """Database, runtime, a tenant and ten connections to the simulated account."""
    from valdrix.cli.tenants import create_tenant_with_owner_key
    from valdrix.config import Settings, generate_key_entry
    from valdrix.connections import service as connections
    from valdrix.jobs.app import open_job_app
    from valdrix.kit.db import unit_of_work
    from valdrix.kit.embedded import ensure_embedded_database
    from valdrix.kit.migrator import upgrade_to_head
    from valdrix.logging import configure_logging
    from valdrix.runtime import open_runtime
    from valdrix.simulator.demo_account import DEMO_ROLE_ARN, DEMO_THRESHOLDS
    from valdrix.tenancy.models import Tier
    from valdrix.tenancy.service import system_principal
    from valdrix.wiring import wire

    configure_logging(json_output=False, level="ERROR")  # the figures, not every scan's log
    urls = ensure_embedded_database(home)
    upgrade_to_head(urls.owner)
    settings = Settings(
        home=home,
        database_url=urls.app,
        migration_database_url=urls.owner,
        encryption_keys=generate_key_entry(),
        aws={"endpoint_url": endpoint_url},
        log_level="ERROR",
    )
    wire()  # the domains plugged into each other, as at a worker's start
    runtime = open_runtime(settings, urls)
    await open_job_app(urls.app)
    created = await create_tenant_with_owner_key(
        runtime, name="Bench", tier=Tier.enterprise, admin_email="bench@example.com"
    )
    tenant_id = uuid.UUID(str(created["tenant_id"]))
    connection_ids = []
    for n in range(10):
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            connection = await connections.create_connection(
                session,
                system_principal(tenant_id),
                runtime.keyring,
                name=f"account {n}",
                role_arn=DEMO_ROLE_ARN,
                external_id=connections.new_external_id(runtime.keyring, tenant_id),
                regions=regions,
                thresholds=DEMO_THRESHOLDS,
                tag_exclusions=[],
            )
            connection_ids.append(connection.id)
    return runtime, tenant_id, connection_ids


def compare(valdrix: set[Finding3], custodian: set[Finding3]) -> dict[str, Any]:
    """Both tools' findings for the detectors both have, detector by detector."""
    by_detector = {}
    for detector in sorted({p.detector for p in POLICIES}):
        ours = {f for f in valdrix if f[1] == detector}
        theirs = {f for f in custodian if f[1] == detector}
        by_detector[detector] = {
            "valdrix": len(ours),
            "custodian": len(theirs),
            "only_valdrix": sorted(f[2] for f in ours - theirs)[:5],
            "only_custodian": sorted(f[2] for f in theirs - ours)[:5],
        }
    equal = all(not d["only_valdrix"] and not d["only_custodian"] for d in by_detector.values())
    return {"findings_equal": equal, "by_detector": by_detector}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from valdrix.kit.embedded import stop_embedded_database

    regions = REGIONS_17[: 4 if args.quick else 17]
    home = Path(tempfile.mkdtemp(prefix="valdrix-bench-"))
    simulator = SimulatorProcess(args.latency_ms)
    result: dict[str, Any] = {
        "benchmark": "scan_large_account",
        "latency_ms": args.latency_ms,
        # The machine is shared: its load beside the figures (1, 5, 15 minutes).
        "load_average_at_start": [round(n, 2) for n in os.getloadavg()],
    }
    try:
        started = time.perf_counter()
        seeded = await asyncio.to_thread(
            seed_account, simulator.moto_url, regions, 600 if args.quick else 5000
        )
        truth = ground_truth(seeded)
        print(
            f"seeded {len(seeded)} resources ({len(truth)} waste findings expected) in"
            f" {len(regions)} regions in {time.perf_counter() - started:.1f} s"
        )
        runtime, tenant_id, connection_ids = await open_valdrix(home, simulator.proxy_url, regions)

        simulator.reset()
        before = simulator.stats()
        valdrix_cpu = time.process_time()
        with profiled(args.profile, {"valdrix": os.getpid(), "simulator": simulator.pid}):
            [single] = await valdrix_scans(runtime, tenant_id, connection_ids[:1])
        valdrix_cpu = time.process_time() - valdrix_cpu
        valdrix_stats = _since(before, simulator.stats())
        missed, extra = truth - single["findings"], single["findings"] - truth
        print(
            f"valdrix scan: {single['seconds']:.2f} s, status {single['status']},"
            f" {len(single['findings'])} findings ({len(missed)} missed, {len(extra)} not in the"
            f" seeded truth), {valdrix_stats.total_calls} API calls, its CPU"
            f" {valdrix_cpu:.1f} s, the simulator's {valdrix_stats.cpu_seconds:.1f} s"
        )
        for region, detector, resource_id in sorted(missed | extra)[:20]:
            print(
                f"  {'missed' if (region, detector, resource_id) in missed else 'extra'}:"
                f" {region} {detector} {resource_id}"
            )
        for name, count in sorted(valdrix_stats.calls.items()):
            print(f"  {name}: {count}")
        print_timeline(single["units"])
        result.update(
            resources=len(seeded),
            regions=len(regions),
            valdrix_seconds=round(single["seconds"], 2),
            valdrix_status=single["status"],
            valdrix_findings=len(single["findings"]),
            valdrix_matches_seeded_truth=not missed and not extra,
            valdrix_api_calls=valdrix_stats.total_calls,
            valdrix_cpu_seconds=round(valdrix_cpu, 2),
            simulator_cpu_seconds_valdrix=valdrix_stats.cpu_seconds,
        )

        custodian = find_custodian(args.custodian)
        if args.skip_custodian or custodian is None:
            print("custodian: skipped" + ("" if custodian else " (not found: --custodian PATH)"))
        else:
            simulator.reset()
            before = simulator.stats()
            peer = await asyncio.to_thread(
                run_custodian,
                custodian,
                simulator.proxy_url,
                regions,
                timeout_seconds=args.custodian_timeout,
            )
            result.update(_peer_figures(peer, _since(before, simulator.stats()), single))

        if not args.skip_concurrent:
            result.update(await ten_at_once(runtime, tenant_id, connection_ids, single))
        result["simulator_cpu_seconds"] = simulator.stats().cpu_seconds
        await runtime.close()
    finally:
        simulator.stop()
        stop_embedded_database(home)
    result["load_average_at_end"] = [round(n, 2) for n in os.getloadavg()]
    return result


@contextlib.contextmanager
def profiled(py_spy: str | None, processes: dict[str, int]) -> Iterator[None]:
    """``py-spy record`` of each named process (every thread) while the block runs, when
    asked: speedscope files in a temporary directory."""
    if not py_spy:
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="valdrix-bench-profile-"))
    recorders = []
    for name, pid in processes.items():
        output = folder / f"{name}.speedscope.json"
        # --gil: only the thread holding the GIL, i.e. where the process's CPU goes.
        command = [py_spy, "record", "--pid", str(pid), "--gil", "--rate", "200"]
        recorders.append(
            subprocess.Popen(  # noqa: S603 (the operator's py-spy, fixed arguments)
                [*command, "--format", "speedscope", "-o", str(output)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    time.sleep(1)  # py-spy attaches
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
        print(f"profiles: {folder}")


async def ten_at_once(
    runtime: Any, tenant_id: uuid.UUID, connection_ids: list[uuid.UUID], single: dict[str, Any]
) -> dict[str, Any]:
    started = time.perf_counter()
    ten = await valdrix_scans(runtime, tenant_id, connection_ids)
    concurrent_seconds = time.perf_counter() - started
    statuses = sorted({r["status"] for r in ten})
    print(
        f"10 scans at once: all done in {concurrent_seconds:.1f} s "
        f"(slowest {max(r['seconds'] for r in ten):.1f} s), statuses {statuses}"
    )
    return {
        "ten_concurrent_scans_seconds": round(concurrent_seconds, 2),
        "ten_concurrent_statuses": statuses,
        "ten_concurrent_findings_equal": all(r["findings"] == single["findings"] for r in ten),
    }


def print_timeline(units: list[tuple[str, str, dt.datetime, dt.datetime]]) -> None:
    """When the units started and how long each took to be detected and written."""
    if not units:
        return
    first = units[0][2]
    took = sorted(((end - start).total_seconds(), region, key) for region, key, start, end in units)
    starts = sorted((start - first).total_seconds() for _, _, start, _ in units)
    ends = max((end - first).total_seconds() for *_, end in units)
    print(
        f"  units: {len(units)}, last one started {starts[-1]:.2f} s after the first, all written"
        f" by {ends:.2f} s; each took p50 {took[len(took) // 2][0]:.2f} s, max {took[-1][0]:.2f} s"
    )
    for seconds, region, key in took[-5:]:
        print(f"    slowest: {region} {key} {seconds:.2f} s")


def _since(before: SimulatorStats, after: SimulatorStats) -> SimulatorStats:
    return SimulatorStats(after.calls, round(after.cpu_seconds - before.cpu_seconds, 2))


def _peer_figures(peer: PeerRun, stats: SimulatorStats, single: dict[str, Any]) -> dict[str, Any]:
    compared = compare(single["findings"], peer.findings)
    bound = " (cut: a lower bound)" if peer.timed_out else ""
    print(
        f"custodian --dryrun: {peer.seconds:.2f} s{bound}, exit {peer.returncode},"
        f" {len(peer.findings)} matches, {stats.total_calls} API calls, the simulator's CPU"
        f" {stats.cpu_seconds:.1f} s"
    )
    for name, count in sorted(stats.calls.items()):
        print(f"  {name}: {count}")
    for detector, counts in compared["by_detector"].items():
        print(f"  {detector}: {counts}")
    if peer.returncode not in (0, None):
        print(peer.log_tail)
    return {
        "custodian_seconds": round(peer.seconds, 2),
        "custodian_timed_out": peer.timed_out,
        "custodian_findings": len(peer.findings),
        "custodian_api_calls": stats.total_calls,
        "simulator_cpu_seconds_custodian": stats.cpu_seconds,
        "ratio": round(peer.seconds / single["seconds"], 2),
        "findings_equal": compared["findings_equal"] and not peer.timed_out,
        "compared_detectors": sorted(compared["by_detector"]),
        "not_compared_detectors": sorted(NOT_EXPRESSIBLE),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 600 resources in 4 regions")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--custodian", help="the custodian executable (default: on PATH)")
    parser.add_argument("--custodian-timeout", type=float, default=600.0)
    parser.add_argument("--skip-custodian", action="store_true")
    parser.add_argument("--skip-concurrent", action="store_true", help="no ten scans at once")
    parser.add_argument("--profile", metavar="PY_SPY", help="py-spy executable: profile a scan")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
