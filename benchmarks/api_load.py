"""The API under load, beside the stack's own ceiling, and live scan updates with many watchers.

    python benchmarks/api_load.py [--quick] [--api-workers N] [--seconds S] [--watchers N]

A private embedded PostgreSQL holds 1,000 tenants (``--quick``: 100); one of them, the
benchmark's, has 10,000 findings (``--quick``: 2,000) spread like a real account's, six scans
and a year of daily cost records (600 a day: 30 services x 4 regions x 5 accounts), the others
100 findings each (``--quick``: 20). Seeding is bulk SQL as the superuser (timed apart).

1. Load. ``valdrix serve`` (with ``--workers N`` when the command offers it, N the number of
   cores unless ``--api-workers`` says otherwise; else one process) answers on loopback, with
   the tenant's owner API key, a mix: the findings list, three filtered findings lists, the
   findings summary, costs by service per month over the year, a scan's status. The client is
   wrk when it is installed (``apt-get install wrk``, the outside tool the API's users load it
   with): one wrk per request of the mix, the connections shared out between them, the mix's
   percentiles weighing each request the same (as a client asking them in turn). Without
   it, an asyncio client (httpx) in this process asks the mix in turn, and its own CPU, some
   milliseconds a request, weighs on the cores the API shares (``load_client`` says which).
   At 20 connections, then at 100, each for ``--seconds`` (20; ``--quick`` 5; httpx also stops
   at 20,000 requests, ``--quick`` 3,000), after a short warm-up. The rate limits are raised
   for the run (``VALDRIX_RATE_LIMIT_*``): the limiter still runs on every request, but a load
   test is not a tenant. Errors: any answer but 200 (wrk: a 4xx or 5xx answer, or a connection
   broken or timed out).
2. Ceiling, in the same run: ``api_ceiling.py``, a minimal FastAPI app on the same database,
   served by uvicorn with as many processes as Valdrix got, runs for each request of the mix
   the SQL statements Valdrix ran for it (recorded from Valdrix's own requests just before),
   with the same driver (psycopg 3), and answers the rows as JSON. Driven like Valdrix at 20
   connections; ``ratio`` is Valdrix's requests/s over the ceiling's.
3. Watchers. One client watches a queued scan's event stream (``/api/v1/scans/{id}/events``)
   while the benchmark writes one event a second to it through the scan engine's own
   repository; then 500 (``--quick``: 100). The database's transactions per second (committed
   and rolled back, ``pg_stat_database``) over 15 s (``--quick``: 5) with each: the
   ``db_queries_per_s_*`` figures (the event writer's own second-by-second transactions are in
   both). ``sse_watchers`` is how many of the watchers received an event in their window.
4. The rate limiter's own cost per request, in this process on the same database: a busy key
   (tokens taken in batches at the default bursts) and one statement that takes them.

Per request of the mix, the figures are printed apart too (``by_kind`` in the JSON line): p50
and p95 under load, the ceiling's, and the request's time in the app and in SQL asked one at a
time in-process before the load.

Targets (2-core machine, API, database and client sharing the cores): 0 errors, ratio >= 0.5,
p95 under 100 ms at 20 connections and under 250 ms at 100, queries per second with 500
watchers within 2x of one watcher's. Figures are printed for humans, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from bench_stack import (
    Bench,
    BenchTenant,
    create_other_tenants,
    create_tenant_with_connection,
    load_findings,
    raised_rate_limits,
    servable_workers,
    start_database,
    start_valdrix_serve,
    stop,
    store_cost_records,
    wait_until_answering,
)
from sqlalchemy import event, text
from sse_watchers import Watchers

from valdrix.app import create_app
from valdrix.config.groups import RateLimitSettings
from valdrix.kit.db import unit_of_work
from valdrix.kit.embedded import stop_embedded_database
from valdrix.logging import configure_logging
from valdrix.runtime import Runtime, open_runtime
from valdrix.scanning.repository import ScanEventRepository
from valdrix.simulator.aws_server import free_port
from valdrix.tenancy.auth import Principal
from valdrix.tenancy.models import Role
from valdrix.tenancy.rate_limits import RequestRateLimiter

BENCHMARKS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Size:
    tenants: int
    findings: int
    other_findings: int  # per other tenant
    cost_records_per_day: int
    seconds: float  # per load phase
    max_requests: int  # per load phase
    watchers: int
    watch_seconds: float


SIZES = {
    "default": Size(1_000, 10_000, 100, 600, 20.0, 20_000, 500, 15.0),
    "quick": Size(100, 2_000, 20, 60, 5.0, 3_000, 100, 5.0),
}
WARM_UP_SECONDS = 2.0
CONNECTIONS, MORE_CONNECTIONS = 20, 100
TARGETS = {"p95_ms": 100.0, "p95_ms_at_100": 250.0, "ratio": 0.5, "watchers_x": 2.0}


def request_mix(tenant: BenchTenant, today: dt.date) -> dict[str, str]:
    """The requests of the mix by name, asked in this order, round after round."""
    year_ago = today - dt.timedelta(days=365)
    return {
        "findings": "/api/v1/findings?limit=50",
        "findings_open_recent": "/api/v1/findings?limit=50&status=open&sort=last_seen_at",
        "summary": "/api/v1/findings/summary",
        "findings_detector_region": (
            "/api/v1/findings?limit=50&detector=aws.ec2-idle&region=us-east-1"
        ),
        "costs_by_service_month": (
            f"/api/v1/costs?start={year_ago}&end={today}&group_by=service,month"
        ),
        "findings_costly": "/api/v1/findings?limit=50&status=open&min_monthly_cost_usd=100",
        "scan_status": f"/api/v1/scans/{tenant.scan_ids[0]}",
    }


# -- set-up ------------------------------------------------------------------------------------


def seed(bench: Bench, size: Size) -> tuple[BenchTenant, float]:
    """The benchmark's tenant among the others, with findings and a year of costs."""
    started = time.perf_counter()
    tenant = asyncio.run(create_tenant_with_connection(bench))
    others = create_other_tenants(bench, size.tenants - 1)
    load_findings(
        bench,
        [(tenant.tenant_id, tenant.connection_id, size.findings)]
        + [(other, connection, size.other_findings) for other, connection in others],
    )
    first_day = dt.date.today() - dt.timedelta(days=365)
    records = 365 * size.cost_records_per_day
    store_cost_records(bench.superuser, tenant.tenant_id, records, first_day)
    return tenant, time.perf_counter() - started


@dataclass
class Recorded:
    """What Valdrix does for each request of the mix, asked one at a time in-process (no load):
    its statements (with their parameters) for the ceiling, and per request its time inside the
    app and the part of it spent in SQL (medians of ``IN_PROCESS_ASKS``)."""

    statements: dict[str, list[tuple[str, Any]]]
    app_ms: dict[str, float]
    sql_ms: dict[str, float]


IN_PROCESS_ASKS = 10


async def record_statements(bench: Bench, tenant: BenchTenant, mix: dict[str, str]) -> Recorded:
    """The SQL statements (with their parameters) Valdrix runs for each request of the mix: the
    third of three asks, in-process, once what a first request warms is warm; then the request's
    time and its statements' time over ``IN_PROCESS_ASKS`` more asks."""
    raised = {name.removeprefix("VALDRIX_RATE_LIMIT_").lower(): value
              for name, value in raised_rate_limits().items()}  # fmt: skip
    runtime = open_runtime(bench.settings.updated(rate_limits=raised))
    recorded: list[tuple[str, Any]] = []
    sql_seconds = [0.0]

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any,
               *_: Any) -> None:  # fmt: skip
        recorded.append((statement, parameters))
        context._bench_started = time.perf_counter()

    def finished(_conn: Any, _cursor: Any, _statement: str, _parameters: Any, context: Any,
                 *_: Any) -> None:  # fmt: skip
        sql_seconds[0] += time.perf_counter() - context._bench_started

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", record)
    event.listen(runtime.engine.sync_engine, "after_cursor_execute", finished)
    result = Recorded({}, {}, {})
    transport = httpx.ASGITransport(app=create_app(runtime))
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name, path in mix.items():
                for _ in range(3):
                    recorded.clear()
                    response = await client.get(path, headers=headers)
                    if response.status_code != 200:
                        raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
                result.statements[name] = list(recorded)
                app_ms, sql_ms = [], []
                for _ in range(IN_PROCESS_ASKS):
                    sql_seconds[0] = 0.0
                    began = time.perf_counter()
                    await client.get(path, headers=headers)
                    app_ms.append((time.perf_counter() - began) * 1000)
                    sql_ms.append(sql_seconds[0] * 1000)
                result.app_ms[name] = round(statistics.median(app_ms), 1)
                result.sql_ms[name] = round(statistics.median(sql_ms), 1)
    finally:
        await runtime.close()
    return result


def start_ceiling(
    bench: Bench, statements_file: Path, workers: int
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 (our interpreter, our arguments)
        [sys.executable, "-m", "uvicorn", "--factory", "api_ceiling:create_app",
         "--app-dir", str(BENCHMARKS), "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        env={**os.environ, "API_CEILING_DATABASE_URL": bench.urls.app,
             "API_CEILING_STATEMENTS": str(statements_file)},
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(process, url)
    return process, url


# -- 1 and 2: load -----------------------------------------------------------------------------


@dataclass
class LoadRun:
    """Latencies (ms, with how many requests took each) by path, failed requests, duration."""

    by_path: dict[str, list[tuple[float, int]]]
    errors: int
    seconds: float

    @property
    def requests(self) -> int:
        return sum(count for samples in self.by_path.values() for _, count in samples)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p(self, share: float, path: str | None = None) -> float:
        """The latency ``share`` of the requests of ``path`` took at most; of the mix, each path
        weighing the same (as a client asking them in turn sees it: wrk's connections answer
        more fast requests than slow ones, which must not make the mix look faster)."""
        paths = [path] if path else [p for p, samples in self.by_path.items() if samples]
        weighted = sorted(
            (value, count / sum(n for _, n in self.by_path[p]))
            for p in paths
            for value, count in self.by_path.get(p, [])
        )
        if not weighted:
            return 0.0
        rank, seen = share * sum(weight for _, weight in weighted), 0.0
        for value, weight in weighted:
            seen += weight
            if seen >= rank:
                return round(value, 1)
        return round(weighted[-1][0], 1)


# wrk's own statistics, read by the Lua ``done`` hook: every latency it recorded with its count.
WRK_REPORT = """
done = function(summary, latency, requests)
  local values = {}
  for i = 1, #latency do
    local value, count = latency(i)
    values[#values + 1] = string.format("[%d,%d]", value, count)
  end
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "failed": %d, "latency_us": [%s]}\\n',
    summary.requests, e.status + e.connect + e.read + e.write + e.timeout,
    table.concat(values, ",")))
end
"""


def drive(
    base_url: str, paths: list[str], headers: dict[str, str], *, connections: int, seconds: float,
    max_requests: int,
) -> LoadRun:  # fmt: skip
    """``connections`` clients asking ``paths``, with wrk when it is installed (a client in C
    costs the two shared cores next to nothing), else with an asyncio client in this process."""
    if shutil.which("wrk"):
        return drive_with_wrk(base_url, paths, headers, connections=connections, seconds=seconds)
    return asyncio.run(
        drive_with_httpx(
            base_url, paths, headers, connections=connections, seconds=seconds,
            max_requests=max_requests,
        )
    )  # fmt: skip


def drive_with_wrk(
    base_url: str, paths: list[str], headers: dict[str, str], *, connections: int, seconds: float
) -> LoadRun:
    """One wrk per path of the mix, at once, the connections shared out between them: each
    path's latencies apart, and their union exact (wrk reports every latency it recorded)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_REPORT)
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    shares = [connections // len(paths) + (n < connections % len(paths)) for n in range(len(paths))]
    started = time.monotonic()
    wrk = shutil.which("wrk") or "wrk"
    runs = {}
    for path, share in zip(paths, shares, strict=True):
        command = [wrk, "-t1", f"-c{max(1, share)}", f"-d{seconds:g}s", "--timeout", "60s"]
        runs[path] = subprocess.Popen(  # noqa: S603 - our own command line
            [*command, *header_args, "-s", script.name, base_url + path],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    run = LoadRun({}, 0, 0.0)
    try:
        for path, process in runs.items():
            output, _ = process.communicate()
            line = next((x for x in output.splitlines() if x.startswith("WRK ")), None)
            if line is None:
                raise RuntimeError(f"wrk on {path} reported nothing:\n{output}")
            figures = json.loads(line.removeprefix("WRK "))
            run.by_path[path] = [(micros / 1000, n) for micros, n in figures["latency_us"]]
            run.errors += figures["failed"]
    finally:
        Path(script.name).unlink()
    run.seconds = time.monotonic() - started
    return run


async def drive_with_httpx(
    base_url: str,
    paths: list[str],
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    max_requests: int,
) -> LoadRun:
    """``connections`` clients asking ``paths`` in turn until the time or the requests run out.
    Its own CPU (some milliseconds a request) is taken from the cores the API and the database
    share: install wrk for figures the client does not weigh on."""
    run = LoadRun({}, 0, 0.0)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=60, limits=limits
    ) as client:
        started = time.monotonic()
        deadline = started + seconds
        sent = 0

        async def one_client(offset: int) -> None:
            nonlocal sent
            turn = offset
            while time.monotonic() < deadline and sent < max_requests:
                sent += 1
                path = paths[turn % len(paths)]
                turn += 1
                began = time.perf_counter()
                try:
                    ok = (await client.get(path)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                run.by_path.setdefault(path, []).append(((time.perf_counter() - began) * 1000, 1))
                run.errors += not ok

        await asyncio.gather(*(one_client(n) for n in range(connections)))
        run.seconds = time.monotonic() - started
    return run


def measure_load(
    base_url: str, paths: list[str], headers: dict[str, str], size: Size, connections: int
) -> LoadRun:
    drive(
        base_url, paths, headers, connections=connections, seconds=WARM_UP_SECONDS,
        max_requests=size.max_requests,
    )  # fmt: skip
    return drive(
        base_url, paths, headers, connections=connections, seconds=size.seconds,
        max_requests=size.max_requests,
    )  # fmt: skip


# -- 3: watchers -------------------------------------------------------------------------------


def database_transactions(bench: Bench) -> int:
    with psycopg.connect(bench.superuser, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def write_scan_events(
    runtime: Runtime, tenant: BenchTenant, stop_writing: asyncio.Event
) -> None:
    """One event a second on the watched scan, through the engine's own repository."""
    tenant_id, scan_id = uuid.UUID(tenant.tenant_id), uuid.UUID(tenant.scan_ids[0])
    written = 0
    while not stop_writing.is_set():
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            await ScanEventRepository(session).add_many(
                tenant_id, scan_id, [("progress", {"benchmark_event": written})],
                dt.datetime.now(dt.UTC),
            )  # fmt: skip
        written += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_writing.wait(), timeout=1.0)


async def transactions_per_second(bench: Bench, seconds: float) -> float:
    before = await asyncio.to_thread(database_transactions, bench)
    await asyncio.sleep(seconds)
    after = await asyncio.to_thread(database_transactions, bench)
    return (after - before) / seconds


async def measure_watchers(
    bench: Bench, base_url: str, tenant: BenchTenant, headers: dict[str, str], size: Size
) -> dict[str, Any]:
    runtime = open_runtime(bench.settings)
    path = f"/api/v1/scans/{tenant.scan_ids[0]}/events"
    limits = httpx.Limits(max_connections=size.watchers + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(60, read=None)
    stop_writing = asyncio.Event()
    writer = asyncio.create_task(write_scan_events(runtime, tenant, stop_writing))
    try:
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
            async with Watchers(client, path, headers, 1):
                await asyncio.sleep(3)
                one = await transactions_per_second(bench, size.watch_seconds)
            async with Watchers(client, path, headers, size.watchers) as crowd:
                with contextlib.suppress(TimeoutError):
                    await crowd.wait_until(
                        lambda: all(w.events or w.error for w in crowd.watchers), within=60
                    )
                await asyncio.sleep(3)
                before = [len(w.events) for w in crowd.watchers]
                many = await transactions_per_second(bench, size.watch_seconds)
                after = [len(w.events) for w in crowd.watchers]
                errors = sum(w.error is not None for w in crowd.watchers)
    finally:
        stop_writing.set()
        await writer
        await runtime.close()
    receiving = sum(later > then for later, then in zip(after, before, strict=True))
    return {
        "sse_watchers": receiving,
        "sse_errors": errors,
        "db_queries_per_s_1_watcher": round(one, 1),
        f"db_queries_per_s_{size.watchers}_watchers": round(many, 1),
    }


# -- 4: the rate limiter's cost ----------------------------------------------------------------


async def measure_rate_limiter(bench: Bench, tenant: BenchTenant) -> dict[str, float]:
    """Microseconds per admitted request of a busy key at the default bursts (batches of 30),
    and milliseconds per statement taking tokens (batches of one)."""
    runtime = open_runtime(bench.settings)
    defaults = RateLimitSettings()
    busy = RequestRateLimiter(
        defaults.model_copy(update={"credential_per_second": 1e6, "tenant_per_second": 1e6})
    )
    one_by_one = RequestRateLimiter(  # bursts under 40: batches of one token
        RateLimitSettings(
            credential_per_second=1e6, credential_burst=19, tenant_per_second=1e6, tenant_burst=19
        )
    )
    tenant_id = uuid.UUID(tenant.tenant_id)
    try:
        figures = {}
        for name, limiter, count in (("busy", busy, 20_000), ("take", one_by_one, 500)):
            principal = Principal(tenant_id, Role.owner, "api_key", f"limiter-{name}")
            await limiter.admit(runtime, principal)  # the first statement opens a connection
            started = time.perf_counter()
            for _ in range(count):
                await limiter.admit(runtime, principal)
            figures[name] = (time.perf_counter() - started) / count
        # Beside it, the cheapest statement on a pooled connection: this machine's round trip.
        started = time.perf_counter()
        for _ in range(500):
            async with runtime.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        figures["select_1"] = (time.perf_counter() - started) / 500
    finally:
        await runtime.close()
    return {
        "rate_limit_us_per_request": round(figures["busy"] * 1e6, 1),
        "rate_limit_take_ms": round(figures["take"] * 1e3, 3),
        "baseline_select_1_ms": round(figures["select_1"] * 1e3, 3),
    }


# -- the run -----------------------------------------------------------------------------------


def run(home: Path, size: Size, api_workers: int) -> dict[str, Any]:
    bench = start_database(home)
    tenant, setup_seconds = seed(bench, size)
    mix = request_mix(tenant, dt.date.today())
    recorded = asyncio.run(record_statements(bench, tenant, mix))
    statements = recorded.statements
    statements_file = home / "ceiling-statements.pickle"
    statements_file.write_bytes(pickle.dumps(statements))
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    api_workers = servable_workers(api_workers)  # the ceiling gets as many processes
    api, api_url = start_valdrix_serve(
        bench, workers=api_workers, log=home / "serve.log", **raised_rate_limits()
    )
    ceiling, ceiling_url = start_ceiling(bench, statements_file, api_workers)
    try:
        paths = list(mix.values())
        at_20 = measure_load(api_url, paths, headers, size, CONNECTIONS)
        replayed = [f"/replay/{name}" for name in mix]
        ceiling_run = measure_load(ceiling_url, replayed, {}, size, CONNECTIONS)
        at_100 = measure_load(api_url, paths, headers, size, MORE_CONNECTIONS)
        stop(ceiling)
        watchers = asyncio.run(measure_watchers(bench, api_url, tenant, headers, size))
        by_kind = per_kind(mix, recorded, at_20, ceiling_run, at_100)
    finally:
        stop(api)
        stop(ceiling)
    limiter = asyncio.run(measure_rate_limiter(bench, tenant))
    return {
        "p50_ms": at_20.p(0.5),
        "p95_ms": at_20.p(0.95),
        "p99_ms": at_20.p(0.99),
        "p95_ms_at_100": at_100.p(0.95),
        "p99_ms_at_100": at_100.p(0.99),
        "errors": at_20.errors + at_100.errors,
        "requests": at_20.requests + at_100.requests,
        "rps": round(at_20.rps, 1),
        "rps_at_100": round(at_100.rps, 1),
        "ceiling_rps": round(ceiling_run.rps, 1),
        "ceiling_p95_ms": ceiling_run.p(0.95),
        "ceiling_errors": ceiling_run.errors,
        "ratio": round(at_20.rps / ceiling_run.rps, 2) if ceiling_run.rps else 0.0,
        **watchers,
        **limiter,
        "statements_per_request": round(
            statistics.mean(len(recorded) for recorded in statements.values()), 1
        ),
        "api_workers": api_workers,
        "setup_seconds": round(setup_seconds, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "load_client": "wrk" if shutil.which("wrk") else "httpx",
        "by_kind": by_kind,
    }


def per_kind(
    mix: dict[str, str],
    recorded: Recorded,
    at_20: LoadRun,
    ceiling_run: LoadRun,
    at_100: LoadRun,
) -> dict[str, dict[str, float]]:
    """Per request of the mix: client p50 and p95 at 20 and at 100 connections, the ceiling's at
    20, and (in-process, one at a time) the request's time in the app and in SQL."""

    figures = {}
    for name, path in mix.items():
        replay = f"/replay/{name}"
        figures[name] = {
            "p50_ms": at_20.p(0.5, path),
            "p95_ms": at_20.p(0.95, path),
            "p95_ms_at_100": at_100.p(0.95, path),
            "ceiling_p50_ms": ceiling_run.p(0.5, replay),
            "ceiling_p95_ms": ceiling_run.p(0.95, replay),
            "app_ms": recorded.app_ms[name],
            "sql_ms": recorded.sql_ms[name],
            "statements": len(recorded.statements[name]),
        }
    return figures


def report(figures: dict[str, Any], size: Size) -> None:
    print(
        f"{'request':26} {'p50':>7} {'p95':>7} {'p95@100':>8} {'ceil p50':>8} {'ceil p95':>8}"
        f" {'app':>7} {'sql':>7} statements (ms; app and sql: in-process, one at a time)"
    )
    for name, kind in figures["by_kind"].items():
        print(
            f"{name:26} {kind['p50_ms']:7.1f} {kind['p95_ms']:7.1f} {kind['p95_ms_at_100']:8.1f}"
            f" {kind['ceiling_p50_ms']:8.1f} {kind['ceiling_p95_ms']:8.1f} {kind['app_ms']:7.1f}"
            f" {kind['sql_ms']:7.1f} {kind['statements']:3}"
        )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    many = figures[f"db_queries_per_s_{size.watchers}_watchers"]
    one = figures["db_queries_per_s_1_watcher"]
    print(
        f"at {CONNECTIONS} connections: p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms"
        f" ({verdict(figures['p95_ms'] < TARGETS['p95_ms'])}: < 100), p99 {figures['p99_ms']} ms,"
        f" {figures['rps']} requests/s"
    )
    print(
        f"at {MORE_CONNECTIONS} connections: p95 {figures['p95_ms_at_100']} ms"
        f" ({verdict(figures['p95_ms_at_100'] < TARGETS['p95_ms_at_100'])}: < 250),"
        f" {figures['rps_at_100']} requests/s; errors {figures['errors']} of"
        f" {figures['requests']} ({verdict(figures['errors'] == 0)}: 0)"
    )
    print(
        f"ceiling (same SQL, same driver, minimal FastAPI): {figures['ceiling_rps']} requests/s;"
        f" ratio {figures['ratio']} ({verdict(figures['ratio'] >= TARGETS['ratio'])}: >= 0.5);"
        f" {figures['statements_per_request']} statements per request"
    )
    print(
        f"watchers: {one} database transactions/s with 1, {many} with {size.watchers}"
        f" ({verdict(many <= TARGETS['watchers_x'] * max(one, 1e-9))}: within 2x);"
        f" {figures['sse_watchers']} receiving, {figures['sse_errors']} failed"
    )
    print(
        f"rate limiter: {figures['rate_limit_us_per_request']} us per request of a busy key,"
        f" {figures['rate_limit_take_ms']} ms per statement taking tokens (SELECT 1 on a pooled"
        f" connection: {figures['baseline_select_1_ms']} ms)"
    )
    print(
        f"{figures['api_workers']} API process(es), as many for the ceiling; load from"
        f" {figures['load_client']};"
        f" seeded in {figures['setup_seconds']} s;"
        f" 1-minute load average {figures['load_average']} on {os.cpu_count()} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--api-workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, help="length of each load phase")
    parser.add_argument("--watchers", type=int, help="watchers of the scan's events")
    args = parser.parse_args()
    configure_logging(json_output=False, level="WARNING")
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    size = SIZES["quick" if args.quick else "default"]
    if args.seconds:
        size = Size(**{**size.__dict__, "seconds": args.seconds})
    if args.watchers:
        size = Size(**{**size.__dict__, "watchers": args.watchers})
    with tempfile.TemporaryDirectory(prefix="valdrix-bench-") as tmp:
        home = Path(tmp)
        try:
            figures = run(home, size, args.api_workers)
        finally:
            stop_embedded_database(home)
    report(figures, size)
    print(json.dumps({"benchmark": "api_load", **figures}), flush=True)


if __name__ == "__main__":
    main()
