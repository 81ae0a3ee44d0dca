"""What the benchmarks share: a private embedded PostgreSQL, seeded fast with bulk SQL, and
Valdrix's API served in processes of its own, as ``valdrix serve`` runs it.

    from bench_stack import start_database, create_tenant_with_connection, load_findings
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from valdrix.cli.tenants import create_tenant_with_owner_key  # noqa: E402
from valdrix.config import TIER_NAMES, RateLimitSettings, Settings, generate_key_entry  # noqa: E402
from valdrix.connections.service import create_connection, new_external_id  # noqa: E402
from valdrix.kit.crypto import KeyRing  # noqa: E402
from valdrix.kit.db import unit_of_work  # noqa: E402
from valdrix.kit.embedded import DatabaseUrls, ensure_embedded_database  # noqa: E402
from valdrix.kit.migrator import upgrade_to_head  # noqa: E402
from valdrix.runtime import open_runtime  # noqa: E402
from valdrix.scanning.service import open_scheduled_scan  # noqa: E402
from valdrix.simulator.aws_server import free_port  # noqa: E402
from valdrix.tenancy.models import Tier  # noqa: E402
from valdrix.tenancy.service import system_principal  # noqa: E402
from valdrix.wiring import wire  # noqa: E402

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
FINDING_COLUMNS = [
    "id", "tenant_id", "fingerprint", "connection_id", "provider", "account_id", "region",
    "detector", "resource_id", "resource_type", "resource_name", "reason", "status",
    "monthly_cost_usd", "cost_basis", "price_detail", "cost_parts", "evidence", "tags",
    "first_seen_at", "last_seen_at", "resolved_at", "snoozed_until",
]  # fmt: skip


@dataclass(frozen=True)
class Bench:
    """A benchmark's database: its URLs (app and owner roles, and the superuser's for bulk
    seeding) and the settings of a Valdrix on it."""

    home: Path
    urls: DatabaseUrls
    superuser: str
    settings: Settings
    encryption_keys: str

    def environment(self, **variables: str) -> dict[str, str]:
        """The environment of a ``valdrix`` command on this database, quiet (warnings only)."""
        return {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT / "src"),
            "VALDRIX_HOME": str(self.home),
            "VALDRIX_DATABASE_URL": self.urls.app,
            "VALDRIX_MIGRATION_DATABASE_URL": self.urls.owner,
            "VALDRIX_ENCRYPTION_KEYS": self.encryption_keys,
            "VALDRIX_LOG_FORMAT": "console",
            "VALDRIX_LOG_LEVEL": "WARNING",
            **variables,
        }


def start_database(home: Path) -> Bench:
    """An embedded PostgreSQL under ``home``, migrated (stop it with
    ``stop_embedded_database(home)``)."""
    urls = ensure_embedded_database(home, cleanup_mode="stop")
    upgrade_to_head(urls.owner)
    keys = generate_key_entry()
    superuser = urls.owner.replace("valdrix_owner@", "postgres@")
    return Bench(home, urls, superuser, quiet_settings(home, urls, keys), keys)


def quiet_settings(home: Path, urls: DatabaseUrls, keys: str) -> Settings:
    """The settings of a Valdrix on a benchmark's database, logging warnings only."""
    return Settings(
        home=home,
        database_url=urls.app,
        migration_database_url=urls.owner,
        encryption_keys=keys,
        log_format="console",
        log_level="WARNING",
    )


@dataclass(frozen=True)
class BenchTenant:
    tenant_id: str
    connection_id: str
    email: str
    password: str
    api_key: str
    scan_ids: list[str]


async def create_tenant_with_connection(bench: Bench, *, scans: int = 6) -> BenchTenant:
    """A tenant, its owner (with a password and an API key), one AWS connection over every
    region and ``scans`` scans (queued: none ends while a benchmark runs)."""
    wire()  # the domains plugged into each other, as at the app's start
    runtime = open_runtime(bench.settings, bench.urls)
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
            scan_ids = [
                str(await open_scheduled_scan(session, tenant_id, connection.id, job_id=None))
                for _ in range(scans)
            ]
        return BenchTenant(
            str(tenant_id), str(connection.id), email, password, str(created["api_key"]), scan_ids
        )
    finally:
        await runtime.close()


def create_other_tenants(bench: Bench, count: int) -> list[tuple[str, str]]:
    """``count`` more tenants (tiers round-robin), each with one AWS connection, by COPY: their
    (tenant id, connection id)."""
    keyring = KeyRing(bench.settings.keyring)
    tenants = [(uuid.uuid4(), TIER_NAMES[i % len(TIER_NAMES)], uuid.uuid4()) for i in range(count)]
    with psycopg.connect(bench.superuser) as conn, conn.cursor() as cur:
        with cur.copy("COPY tenants (id, name, tier) FROM STDIN") as copy:
            for index, (tenant_id, tier, _) in enumerate(tenants):
                copy.write_row((tenant_id, keyring.encrypt(f"Benchmark tenant {index}"), tier))
        columns = "id, tenant_id, provider, name, role_arn, external_id, status"
        with cur.copy(f"COPY cloud_connections ({columns}) FROM STDIN") as copy:
            for tenant_id, _, connection_id in tenants:
                copy.write_row((
                    connection_id, tenant_id, "aws", "Production",
                    f"arn:aws:iam::{ACCOUNT}:role/ValdrixScan",
                    keyring.encrypt(uuid.uuid4().hex), "verified",
                ))  # fmt: skip
    return [(str(tenant_id), str(connection_id)) for tenant_id, _, connection_id in tenants]


def finding_rows(tenant_id: str, connection_id: str, count: int, seed: int) -> io.StringIO:
    """``count`` findings as COPY text, spread like a real account's: 20 detectors, 12 regions,
    log-normal costs from cents to hundreds of dollars, about 80 % open, one in five sharing a
    cost part with another finding; seeded, so every run stores the same data."""
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
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
            str(uuid.uuid4()), tenant_id, f"{n:064x}", connection_id, "aws",
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


FINDING_HISTORY = """
    INSERT INTO finding_history (tenant_id, finding_id, from_status, to_status, actor,
        created_at)
    SELECT tenant_id, id, NULL, 'open', 'scan', first_seen_at FROM findings
    UNION ALL
    SELECT tenant_id, id, 'open', status, 'user:bench', first_seen_at + (now() - first_seen_at) / 2
    FROM findings WHERE status <> 'open'
"""


def load_findings(bench: Bench, tenants: list[tuple[str, str, int]]) -> float:
    """COPY findings for each (tenant id, connection id, count), with their history, then
    ANALYZE: seconds taken."""
    started = time.perf_counter()
    with psycopg.connect(bench.superuser) as conn:
        with conn.cursor().copy(f"COPY findings ({', '.join(FINDING_COLUMNS)}) FROM STDIN") as copy:
            for seed, (tenant_id, connection_id, count) in enumerate(tenants, start=16):
                data = finding_rows(tenant_id, connection_id, count, seed)
                while chunk := data.read(1 << 20):
                    copy.write(chunk)
        # Each finding's history as the scans and people left it: opened when first seen,
        # and the others changed to their status half-way since.
        conn.execute(FINDING_HISTORY)
        # The COPY fired the findings' trigger, which filled finding_cost_parts (0024).
        conn.execute("ANALYZE findings, finding_cost_parts, finding_history")
    return time.perf_counter() - started


ROLL_UP = """
    INSERT INTO cost_daily (tenant_id, day, source_id, run_id, currency, provider,
        billing_account_id, sub_account_id, service, region, charge_category,
        billing_period_start, preliminary, billed_cost, effective_cost, list_cost)
    SELECT tenant_id, day, source_id, run_id, currency, provider, billing_account_id,
        sub_account_id, service, region, charge_category, billing_period_start, preliminary,
        sum(billed_cost), sum(effective_cost), sum(list_cost)
    FROM cost_records WHERE tenant_id = %s
    GROUP BY tenant_id, day, source_id, run_id, currency, provider, billing_account_id,
        sub_account_id, service, region, charge_category, billing_period_start, preliminary
"""
RESOURCE_ROLL_UP = """
    INSERT INTO cost_resource_days (tenant_id, day, source_id, billing_period_start, currency,
        billing_account_id, sub_account_id, resource_key, billed_cost)
    SELECT tenant_id, day, source_id, billing_period_start, currency, billing_account_id,
        sub_account_id, resource_key, sum(billed_cost)
    FROM cost_records WHERE tenant_id = %s AND resource_key IS NOT NULL
    GROUP BY tenant_id, day, source_id, billing_period_start, currency, billing_account_id,
        sub_account_id, resource_key
"""


MONTHLY_ROLL_UP = """
    INSERT INTO cost_monthly (tenant_id, month, source_id, run_id, currency, provider,
        billing_account_id, sub_account_id, service, region, charge_category,
        billing_period_start, billing_period_end, preliminary, billed_cost, effective_cost,
        list_cost)
    SELECT tenant_id, date_trunc('month', day)::date, source_id, run_id, currency, provider,
        billing_account_id, sub_account_id, service, region, charge_category,
        billing_period_start, billing_period_end, preliminary, sum(billed_cost),
        sum(effective_cost), sum(list_cost)
    FROM cost_daily WHERE tenant_id = %s
    GROUP BY tenant_id, date_trunc('month', day)::date, source_id, run_id, currency, provider,
        billing_account_id, sub_account_id, service, region, charge_category,
        billing_period_start, billing_period_end, preliminary
"""


def store_cost_records(superuser: str, tenant: str, count: int, first_day: dt.date) -> float:
    """``count`` daily records over the year from ``first_day`` for one tenant (30 services,
    4 regions, 5 sub-accounts), and their roll-ups (by day, by month, by resource and day), as
    imports leave them, written directly: seconds taken."""
    started = time.perf_counter()
    per_day = -(-count // 365)
    last_day = first_day + dt.timedelta(days=395)
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("SELECT valdrix_ensure_cost_partitions(%s, %s)", (first_day, last_day))
        source = conn.execute(
            "INSERT INTO cost_sources (id, tenant_id, kind, key, created_at)"
            " VALUES (gen_random_uuid(), %s, 'focus_file', 'focus:stored', now()) RETURNING id",
            (tenant,),
        ).fetchone()
        assert source is not None
        run = uuid.uuid4()
        conn.execute(
            """
            INSERT INTO cost_records (tenant_id, day, source_id, run_id, currency, provider,
                billing_account_id, sub_account_id, service, region, charge_category,
                billing_period_start, preliminary, billed_cost, effective_cost, list_cost,
                resource_id, resource_key, tags, source_rows)
            SELECT %(tenant)s, %(first)s::date + (n / %(per_day)s)::int, %(source)s, %(run)s,
                'USD', 'AWS', '100000000000', (100000000000 + n %% 5)::text,
                'Service ' || lpad((n %% 30)::text, 2, '0'),
                (ARRAY['us-east-1','us-west-2','eu-west-1','ap-southeast-2'])[1 + n %% 4],
                'Usage', date_trunc('month', %(first)s::date + (n / %(per_day)s)::int)::date,
                false, (n %% 997) / 100.0, (n %% 997) / 100.0, (n %% 997) / 100.0,
                'vol-' || (n %% %(per_day)s), 'vol-' || (n %% %(per_day)s),
                '{"team": "t1"}', 24
            FROM generate_series(0, %(count)s - 1) AS n
            """,
            {"tenant": tenant, "per_day": per_day, "source": source[0], "run": run,
             "count": count, "first": first_day},
        )  # fmt: skip
        conn.execute(ROLL_UP, (tenant,))
        conn.execute(MONTHLY_ROLL_UP, (tenant,))
        conn.execute(RESOURCE_ROLL_UP, (tenant,))
        conn.execute("ANALYZE cost_records, cost_daily, cost_monthly, cost_resource_days")
    return time.perf_counter() - started


def raised_rate_limits() -> dict[str, str]:
    """``VALDRIX_RATE_LIMIT_*`` far above what a benchmark asks: the limiter still runs on every
    request, but a load test is not a tenant."""
    raised = {"credential_per_second": 1e6, "credential_burst": 10**9}
    raised |= {"tenant_per_second": 1e6, "tenant_burst": 10**9}
    return {RateLimitSettings.variable(name): str(value) for name, value in raised.items()}


def serve_options() -> list[str]:
    """The options ``valdrix serve`` offers (``--workers`` once it runs several processes)."""
    shown = subprocess.run(
        [sys.executable, "-m", "valdrix", "serve", "--help"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "COLUMNS": "200"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [word for word in shown.stdout.split() if word.startswith("--")]


def servable_workers(wanted: int) -> int:
    """The API processes ``valdrix serve`` can run: ``wanted`` once it has ``--workers``, else
    one."""
    return wanted if wanted > 1 and "--workers" in serve_options() else 1


def start_valdrix_serve(
    bench: Bench, *, workers: int = 1, log: Path | None = None, **variables: str
) -> tuple[subprocess.Popen[bytes], str]:
    """``valdrix serve`` on a free loopback port (``--workers`` when ``workers`` > 1: check
    with ``servable_workers`` first), once it answers: the process and its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "valdrix", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        command += ["--workers", str(workers)]
    output = log.open("wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: S603 (our interpreter, our arguments)
        command, env=bench.environment(**variables), stdout=output, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(process, url)
    return process, url


def wait_until_answering(process: subprocess.Popen[Any], url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).is_success:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the server for {url} exited with {process.returncode}")
        time.sleep(0.2)
    stop(process)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]
