"""The dashboard's two busiest pages with 10,000 findings in the tenant: the overview and the
findings list, served by uvicorn on a private embedded PostgreSQL.

    python benchmarks/dashboard.py [--quick] [--findings N] [--requests N]

A tenant gets one AWS connection and 10,000 findings (``--quick``: 2,000) spread like a real
account's: 20 detectors, 12 regions, costs from cents to hundreds of dollars (log-normal), about
80 % open and the rest snoozed, dismissed or resolved, one in five sharing a cost part with
another finding (so the totals' count-each-dollar-once work and the hiding of an imported
recommendation inside the finding that prices the same cost are real), and six scans. They are
written with ``COPY`` (the setup is timed apart and not part of the figures).

The app runs in a child process (``uvicorn``, one worker, the app role under row-level security,
as ``valdrix serve``). The parent signs in as the tenant's owner and, over one keep-alive
connection on loopback, asks for ``/`` and ``/findings`` in turn, N times each (default 300;
``--quick``: 60) after a warm-up. The app sends no ``Server-Timing``, so the times are the
client's: request sent to body read, which on loopback is the server's time plus well under a
millisecond. Target: p95 under 100 ms for each page on a 2-core machine.

Baseline, measured in the same run the same way: ``GET /api/v1/findings?limit=50``, the JSON
behind the findings page (same service, same rows); ``ratio`` is the findings page's p95 over
the API's, the cost of rendering the page on top of reading its data.

Figures are printed for humans, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from valdrix.cli.tenants import create_tenant_with_owner_key  # noqa: E402
from valdrix.config import Settings, generate_key_entry  # noqa: E402
from valdrix.connections.service import create_connection, new_external_id  # noqa: E402
from valdrix.kit.db import unit_of_work  # noqa: E402
from valdrix.kit.embedded import (  # noqa: E402
    DatabaseUrls,
    ensure_embedded_database,
    stop_embedded_database,
)
from valdrix.kit.migrator import upgrade_to_head  # noqa: E402
from valdrix.logging import configure_logging  # noqa: E402
from valdrix.runtime import open_runtime  # noqa: E402
from valdrix.scanning.service import open_scheduled_scan  # noqa: E402
from valdrix.simulator.aws_server import free_port  # noqa: E402
from valdrix.tenancy.models import Tier  # noqa: E402
from valdrix.tenancy.service import system_principal  # noqa: E402
from valdrix.wiring import wire  # noqa: E402

SIZES = {"default": (10_000, 300), "quick": (2_000, 60)}
WARM_UP = 20
TARGET_P95_MS = 100.0
ACCOUNT = "123456789012"
REGIONS = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2",
    "eu-central-1", "eu-north-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "sa-east-1",
]  # fmt: skip
DETECTORS = {
    "aws.ebs-unattached": "volume", "aws.ebs-snapshot-orphaned": "snapshot",
    "aws.ebs-gp2-to-gp3": "volume", "aws.ebs-on-stopped-instance": "volume",
    "aws.ebs-previous-generation": "volume", "aws.eip-unassociated": "elastic-ip",
    "aws.ec2-idle": "instance", "aws.ec2-stopped": "instance",
    "aws.ec2-previous-generation": "instance", "aws.elb-idle": "load-balancer",
    "aws.nat-gateway-idle": "nat-gateway", "aws.vpc-endpoint-idle": "vpc-endpoint",
    "aws.ami-unused": "image", "aws.efs-idle": "file-system", "aws.eks-cluster-idle": "cluster",
    "aws.redshift-idle": "cluster", "aws.s3-multipart-incomplete": "bucket",
    "aws.public-ipv4-on-stopped-instance": "instance", "aws.compute-optimizer": "instance",
    "aws.cost-optimization-hub": "instance",
}  # fmt: skip
STATUSES = ["open"] * 16 + ["snoozed", "snoozed", "dismissed", "resolved"]
COLUMNS = [
    "id", "tenant_id", "fingerprint", "connection_id", "provider", "account_id", "region",
    "detector", "resource_id", "resource_type", "resource_name", "reason", "status",
    "monthly_cost_usd", "cost_basis", "price_detail", "cost_parts", "evidence", "tags",
    "first_seen_at", "last_seen_at", "resolved_at", "snoozed_until",
]  # fmt: skip


def settings_for(bench: dict[str, Any]) -> Settings:
    return Settings(
        home=Path(bench["home"]),
        database_url=bench["app"],
        migration_database_url=bench["owner"],
        encryption_keys=bench["keys"],
        log_format="console",
        log_level="WARNING",
    )


async def create_tenant(bench: dict[str, Any]) -> dict[str, str]:
    """The tenant, its owner (with a password), one AWS connection and six scans."""
    wire()  # the domains plugged into each other, as at the app's start
    runtime = open_runtime(settings_for(bench), DatabaseUrls(bench["app"], bench["owner"]))
    try:
        email, password = "owner@bench.example", "benchmark-password-1"
        created = await create_tenant_with_owner_key(
            runtime, name="Bench Corp", tier=Tier.growth, admin_email=email,
            admin_password=password,
        )  # fmt: skip
        tenant_id = uuid.UUID(str(created["tenant_id"]))
        actor = system_principal(tenant_id, "benchmark")
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            connection = await create_connection(
                session, actor, runtime.keyring, name="Production", regions=REGIONS,
                role_arn=f"arn:aws:iam::{ACCOUNT}:role/ValdrixScan",
                external_id=new_external_id(runtime.keyring, tenant_id),
                thresholds={}, tag_exclusions=[],
            )  # fmt: skip
            for _ in range(6):
                await open_scheduled_scan(session, tenant_id, connection.id, job_id=None)
        return {
            "tenant_id": str(tenant_id),
            "connection_id": str(connection.id),
            "email": email,
            "password": password,
            "api_key": str(created["api_key"]),
        }
    finally:
        await runtime.close()


def finding_rows(tenant: dict[str, str], count: int) -> io.StringIO:
    """``count`` findings as COPY text, seeded so every run stores the same data."""
    rng = random.Random(16)  # noqa: S311 (test data, not secrets)
    now = datetime.now(UTC)
    out = io.StringIO()
    detectors = list(DETECTORS)
    for n in range(count):
        detector, region = rng.choice(detectors), rng.choice(REGIONS)
        status = rng.choice(STATUSES)
        cost = round(min(rng.lognormvariate(2.5, 1.4), 5_000.0), 2)
        resource_id = f"{DETECTORS[detector]}-{n:08x}"
        shared = []
        if n % 10 in (0, 1):  # pairs of findings pricing the same volume, in one region
            region = REGIONS[(n // 10) % len(REGIONS)]
            part = {"component": "storage", "resource_id": f"vol-{n // 10:08x}"}
            shared = [{**part, "monthly_usd": "4.00"}]
        first_seen = now - timedelta(days=rng.randint(1, 90))
        row = [
            str(uuid.uuid4()), tenant["tenant_id"], f"{n:064x}", tenant["connection_id"], "aws",
            ACCOUNT, region, detector, resource_id, DETECTORS[detector], f"app-{n % 700}",
            f"{detector} found {resource_id} unused", status, f"{cost:.2f}",
            rng.choice(["list_price", "billed"]),
            json.dumps({"as_of": "2026-11-01", "estimated": False}), json.dumps(shared),
            json.dumps({"idle_days": rng.randint(7, 120), "size_gb": rng.randint(8, 2048)}),
            json.dumps({"team": f"team-{n % 40}", "env": rng.choice(["prod", "staging", "dev"])}),
            first_seen.isoformat(), (now - timedelta(hours=rng.randint(0, 48))).isoformat(),
            now.isoformat() if status == "resolved" else "\\N",
            (now + timedelta(days=30)).isoformat() if status == "snoozed" else "\\N",
        ]  # fmt: skip
        out.write("\t".join(field.replace("\\", "\\\\") if field != "\\N" else field
                            for field in row) + "\n")  # fmt: skip
    out.seek(0)
    return out


def load_findings(superuser: str, tenant: dict[str, str], count: int) -> float:
    started = time.perf_counter()
    data = finding_rows(tenant, count)
    with psycopg.connect(superuser) as conn:
        with conn.cursor().copy(f"COPY findings ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            while chunk := data.read(1 << 20):
                copy.write(chunk)
        conn.execute("ANALYZE findings")
    return time.perf_counter() - started


def serve_child(bench: dict[str, Any]) -> None:
    import uvicorn

    from valdrix.app import create_app

    runtime = open_runtime(settings_for(bench), DatabaseUrls(bench["app"], bench["owner"]))
    uvicorn.run(
        create_app(runtime), host="127.0.0.1", port=int(bench["port"]), log_level="warning",
        lifespan="off", access_log=False,
    )  # fmt: skip


def start_server(bench: dict[str, Any]) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(  # noqa: S603 (this script, our own arguments)
        [sys.executable, __file__, "--serve-child", json.dumps(bench)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{bench['port']}/healthz").is_success:
                return child
        except httpx.TransportError:
            pass
        if child.poll() is not None:
            raise SystemExit("the server did not start")
        time.sleep(0.2)
    child.terminate()
    raise SystemExit("the server did not answer within 60 s")


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def time_pages(base_url: str, tenant: dict[str, str], requests: int) -> dict[str, list[float]]:
    paths = {"overview": "/", "findings": "/findings", "findings_api": "/api/v1/findings?limit=50"}
    times: dict[str, list[float]] = {name: [] for name in paths}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = client.post(
            "/api/v1/auth/login", json={"email": tenant["email"], "password": tenant["password"]}
        )
        login.raise_for_status()
        for round_ in range(WARM_UP + requests):
            for name, path in paths.items():
                started = time.perf_counter()
                response = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
                if round_ >= WARM_UP:
                    times[name].append(elapsed)
    return times


def run(home: Path, findings: int, requests: int) -> dict[str, Any]:
    urls = ensure_embedded_database(home, cleanup_mode="stop")
    upgrade_to_head(urls.owner)
    superuser = urls.owner.replace("valdrix_owner@", "postgres@")
    bench: dict[str, Any] = {
        "home": str(home),
        "app": urls.app,
        "owner": urls.owner,
        "keys": generate_key_entry(),
        "port": free_port(),
    }
    tenant = asyncio.run(create_tenant(bench))
    setup_seconds = load_findings(superuser, tenant, findings)
    server = start_server(bench)
    try:
        times = time_pages(f"http://127.0.0.1:{bench['port']}", tenant, requests)
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures: dict[str, Any] = {"findings": findings, "requests": requests}
    for name, samples in times.items():
        prefix = "baseline_findings_api" if name == "findings_api" else name
        figures[f"{prefix}_p50_ms"] = round(statistics.median(samples), 1)
        figures[f"{prefix}_p95_ms"] = round(percentile(samples, 0.95), 1)
    figures["ratio"] = round(
        figures["findings_p95_ms"] / figures["baseline_findings_api_p95_ms"], 2
    )
    figures["setup_seconds"] = round(setup_seconds, 1)
    figures["load_average"] = round(os.getloadavg()[0], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--findings", type=int, help="findings in the tenant")
    parser.add_argument("--requests", type=int, help="timed requests of each page")
    parser.add_argument("--serve-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging(json_output=False, level="WARNING")
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    if args.serve_child:
        serve_child(json.loads(args.serve_child))
        return
    findings, requests = SIZES["quick" if args.quick else "default"]
    findings, requests = args.findings or findings, args.requests or requests
    with tempfile.TemporaryDirectory(prefix="valdrix-bench-") as tmp:
        home = Path(tmp)
        try:
            figures = run(home, findings, requests)
        finally:
            stop_embedded_database(home)
    for page, path in (("overview", "/"), ("findings", "/findings")):
        verdict = "under" if figures[f"{page}_p95_ms"] < TARGET_P95_MS else "OVER"
        p50, p95 = figures[f"{page}_p50_ms"], figures[f"{page}_p95_ms"]
        print(f"{path:10} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  ({verdict} the 100 ms target)")
    print(
        f"GET /api/v1/findings?limit=50 (baseline) p50 {figures['baseline_findings_api_p50_ms']} ms"
        f"  p95 {figures['baseline_findings_api_p95_ms']} ms; findings page / API p95:"
        f" {figures['ratio']}"
    )
    print(
        f"{findings:,} findings (loaded in {figures['setup_seconds']} s), {requests} requests of"
        f" each, 1-minute load average {figures['load_average']} on {os.cpu_count()} cores"
    )
    print(json.dumps({"benchmark": "dashboard", **figures}), flush=True)


if __name__ == "__main__":
    main()
