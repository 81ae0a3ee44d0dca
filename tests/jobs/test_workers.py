"""Real worker processes: the scheduler over a simulated day, retries and failures as tenants
see them, one job per target at a time and the operator's job list.

Simulated time: each step defers three ``scheduler.tick`` jobs with the same ``now`` (far in the
future, so only these tests' schedules and a few strays are due), the three workers race for
them, and the next step waits until the step's ticks and the probe jobs they queued are done.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

import tests.jobs.probe_tasks  # noqa: F401  (registers the probe kind)
from tests.fixtures.jobs import REPO_ROOT, SuperuserDb, WorkerPool
from tests.jobs.helpers import defer_probes, wait_until
from valdrix.config import TIER_NAMES
from valdrix.jobs import service
from valdrix.jobs.app import open_job_app
from valdrix.jobs.tasks import scheduler_tick
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.tenancy.models import Tier
from valdrix.tenancy.service import create_tenant, system_principal

HOUR = dt.timedelta(hours=1)
STEP = dt.timedelta(minutes=30)
# Ticks land a little after each half hour, as the every-minute tick does in production.
TICK_DELAY = dt.timedelta(seconds=37)
RACING_TICKS = 3


@dataclass(frozen=True)
class ProbeTarget:
    tenant_id: uuid.UUID
    target_id: uuid.UUID
    tier: Tier


ProbeTargetFactory = Callable[[list[Tier], dt.datetime], Awaitable[list[ProbeTarget]]]


@pytest.fixture
async def probe_targets(
    runtime: Runtime, superuser_db: SuperuserDb
) -> AsyncIterator[ProbeTargetFactory]:
    """New tenants with one probe schedule each; their schedules are disabled afterwards so
    later simulations (further in the future) do not see them fall due."""
    created: list[ProbeTarget] = []
    # Concurrent transactions, each as its own tenant (row-level security allows nothing else).
    parallel = asyncio.Semaphore(8)

    async def create_one(tier: Tier, first_due_at: dt.datetime) -> ProbeTarget:
        target = ProbeTarget(uuid.uuid4(), uuid.uuid4(), tier)
        async with parallel, unit_of_work(runtime.sessions, target.tenant_id) as session:
            await create_tenant(
                session,
                runtime.settings,
                runtime.keyring,
                tenant_id=target.tenant_id,
                name=f"Sim {target.tenant_id.hex[:8]}",
                tier=tier,
                owner_email=f"owner-{target.tenant_id.hex}@example.com",
            )
            await service.ensure_schedule(
                session,
                system_principal(target.tenant_id),
                kind="probe",
                target_id=target.target_id,
                first_due_at=first_due_at,
            )
        return target

    async def create(tiers: list[Tier], first_due_at: dt.datetime) -> list[ProbeTarget]:
        targets = await asyncio.gather(*(create_one(tier, first_due_at) for tier in tiers))
        created.extend(targets)
        return list(targets)

    yield create
    await superuser_db.rows(
        "UPDATE schedules SET enabled = false WHERE tenant_id = ANY(%s)",
        [target.tenant_id for target in created],
    )


class Simulation:
    """Drives simulated time for a set of probe targets and reads back what happened."""

    def __init__(self, db: SuperuserDb, targets: list[ProbeTarget]) -> None:
        self.db = db
        self.targets = targets
        self.tenant_ids = [str(target.tenant_id) for target in targets]

    async def tick(self, at: dt.datetime) -> None:
        """Three workers race on the same instant; wait until their ticks and jobs are done."""
        ticks = [await scheduler_tick.defer_async(now=at.isoformat()) for _ in range(RACING_TICKS)]

        async def settled() -> bool:
            ticking = await self.db.rows(
                "SELECT status::text FROM procrastinate_jobs"
                " WHERE id = ANY(%s) AND status IN ('todo', 'doing', 'failed')",
                ticks,
            )
            assert ("failed",) not in ticking, f"a scheduler.tick at {at} failed"
            probing = await self.db.value(
                "SELECT count(*) FROM procrastinate_jobs j"
                " JOIN unnest(%s::text[]) AS mine(tenant_id)"
                "   ON mine.tenant_id = j.args ->> 'tenant_id'"
                " WHERE j.status IN ('todo', 'doing') AND j.task_name = 'probe.run'",
                self.tenant_ids,
            )
            return not ticking and probing == 0

        await wait_until(settled, within=60, message=f"the ticks at {at} and their jobs")

    async def run(self, start: dt.datetime, end: dt.datetime) -> int:
        """Tick every half hour in [start, end); returns the number of steps."""
        steps = 0
        while start + steps * STEP < end:
            await self.tick(start + steps * STEP + TICK_DELAY)
            steps += 1
        return steps

    async def runs_by_tenant(self) -> dict[uuid.UUID, list[tuple[uuid.UUID, dt.datetime, str]]]:
        """Each tenant's probe job runs: (schedule, due time, status), by due time."""
        rows = await self.db.rows(
            "SELECT tenant_id, schedule_id, due_at, status FROM job_runs"
            " WHERE tenant_id = ANY(%s) AND task_name = 'probe.run' ORDER BY due_at",
            [target.tenant_id for target in self.targets],
        )
        runs: dict[uuid.UUID, list[tuple[uuid.UUID, dt.datetime, str]]] = defaultdict(list)
        for tenant_id, schedule_id, due_at, status in rows:
            runs[tenant_id].append((schedule_id, due_at, status))
        return runs

    async def queue_statuses(self) -> Counter[str]:
        """Statuses of the targets' jobs in procrastinate's own table."""
        rows = await self.db.rows(
            "SELECT status::text, count(*) FROM procrastinate_jobs"
            " WHERE task_name = 'probe.run' AND args ->> 'tenant_id' = ANY(%s) GROUP BY 1",
            self.tenant_ids,
        )
        return Counter({status: count for status, count in rows})

    async def next_due(self) -> dict[uuid.UUID, dt.datetime]:
        rows = await self.db.rows(
            "SELECT target_id, next_due_at FROM schedules WHERE tenant_id = ANY(%s)",
            [target.tenant_id for target in self.targets],
        )
        return dict(rows)


def assert_exact_cadence(
    runs: dict[uuid.UUID, list[tuple[uuid.UUID, dt.datetime, str]]],
    expected_due: dict[uuid.UUID, list[dt.datetime]],
) -> None:
    """Every tenant's jobs fell due exactly on its grid, once each, and all succeeded."""
    wrong = {
        tenant: [due for _, due, _ in runs.get(tenant, [])]
        for tenant, grid in expected_due.items()
        if [due for _, due, _ in runs.get(tenant, [])] != grid
    }
    assert not wrong, f"{len(wrong)} tenant(s) off their cadence, e.g. {next(iter(wrong.items()))}"
    pairs = [(schedule, due) for tenant_runs in runs.values() for schedule, due, _ in tenant_runs]
    assert len(pairs) == len(set(pairs)), "duplicate jobs for one (schedule, due time)"
    statuses = Counter(status for tenant_runs in runs.values() for _, _, status in tenant_runs)
    assert statuses == {"succeeded": len(pairs)}


async def test_three_workers_give_500_tenants_exactly_eight_jobs_a_day_at_a_3_hour_cadence(
    runtime, workers: WorkerPool, superuser_db, probe_targets
):
    await open_job_app(runtime.urls.app)
    start = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)
    began = time.monotonic()
    targets = await probe_targets([Tier.growth] * 500, start)
    created = time.monotonic() - began
    racers = await workers.start(
        3,
        env={
            "VALDRIX_TIER_CADENCE_HOURS": json.dumps(dict.fromkeys(TIER_NAMES, 3)),
            # Small batches, so the racing ticks split each sweep between them.
            "VALDRIX_SCHEDULER_BATCH_SIZE": "50",
        },
    )
    simulation = Simulation(superuser_db, targets)

    began = time.monotonic()
    steps = await simulation.run(start, start + 24 * HOUR)
    simulated = time.monotonic() - began

    grid = [start + k * 3 * HOUR for k in range(8)]
    assert steps == 48
    assert_exact_cadence(
        await simulation.runs_by_tenant(), {target.tenant_id: grid for target in targets}
    )
    assert await simulation.queue_statuses() == {"succeeded": 500 * 8}
    claimers = [
        worker
        for worker in racers
        if any(e["event"] == "scheduler.tick" and e["claimed"] for e in worker.log_events())
    ]
    assert len(claimers) >= 2, "the workers never split a sweep between them"
    print(f"500 tenants created in {created:.1f}s; 24 simulated hours in {simulated:.1f}s")


DEFAULT_JOBS_PER_DAY = {
    Tier.enterprise: 6,
    Tier.pro: 6,
    Tier.growth: 2,
    Tier.starter: 1,
    Tier.free: 1,
}


async def test_tenants_of_every_tier_get_their_own_cadence_and_one_catch_up_job_after_an_outage(
    runtime, workers: WorkerPool, superuser_db, probe_targets
):
    await open_job_app(runtime.urls.app)
    start = dt.datetime(2041, 1, 1, tzinfo=dt.UTC)
    targets = await probe_targets([tier for tier in Tier for _ in range(10)], start)
    await workers.start(3)  # default cadences: enterprise/pro 4 h, growth 12 h, starter/free 24 h
    simulation = Simulation(superuser_db, targets)

    await simulation.run(start, start + 24 * HOUR)

    every = {tier: dt.timedelta(hours=24 / count) for tier, count in DEFAULT_JOBS_PER_DAY.items()}
    grids = {
        target.tenant_id: [
            start + k * every[target.tier] for k in range(DEFAULT_JOBS_PER_DAY[target.tier])
        ]
        for target in targets
    }
    assert_exact_cadence(await simulation.runs_by_tenant(), grids)

    # Every worker is down for 10 hours: every tenant's +24 h window passes unserved (and the
    # 4-hour tiers' +28 h and +32 h windows too).
    back = start + 34 * HOUR
    await simulation.tick(back)
    await simulation.tick(back + STEP)

    for grid in grids.values():
        grid.append(start + 24 * HOUR)  # one catch-up job, for the first missed window
    assert_exact_cadence(await simulation.runs_by_tenant(), grids)
    # ...and each schedule is back on its grid, at its first slot after the outage.
    first_slot_after = {4: start + 36 * HOUR, 12: start + 36 * HOUR, 24: start + 48 * HOUR}
    next_due = await simulation.next_due()
    for target in targets:
        hours = 24 // DEFAULT_JOBS_PER_DAY[target.tier]
        assert next_due[target.target_id] == first_slot_after[hours], target.tier


async def wait_for_jobs(db: SuperuserDb, job_ids: list[int], *, within: float = 30) -> None:
    async def finished() -> bool:
        unfinished = await db.value(
            "SELECT count(*) FROM procrastinate_jobs"
            " WHERE id = ANY(%s) AND status IN ('todo', 'doing')",
            job_ids,
        )
        return bool(unfinished == 0)

    await wait_until(finished, within=within, message=f"jobs {job_ids} to finish")


async def test_a_transient_failure_is_retried_and_a_permanent_one_fails_at_once_with_its_reason(
    runtime, client, make_tenant, workers: WorkerPool, superuser_db
):
    tenant = await make_tenant()
    flaky, broken = uuid.uuid4(), uuid.uuid4()
    [worker] = await workers.start(1)
    job_ids = await defer_probes(runtime, tenant.tenant_id, [{"target_id": flaky, "fail_first": 1}])
    job_ids += await defer_probes(
        runtime, tenant.tenant_id, [{"target_id": broken}], task_name="probe.reject"
    )

    # Watch the jobs as the tenant does, until both are finished.
    seen: dict[str, list[str]] = defaultdict(list)
    deadline = time.monotonic() + 30
    while True:
        listed = await client.get("/api/v1/jobs", params={"limit": 10}, headers=tenant.auth)
        jobs = {job["target_id"]: job for job in listed.json()["items"]}
        for target, job in jobs.items():
            if not seen[target] or seen[target][-1] != job["status"]:
                seen[target].append(job["status"])
        if {jobs[str(flaky)]["status"], jobs[str(broken)]["status"]} <= {"succeeded", "failed"}:
            break
        assert time.monotonic() < deadline, f"jobs did not finish: {dict(seen)}"
        await asyncio.sleep(0.05)

    assert "retrying" in seen[str(flaky)]
    assert seen[str(flaky)][-1] == "succeeded"
    assert (jobs[str(flaky)]["attempts"], jobs[str(flaky)]["error_summary"]) == (2, None)
    assert "retrying" not in seen[str(broken)]
    assert jobs[str(broken)]["status"] == "failed"
    assert jobs[str(broken)]["attempts"] == 1
    assert jobs[str(broken)]["error_summary"] == "ValueError: probe rejected its input"
    assert jobs[str(broken)]["finished_at"] is not None
    outcomes = {
        (e["job_id"], e["event"]) for e in worker.log_events() if e.get("job_id") in job_ids
    }
    assert outcomes == {(job_ids[0], "job.retried"), (job_ids[1], "job.failed")}


async def test_two_jobs_of_one_target_never_run_at_the_same_time_even_on_two_workers(
    runtime, make_tenant, workers: WorkerPool, superuser_db
):
    tenant, other, third = await make_tenant(), await make_tenant(), await make_tenant()
    await workers.start(2, concurrency=2)
    target = uuid.uuid4()
    # No queueing lock: both are queued at once, as a scheduled scan and a manual one can be.
    same_target = await defer_probes(
        runtime, tenant.tenant_id, [{"target_id": target, "sleep": 1}] * 2
    )
    unrelated = [
        job_id
        for someone in (other, third)
        for job_id in await defer_probes(runtime, someone.tenant_id, [{"sleep": 2}])
    ]
    await wait_for_jobs(superuser_db, same_target + unrelated)

    async def run_interval(job_id: int) -> tuple[dt.datetime, dt.datetime]:
        ((started, finished),) = await superuser_db.rows(
            "SELECT min(at) FILTER (WHERE type = 'started'),"
            " max(at) FILTER (WHERE type = 'succeeded')"
            " FROM procrastinate_events WHERE job_id = %s",
            job_id,
        )
        return started, finished

    first, second = sorted([await run_interval(job_id) for job_id in same_target])
    assert first[1] <= second[0], "the same target ran twice at once"
    # ...while the workers had room to run other tenants' jobs side by side.
    one, two = sorted([await run_interval(job_id) for job_id in unrelated])
    assert two[0] < one[1]


async def test_jobs_list_shows_jobs_with_their_status_and_filters_by_tenant(
    runtime, make_tenant, workers: WorkerPool, worker_env, superuser_db
):
    tenant, other = await make_tenant(), await make_tenant()
    await workers.start(1)
    done = await defer_probes(runtime, tenant.tenant_id, [{}])
    await wait_for_jobs(superuser_db, done)
    unserved = f"unserved-{uuid.uuid4().hex[:8]}"
    waiting = await defer_probes(runtime, tenant.tenant_id, [{}], queue=unserved)
    others = await defer_probes(runtime, other.tenant_id, [{}], queue=unserved)

    async def jobs_list(*options: str) -> dict[int, dict[str, object]]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "valdrix",
            "jobs",
            "list",
            "--json",
            *options,
            cwd=REPO_ROOT,
            env=worker_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, stderr.decode()
        return {int(job["id"]): job for job in json.loads(stdout)["jobs"]}

    try:
        everyone = await jobs_list("--limit", "1000")
        only_tenant = await jobs_list("--tenant", str(tenant.tenant_id))
    finally:
        await superuser_db.rows(
            "DELETE FROM procrastinate_jobs WHERE id = ANY(%s)", waiting + others
        )

    assert {everyone[job_id]["status"] for job_id in done + waiting + others} == {
        "succeeded",
        "todo",
    }
    assert everyone[done[0]]["status"] == "succeeded"
    assert everyone[others[0]]["tenant_id"] == str(other.tenant_id)
    assert set(only_tenant) == {*done, *waiting}
    assert {job_id: job["status"] for job_id, job in only_tenant.items()} == {
        done[0]: "succeeded",
        waiting[0]: "todo",
    }
    assert {job["task_name"] for job in only_tenant.values()} == {"probe.run"}
