"""Scheduler sweep and end-to-end job throughput, each beside raw procrastinate in the same run.

    python benchmarks/scheduler_throughput.py [--quick] [--tenants N] [--jobs N] [--rounds N]

1. Sweep: N tenants (10,000; ``--quick`` 1,000) each with one due "probe" schedule; one
   ``run_tick`` claims, defers and mirrors all of them (target: under 30 s). Baseline: plain
   procrastinate batch-deferring the same N jobs (no claiming, no mirror).
2. Throughput: a no-op job (``probe.noop``) deferred through valdrix's enqueue path (fair
   priorities, tenant slot locks, the ``job_runs`` mirror; batches of 500 like the scheduler)
   and run by 1, 2 and 4 ``valdrix worker`` processes (tracking middleware), beside the same
   no-op deferred with a minimal procrastinate App and run by as many plain procrastinate worker
   processes on the same database. Jobs/s from the first defer to the last finished job
   (target: ours at least 0.5x raw). Twice: with statistics of a full queue (as autovacuum
   leaves them), and fresh — each run on a queue analyzed while empty, as in a new installation
   (target: ours within 20 % of the analysed figure).

A private embedded PostgreSQL is started in a temporary directory and stopped at the end.
Figures are printed for humans, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
from procrastinate import jobs as procrastinate_jobs

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import tests.jobs.probe_tasks  # noqa: E402, F401  (registers the probe kind and probe.noop)
from bench_stack import Bench, start_database  # noqa: E402

from valdrix.config import TIER_NAMES  # noqa: E402
from valdrix.jobs.app import close_job_app, open_job_app  # noqa: E402
from valdrix.jobs.enqueue import JobRequest, build_job, defer_in_transaction  # noqa: E402
from valdrix.jobs.scheduler import run_tick  # noqa: E402
from valdrix.kit.crypto import KeyRing  # noqa: E402
from valdrix.kit.db import unit_of_work  # noqa: E402
from valdrix.kit.embedded import stop_embedded_database  # noqa: E402
from valdrix.logging import configure_logging  # noqa: E402
from valdrix.runtime import Runtime, open_runtime  # noqa: E402

QUEUE = "probe"
NOOP_TASK = "probe.noop"
WORKER_COUNTS = (1, 2, 4)
WORKER_CONCURRENCY = 4
DEFER_BATCH = 500  # the scheduler's default batch size
THROUGHPUT_TENANTS = 1_000  # no-op jobs are spread over this many tenants
FINISHED = ("succeeded", "failed", "aborted", "cancelled")


@dataclass(frozen=True)
class Size:
    tenants: int
    jobs: int  # per throughput run
    rounds: int  # runs of each path per worker count; the best counts (shared machines are noisy)


SIZES = {
    "default": Size(tenants=10_000, jobs=3_000, rounds=2),
    "quick": Size(tenants=1_000, jobs=400, rounds=1),
}


def create_tenants_with_due_schedules(
    bench: Bench, count: int, due_at: dt.datetime
) -> list[tuple[uuid.UUID, str]]:
    """COPY ``count`` tenants (tiers round-robin) with one due probe schedule each."""
    keyring = KeyRing(bench.settings.keyring)
    tenants = [(uuid.uuid4(), TIER_NAMES[i % len(TIER_NAMES)]) for i in range(count)]
    with psycopg.connect(bench.superuser) as conn, conn.cursor() as cur:
        with cur.copy("COPY tenants (id, name, tier) FROM STDIN") as copy:
            for index, (tenant_id, tier) in enumerate(tenants):
                copy.write_row((tenant_id, keyring.encrypt(f"Benchmark tenant {index}"), tier))
        with cur.copy(
            "COPY schedules (id, tenant_id, kind, target_id, next_due_at) FROM STDIN"
        ) as copy:
            for tenant_id, _ in tenants:
                copy.write_row((uuid.uuid4(), tenant_id, "probe", uuid.uuid4(), due_at))
    with psycopg.connect(bench.superuser, autocommit=True) as conn:
        conn.execute("ANALYZE tenants, schedules")  # as autovacuum would have by now
    return tenants


def empty_queue(bench: Bench) -> None:
    """Start a run with no jobs; column statistics survive TRUNCATE."""
    with psycopg.connect(bench.superuser, autocommit=True) as conn:
        conn.execute("TRUNCATE job_runs, procrastinate_jobs, procrastinate_workers CASCADE")


def analyze_queue(bench: Bench) -> None:
    with psycopg.connect(bench.superuser, autocommit=True) as conn:
        conn.execute("ANALYZE procrastinate_jobs, procrastinate_events, job_runs")


def forget_queue_statistics(bench: Bench) -> None:
    """The empty queue's statistics of a new installation: its column statistics dropped, then
    analyzed while empty. Autovacuum stays off the queue during these runs, so what the figures
    show is the fetch under those statistics, not how soon autovacuum happened to look."""
    with psycopg.connect(bench.superuser, autocommit=True) as conn:
        conn.execute("ALTER TABLE procrastinate_jobs SET (autovacuum_enabled = false)")
        conn.execute("DELETE FROM pg_statistic WHERE starelid = 'procrastinate_jobs'::regclass")
        conn.execute("VACUUM ANALYZE procrastinate_jobs")


def let_autovacuum_back(bench: Bench) -> None:
    with psycopg.connect(bench.superuser, autocommit=True) as conn:
        conn.execute("ALTER TABLE procrastinate_jobs RESET (autovacuum_enabled)")


def batches(items: list[Any], size: int = DEFER_BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- 1. the tick sweep -------------------------------------------------------------------------


async def sweep(runtime: Runtime, bench: Bench, count: int, now: dt.datetime) -> float:
    started = time.perf_counter()
    report = await run_tick(runtime, now=now)
    seconds = time.perf_counter() - started
    with psycopg.connect(bench.superuser) as conn:
        jobs, runs = conn.execute(
            "SELECT (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'),"
            " (SELECT count(*) FROM job_runs WHERE status = 'queued')"
        ).fetchone() or (0, 0)
    if not report.deferred == jobs == runs == count:
        raise SystemExit(
            f"sweep deferred {report.deferred}, queued {jobs} jobs and {runs} job runs;"
            f" expected {count} of each"
        )
    return seconds


async def raw_sweep_defer(
    raw_app: procrastinate.App, tenants: list[tuple[uuid.UUID, str]]
) -> float:
    """Plain procrastinate inserting the same jobs (arguments, queueing locks) in batches."""
    started = time.perf_counter()
    for chunk in batches(tenants):
        jobs = []
        for tenant_id, _ in chunk:
            target = str(uuid.uuid4())
            jobs.append(
                procrastinate_jobs.Job(
                    id=None,
                    queue=QUEUE,
                    task_name="probe.run",
                    task_kwargs={"tenant_id": str(tenant_id), "target_id": target},
                    lock=None,
                    queueing_lock=f"probe:{target}",
                )
            )
        await raw_app.job_manager.batch_defer_jobs_async(jobs)
    return time.perf_counter() - started


# -- 2. end-to-end throughput ------------------------------------------------------------------


def start_workers(bench: Bench, path: str, count: int) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "VALDRIX_HOME": str(bench.home),
        "VALDRIX_DATABASE_URL": bench.urls.app,
        "VALDRIX_MIGRATION_DATABASE_URL": bench.urls.owner,
        "VALDRIX_ENCRYPTION_KEYS": bench.encryption_keys,
        "VALDRIX_WORKER_IMPORTS": "tests.jobs.probe_tasks",
    }
    workers = []
    for index in range(count):
        if path == "ours":
            command = [sys.executable, "-m", "valdrix", "worker", "--no-periodic"]
            command += ["--queues", QUEUE, "--name", f"bench-{index}"]
        else:
            command = [sys.executable, __file__, "--raw-worker", "--conninfo", bench.urls.app]
        command += ["--concurrency", str(WORKER_CONCURRENCY)]
        with (bench.home / f"worker-{path}-{count}-{index}.log").open("ab") as log:
            workers.append(
                subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
            )
    with psycopg.connect(bench.superuser, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while True:
            row = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
            if row and row[0] >= count:
                break
            if any(worker.poll() is not None for worker in workers) or time.monotonic() > deadline:
                stop_workers(workers)
                raise SystemExit(f"{path} workers did not start; see {bench.home}/worker-*.log")
            time.sleep(0.1)
    time.sleep(1.0)  # registration comes just before the LISTEN connection; let it settle
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


async def defer_ours(runtime: Runtime, tenants: list[tuple[uuid.UUID, str]], jobs: int) -> None:
    slots = runtime.settings.jobs.tenant_job_slots
    plan = [(tenants[i % len(tenants)], i // len(tenants)) for i in range(jobs)]
    for chunk in batches(plan):
        built = [
            build_job(
                JobRequest(
                    task_name=NOOP_TASK,
                    queue=QUEUE,
                    tenant_id=tenant_id,
                    tier=tier,
                    tenant_backlog=backlog,
                ),
                slots=slots,
            )
            for (tenant_id, tier), backlog in chunk
        ]
        async with unit_of_work(runtime.sessions, None) as session:
            await defer_in_transaction(session, built)


async def defer_raw(
    raw_app: procrastinate.App, tenants: list[tuple[uuid.UUID, str]], jobs: int
) -> None:
    deferrer = raw_app.configure_task(NOOP_TASK, queue=QUEUE)
    kwargs = [{"tenant_id": str(tenants[i % len(tenants)][0])} for i in range(jobs)]
    for chunk in batches(kwargs):
        await deferrer.batch_defer_async(*chunk)


def wait_until_finished(bench: Bench, jobs: int, timeout: float) -> tuple[float, int]:
    """Epoch time of the last finished job, and how many jobs did not succeed."""
    with psycopg.connect(bench.superuser, autocommit=True) as conn:
        deadline = time.monotonic() + timeout
        while True:
            done, failed = conn.execute(
                "SELECT count(*) FILTER (WHERE status = ANY(%s)),"
                " count(*) FILTER (WHERE status = ANY(%s) AND status <> 'succeeded')"
                " FROM procrastinate_jobs",
                (list(FINISHED), list(FINISHED)),
            ).fetchone() or (0, 0)
            if done >= jobs:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {jobs} jobs finished within {timeout:.0f} s")
            time.sleep(0.2)
        row = conn.execute(
            "SELECT extract(epoch FROM max(at)) FROM procrastinate_events"
            " WHERE type IN ('succeeded', 'failed', 'aborted', 'cancelled')"
        ).fetchone()
    assert row is not None
    return float(row[0]), int(failed)


async def throughput(
    bench: Bench,
    runtime: Runtime,
    raw_app: procrastinate.App,
    tenants: list[tuple[uuid.UUID, str]],
    *,
    path: str,
    workers: int,
    jobs: int,
    fresh: bool,
) -> float:
    empty_queue(bench)
    if fresh:
        forget_queue_statistics(bench)
    processes = start_workers(bench, path, workers)
    try:
        started = time.time()
        if path == "ours":
            await defer_ours(runtime, tenants, jobs)
        else:
            await defer_raw(raw_app, tenants, jobs)
        finished, failed = await asyncio.to_thread(
            wait_until_finished, bench, jobs, timeout=max(120.0, jobs / 5)
        )
    finally:
        stop_workers(processes)
    if failed:
        raise SystemExit(f"{failed} {path} jobs did not succeed; see {bench.home}/worker-*.log")
    if path == "ours":
        with psycopg.connect(bench.superuser) as conn:
            row = conn.execute("SELECT count(*) FROM job_runs WHERE status = 'succeeded'")
            mirrored = (row.fetchone() or (0,))[0]
        if mirrored != jobs:
            raise SystemExit(f"only {mirrored} of {jobs} job runs were mirrored as succeeded")
    return jobs / (finished - started)


# -- the run -----------------------------------------------------------------------------------


async def run(size: Size, bench: Bench) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "scheduler_throughput"}
    load_at_start = os.getloadavg()[0]  # other work on the machine skews absolute figures
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    tenants = create_tenants_with_due_schedules(bench, size.tenants, now - dt.timedelta(minutes=1))
    setup_seconds = time.perf_counter() - started
    print(f"created {size.tenants:,} tenants with a due schedule each in {setup_seconds:.1f} s")

    runtime = open_runtime(bench.settings, bench.urls)
    await open_job_app(bench.urls.app)
    raw_app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=bench.urls.app))
    await raw_app.open_async()
    try:
        sweep_seconds = await sweep(runtime, bench, size.tenants, now)
        # Statistics of a full queue, as autovacuum takes them after such a sweep; both paths
        # then run with them (see "Known weak spot" in benchmarks/README.md for stale ones).
        analyze_queue(bench)
        empty_queue(bench)
        raw_seconds = await raw_sweep_defer(raw_app, tenants)
        print(
            f"tick sweep: {size.tenants:,} due schedules claimed, deferred and mirrored in"
            f" {sweep_seconds:.2f} s (target < 30 s); raw procrastinate defer of the same jobs"
            f" {raw_seconds:.2f} s"
        )
        result |= {
            "sweep_tenants": size.tenants,
            "sweep_seconds": round(sweep_seconds, 3),
            "baseline_sweep_seconds": round(raw_seconds, 3),
            "sweep_setup_seconds": round(setup_seconds, 3),
        }

        spread = tenants[:THROUGHPUT_TENANTS]
        print(
            f"throughput: {size.jobs:,} no-op jobs over {len(spread):,} tenants per run, workers"
            f" with concurrency {WORKER_CONCURRENCY}, best of {size.rounds} run(s), raw and"
            " valdrix alternating"
        )
        analysed = await throughput_phase(bench, runtime, raw_app, spread, size, fresh=False)
        ratios = [analysed[f"ratio_{count}w"] for count in WORKER_COUNTS]
        result |= analysed
        try:
            fresh = await throughput_phase(bench, runtime, raw_app, spread, size, fresh=True)
        finally:
            let_autovacuum_back(bench)
        result |= fresh
        kept = []
        for count in WORKER_COUNTS:
            share = (
                fresh[f"fresh_throughput_jobs_per_s_{count}w"]
                / analysed[f"throughput_jobs_per_s_{count}w"]
            )
            result[f"fresh_vs_analysed_{count}w"] = round(share, 3)
            kept.append(share)
        print(
            "  fresh / analysed (valdrix): "
            + ", ".join(
                f"{count} worker(s) {share:.2f}"
                for count, share in zip(WORKER_COUNTS, kept, strict=True)
            )
            + " (target >= 0.8)"
        )
        result |= {
            "ratio": round(min(ratios), 3),
            "fresh_ratio": round(min(fresh[f"fresh_ratio_{c}w"] for c in WORKER_COUNTS), 3),
            "fresh_vs_analysed": round(min(kept), 3),
            "jobs_per_run": size.jobs,
            "rounds": size.rounds,
            "worker_concurrency": WORKER_CONCURRENCY,
            "cpus": os.cpu_count(),
            "load_average_1m_start": round(load_at_start, 2),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        await raw_app.close_async()
        await close_job_app()
        await runtime.close()
    return result


async def throughput_phase(
    bench: Bench,
    runtime: Runtime,
    raw_app: procrastinate.App,
    spread: list[tuple[uuid.UUID, str]],
    size: Size,
    *,
    fresh: bool,
) -> dict[str, float]:
    """Both paths at 1, 2 and 4 workers; figures keyed ``[fresh_]..._<n>w``."""
    prefix = "fresh_" if fresh else ""
    print(
        "  fresh statistics: each run on a queue analyzed while empty"
        if fresh
        else "  statistics of a full queue (analyzed after the sweep)"
    )
    figures: dict[str, float] = {}
    for count in WORKER_COUNTS:
        runs: dict[str, list[float]] = {"raw": [], "ours": []}
        for _ in range(size.rounds):
            for path, rates in runs.items():
                rate = await throughput(
                    bench,
                    runtime,
                    raw_app,
                    spread,
                    path=path,
                    workers=count,
                    jobs=size.jobs,
                    fresh=fresh,
                )
                rates.append(rate)
        ours, raw = max(runs["ours"]), max(runs["raw"])
        print(
            f"    {count} worker(s): valdrix {ours:6.1f} jobs/s   raw procrastinate {raw:6.1f}"
            f" jobs/s   ratio {ours / raw:.2f}   (runs: valdrix {_figures(runs['ours'])};"
            f" raw {_figures(runs['raw'])})"
        )
        figures[f"{prefix}throughput_jobs_per_s_{count}w"] = round(ours, 1)
        figures[f"baseline_{prefix}throughput_jobs_per_s_{count}w"] = round(raw, 1)
        figures[f"{prefix}ratio_{count}w"] = round(ours / raw, 3)
    return figures


def _figures(values: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values)


def raw_worker(conninfo: str, concurrency: int) -> None:
    """A plain procrastinate worker: a minimal App, the same no-op, no valdrix code."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name=NOOP_TASK, queue=QUEUE)
    async def noop(tenant_id: str | None = None) -> None:
        """The same no-op as probe.noop."""

    app.run_worker(queues=[QUEUE], concurrency=concurrency, install_signal_handlers=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--tenants", type=int, help="override the sweep size")
    parser.add_argument("--jobs", type=int, help="override the jobs per throughput run")
    parser.add_argument("--rounds", type=int, help="override the runs per path and worker count")
    parser.add_argument("--raw-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--conninfo", help=argparse.SUPPRESS)
    parser.add_argument(
        "--concurrency", type=int, default=WORKER_CONCURRENCY, help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.raw_worker:
        raw_worker(args.conninfo, args.concurrency)
        return
    size = SIZES["quick" if args.quick else "default"]
    size = Size(
        tenants=args.tenants or size.tenants,
        jobs=args.jobs or size.jobs,
        rounds=args.rounds or size.rounds,
    )
    configure_logging(json_output=False, level="WARNING")
    # procrastinate warns about an App made in __main__ (workers could not import its tasks);
    # the raw baseline's deferring App never runs tasks.
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="valdrix-bench-") as home:
        bench = start_database(Path(home))
        try:
            result = asyncio.run(run(size, bench))
        finally:
            stop_embedded_database(Path(home))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
