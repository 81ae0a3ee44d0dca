"""Benchmark: one large AWS account (5,000 resources over 17 regions) with 50 ms per API call.

Measures Valdrix's scan engine (units of region x detector in parallel, CloudWatch batched with
GetMetricData) against a sequential baseline in the same run — region after region, detector
after detector, one CloudWatch call per resource series, which is how the common tools do it —
and then 10 scans of the account at once on one worker process.

AWS is a moto server behind valdrix.simulator.proxy.FaultProxy, which adds the latency. The
database is a private embedded PostgreSQL in a temporary directory.

    python benchmarks/scan_large_account.py [--quick] [--latency-ms 50] [--skip-baseline]

Prints its figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3

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
ROLE_ARN = "arn:aws:iam::123456789012:role/ValdrixScanRole"
AMI = "ami-760aaa0f"

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# moto accepts any credentials; these are placeholders, not secrets.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)


def _wait_for(endpoint: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)  # noqa: S310
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def seed_region(endpoint: str, region: str, per_region: int, now: dt.datetime) -> int:
    """About ``per_region`` resources: instances (+ root volumes), volumes, EIPs, snapshots."""
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint)
    cw = boto3.client("cloudwatch", region_name=region, endpoint_url=endpoint)
    instances = max(1, per_region // 5)
    reservation = ec2.run_instances(
        ImageId=AMI, MinCount=instances, MaxCount=instances, InstanceType="t3.medium"
    )
    ids = [i["InstanceId"] for i in reservation["Instances"]]
    volumes = max(1, per_region * 2 // 5)
    volume_ids = []
    for n in range(volumes):
        volume = ec2.create_volume(
            Size=20 + n % 50, AvailabilityZone=f"{region}a", VolumeType="gp2" if n % 2 else "gp3"
        )
        volume_ids.append(volume["VolumeId"])
    for _ in range(max(1, per_region // 10)):
        ec2.allocate_address(Domain="vpc")
    for volume_id in volume_ids[: max(1, per_region // 10)]:
        ec2.create_snapshot(VolumeId=volume_id)
    data = []
    for day in range(14):
        at = now - dt.timedelta(days=day, hours=1)
        for instance_id in ids:
            dims = [{"Name": "InstanceId", "Value": instance_id}]
            data.append(
                {
                    "MetricName": "CPUUtilization",
                    "Dimensions": dims,
                    "Timestamp": at,
                    "Value": 2.0,
                    "Unit": "Percent",
                }
            )
            for metric in ("NetworkIn", "NetworkOut"):
                data.append(
                    {
                        "MetricName": metric,
                        "Dimensions": dims,
                        "Timestamp": at,
                        "Value": 1000.0,
                        "Unit": "Bytes",
                    }
                )
    for start in range(0, len(data), 1000):
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=data[start : start + 1000])
    return instances * 2 + volumes + per_region // 10 * 2


class OneQueryPerCall:
    """A CloudWatch client that fetches each series with its own request (the baseline)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        results = []
        for query in request["MetricDataQueries"]:
            single = {**request, "MetricDataQueries": [query]}
            results += self._client.get_metric_data(**single)["MetricDataResults"]
        return {"MetricDataResults": results}


def baseline_scan(endpoint: str, regions: list[str]) -> tuple[float, int]:
    """Region after region, detector after detector, one CloudWatch call per series."""
    from valdrix.scanning.base import RegionScope
    from valdrix.scanning.providers.aws_pricing import aws_catalog
    from valdrix.scanning.registry import load_all_detectors

    started, found = time.perf_counter(), 0
    for region in regions:
        cache: dict[str, Any] = {}

        def client(service: str, region: str = region, cache: dict[str, Any] = cache) -> Any:
            if service not in cache:
                made = boto3.client(service, region_name=region, endpoint_url=endpoint)
                cache[service] = OneQueryPerCall(made) if service == "cloudwatch" else made
            return cache[service]

        scope = RegionScope("123456789012", region, client, aws_catalog(), dt.datetime.now(dt.UTC))
        for detector in load_all_detectors().for_provider("aws"):
            thresholds = detector.thresholds.model_validate(_relaxed(detector))
            found += len(list(detector().detect(scope, thresholds)))
    return time.perf_counter() - started, found


def _relaxed(detector: Any) -> dict[str, Any]:
    """moto cannot backdate resources: judge them at age 0, for both contenders alike."""
    fields = detector.thresholds.model_fields
    return {name: 0 for name in fields if name.endswith(("_age_days", "stopped_days"))}


async def valdrix_scans(
    runtime: Any, tenant_id: uuid.UUID, connections: list[uuid.UUID]
) -> list[dict[str, Any]]:
    from valdrix.kit.db import unit_of_work
    from valdrix.scanning import service
    from valdrix.scanning.engine import run_scan
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
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            scan, _ = await service.get_scan(session, actor, scan_id)
        return {
            "status": status,
            "seconds": time.perf_counter() - started,
            "findings": scan.findings_count,
        }

    return list(await asyncio.gather(*(one(s) for s in scan_ids)))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from valdrix.cli.tenants import create_tenant_with_owner_key
    from valdrix.config import Settings, generate_key_entry
    from valdrix.connections import service as connections
    from valdrix.jobs.app import open_job_app
    from valdrix.kit.db import unit_of_work
    from valdrix.kit.embedded import ensure_embedded_database, stop_embedded_database
    from valdrix.kit.migrator import upgrade_to_head
    from valdrix.runtime import open_runtime
    from valdrix.simulator.aws_server import SIMULATED_AWS_ENV, free_port
    from valdrix.simulator.proxy import FaultProxy, Faults
    from valdrix.tenancy.models import Tier
    from valdrix.tenancy.service import system_principal
    from valdrix.wiring import wire

    regions = REGIONS_17[: 4 if args.quick else 17]
    total = 600 if args.quick else 5000
    per_region = total // len(regions)
    home = Path(tempfile.mkdtemp(prefix="valdrix-bench-"))
    urls = ensure_embedded_database(home)
    upgrade_to_head(urls.owner)
    # AWS runs in its own process, as the real one does: its CPU is not the scanner's.
    moto_port = free_port()
    simulator = subprocess.Popen(  # noqa: ASYNC220, S603 (our interpreter, fixed arguments)
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
        env={**os.environ, **SIMULATED_AWS_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{moto_port}"
    _wait_for(endpoint)
    proxy = FaultProxy(endpoint, Faults(latency_seconds=args.latency_ms / 1000))
    proxy.start()
    try:
        now = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            seeded = sum(pool.map(lambda r: seed_region(endpoint, r, per_region, now), regions))
        seed_seconds = time.perf_counter() - t0
        print(f"seeded {seeded} resources in {len(regions)} regions in {seed_seconds:.1f} s")

        settings = Settings(
            home=home,
            database_url=urls.app,
            migration_database_url=urls.owner,
            encryption_keys=generate_key_entry(),
            aws={"endpoint_url": proxy.url},
            log_level="WARNING",
        )
        wire()  # the domains plugged into each other, as at a worker's start
        runtime = open_runtime(settings, urls)
        await open_job_app(urls.app)
        created = await create_tenant_with_owner_key(
            runtime, name="Bench", tier=Tier.enterprise, admin_email="bench@example.com"
        )
        tenant_id = uuid.UUID(str(created["tenant_id"]))
        from valdrix.scanning.registry import load_all_detectors

        overrides = {d.key: _relaxed(d) for d in load_all_detectors().for_provider("aws")}
        connection_ids = []
        for n in range(10):
            async with unit_of_work(runtime.sessions, tenant_id) as session:
                connection = await connections.create_connection(
                    session,
                    system_principal(tenant_id),
                    runtime.keyring,
                    name=f"account {n}",
                    role_arn=ROLE_ARN,
                    external_id=connections.new_external_id(runtime.keyring, tenant_id),
                    regions=regions,
                    thresholds={k: v for k, v in overrides.items() if v},
                    tag_exclusions=[],
                )
                connection_ids.append(connection.id)

        proxy.calls.clear()
        [single] = await valdrix_scans(runtime, tenant_id, connection_ids[:1])
        calls = dict(sorted((f"{s}:{o}", n) for (s, o), n in proxy.calls.items()))
        print(
            f"valdrix scan: {single['seconds']:.1f} s, {single['findings']} findings,"
            f" status {single['status']}, {sum(calls.values())} API calls"
        )
        for name, count in calls.items():
            print(f"  {name}: {count}")

        baseline_seconds, baseline_found, baseline_calls = None, None, None
        if not args.skip_baseline:
            proxy.calls.clear()
            baseline_seconds, baseline_found = await asyncio.to_thread(
                baseline_scan, proxy.url, regions
            )
            baseline_calls = sum(proxy.calls.values())
            print(
                f"sequential baseline: {baseline_seconds:.1f} s, {baseline_found} findings,"
                f" {baseline_calls} API calls"
            )

        concurrent_started = time.perf_counter()
        ten = await valdrix_scans(runtime, tenant_id, connection_ids)
        concurrent_seconds = time.perf_counter() - concurrent_started
        statuses = sorted({r["status"] for r in ten})
        print(
            f"10 scans at once: all done in {concurrent_seconds:.1f} s "
            f"(slowest {max(r['seconds'] for r in ten):.1f} s), statuses {statuses}"
        )
        await runtime.close()
    finally:
        proxy.stop()
        simulator.terminate()
        simulator.wait(timeout=30)
        stop_embedded_database(home)

    result: dict[str, Any] = {
        "benchmark": "scan_large_account",
        "resources": seeded,
        "regions": len(regions),
        "latency_ms": args.latency_ms,
        "scan_seconds": round(single["seconds"], 2),
        "scan_status": single["status"],
        "findings": single["findings"],
        "api_calls": sum(calls.values()),
        "api_calls_by_operation": calls,
        "ten_concurrent_scans_seconds": round(concurrent_seconds, 2),
        "ten_concurrent_statuses": statuses,
    }
    if baseline_seconds is not None:
        result.update(
            baseline_scan_seconds=round(baseline_seconds, 2),
            baseline_api_calls=baseline_calls,
            baseline_findings=baseline_found,
            ratio=round(baseline_seconds / single["seconds"], 2),
        )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 resources over 4 regions")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--skip-baseline", action="store_true")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
