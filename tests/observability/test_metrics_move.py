"""Every metric in the catalogue is exposed, documented, and moves when its event happens.

Events are driven the way production drives them (HTTP requests, scans, LLM calls and budget
decisions, cost imports, queued and failed jobs), and each is read back from /metrics, the
API's exposition (a worker's for job outcomes, which only workers see).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from tests.costs.helpers import give_tenant_cost_data
from tests.fixtures.aws import aws_runtime, elastic_ip, register_connection
from tests.fixtures.jobs import RawJobs
from tests.jobs.helpers import defer_probes, retire_tenant_jobs
from tests.llm.helpers import give_tenant_llm_spend
from tests.observability.helpers import fresh_scrape, sample, scrape, value
from tests.scanning.helpers import scan_once
from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.llm import gateway
from valdrix.llm.budget import BudgetExceeded
from valdrix.runtime import Runtime
from valdrix.scanning.models import Finding
from valdrix.simulator.aws_server import free_port
from valdrix.simulator.llm_server import SimulatedLLM

pytestmark = pytest.mark.asyncio(loop_scope="session")
REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = REPO_ROOT / "docs" / "operations" / "metrics.md"


def catalogue() -> dict[str, str]:
    """Exposed family name -> type, for every metric defined in the catalogue module."""
    found = {}
    for defined in vars(metrics).values():
        if isinstance(defined, (Counter, Gauge, Histogram, metrics.HistoryCounter)):
            for family in defined.describe():
                found[family.name] = family.type
    return found


async def test_every_metric_is_exposed_on_metrics_and_documented(
    client: httpx.AsyncClient,
) -> None:
    exposed = await scrape(client)
    documented = CATALOGUE.read_text()
    for name, kind in catalogue().items():
        assert name in exposed, f"{name} is not on /metrics"
        assert exposed[name].type == kind
        shown = f"{name}_total" if kind == "counter" else name
        assert f"`{shown}`" in documented, f"{shown} is missing from {CATALOGUE.name}"


async def test_http_requests_count_by_route_template_and_status(
    client: httpx.AsyncClient, make_tenant: Callable[..., Any]
) -> None:
    tenant = await make_tenant()
    route = {"method": "GET", "route": "/api/v1/scans/{scan_id}", "status": "404"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    before = await scrape(client)
    await client.get(f"/api/v1/scans/{uuid.uuid4()}", headers=tenant.auth)
    await client.get("/wp-admin/setup.php")
    after = await scrape(client)
    assert (
        value(after, "valdrix_http_requests_total", **route)
        == value(before, "valdrix_http_requests_total", **route) + 1
    )
    assert (
        value(after, "valdrix_http_requests_total", **unmatched)
        == value(before, "valdrix_http_requests_total", **unmatched) + 1
    )
    latency = {"method": "GET", "route": "/api/v1/scans/{scan_id}"}
    assert value(after, "valdrix_http_request_duration_seconds_count", **latency) > value(
        before, "valdrix_http_request_duration_seconds_count", **latency
    )


async def test_a_tenant_table_read_without_tenant_context_is_counted(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    before = value(await scrape(client), "valdrix_rls_context_missing_total", table="findings")
    async with unit_of_work(runtime.sessions, None) as session:
        assert list(await session.scalars(select(Finding))) == []  # RLS: nothing visible
    after = value(await scrape(client), "valdrix_rls_context_missing_total", table="findings")
    assert after == before + 1


async def test_a_scan_moves_scan_metrics_and_the_tenants_findings_and_waste(
    client: httpx.AsyncClient,
    runtime: Runtime,
    make_tenant: Callable[..., Any],
    aws_endpoint: str,
) -> None:
    tenant = await make_tenant()
    scanning = aws_runtime(runtime, aws_endpoint)
    elastic_ip(aws_endpoint, "us-east-1")
    connection = await register_connection(scanning, tenant.tenant_id, regions=["us-east-1"])
    before = await scrape(client)

    await scan_once(scanning, tenant.tenant_id, connection.id)

    after = await fresh_scrape(client)
    moved = [
        ("valdrix_scans_total", {"outcome": "completed"}),
        ("valdrix_zombie_scan_latency_seconds_count", {"account_size": "small"}),
        ("valdrix_findings_recorded_total", {"detector": "aws.eip-unassociated"}),
        ("valdrix_scan_units_total", {"detector": "aws.eip-unassociated", "outcome": "ok"}),
        ("valdrix_aws_api_calls_total", {"service": "ec2", "operation": "DescribeAddresses"}),
    ]
    for name, labels in moved:
        assert value(after, name, **labels) > value(before, name, **labels), name
    tenant_label = {"tenant_id": str(tenant.tenant_id)}
    assert sample(after, "valdrix_open_findings", **tenant_label) == 1
    assert sample(after, "valdrix_monthly_waste_usd", **tenant_label) > 0


async def test_llm_calls_budget_decisions_and_spend_move_their_metrics(
    client: httpx.AsyncClient,
    runtime: Runtime,
    make_tenant: Callable[..., Any],
    llm_runtime: Callable[..., Runtime],
    llm_server: SimulatedLLM,
) -> None:
    tenant = await make_tenant()
    calling = llm_runtime()
    provider = calling.settings.llm.provider_name
    before = await scrape(client)

    await gateway.complete(
        calling,
        tenant.tenant_id,
        [{"role": "user", "content": '<findings>{"findings": []}</findings>'}],
        purpose="analysis",
        subject_id=None,
    )
    await give_tenant_llm_spend(runtime, tenant.tenant_id)  # $1.20: a first-day spike
    with pytest.raises(BudgetExceeded):
        await give_tenant_llm_spend(runtime, tenant.tenant_id)  # over the $2 daily cap
    llm_server.kill()
    for _ in range(calling.settings.llm.circuit_failure_threshold):
        with pytest.raises(gateway.ProviderUnavailable):
            await gateway.complete(
                calling, tenant.tenant_id, [{"role": "user", "content": "x"}],
                purpose="analysis", subject_id=None,
            )  # fmt: skip

    after = await fresh_scrape(client)
    moved = [
        ("valdrix_llm_requests_total", {"provider": provider, "outcome": "ok"}),
        ("valdrix_llm_requests_total", {"provider": provider, "outcome": "unreachable"}),
        ("valdrix_llm_cost_usd_total", {"provider": provider}),
        ("valdrix_llm_budget_rejections_total", {"window": "daily"}),
        ("valdrix_llm_spend_spikes_total", {}),
    ]
    for name, labels in moved:
        assert value(after, name, **labels) > value(before, name, **labels), name
    assert sample(after, "valdrix_llm_circuit_open", provider=provider) == 1
    tenant_label = str(tenant.tenant_id)
    spend = sample(after, "valdrix_llm_spend_per_tenant_usd", tenant_id=tenant_label, window="day")
    assert Decimal(str(spend)) >= Decimal("1.20")
    cap = sample(after, "valdrix_llm_budget_limit_usd", tenant_id=tenant_label, window="day")
    assert cap == 2.0  # the growth tier's default


async def test_cost_imports_and_restatements_move_their_metrics(
    client: httpx.AsyncClient, runtime: Runtime, make_tenant: Callable[..., Any]
) -> None:
    tenant = await make_tenant()
    focus = {"source_kind": "focus_file"}
    before = await fresh_scrape(client)
    await give_tenant_cost_data(runtime, tenant.tenant_id)  # two runs, 100 -> 110
    after = await fresh_scrape(client)
    committed = {**focus, "outcome": "committed"}
    assert (
        value(after, "valdrix_cost_runs_total", **committed)
        == value(before, "valdrix_cost_runs_total", **committed) + 2
    )
    assert (
        value(after, "valdrix_cost_rows_ingested_total", **focus)
        == value(before, "valdrix_cost_rows_ingested_total", **focus) + 2
    )
    assert (
        value(after, "valdrix_cost_restatements_total", **focus)
        == value(before, "valdrix_cost_restatements_total", **focus) + 1
    )


async def test_queue_age_workers_and_sla_are_read_from_the_database(
    client: httpx.AsyncClient,
    raw_jobs: RawJobs,
    database: Any,
) -> None:
    raw_jobs.insert("probe.run", scheduled_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    with psycopg.connect(database.urls.app, autocommit=True) as conn:
        fresh, stale = (
            conn.execute(
                "INSERT INTO procrastinate_workers (last_heartbeat)"
                " VALUES (now() - make_interval(secs => %s)) RETURNING id",
                (seconds,),
            ).fetchone()[0]  # type: ignore[index]
            for seconds in (0, 3600)
        )
        try:
            families = await scrape(client)
        finally:
            conn.execute("DELETE FROM procrastinate_workers WHERE id IN (%s, %s)", (fresh, stale))
    assert sample(families, "valdrix_queue_oldest_due_seconds", queue="metrics-test-idle") >= 7200
    assert sample(families, "valdrix_workers_alive") >= 1
    assert sample(families, "valdrix_workers_stale") >= 1
    assert sample(families, "valdrix_schedule_sla_seconds", tier="pro") == 4 * 3600


@pytest.fixture
def metrics_worker(
    database: Any, encryption_keys: str, tmp_path: Path
) -> Iterator[Callable[[], dict[str, Any]]]:
    """A ``valdrix worker`` on the probe queue serving --metrics-port; yields a scraper."""
    port = free_port()
    env = {
        **os.environ,
        "VALDRIX_HOME": str(tmp_path),
        "VALDRIX_DATABASE_URL": database.urls.app,
        "VALDRIX_MIGRATION_DATABASE_URL": database.urls.owner,
        "VALDRIX_ENCRYPTION_KEYS": encryption_keys,
        "VALDRIX_WORKER_IMPORTS": "tests.jobs.probe_tasks",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "valdrix", "worker", "--no-periodic", "--queues", "probe",
             "--metrics-port", str(port)],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def read() -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            assert worker.poll() is None, log.read_text()
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                return {f.name: f for f in text_string_to_metric_families(body)}
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)

    try:
        yield read
    finally:
        worker.terminate()
        worker.wait(timeout=30)


async def test_a_failed_job_moves_job_outcomes_on_the_workers_metrics_port(
    runtime: Runtime,
    make_tenant: Callable[..., Any],
    metrics_worker: Callable[[], dict[str, Any]],
) -> None:
    tenant = await make_tenant()
    metrics_worker()  # up and serving
    failed = {"job_type": "probe.reject", "outcome": "failed"}
    try:
        await defer_probes(runtime, tenant.tenant_id, [{}], task_name="probe.reject")
        deadline = time.monotonic() + 30
        while value(metrics_worker(), "valdrix_background_jobs_total", **failed) < 1:
            assert time.monotonic() < deadline, "the rejected job was never counted as failed"
            await asyncio.sleep(0.3)
        families = metrics_worker()
        assert value(families, "valdrix_job_duration_seconds_count", job_type="probe.reject") >= 1
    finally:
        await retire_tenant_jobs(runtime, tenant.tenant_id)
