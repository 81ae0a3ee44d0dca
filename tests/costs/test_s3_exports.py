"""FOCUS exports pulled from S3 end to end: real PostgreSQL, S3 as a moto server on loopback.

What a customer relies on: every delivery under the export's prefix is imported once, as the
files AWS wrote it in; a delivery that did not change is neither downloaded nor imported again;
a delivery that changed replaces its period (never adds to it); a damaged delivery is refused
with the file, row and column named while the others still import; a bucket that cannot be read
says why instead of retrying forever; and only connections that name an export are pulled.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from tests.conftest import TenantFixture
from tests.costs.focus_files import parquet_copy, sample_path, sample_sums, synthetic, write_csv
from tests.fixtures.aws import HEALTHY_REGION, aws_client, aws_runtime, register_connection
from tests.fixtures.http import assert_problem
from tests.fixtures.jobs import superuser_rows
from tests.jobs.helpers import retire_tenant_jobs
from valdrix.connections.exports import parse_export_uri
from valdrix.connections.service import update_connection
from valdrix.costs.models import CostRun, cost_daily
from valdrix.costs.scheduling import queue_daily_ingests
from valdrix.costs.sources.s3_exports import list_deliveries
from valdrix.costs.sources.s3_pull import pull_focus_exports
from valdrix.jobs.app import open_job_app
from valdrix.jobs.retry import RetryableError
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.simulator.proxy import FaultProxy
from valdrix.tenancy.service import system_principal

if TYPE_CHECKING:  # imported by name, pytest would try to collect it as a test class
    from tests.conftest import TestDatabase


BUCKET = "acme-billing-exports"
EXPORT = f"s3://{BUCKET}/focus/"
SAMPLE_CSV = "focus/sample/data/BILLING_PERIOD=2024-09/sample-00001.csv"
SAMPLE_MANIFEST = "focus/sample/metadata/BILLING_PERIOD=2024-09/sample-Manifest.json"
JANUARY = "focus/acme/data/BILLING_PERIOD=2025-01"
PARTS = (f"{JANUARY}/acme-00001.snappy.parquet", f"{JANUARY}/acme-00002.snappy.parquet")
# The deliveries' BillingAccountIds, sorted and joined (the sample holds three clouds').
SAMPLE_ACCOUNTS = "/providers/Microsoft.Billing/billingAccounts/8611537,1234567890123,20209880"
JANUARY_ACCOUNT = "111122223333"
EC2, S3 = "Amazon EC2", "Amazon S3"
DAYS = [dt.date(2025, 1, day) for day in (6, 7, 8, 9)]
# Rows are written by (day, service): the first part holds the 6th and 7th, the second the rest.
JANUARY_COSTS = {
    (day, service): Decimal(amount)
    for day, base in zip(DAYS, ("10.25", "11.50", "12.75", "14.00"), strict=True)
    for service, amount in ((EC2, base), (S3, "0.125"))
}
CALLS = {name: {"service": "s3", "operation": name} for name in ("ListObjectsV2", "GetObject")}


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def downloads_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where temporary files go during the test (pulls download there)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def files_in(folder: Path) -> list[Path]:
    return list(folder.iterdir())


def api_calls(operation: str) -> float:
    return REGISTRY.get_sample_value("valdrix_aws_api_calls_total", CALLS[operation]) or 0.0


def put(endpoint: str, key: str, body: bytes) -> None:
    aws_client(endpoint, "s3", "us-east-1").put_object(Bucket=BUCKET, Key=key, Body=body)


def january_parts(
    costs: dict[tuple[dt.date, str], Decimal],
    *,
    damage: tuple[int, str] | None = None,
    linked: dict[str, str] | None = None,
) -> list[bytes]:
    """One synthetic export's rows split into two Parquet files, as AWS writes a large period;
    ``damage`` = (row of the second part, counted from 1; text) replaces that row's BilledCost;
    ``linked`` bills a service's rows to another (linked) account of the same payer."""
    with tempfile.TemporaryDirectory() as folder:
        export = synthetic(Path(folder) / "january.csv", costs)
        with export.open(newline="") as handle:
            header, *rows = list(csv.reader(handle))
        for row in rows:
            if account := (linked or {}).get(row[header.index("ServiceName")]):
                row[header.index("SubAccountId")] = account
        half = len(rows) // 2
        parts = []
        for number, part_rows in enumerate((rows[:half], rows[half:]), start=1):
            if damage and number == 2:
                row, value = damage
                part_rows[row - 1][header.index("BilledCost")] = value
            part_csv = write_csv(Path(folder) / f"part-{number}.csv", header, part_rows)
            parts.append(parquet_copy(part_csv, Path(folder) / f"part-{number}.parquet"))
        return [part.read_bytes() for part in parts]


def seed_export(endpoint: str, *, damage: tuple[int, str] | None = None) -> None:
    """The real sample as one CSV delivery (with its manifest), and a two-part Parquet delivery
    of January 2025."""
    aws_client(endpoint, "s3", "us-east-1").create_bucket(Bucket=BUCKET)
    put(endpoint, SAMPLE_CSV, sample_path().read_bytes())
    put(endpoint, SAMPLE_MANIFEST, b'{"dataFiles": ["sample-00001.csv"]}')
    for key, body in zip(PARTS, january_parts(JANUARY_COSTS, damage=damage), strict=True):
        put(endpoint, key, body)


async def connection_with_export(
    runtime: Runtime, make_tenant: Any, uri: str = EXPORT
) -> tuple[uuid.UUID, uuid.UUID]:
    tenant = await make_tenant()
    connection = await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await update_connection(
            session, system_principal(tenant.tenant_id), connection.id, {"focus_export_uri": uri}
        )
    return tenant.tenant_id, connection.id


async def runs_of(runtime: Runtime, tenant_id: uuid.UUID) -> list[CostRun]:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return list(await session.scalars(select(CostRun).order_by(CostRun.started_at)))


async def january_costs(runtime: Runtime, tenant_id: uuid.UUID) -> dict[tuple[dt.date, str], Any]:
    """The tenant's daily billed costs in January 2025 by (day, service)."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        rows = await session.execute(
            select(cost_daily.c.day, cost_daily.c.service, cost_daily.c.billed_cost).where(
                cost_daily.c.day >= dt.date(2025, 1, 1), cost_daily.c.day < dt.date(2025, 2, 1)
            )
        )
    return {(day, service): billed for day, service, billed in rows}


def billed_total(run: CostRun) -> Decimal:
    return Decimal(run.totals["USD"]["billed_cost"])


# --- pulls ------------------------------------------------------------------------------------


async def test_each_delivery_is_imported_once_and_again_only_when_it_changes(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any
) -> None:
    puller = aws_runtime(runtime, aws_endpoint)
    seed_export(aws_endpoint)
    tenant_id, connection_id = await connection_with_export(puller, make_tenant)
    lists, downloads = api_calls("ListObjectsV2"), api_calls("GetObject")

    first = await pull_focus_exports(puller, tenant_id, connection_id)

    assert [run.status for run in first] == ["committed", "committed"]
    assert (api_calls("ListObjectsV2") - lists, api_calls("GetObject") - downloads) == (1, 3)
    sample, january = sorted(first, key=lambda run: str(run.window_start))
    assert {run.source_key for run in first} == {
        f"focus-s3:{connection_id}:{SAMPLE_ACCOUNTS}",
        f"focus-s3:{connection_id}:{JANUARY_ACCOUNT}",
    }
    assert sample.details["delivery"] == f"s3://{BUCKET}/focus/sample/data/BILLING_PERIOD=2024-09/"
    assert sample.details["files"] == [SAMPLE_CSV]
    assert sample.rows_read == 1000
    assert billed_total(sample) == sum(sample_sums("BilledCost").values())
    assert january.details["delivery"] == f"s3://{BUCKET}/{JANUARY}/"
    assert january.details["files"] == list(PARTS)
    assert january.rows_read == len(JANUARY_COSTS)
    assert billed_total(january) == sum(JANUARY_COSTS.values())
    assert await january_costs(puller, tenant_id) == JANUARY_COSTS

    # Nothing changed: the listing is read again, no file is.
    lists, downloads = api_calls("ListObjectsV2"), api_calls("GetObject")
    assert await pull_focus_exports(puller, tenant_id, connection_id) == []
    assert (api_calls("ListObjectsV2") - lists, api_calls("GetObject") - downloads) == (1, 0)
    assert len(await runs_of(puller, tenant_id)) == 2

    # AWS delivers January again with the 8th and 9th restated: only the second part changed.
    restated = {
        key: amount * 2 if key[0] >= dt.date(2025, 1, 8) else amount
        for key, amount in JANUARY_COSTS.items()
    }
    put(aws_endpoint, PARTS[1], january_parts(restated)[1])

    [again] = await pull_focus_exports(puller, tenant_id, connection_id)

    assert (again.status, again.details["delivery"]) == ("committed", january.details["delivery"])
    assert again.details["fingerprint"] != january.details["fingerprint"]
    assert billed_total(again) == sum(restated.values())
    assert await january_costs(puller, tenant_id) == restated  # replaced, not added
    assert len(await runs_of(puller, tenant_id)) == 3


async def test_two_exports_under_one_prefix_never_replace_each_others_period(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any, tmp_path: Path
) -> None:
    """An AWS export and an Azure export copied under the same prefix, both of January: each
    is its own source, so neither delivery replaces the other's January, and a re-delivery of
    one replaces only its own."""
    puller = aws_runtime(runtime, aws_endpoint)
    seed_export(aws_endpoint)
    azure_costs = {(day, "Virtual Machines"): Decimal("3.5") for day in DAYS}
    azure = synthetic(tmp_path / "azure.csv", azure_costs, account="azure-billing-7")
    put(aws_endpoint, "focus/azure/20250101-20250131/part_0_0001.csv", azure.read_bytes())
    tenant_id, connection_id = await connection_with_export(puller, make_tenant)

    runs = await pull_focus_exports(puller, tenant_id, connection_id)

    assert [run.status for run in runs] == ["committed"] * 3
    assert not any("superseded" in run.details for run in runs)
    assert await january_costs(puller, tenant_id) == {**JANUARY_COSTS, **azure_costs}

    restated = {key: amount * 2 for key, amount in JANUARY_COSTS.items()}
    for key, body in zip(PARTS, january_parts(restated), strict=True):
        put(aws_endpoint, key, body)
    [again] = await pull_focus_exports(puller, tenant_id, connection_id)

    assert again.source_key == f"focus-s3:{connection_id}:{JANUARY_ACCOUNT}"
    assert await january_costs(puller, tenant_id) == {**restated, **azure_costs}


async def as_pulled_under_the_connections_one_source(
    database: TestDatabase, connection_id: uuid.UUID, account: str
) -> str:
    """Rename the source of ``account``'s deliveries, and its runs, as pulls named them when
    every delivery of a connection was one source; returns that name."""
    before, now = f"focus-s3:{connection_id}", f"focus-s3:{connection_id}:{account}"
    for table in ("cost_sources SET key", "cost_runs SET source_key"):
        await superuser_rows(
            database, f"UPDATE {table} = %s WHERE {table.split()[-1]} = %s RETURNING 1", before, now
        )
    return before


async def test_a_delivery_pulled_when_a_connection_had_one_source_is_replaced_whole_not_doubled(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any, database: TestDatabase
) -> None:
    """Pulls used to store every delivery of a connection as the source focus-s3:<connection>.
    An unchanged delivery pulled then is not downloaded again. A changed one, now its
    accounts' source, replaces the whole period it held there: a linked account's charges the
    new version no longer has are gone too, not left counted."""
    puller = aws_runtime(runtime, aws_endpoint)
    linked = {S3: "222233334444"}  # the payer's S3 charges, billed to a linked account
    aws_client(aws_endpoint, "s3", "us-east-1").create_bucket(Bucket=BUCKET)
    for key, body in zip(PARTS, january_parts(JANUARY_COSTS, linked=linked), strict=True):
        put(aws_endpoint, key, body)
    tenant_id, connection_id = await connection_with_export(puller, make_tenant)
    await pull_focus_exports(puller, tenant_id, connection_id)
    before = await as_pulled_under_the_connections_one_source(
        database, connection_id, JANUARY_ACCOUNT
    )
    downloads = api_calls("GetObject")

    assert await pull_focus_exports(puller, tenant_id, connection_id) == []
    assert api_calls("GetObject") == downloads

    restated = {key: amount * 2 for key, amount in JANUARY_COSTS.items() if key[1] == EC2}
    for key, body in zip(PARTS, january_parts(restated), strict=True):
        put(aws_endpoint, key, body)
    [again] = await pull_focus_exports(puller, tenant_id, connection_id)

    assert again.source_key == f"focus-s3:{connection_id}:{JANUARY_ACCOUNT}"
    assert again.details["replaced"] == [{"source": before, "periods": ["2025-01-01"]}]
    assert await january_costs(puller, tenant_id) == restated


async def test_a_delivery_another_export_deleted_under_the_connections_one_source_comes_back(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any, database: TestDatabase
) -> None:
    """Under the one source of before, an Azure export's January deleted the AWS export's
    January while the AWS delivery's run stayed on record as pulled. That run no longer
    vouches for its delivery: the next pull imports it again."""
    puller = aws_runtime(runtime, aws_endpoint)
    seed_export(aws_endpoint)
    tenant_id, connection_id = await connection_with_export(puller, make_tenant)
    await pull_focus_exports(puller, tenant_id, connection_id)
    before = await as_pulled_under_the_connections_one_source(
        database, connection_id, JANUARY_ACCOUNT
    )
    for table in ("cost_records", "cost_daily", "cost_monthly", "cost_resource_days"):
        await superuser_rows(
            database,
            f"DELETE FROM {table} WHERE source_id ="
            " (SELECT id FROM cost_sources WHERE key = %s) RETURNING 1",
            before,
        )
    assert await january_costs(puller, tenant_id) == {}

    [again] = await pull_focus_exports(puller, tenant_id, connection_id)

    assert again.details["delivery"] == f"s3://{BUCKET}/{JANUARY}/"
    assert await january_costs(puller, tenant_id) == JANUARY_COSTS


async def test_a_damaged_delivery_is_rejected_by_file_row_and_column_and_the_others_import(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any, downloads_folder: Path
) -> None:
    puller = aws_runtime(runtime, aws_endpoint)
    seed_export(aws_endpoint, damage=(3, "twelve dollars"))
    tenant_id, connection_id = await connection_with_export(puller, make_tenant)

    runs = await pull_focus_exports(puller, tenant_id, connection_id)

    assert sorted((run.status, run.details["delivery"]) for run in runs) == [
        ("committed", f"s3://{BUCKET}/focus/sample/data/BILLING_PERIOD=2024-09/"),
        ("rejected", f"s3://{BUCKET}/{JANUARY}/"),
    ]
    [rejected] = [run for run in runs if run.status == "rejected"]
    assert rejected.errors[0] == {
        "file": PARTS[1],
        "row": 3,
        "column": "BilledCost",
        "reason": "not a number",
    }
    assert rejected.details["files"] == list(PARTS)
    assert await january_costs(puller, tenant_id) == {}
    assert files_in(downloads_folder) == []

    # Until the delivery is fixed, every pull says so again; once fixed, it is imported.
    [still] = await pull_focus_exports(puller, tenant_id, connection_id)
    assert still.status == "rejected"
    put(aws_endpoint, PARTS[1], january_parts(JANUARY_COSTS)[1])
    [fixed] = await pull_focus_exports(puller, tenant_id, connection_id)
    assert fixed.status == "committed"
    assert await january_costs(puller, tenant_id) == JANUARY_COSTS


async def test_listing_reads_every_page_groups_files_by_folder_and_ignores_the_rest(
    aws_endpoint: str,
) -> None:
    seed_export(aws_endpoint)
    put(aws_endpoint, "focus/acme/data/BILLING_PERIOD=2025-01/README.txt", b"not an export")
    put(aws_endpoint, "elsewhere/BILLING_PERIOD=2025-01/other.csv", b"outside the prefix")
    s3 = aws_client(aws_endpoint, "s3", "us-east-1")
    pages: list[int] = []
    s3.meta.events.register("after-call.s3.ListObjectsV2", lambda **_: pages.append(1))

    deliveries = list_deliveries(s3, parse_export_uri(EXPORT), page_size=2)

    assert len(pages) == 3  # five objects under the prefix, two a page
    assert {d.folder: [f.key for f in d.files] for d in deliveries} == {
        "focus/sample/data/BILLING_PERIOD=2024-09": [SAMPLE_CSV],
        JANUARY: list(PARTS),
    }


async def test_a_file_rewritten_during_the_pull_is_retried_not_mixed_into_the_delivery(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any, downloads_folder: Path
) -> None:
    seed_export(aws_endpoint)
    restated = {key: amount + 1 for key, amount in JANUARY_COSTS.items()}

    class RewritingProxy(FaultProxy):
        """AWS rewriting January's second part just after the pull listed it."""

        rewritten = False

        def _forward(
            self, method: str, path: str, headers: Any, body: bytes
        ) -> tuple[int, dict[str, str], bytes]:
            if "acme-00002" in path and not self.rewritten:
                put(aws_endpoint, PARTS[0], january_parts(restated)[0])
                put(aws_endpoint, PARTS[1], january_parts(restated)[1])
                self.rewritten = True
            return super()._forward(method, path, headers, body)

    proxy = RewritingProxy(aws_endpoint).start()
    try:
        puller = aws_runtime(runtime, proxy.url)
        tenant_id, connection_id = await connection_with_export(puller, make_tenant)
        with pytest.raises(RetryableError, match="a file changed while the delivery was read"):
            await pull_focus_exports(puller, tenant_id, connection_id, final_attempt=False)
        assert files_in(downloads_folder) == []
        await pull_focus_exports(puller, tenant_id, connection_id)
    finally:
        proxy.stop()

    runs = await runs_of(puller, tenant_id)
    assert sorted((run.status, run.details["delivery"]) for run in runs) == [
        ("committed", f"s3://{BUCKET}/focus/acme/data/BILLING_PERIOD=2025-01/"),
        ("committed", f"s3://{BUCKET}/focus/sample/data/BILLING_PERIOD=2024-09/"),
    ]  # and no failed run: the job retries
    assert await january_costs(puller, tenant_id) == restated


async def test_a_missing_bucket_records_a_failed_run_without_retrying(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any
) -> None:
    puller = aws_runtime(runtime, aws_endpoint)
    tenant_id, connection_id = await connection_with_export(
        puller, make_tenant, "s3://no-such-bucket/focus/"
    )

    [run] = await pull_focus_exports(puller, tenant_id, connection_id)

    assert (run.status, run.source_key) == ("failed", f"focus-s3:{connection_id}")
    assert run.errors == [
        {"reason": "the bucket no-such-bucket does not exist: correct the connection's export"}
    ]


async def test_a_bucket_the_role_may_not_read_records_why_without_retrying(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any
) -> None:
    seed_export(aws_endpoint)

    class BucketPolicyDenies(FaultProxy):
        """The bucket's policy does not let the role in (STS still answers)."""

        def _forward(
            self, method: str, path: str, headers: Any, body: bytes
        ) -> tuple[int, dict[str, str], bytes]:
            if path.startswith(f"/{BUCKET}"):
                error = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
                return 403, {"Content-Type": "application/xml"}, error.encode()
            return super()._forward(method, path, headers, body)

    proxy = BucketPolicyDenies(aws_endpoint).start()
    try:
        puller = aws_runtime(runtime, proxy.url)
        tenant_id, connection_id = await connection_with_export(puller, make_tenant)
        [run] = await pull_focus_exports(puller, tenant_id, connection_id)
    finally:
        proxy.stop()

    assert run.status == "failed"
    assert run.errors[0]["reason"].startswith(
        f"access denied calling ListObjectsV2 on {EXPORT}: the role needs s3:ListBucket"
    )


# --- scheduling and the API -------------------------------------------------------------------


async def test_the_daily_schedule_pulls_only_connections_that_name_an_export(
    runtime: Runtime, database: TestDatabase, make_tenant: Any
) -> None:
    await open_job_app(runtime.urls.app)
    tenant_id, with_export = await connection_with_export(runtime, make_tenant)
    without = await register_connection(runtime, tenant_id, regions=[HEALTHY_REGION])

    try:
        await queue_daily_ingests(runtime)
        queued_again = await queue_daily_ingests(runtime)
        jobs = await superuser_rows(
            database,
            "SELECT task_name, queueing_lock, queue_name, args FROM procrastinate_jobs"
            " WHERE status = 'todo' AND args->>'tenant_id' = %s",
            str(tenant_id),
        )
    finally:
        # Every tenant with an AWS connection got a job: leave none for later worker tests.
        async with unit_of_work(runtime.sessions, None) as session:
            tenants = set(
                await session.scalars(
                    text("SELECT DISTINCT tenant_id FROM valdrix_cost_explorer_targets()")
                )
            )
        for tenant in tenants:
            await retire_tenant_jobs(runtime, tenant)

    assert queued_again == 0  # the queueing locks hold the queued jobs
    assert sorted((task, lock, queue, args["target_id"]) for task, lock, queue, args in jobs) == [
        ("costs.ingest", f"costs:{connection}", "costs", str(connection))
        for connection in sorted([with_export, without.id], key=str)
    ] + [("costs.pull_focus", f"focus:{with_export}", "costs", str(with_export))]


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("https://acme-billing.s3.amazonaws.com/focus/", "must look like s3://<bucket>/"),
        ("s3://Acme_Billing/focus/", "'Acme_Billing' is not an S3 bucket name"),
        ("s3:///focus/", "'' is not an S3 bucket name"),
    ],
)
async def test_an_export_uri_that_is_not_an_s3_location_is_refused(
    client: httpx.AsyncClient, make_tenant: Callable[..., Any], uri: str, problem: str
) -> None:
    tenant: TenantFixture = await make_tenant()
    setup = (await client.get("/api/v1/connections/aws/setup", headers=tenant.auth)).json()
    body = {
        "name": "billing",
        "role_arn": "arn:aws:iam::123456789012:role/ValdrixScanRole",
        "external_id": setup["external_id"],
        "focus_export_uri": uri,
    }

    refused = await client.post("/api/v1/connections", json=body, headers=tenant.auth)

    detail = assert_problem(refused, 422)["detail"]
    assert detail.startswith("focus_export_uri: ") and problem in detail
    created = await client.post(
        "/api/v1/connections",
        json={**body, "focus_export_uri": f"s3://{BUCKET}/focus"},
        headers=tenant.auth,
    )
    assert created.status_code == 201, created.text
    assert created.json()["focus_export_uri"] == EXPORT  # a folder: "focus-old/" is not in it
    connection = created.json()["id"]
    cleared = await client.patch(
        f"/api/v1/connections/{connection}", json={"focus_export_uri": None}, headers=tenant.auth
    )
    assert cleared.json()["focus_export_uri"] is None
