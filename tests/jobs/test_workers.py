"""The scheduler with real worker processes: three workers tick the same simulated instants.

Simulated time: each step defers three ``scheduler.tick`` jobs with the same ``now`` (far in the
future, so only these tests' schedules and a few strays are due), the three workers race for
them, and the next step waits until the step's ticks and the probe jobs they queued are done.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

import tests.jobs.probe_tasks  # noqa: F401  (registers the probe kind)
from tests.jobs.conftest import SuperuserDb, WorkerPool
from tests.jobs.helpers import wait_until
from valdrix.config import TIER_NAMES
from valdrix.jobs import service
from valdrix.jobs.app import open_job_app
from valdrix.jobs.tasks import scheduler_tick
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.tenancy.models import Tier
from valdrix.tenancy.service import create_tenant, system_principal

HOUR = dt.timedelta(hours=1)
STEP = dt.timedelta(minutes=15)
# Ticks land a little after each quarter hour, as the every-minute tick does in production.
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
        ticks = [
            await scheduler_tick.defer_async(now=at.isoformat()) for _ in range(RACING_TICKS)
        ]

        async def settled() -> bool:
            ((ticking, failed_ticks, probing),) = await self.db.rows(
                "SELECT"
                " count(*) FILTER (WHERE id = ANY(%(ticks)s) AND status IN ('todo', 'doing')),"
                " count(*) FILTER (WHERE id = ANY(%(ticks)s) AND status = 'failed'),"
                " count(*) FILTER (WHERE task_name = 'probe.run'"
                "   AND status IN ('todo', 'doing') AND args ->> 'tenant_id' = ANY(%(tenants)s))"
                " FROM procrastinate_jobs"
                " WHERE id = ANY(%(ticks)s) OR status IN ('todo', 'doing')",
                ticks=ticks,
                tenants=self.tenant_ids,
            )
            assert failed_ticks == 0, f"a scheduler.tick at {at} failed"
            return bool(ticking == 0 and probing == 0)

        await wait_until(settled, within=60, message=f"the ticks at {at} and their jobs")

    async def run(self, start: dt.datetime, end: dt.datetime) -> int:
        """Tick every quarter hour in [start, end); returns the number of steps."""
        steps = 0
        while start + steps * STEP < end:
            t0 = time.monotonic()
            await self.tick(start + steps * STEP + TICK_DELAY)
            print("step", steps, round(time.monotonic() - t0, 3))
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
    await workers.start(
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

    diag = await superuser_db.rows("""
    SELECT j.args->>'due_at', min(e.at) FILTER (WHERE e.type='deferred'), max(e.at) FILTER (WHERE e.type='deferred'),
      min(e.at) FILTER (WHERE e.type='started'), max(e.at) FILTER (WHERE e.type='succeeded'), count(distinct j.worker_id)
    FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id=j.id
    WHERE j.task_name='probe.run' AND j.args->>'tenant_id' = ANY(%s) GROUP BY 1 ORDER BY 1""", simulation.tenant_ids)
    for d in diag:
        print(d[0], "defer span", (d[2]-d[1]).total_seconds(), "start after", (d[3]-d[1]).total_seconds(), "done after", (d[4]-d[1]).total_seconds(), d[5])
    ticks = await superuser_db.rows("""SELECT j.id, j.args->>'now', j.worker_id, min(e.at) FILTER (WHERE e.type='deferred'), min(e.at) FILTER (WHERE e.type='started'), max(e.at) FILTER (WHERE e.type='succeeded') FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id=j.id WHERE j.task_name='scheduler.tick' AND j.args->>'now' LIKE '2040-01-01T00%%' OR j.args->>'now' LIKE '2040-01-01T15:00%%' GROUP BY 1,2,3 ORDER BY 1""")
    for t in ticks:
        print(t[0], t[1], t[2], (t[4]-t[3]).total_seconds(), (t[5]-t[4]).total_seconds())
    grid = [start + k * 3 * HOUR for k in range(8)]
    assert steps == 96
    assert_exact_cadence(
        await simulation.runs_by_tenant(), {target.tenant_id: grid for target in targets}
    )
    assert await simulation.queue_statuses() == {"succeeded": 500 * 8}
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

    # Every worker is down for 10 hours: windows at +24 h, +28 h and +32 h pass unserved.
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
