"""FOCUS import throughput and memory, beside a raw COPY of the same file; cost reads at scale.

    python benchmarks/cost_ingest.py [--quick] [--rows N] [--stored N]

1. Import, two files of 1,000,000 rows each (``--quick``: 100,000), 25 columns like a real
   export:
   - *low cardinality*: hourly usage of ~1,400 resources over 30 days (24 rows per daily record);
   - *high cardinality*: daily lines of ~6,700 resources over 30 days (over 200,000
     resource-days), five lines per resource and day (compute, storage, transfer, requests,
     monitoring), each resource with its own tags: about as many daily records as rows.
   ``valdrix costs import``'s code path (``import_focus_file``: streamed read and validation,
   exact daily sums, the reconciled commit with roll-up and readings) runs in a child process,
   which reports its time and its own peak RSS. Targets: at least 100,000 rows/s end to end (or
   half of raw COPY's speed, whichever is lower) and peak RSS under 500 MB, on both. Baseline:
   PostgreSQL's own ``COPY ... FROM STDIN (FORMAT csv)`` of the same file into an unindexed
   table of text columns.
2. Read: 5,000,000 stored daily cost records (``--quick``: 500,000) over a year for one tenant,
   then ``GET /api/v1/costs``'s query for 90 days grouped by service (best of 5, through the app
   role under row-level security). Target: under 300 ms. Also reported: the same grouping summed
   from the records themselves instead of the roll-up.

A private embedded PostgreSQL is started in a temporary directory and stopped at the end.
Figures are printed for humans, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench_stack import store_cost_records  # noqa: E402

from valdrix.cli.tenants import create_tenant_with_owner_key  # noqa: E402
from valdrix.config import Settings, generate_key_entry  # noqa: E402
from valdrix.costs import reading  # noqa: E402
from valdrix.costs.sources import focus_files  # noqa: E402
from valdrix.kit.db import unit_of_work  # noqa: E402
from valdrix.kit.embedded import (  # noqa: E402
    DatabaseUrls,
    ensure_embedded_database,
    stop_embedded_database,
)
from valdrix.kit.migrator import upgrade_to_head  # noqa: E402
from valdrix.logging import configure_logging  # noqa: E402
from valdrix.runtime import open_runtime  # noqa: E402
from valdrix.tenancy.models import Tier  # noqa: E402
from valdrix.tenancy.service import system_principal  # noqa: E402

SIZES = {"default": (1_000_000, 5_000_000), "quick": (100_000, 500_000)}
HOURS = 30 * 24
SERVICES = [f"Service {n:02d}" for n in range(30)]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]
ACCOUNTS = [f"{100000000000 + n}" for n in range(5)]
HEADER = [
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingAccountId",
    "BillingAccountName", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
    "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "PricingQuantity", "PricingUnit", "ServiceName", "ServiceCategory", "ProviderName",
    "PublisherName", "InvoiceIssuerName", "SubAccountId", "RegionId", "ResourceId", "Tags",
]  # fmt: skip


def generate_focus(path: Path, rows: int) -> None:
    """Hourly usage rows, resource after resource (as exports are usually ordered)."""
    resources = -(-rows // HOURS)
    start = dt.datetime(2026, 9, 1)
    hours = [
        ((start + dt.timedelta(hours=h)).isoformat(sep=" "),
         (start + dt.timedelta(hours=h + 1)).isoformat(sep=" "))
        for h in range(HOURS)
    ]  # fmt: skip
    written = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for r in range(resources):
            service, region = SERVICES[r % len(SERVICES)], REGIONS[r % len(REGIONS)]
            account = ACCOUNTS[r % len(ACCOUNTS)]
            arn = f"arn:aws:ec2:{region}:{account}:volume/vol-{r:08x}"
            tags = json.dumps({"team": f"t{r % 7}", "env": "prod"})
            cost = f"{0.0125 + (r % 97) / 1000:.10f}"
            for begin, end in hours:
                if written == rows:
                    return
                writer.writerow(
                    (cost, cost, cost, cost, ACCOUNTS[0], "Bench", "USD",
                     "2026-09-01 00:00:00", "2026-10-01 00:00:00", begin, end, "Usage", "NULL",
                     "usage", "1", "Hours", service, "Compute", "AWS", "AWS", "AWS", account,
                     region, arn, tags)
                )  # fmt: skip
                written += 1


# (ServiceName, ServiceCategory, PricingUnit, ChargeDescription, daily quantity): the lines one
# instance-like resource leaves on a day of a daily-grain export.
LINES = [
    ("Amazon Elastic Compute Cloud", "Compute", "Hrs", "m6i.large On Demand", "24"),
    ("Amazon Elastic Block Store", "Storage", "GB-Mo", "gp3 storage", "3.33"),
    ("AWS Data Transfer", "Networking", "GB", "data transfer out", "1.7"),
    ("Amazon Simple Storage Service", "Storage", "Requests", "PUT requests", "1200"),
    ("AmazonCloudWatch", "Management and Governance", "Metrics", "custom metrics", "0.33"),
]
DAYS = 30


def generate_focus_high_cardinality(path: Path, rows: int) -> int:
    """Daily lines, day after day (as daily exports are ordered), of many resources with their
    own tags; returns the number of distinct resource-days."""
    resources = -(-rows // (DAYS * len(LINES)))
    start = dt.date(2026, 9, 1)
    written = resource_days = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for d in range(DAYS):
            begin = f"{start + dt.timedelta(days=d)}T00:00:00Z"
            end = f"{start + dt.timedelta(days=d + 1)}T00:00:00Z"
            for r in range(resources):
                region, account = REGIONS[r % len(REGIONS)], ACCOUNTS[r % len(ACCOUNTS)]
                arn = f"arn:aws:ec2:{region}:{account}:instance/i-{r:017x}"
                tags = json.dumps(
                    {"Name": f"web-{r}", "team": f"team-{r % 41}", "env": ("prod", "dev")[r % 2],
                     "cost-center": f"cc-{r % 113:04d}", "aws:createdBy": f"role/deployer-{r % 9}"}
                )  # fmt: skip
                for n, (service, category, unit, description, quantity) in enumerate(LINES):
                    if written == rows:
                        return resource_days
                    resource_days += n == 0
                    cost = f"{(r % 89 + 1) * (n + 1) / 997:.10f}"
                    writer.writerow(
                        (cost, cost, cost, cost, ACCOUNTS[0], "Bench", "USD",
                         "2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z", begin, end, "Usage", "",
                         description, quantity, unit, service, category, "AWS", "AWS", "AWS",
                         account, region, arn, tags)
                    )  # fmt: skip
                    written += 1
    return resource_days


def raw_copy_seconds(superuser: str, path: Path) -> float:
    columns = ", ".join(f'"{name}" text' for name in HEADER)
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute(f"CREATE UNLOGGED TABLE IF NOT EXISTS raw_focus ({columns})")
        conn.execute("TRUNCATE raw_focus")
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY raw_focus FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE raw_focus")
    return elapsed


def import_in_child(bench: dict[str, Any], path: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of the import, run in a fresh process."""
    child = subprocess.run(  # noqa: S603  (this script, with arguments it wrote)
        [sys.executable, __file__, "--import-child", json.dumps({**bench, "file": str(path)})],
        capture_output=True,
        text=True,
        check=True,
    )
    reported = json.loads(child.stdout.strip().splitlines()[-1])
    return float(reported["seconds"]), float(reported["peak_rss_mb"])


def settings_for(bench: dict[str, Any]) -> Settings:
    return Settings(
        home=Path(bench["home"]),
        database_url=bench["app"],
        migration_database_url=bench["owner"],
        encryption_keys=bench["keys"],
        log_format="console",
        log_level="WARNING",
    )


async def child_import(bench: dict[str, Any]) -> float:
    runtime = open_runtime(settings_for(bench), DatabaseUrls(bench["app"], bench["owner"]))
    try:
        started = time.perf_counter()
        run = await focus_files.import_focus_file(
            runtime, uuid.UUID(bench["tenant"]), Path(bench["file"]), actor="benchmark"
        )
        elapsed = time.perf_counter() - started
        assert run.rows_accepted == bench["rows"], run.rows_accepted
        return elapsed
    finally:
        await runtime.close()


def stored_record_count(superuser: str, tenant: str) -> int:
    with psycopg.connect(superuser, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM cost_records WHERE tenant_id = %s", (tenant,)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def query_ms(bench: dict[str, Any], group_by: str) -> float:
    """Best of 5: the API's read for 90 days (roll-up, or records for ``resource``)."""
    runtime = open_runtime(settings_for(bench), DatabaseUrls(bench["app"], bench["owner"]))
    tenant = uuid.UUID(bench["tenant"])
    query = reading.parse_query(
        dt.date(2026, 5, 1), dt.date(2026, 7, 30), group_by, final_before=dt.date.today()
    )
    best = float("inf")
    try:
        for _ in range(5):
            started = time.perf_counter()
            async with unit_of_work(runtime.sessions, tenant) as session:
                answer = await reading.read_costs(session, system_principal(tenant), query)
            best = min(best, time.perf_counter() - started)
            assert answer.rows
    finally:
        await runtime.close()
    return round(best * 1000, 1)


async def create_tenant(bench: dict[str, Any]) -> str:
    runtime = open_runtime(settings_for(bench), DatabaseUrls(bench["app"], bench["owner"]))
    try:
        created = await create_tenant_with_owner_key(
            runtime, name="Bench", tier=Tier.enterprise, admin_email="bench@example.com"
        )
        return str(created["tenant_id"])
    finally:
        await runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--rows", type=int, help="rows in the generated FOCUS file")
    parser.add_argument("--stored", type=int, help="stored records for the read benchmark")
    parser.add_argument("--import-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging(json_output=False, level="WARNING")
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    if args.import_child:
        seconds = asyncio.run(child_import(json.loads(args.import_child)))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}), flush=True)
        return
    rows, stored = SIZES["quick" if args.quick else "default"]
    rows, stored = args.rows or rows, args.stored or stored
    with tempfile.TemporaryDirectory(prefix="valdrix-bench-") as tmp:
        home = Path(tmp)
        try:
            figures = run(home, rows, stored)
        finally:
            stop_embedded_database(home)
    print(
        f"import of {rows:,} FOCUS rows: {figures['rows_per_second']:,.0f} rows/s"
        f" ({figures['import_seconds']} s), peak RSS {figures['peak_rss_mb']} MB;"
        f" raw COPY {figures['copy_rows_per_second']:,.0f} rows/s"
        f" ({figures['baseline_copy_seconds']} s); ratio {figures['ratio']}"
    )
    print(
        f"high cardinality, {rows:,} rows over {figures['high_cardinality_resource_days']:,}"
        f" resource-days ({figures['high_cardinality_records']:,} daily records):"
        f" {figures['high_cardinality_rows_per_second']:,.0f} rows/s"
        f" ({figures['high_cardinality_import_seconds']} s),"
        f" peak RSS {figures['high_cardinality_peak_rss_mb']} MB;"
        f" raw COPY {figures['high_cardinality_copy_rows_per_second']:,.0f} rows/s;"
        f" ratio {figures['high_cardinality_ratio']}"
    )
    print(
        f"90-day group_by=service over {stored:,} stored records: {figures['query_ms']} ms"
        f" (from the records instead of the roll-up: {figures['query_records_ms']} ms)"
    )
    print(json.dumps({"benchmark": "cost_ingest", **figures}), flush=True)


def run(home: Path, rows: int, stored: int) -> dict[str, Any]:
    urls = ensure_embedded_database(home, cleanup_mode="stop")
    upgrade_to_head(urls.owner)
    superuser = urls.owner.replace("valdrix_owner@", "postgres@")
    bench: dict[str, Any] = {
        "home": str(home),
        "app": urls.app,
        "owner": urls.owner,
        "keys": generate_key_entry(),
        "rows": rows,
    }
    bench["tenant"] = asyncio.run(create_tenant(bench))
    path = home / "focus.csv"
    generate_focus(path, rows)
    copy_seconds = raw_copy_seconds(superuser, path)
    import_seconds, peak_mb = import_in_child(bench, path)
    file_mb = round(path.stat().st_size / 1e6, 1)
    path.unlink()
    wide = home / "focus-high-cardinality.csv"
    resource_days = generate_focus_high_cardinality(wide, rows)
    wide_copy_seconds = raw_copy_seconds(superuser, wide)
    wide_tenant = asyncio.run(create_tenant(bench))
    wide_seconds, wide_peak_mb = import_in_child({**bench, "tenant": wide_tenant}, wide)
    wide_records = stored_record_count(superuser, wide_tenant)
    read_tenant = asyncio.run(create_tenant({**bench}))
    # A year from September 2025: the read asks for May to July 2026.
    store_cost_records(superuser, read_tenant, stored, dt.date(2025, 9, 1))
    reader = {**bench, "tenant": read_tenant}
    return {
        "rows": rows,
        "file_mb": file_mb,
        "import_seconds": round(import_seconds, 2),
        "rows_per_second": round(rows / import_seconds),
        "peak_rss_mb": round(peak_mb, 1),
        "baseline_copy_seconds": round(copy_seconds, 2),
        "copy_rows_per_second": round(rows / copy_seconds),
        "ratio": round(copy_seconds / import_seconds, 2),
        "high_cardinality_resource_days": resource_days,
        "high_cardinality_records": wide_records,
        "high_cardinality_file_mb": round(wide.stat().st_size / 1e6, 1),
        "high_cardinality_import_seconds": round(wide_seconds, 2),
        "high_cardinality_rows_per_second": round(rows / wide_seconds),
        "high_cardinality_peak_rss_mb": round(wide_peak_mb, 1),
        "high_cardinality_copy_seconds": round(wide_copy_seconds, 2),
        "high_cardinality_copy_rows_per_second": round(rows / wide_copy_seconds),
        "high_cardinality_ratio": round(wide_copy_seconds / wide_seconds, 2),
        "stored_records": stored,
        "query_ms": asyncio.run(query_ms(reader, "service")),
        "query_records_ms": asyncio.run(query_ms(reader, "service,resource")),
    }


if __name__ == "__main__":
    main()
