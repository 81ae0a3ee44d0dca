"""/metrics: queue depth, stuck jobs and schedule lag read from the database at scrape time (so
any process serving it tells the truth), the job counters and histograms, and a worker's own
``--metrics-port`` endpoint."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.jobs.helpers import give_tenant_a_queued_job, retire_tenant_jobs
from valdrix.jobs import service
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.tenancy.models import Tier
from valdrix.tenancy.service import system_principal

REPO_ROOT = Path(__file__).resolve().parents[2]
# A queue no worker serves: jobs put there by these tests stay queued until removed.
IDLE_QUEUE = "metrics-test-idle"


def metrics_auth(client: httpx.AsyncClient) -> dict[str, str]:
    """The operator's metrics token (tests/conftest.py's settings set one) for the app behind
    ``client``."""
    token = client._transport.app.state.runtime.settings.metrics.token  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token.get_secret_value()}"}


async def scrape(client: httpx.AsyncClient) -> dict[str, Any]:
    """The exposition as {family name: family}, fetched with the operator's metrics token."""
    response = await client.get("/metrics", headers=metrics_auth(client))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def sample(families: dict[str, Any], name: str, **labels: str) -> float:
    for family in families.values():
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    raise AssertionError(f"no sample {name}{labels}")


class RawJobs:
    """procrastinate jobs written straight into the database, as another process would, on a
    queue nobody serves."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection
        self.inserted: list[int] = []

    def insert(self, task_name: str, *, scheduled_at: dt.datetime | None = None) -> int:
        row = self.connection.execute(
            "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(%s, %s, 0, NULL, NULL,"
            " '{}'::jsonb, %s)::procrastinate_job_to_defer_v1]))",
            (IDLE_QUEUE, task_name, scheduled_at),
        ).fetchone()
        assert row is not None
        self.inserted.append(int(row[0]))
        return int(row[0])

    def delete(self, *job_ids: int) -> None:
        self.connection.execute(
            "DELETE FROM procrastinate_jobs WHERE id = ANY(%s)", (list(job_ids),)
        )


@pytest.fixture
def raw_jobs(database) -> Iterator[RawJobs]:
    with psycopg.connect(database.urls.app, autocommit=True) as connection:
        jobs = RawJobs(connection)
        try:
            yield jobs
        finally:
            jobs.delete(*jobs.inserted)


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
