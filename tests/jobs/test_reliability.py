"""What the job platform promises when things go wrong: crashes, shutdowns, duplicates, a noisy
tenant, a queue nobody serves. Workers are real processes; duplicates and stuck-job detection
are checked in-process."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

import tests.jobs.probe_tasks  # noqa: F401  (registers the probe kind)
from tests.fixtures.jobs import REPO_ROOT, SuperuserDb, WorkerPool
from tests.jobs.helpers import defer_probes, wait_until
from tests.observability.helpers import metrics_auth
from valdrix.jobs import service
from valdrix.jobs.app import job_app, open_job_app
from valdrix.jobs.maintenance import detect_stuck_jobs
from valdrix.jobs.scheduler import run_tick
from valdrix.jobs.tasks import scheduler_tick
from valdrix.kit.db import unit_of_work
from valdrix.tenancy.service import system_principal


async def job_status(db: SuperuserDb, job_id: int) -> str:
    return str(await db.value("SELECT status::text FROM procrastinate_jobs WHERE id = %s", job_id))


async def wait_for_status(db: SuperuserDb, job_id: int, status: str, within: float = 20) -> None:
    async def reached() -> bool:
        return await job_status(db, job_id) == status

    await wait_until(reached, within=within, message=f"job {job_id} to be {status}")


async def wait_until_underway(db: SuperuserDb, job_id: int) -> None:
    """Wait until the worker has started the job and told its tenant so."""

    async def underway() -> bool:
        status = await db.value(
            "SELECT status FROM job_runs WHERE procrastinate_job_id = %s", job_id
        )
        return bool(status == "running")

    await wait_until(underway, within=20, message=f"job {job_id} to be running")


async def event_types(db: SuperuserDb, job_id: int) -> list[str]:
    """What procrastinate recorded of the job's life, in order (deferred, started, ...)."""
    rows = await db.rows(
        "SELECT type::text FROM procrastinate_events WHERE job_id = %s ORDER BY id", job_id
    )
    return [row[0] for row in rows]


async def tenant_job(client, tenant, target_id: uuid.UUID) -> dict:
    """The tenant's own view of its job for a target (GET /api/v1/jobs, then /jobs/{id})."""
    listed = await client.get("/api/v1/jobs", params={"limit": 100}, headers=tenant.auth)
    assert listed.status_code == 200, listed.text
    [item] = [job for job in listed.json()["items"] if job["target_id"] == str(target_id)]
    response = await client.get(f"/api/v1/jobs/{item['id']}", headers=tenant.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_job_whose_worker_is_killed_is_rerun_by_another_worker_and_its_effect_lands_once(
    runtime, client, make_tenant, workers: WorkerPool, superuser_db, probe_effects_table
):
    tenant = await make_tenant()
    target, effect = uuid.uuid4(), f"effect-{secrets.token_hex(6)}"
    [doomed] = await workers.start(1, concurrency=1, queues="probe")
    [job_id] = await defer_probes(
        runtime, tenant.tenant_id, [{"target_id": target, "sleep": 4, "effect": effect}]
    )
    await wait_until_underway(superuser_db, job_id)
    doomed.kill()  # SIGKILL in the middle of the job: no clean-up of any kind
    assert (await tenant_job(client, tenant, target))["status"] == "running"

    [rescuer] = await workers.start(1, periodic=True)  # runs stalled-job recovery every second

    async def finished() -> bool:
        return await job_status(superuser_db, job_id) not in ("todo", "doing")

    await wait_until(finished, within=30, message="another worker to re-run the job")

    assert await job_status(superuser_db, job_id) == "succeeded"
    effects = await superuser_db.value("SELECT count(*) FROM probe_effects WHERE key = %s", effect)
    assert effects == 1
    events = await event_types(superuser_db, job_id)
    assert events.count("started") == 2
    assert events[-1] == "succeeded"
    recovered = [e["job_id"] for e in rescuer.log_events() if e["event"] == "job.stalled_recovered"]
    assert recovered.count(job_id) == 1
    seen = await tenant_job(client, tenant, target)
    assert (seen["status"], seen["attempts"], seen["error_summary"]) == ("succeeded", 2, None)


async def test_sigterm_lets_a_running_job_finish_before_the_worker_exits_cleanly(
    runtime, client, make_tenant, workers: WorkerPool, superuser_db
):
    tenant, target = await make_tenant(), uuid.uuid4()
    [worker] = await workers.start(1, concurrency=1)
    [job_id] = await defer_probes(runtime, tenant.tenant_id, [{"target_id": target, "sleep": 2}])
    await wait_until_underway(superuser_db, job_id)
    signalled_at = dt.datetime.now(dt.UTC)
    returncode = await asyncio.to_thread(worker.terminate)
    stopped_in = time.monotonic() - (worker.sigterm_at or 0)

    assert returncode == 0, worker.log_tail()
    assert stopped_in < 5 + 2  # within the grace period (5 s), give or take a busy machine
    assert await job_status(superuser_db, job_id) == "succeeded"
    job = await tenant_job(client, tenant, target)
    assert job["status"] == "succeeded"
    assert dt.datetime.fromisoformat(str(job["finished_at"])) > signalled_at
    assert worker.log_events()[-1]["event"] == "worker.stop"


async def test_a_job_still_running_when_the_grace_period_ends_is_run_again_not_lost(
    runtime, client, make_tenant, workers: WorkerPool, superuser_db
):
    tenant, target = await make_tenant(), uuid.uuid4()
    [impatient] = await workers.start(
        1, concurrency=1, env={"VALDRIX_WORKER_SHUTDOWN_GRACE_SECONDS": "0.5"}
    )
    [job_id] = await defer_probes(runtime, tenant.tenant_id, [{"target_id": target, "sleep": 3}])
    await wait_until_underway(superuser_db, job_id)
    assert await asyncio.to_thread(impatient.terminate) == 0, impatient.log_tail()
    assert await job_status(superuser_db, job_id) == "todo"  # back in the queue
    assert (await tenant_job(client, tenant, target))["status"] == "retrying"

    await workers.start(1)
    await wait_for_status(superuser_db, job_id, "succeeded", within=30)

    job = await tenant_job(client, tenant, target)
    assert (job["status"], job["attempts"]) == ("succeeded", 2)


async def test_deferring_a_target_that_is_already_queued_yields_one_job(
    runtime, client, make_tenant, superuser_db
):
    await open_job_app(runtime.urls.app)
    tenant = await make_tenant()
    actor, target = system_principal(tenant.tenant_id), uuid.uuid4()

    deferred = []
    for _ in range(2):  # two requests, two transactions
        async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
            deferred.append(
                await service.run_now(
                    session, actor, runtime.settings, kind="probe", target_id=target
                )
            )

    assert deferred[0] is not None and deferred[1] is None
    lock = f"probe:{target}"
    queued = "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s"
    assert await superuser_db.value(queued, lock) == 1
    listed = await client.get("/api/v1/jobs", params={"limit": 100}, headers=tenant.auth)
    assert [job["target_id"] for job in listed.json()["items"]].count(str(target)) == 1

    # The scheduler meets the same lock: the due schedule is advanced, the job not duplicated.
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await service.ensure_schedule(
            session,
            actor,
            kind="probe",
            target_id=target,
            first_due_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        )
    report = await run_tick(runtime)

    assert report.already_queued >= 1
    assert await superuser_db.value(queued, lock) == 1
    next_due, enqueued = (
        await superuser_db.rows(
            "SELECT next_due_at, last_enqueued_at FROM schedules WHERE target_id = %s", target
        )
    )[0]
    assert next_due > dt.datetime.now(dt.UTC) and enqueued is not None


@pytest.mark.parametrize(
    ("moment", "left_behind"), [("before-commit", 0), ("after-commit", 1)], ids=["before", "after"]
)
async def test_a_process_killed_around_its_commit_leaves_both_record_and_job_or_neither(
    make_tenant, worker_env, superuser_db, moment, left_behind
):
    tenant, target = await make_tenant(), uuid.uuid4()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.jobs.crash_enqueue",
        str(tenant.tenant_id),
        str(target),
        moment,
        cwd=REPO_ROOT,
        env=worker_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == -signal.SIGKILL, stderr.decode()
    assert stdout.decode().split() == ["written"]  # it got as far as record + job
    schedules = await superuser_db.value(
        "SELECT count(*) FROM schedules WHERE target_id = %s", target
    )
    jobs = await superuser_db.value(
        "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = %s", f"probe:{target}"
    )
    runs = await superuser_db.value("SELECT count(*) FROM job_runs WHERE target_id = %s", target)
    assert (schedules, jobs, runs) == (left_behind, left_behind, left_behind)


async def test_a_tenant_with_200_queued_jobs_holds_back_others_for_at_most_one_job_slot(
    runtime, make_tenant, workers: WorkerPool, superuser_db
):
    busy, quiet = await make_tenant(), await make_tenant()  # same tier: only fairness differs
    await workers.start(1, concurrency=1)
    backlog = await defer_probes(runtime, busy.tenant_id, [{"sleep": 0.05}] * 200)
    try:

        async def busy_is_running() -> bool:
            started = await superuser_db.value(
                "SELECT count(*) FROM procrastinate_events"
                " WHERE type = 'started' AND job_id = ANY(%s)",
                backlog,
            )
            return bool(started >= 3)

        await wait_until(busy_is_running, within=30, message="the busy tenant's jobs to run")
        [single] = await defer_probes(runtime, quiet.tenant_id, [{}])
        # The platform's own work must not queue behind tenants either.
        tick = await scheduler_tick.defer_async(now="2000-01-01T00:00:00+00:00")

        async def both_started() -> bool:
            started = await superuser_db.value(
                "SELECT count(*) FROM procrastinate_events"
                " WHERE type = 'started' AND job_id = ANY(%s)",
                [single, tick],
            )
            return bool(started == 2)

        await wait_until(both_started, within=30, message="the single job and the tick to start")
        for job_id in (single, tick):
            deferred, started = await superuser_db.rows(
                "SELECT id FROM procrastinate_events WHERE job_id = %s"
                " AND type IN ('deferred', 'started') ORDER BY id",
                job_id,
            )
            overtaken_by = await superuser_db.value(
                "SELECT count(*) FROM procrastinate_events WHERE type = 'started'"
                " AND job_id = ANY(%s) AND id > %s AND id < %s",
                backlog,
                deferred[0],
                started[0],
            )
            assert overtaken_by <= 1, f"job {job_id} waited for {overtaken_by} busy jobs"
        still_queued = await superuser_db.value(
            "SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(%s) AND status = 'todo'",
            backlog,
        )
        assert still_queued > 100  # the backlog really was still there
    finally:
        workers.stop_all()
        await superuser_db.rows(
            "DELETE FROM procrastinate_jobs WHERE id = ANY(%s) AND status = 'todo'", backlog
        )


async def test_only_jobs_waiting_over_an_hour_past_their_time_are_reported_stuck_and_never_failed(
    runtime, client, superuser_db
):
    await open_job_app(runtime.urls.app)
    queue = f"unserved-{secrets.token_hex(4)}"  # no worker serves it
    now = await superuser_db.value("SELECT now()")

    async def queued_at(at: dt.datetime, queue: str = queue, **options) -> int:
        """A job first deferred at ``at`` (its deferral event is backdated)."""
        job_id = await job_app.configure_task(name="probe.run", queue=queue, **options).defer_async(
            tenant_id=str(uuid.uuid4())
        )
        await superuser_db.rows(
            "UPDATE procrastinate_events SET at = %s WHERE job_id = %s AND type = 'deferred'",
            at,
            job_id,
        )
        return job_id

    two_hours_ago = now - dt.timedelta(hours=2)
    tomorrow = await queued_at(two_hours_ago, schedule_at=now + dt.timedelta(days=1))
    # A job that failed an attempt and now waits out a 30-minute retry backoff.
    backing_off = await queued_at(two_hours_ago, queue=f"{queue}-retry")
    manager = job_app.job_manager
    worker_id = await manager.register_worker()
    fetched = await manager.fetch_job(queues=[f"{queue}-retry"], worker_id=worker_id)
    assert fetched is not None and fetched.id == backing_off
    await manager.retry_job(fetched, retry_at=now + dt.timedelta(minutes=30))
    await manager.unregister_worker(worker_id)
    overdue = await queued_at(two_hours_ago, schedule_at=now - dt.timedelta(minutes=61))
    waiting = await queued_at(now - dt.timedelta(minutes=61))  # plain job, nobody took it
    mine = {tomorrow, backing_off, overdue, waiting}
    try:
        with capture_logs() as logs:
            count = await detect_stuck_jobs(runtime)

        reported = {event["job_id"] for event in logs if event["event"] == "job.stuck"}
        assert reported & mine == {overdue, waiting}
        assert count == len(reported)
        assert REGISTRY.get_sample_value("valdrix_jobs_stuck") == count
        scraped = await client.get("/metrics", headers=metrics_auth(client))
        assert f"valdrix_jobs_stuck {float(count)}" in scraped.text
        statuses = await superuser_db.rows(
            "SELECT id, status::text, attempts FROM procrastinate_jobs WHERE id = ANY(%s)",
            list(mine),
        )
        assert {row[0]: row[1] for row in statuses} == dict.fromkeys(mine, "todo")
    finally:
        await superuser_db.rows("DELETE FROM procrastinate_jobs WHERE id = ANY(%s)", list(mine))


def _process_gone(pid: int) -> bool:
    """Exited (a zombie nobody has reaped yet counts: it runs nothing)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


async def test_a_worker_told_its_parent_stops_when_the_parent_is_killed_even_while_starting(
    worker_env, tmp_path
):
    """The demo starts its worker so: the demo is killed (SIGKILL, no chance to stop it) as
    soon as the worker exists, before the worker has even finished starting. The worker
    notices it has another parent, logs ``worker.parent_gone`` and stops gracefully, instead
    of working on for a program that is gone."""
    log_path, pid_path = tmp_path / "worker.log", tmp_path / "worker.pid"
    worker = (
        f"'{sys.executable}' -m valdrix worker --name orphan --concurrency 1 --queues probe"
        f" --no-periodic --parent-pid $$ > '{log_path}' 2>&1"
    )
    parent = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", f"{worker} & echo $! > '{pid_path}'; wait", cwd=REPO_ROOT, env=worker_env
    )

    async def spawned() -> bool:
        return pid_path.exists() and pid_path.read_text().strip().isdigit()

    await wait_until(spawned, within=30, message="the worker to be spawned")
    worker_pid = int(pid_path.read_text())
    parent.kill()
    await parent.wait()

    async def stopped() -> bool:
        return _process_gone(worker_pid)

    try:
        await wait_until(stopped, within=40, message="the orphaned worker to stop")
    finally:
        if not _process_gone(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
    events = [json.loads(line).get("event") for line in log_path.read_text().splitlines()]
    assert "worker.parent_gone" in events
    assert events[-1] == "worker.stop"
