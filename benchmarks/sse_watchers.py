"""Many watchers of one scan's event stream, and what they cost the database.

    python benchmarks/sse_watchers.py [--quick] [--watchers N] [--seconds S] [--baseline-src DIR]

As a module, ``Watchers`` opens N server-sent-event streams of ``/api/v1/scans/{id}/events``
at once and keeps what each receives (the API load benchmark and the tests use it).

As a script: on a private embedded PostgreSQL, a tenant's scan is kept running by a writer
that adds one unit's events every 0.2 s the way the scan engine does
(``ScanEventRepository.add_many``, one transaction each). An API process (uvicorn, lifespan on,
as ``valdrix serve``) serves 1 watcher, then N (default 500; ``--quick``: 100), for S seconds
each (default 10; ``--quick``: 5); the figure is the database's committed transactions per
second over each window (``pg_stat_database.xact_commit``, every client's, the writer's 5/s
included). ``--baseline-src DIR`` measures another source tree's server the same way in the
same run (e.g. the main branch's ``src``); ``ratio`` is transactions per second with N watchers
over those with 1.

Figures are printed for humans, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

SIZES = {"default": (500, 10.0), "quick": (100, 5.0)}
WRITE_EVERY_SECONDS = 0.2
# Streams being opened at once: each opening is a request with its own transaction, and a
# server's pool (20 connections) would time out a crowd of them on a small machine.
OPENING_AT_ONCE = 20


@dataclass
class Watcher:
    """One stream: the ``event:`` names it has received, in order, and whether it has ended."""

    events: list[str] = field(default_factory=list)
    ended: bool = False  # the server ended the stream
    error: str | None = None  # it could not be opened, was refused or was broken off


class Watchers:
    """``count`` streams of ``path`` on ``client``'s server, opened ``opening_at_once`` at a
    time, read in the background until the block ends (a failed stream keeps its error)::

        async with Watchers(client, f"/api/v1/scans/{scan_id}/events", headers, 500) as w:
            await w.wait_until(lambda: all(x.events for x in w.watchers), within=30)
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        path: str,
        headers: dict[str, str],
        count: int,
        *,
        opening_at_once: int = OPENING_AT_ONCE,
    ) -> None:
        self.client, self.path, self.headers = client, path, headers
        self.watchers = [Watcher() for _ in range(count)]
        self._tasks: list[asyncio.Task[None]] = []
        self._opened = 0
        self._opening = asyncio.Semaphore(opening_at_once)

    async def __aenter__(self) -> Watchers:
        self._tasks = [asyncio.create_task(self._follow(w)) for w in self.watchers]
        await self.wait_until(lambda: self._opened == len(self.watchers), within=120)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_until(self, done: Any, within: float) -> None:
        """Until ``done()`` is true; TimeoutError after ``within`` seconds."""
        async with asyncio.timeout(within):
            while not done():
                for task in self._tasks:
                    if task.done() and (error := task.exception()) is not None:
                        raise error
                await asyncio.sleep(0.05)

    async def _follow(self, watcher: Watcher) -> None:
        request = self.client.build_request("GET", self.path, headers=self.headers)
        try:
            async with self._opening:
                response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            watcher.error = f"opening: {exc!r}"
            self._opened += 1
            return
        self._opened += 1
        try:
            if response.status_code != 200:
                watcher.error = f"answered {response.status_code}"
                return
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    watcher.events.append(line.partition(":")[2].strip())
            watcher.ended = True
        except httpx.HTTPError as exc:  # the server broke the stream off
            watcher.error = repr(exc)
        finally:
            await response.aclose()


# --- the benchmark -----------------------------------------------------------------------------


async def keep_scan_running(bench: dict[str, Any], stop: asyncio.Event) -> None:
    """Mark the scan running, then write one unit's events every ``WRITE_EVERY_SECONDS``."""
    from benchmarks.bench_stack import quiet_settings

    from valdrix.kit.db import unit_of_work
    from valdrix.kit.embedded import DatabaseUrls
    from valdrix.runtime import open_runtime
    from valdrix.scanning.repository import ScanEventRepository, ScanRepository

    urls = DatabaseUrls(bench["app"], bench["owner"])
    runtime = open_runtime(quiet_settings(Path(bench["home"]), urls, bench["keys"]), urls)
    tenant_id, scan_id = uuid.UUID(bench["tenant_id"]), uuid.UUID(bench["scan_id"])
    try:
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            scan = await ScanRepository(session).get(scan_id)
            assert scan is not None
            scan.status = "running"
        n = 0
        while not stop.is_set():
            n += 1
            async with unit_of_work(runtime.sessions, tenant_id) as session:
                await ScanEventRepository(session).add_many(
                    tenant_id, scan_id,
                    [("unit.finished", {"region": "us-east-1", "detector": f"d{n}"})],
                    datetime.now(UTC),
                )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WRITE_EVERY_SECONDS)
    finally:
        await runtime.close()


def commits(superuser: str) -> int:
    import psycopg

    with psycopg.connect(superuser, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def commits_per_second(
    bench: dict[str, Any], base_url: str, watchers: int, seconds: float
) -> tuple[float, int, int]:
    """Database commits per second while ``watchers`` follow the scan; streams that failed;
    the fewest events any stream received."""
    path = f"/api/v1/scans/{bench['scan_id']}/events"
    # The server is findings_request.py's, which answers only requests with its header.
    headers = {"Authorization": f"Bearer {bench['api_key']}", "x-valdrix-bench": "1"}
    limits = httpx.Limits(max_connections=watchers + 10)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client,
        Watchers(client, path, headers, watchers) as opened,
    ):
        await opened.wait_until(
            lambda: all(w.events or w.error for w in opened.watchers), within=120
        )
        # pg_stat_database is updated when a backend reports, at most once a second.
        await asyncio.sleep(1.5)
        before, started = commits(bench["superuser"]), time.monotonic()
        await asyncio.sleep(seconds)
        await asyncio.sleep(1.5)
        after, elapsed = commits(bench["superuser"]), time.monotonic() - started
        failed = sum(1 for w in opened.watchers if w.error)
        received = min(len(w.events) for w in opened.watchers)
    return (after - before) / elapsed, failed, received


async def measure(
    bench: dict[str, Any], ports: dict[str, int], count: int, seconds: float
) -> dict[str, float]:
    stop = asyncio.Event()
    writer = asyncio.create_task(keep_scan_running(bench, stop))
    figures: dict[str, float] = {}
    try:
        for name, port in ports.items():
            prefix = "" if name == "candidate" else "baseline_"
            base_url = f"http://127.0.0.1:{port}"
            for watchers in (1, count):
                print(f"{name}: {watchers} watcher(s)", file=sys.stderr, flush=True)
                rate, failed, received = await commits_per_second(
                    bench, base_url, watchers, seconds
                )
                figures[f"{prefix}db_commits_per_s_{watchers}_watchers"] = round(rate, 1)
                figures[f"{prefix}failed_streams_{watchers}_watchers"] = failed
                # Each stream should have had the writer's events of the whole window.
                figures[f"{prefix}fewest_events_{watchers}_watchers"] = received
    finally:
        stop.set()
        await writer
    return figures


def run(home: Path, args: argparse.Namespace, count: int, seconds: float) -> dict[str, Any]:
    from benchmarks.bench_stack import create_tenant_with_connection, start_database, stop
    from benchmarks.findings_request import start_server

    from valdrix.simulator.aws_server import free_port

    database = start_database(home)
    bench: dict[str, Any] = {
        "home": str(home), "app": database.urls.app, "owner": database.urls.owner,
        "keys": database.encryption_keys, "superuser": database.superuser,
    }  # fmt: skip
    # six queued scans; the first is watched
    tenant = asyncio.run(create_tenant_with_connection(database))
    bench.update(tenant_id=tenant.tenant_id, api_key=tenant.api_key, scan_id=tenant.scan_ids[0])
    sources = {"candidate": REPO_ROOT / "src"}
    if args.baseline_src:
        sources["baseline"] = Path(args.baseline_src).resolve()
    ports, servers = {}, []
    try:
        for name, src in sources.items():
            ports[name] = free_port()
            servers.append(start_server({**bench, "port": ports[name]}, src))
        figures = asyncio.run(measure(bench, ports, count, seconds))
    finally:
        for server in servers:
            stop(server)
    figures["ratio"] = round(
        figures[f"db_commits_per_s_{count}_watchers"] / figures["db_commits_per_s_1_watchers"], 2
    )
    return {"sse_watchers": count, "seconds": seconds, **figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--watchers", type=int, help="watchers in the large case")
    parser.add_argument("--seconds", type=float, help="length of each measured window")
    parser.add_argument("--baseline-src", help="source tree of a second server to compare with")
    args = parser.parse_args()
    from valdrix.kit.embedded import stop_embedded_database
    from valdrix.logging import configure_logging

    configure_logging(json_output=False, level="WARNING")
    count, seconds = SIZES["quick" if args.quick else "default"]
    count, seconds = args.watchers or count, args.seconds or seconds
    with tempfile.TemporaryDirectory(prefix="valdrix-bench-") as tmp:
        try:
            figures = run(Path(tmp), args, count, seconds)
        finally:
            stop_embedded_database(Path(tmp))
    for prefix, label in (("", "this tree"), ("baseline_", "baseline")):
        if f"{prefix}db_commits_per_s_1_watchers" in figures:
            print(
                f"{label:9} database commits/s: {figures[f'{prefix}db_commits_per_s_1_watchers']}"
                f" with 1 watcher, {figures[f'{prefix}db_commits_per_s_{count}_watchers']} with"
                f" {count} (a writer adds {1 / WRITE_EVERY_SECONDS:.0f} events/s)"
            )
    print(json.dumps({"benchmark": "sse_watchers", **figures}), flush=True)


if __name__ == "__main__":
    main()
