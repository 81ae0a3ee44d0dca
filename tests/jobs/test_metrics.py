"""/metrics: queue depth, stuck jobs and schedule lag read from the database at scrape time (so
any process serving it tells the truth), the job counters and histograms, and a worker's own
``--metrics-port`` endpoint."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.jobs import IDLE_QUEUE
from tests.jobs.helpers import give_tenant_a_queued_job, retire_tenant_jobs
from tests.observability.helpers import sample, scrape
from valdrix.jobs import service
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.simulator.aws_server import free_port
from valdrix.tenancy.models import Tier
from valdrix.tenancy.service import system_principal

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_every_job_metric_is_registered(client):
    families = await scrape(client)

    kinds = {name: family.type for name, family in families.items()}
    assert kinds["valdrix_background_jobs_queued"] == "gauge"
    assert kinds["valdrix_background_jobs"] == "counter"  # exposed as ..._total
    assert kinds["valdrix_job_duration_seconds"] == "histogram"
    assert kinds["valdrix_jobs_stuck"] == "gauge"
    assert kinds["valdrix_jobs_stalled_recovered"] == "counter"
    assert kinds["valdrix_schedule_lag_seconds"] == "gauge"
    assert kinds["valdrix_schedule_claim_lag_seconds"] == "histogram"
    for tier in Tier:
        sample(families, "valdrix_schedule_lag_seconds", tier=tier.value)


async def test_queue_depth_is_the_database_count_whoever_queued_the_job(
    client, runtime, make_tenant, raw_jobs
):
    before = sample(await scrape(client), "valdrix_background_jobs_queued", job_type="probe.run")
    tenant = await make_tenant()
    try:
        await give_tenant_a_queued_job(runtime, tenant.tenant_id)
        after_ours = await scrape(client)
        # A job this process knows nothing about: only a database read can count it.
        elsewhere = raw_jobs.insert("probe.run")
        after_elsewhere = await scrape(client)
        raw_jobs.delete(elsewhere)
        raw_jobs.insert("another_process.only")
        last = await scrape(client)
    finally:
        await retire_tenant_jobs(runtime, tenant.tenant_id)

    def queued(families: dict[str, Any], job_type: str = "probe.run") -> float:
        return sample(families, "valdrix_background_jobs_queued", job_type=job_type)

    assert queued(after_ours) == before + 1
    assert queued(after_elsewhere) == before + 2
    assert queued(last) == before + 1
    assert queued(last, "another_process.only") == 1


async def test_a_job_queued_an_hour_past_its_time_counts_as_stuck_and_a_future_one_does_not(
    client, raw_jobs
):
    now = utcnow()
    before = sample(await scrape(client), "valdrix_jobs_stuck")

    raw_jobs.insert("probe.run", scheduled_at=now + dt.timedelta(days=1))
    raw_jobs.insert("probe.run", scheduled_at=now - dt.timedelta(minutes=30))
    assert sample(await scrape(client), "valdrix_jobs_stuck") == before
    overdue = raw_jobs.insert("probe.run", scheduled_at=now - dt.timedelta(minutes=61))
    assert sample(await scrape(client), "valdrix_jobs_stuck") == before + 1
    raw_jobs.delete(overdue)
    assert sample(await scrape(client), "valdrix_jobs_stuck") == before


async def test_an_overdue_schedule_of_a_pro_tenant_shows_as_pro_schedule_lag(
    client, runtime, make_tenant
):
    overdue = dt.timedelta(days=3)
    tenant = await make_tenant(tier=Tier.pro)
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await service.ensure_schedule(
            session,
            system_principal(tenant.tenant_id),
            kind="probe",
            target_id=uuid.uuid4(),
            first_due_at=utcnow() - overdue,
        )
    try:
        lag = await scrape(client)
    finally:
        await retire_tenant_jobs(runtime, tenant.tenant_id)
    after = await scrape(client)

    assert sample(lag, "valdrix_schedule_lag_seconds", tier="pro") >= overdue.total_seconds()
    assert sample(after, "valdrix_schedule_lag_seconds", tier="pro") < overdue.total_seconds()


def test_a_worker_serves_the_same_metrics_on_its_metrics_port(database, encryption_keys, tmp_path):
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
            [
                *(sys.executable, "-m", "valdrix", "worker", "--no-periodic"),
                *("--queues", IDLE_QUEUE, "--metrics-port", str(port)),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        body = None
        deadline = time.monotonic() + 30
        while body is None:
            assert worker.poll() is None, log.read_text()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                body = response.text
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert response.status_code == 200
        families = {f.name: f for f in text_string_to_metric_families(body)}
        # Database-backed gauges are filled in the worker too (its loaded tasks included).
        sample(families, "valdrix_background_jobs_queued", job_type="probe.run")
        sample(families, "valdrix_jobs_stuck")
        sample(families, "valdrix_schedule_lag_seconds", tier="enterprise")
        assert "valdrix_job_duration_seconds" in families
    finally:
        worker.terminate()
        assert worker.wait(timeout=30) == 0, log.read_text()
