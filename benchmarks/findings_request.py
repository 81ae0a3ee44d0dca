"""What one ``GET /api/v1/findings?limit=50`` costs the API process, timed inside the server.

    python benchmarks/findings_request.py [--quick] [--findings N] [--requests N]
                                          [--baseline-src DIR] [--profile FILE]

The tenant of ``dashboard.py`` (10,000 findings; ``--quick``: 2,000) is loaded with ``COPY``.
The app runs in a child process (uvicorn, one process, lifespan on, as ``valdrix serve``) with
a thin ASGI wrapper that records, for each request, its wall time from the first byte received
to the last byte sent and the process CPU time spent meanwhile. The parent sends the requests
one at a time over a keep-alive connection with the owner's API key, so each request has the
process to itself and the CPU time is that request's.

``--baseline-src DIR`` starts a second server on the same database from another source tree
(e.g. the main branch's ``src``) and alternates requests between the two, so both see the same
machine load; ``ratio`` is this tree's median server time over the baseline's. ``--profile
FILE`` runs this tree's server under cProfile and prints where its time went.

Figures are printed for humans, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_stack import (  # noqa: E402
    create_tenant_with_connection,
    load_findings,
    quiet_settings,
    start_database,
    stop,
)

from valdrix.kit.embedded import DatabaseUrls, stop_embedded_database  # noqa: E402
from valdrix.simulator.aws_server import free_port  # noqa: E402

SIZES = {"default": (10_000, 400), "quick": (2_000, 100)}
WARM_UP = 30
PATH = "/api/v1/findings?limit=50"
TIMINGS_PATH = "/__bench/timings"
BENCH_HEADER = b"x-valdrix-bench"


def timed(app: Any) -> Any:
    """``app`` recording each HTTP request's wall and CPU milliseconds; ``TIMINGS_PATH`` hands
    them over (and forgets them)."""
    samples: list[tuple[float, float]] = []

    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if (BENCH_HEADER, b"1") not in scope["headers"]:
            # Another program's client that found this loopback port (the machine is shared):
            # turned away, so neither the timings nor the profile count it.
            await send({"type": "http.response.start", "status": 421, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["path"] == TIMINGS_PATH:
            body = json.dumps(samples).encode()
            samples.clear()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        wall, cpu = time.perf_counter(), time.process_time()

        async def timed_send(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                samples.append(
                    ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
                )

        await app(scope, receive, timed_send)

    return wrapper


def serve_child(bench: dict[str, Any]) -> None:
    import cProfile

    import uvicorn

    from valdrix.app import create_app
    from valdrix.runtime import open_runtime
    from valdrix.wiring import wire

    wire()
    urls = DatabaseUrls(bench["app"], bench["owner"])
    runtime = open_runtime(quiet_settings(Path(bench["home"]), urls, bench["keys"]), urls)
    profiler = cProfile.Profile() if bench.get("profile") else None
    # uvicorn re-raises SIGTERM after its graceful shutdown: end like Ctrl-C, so the profile
    # below is written.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if profiler is not None:
        profiler.enable()
    try:
        uvicorn.run(
            timed(create_app(runtime)), host="127.0.0.1", port=int(bench["port"]),
            log_level="warning", access_log=False,
        )  # fmt: skip
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(bench["profile"])


def start_server(bench: dict[str, Any], src: Path) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(  # noqa: S603 (this script, our own arguments)
        [sys.executable, __file__, "--serve-child", json.dumps(bench)],
        env={**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{REPO_ROOT}"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            url = f"http://127.0.0.1:{bench['port']}/healthz"
            if httpx.get(url, headers={BENCH_HEADER.decode(): "1"}).is_success:
                return child
        except httpx.TransportError:
            pass
        if child.poll() is not None:
            raise SystemExit("a server did not start")
        time.sleep(0.2)
    child.terminate()
    raise SystemExit("a server did not answer within 60 s")


def measure(ports: dict[str, int], api_key: str, requests: int) -> dict[str, Any]:
    """Requests alternating between the servers; each server's own timings of them."""
    clients = {
        name: httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            headers={"Authorization": f"Bearer {api_key}", BENCH_HEADER.decode(): "1"},
        )
        for name, port in ports.items()
    }
    client_ms: dict[str, list[float]] = {name: [] for name in ports}
    try:
        for round_ in range(WARM_UP + requests):
            if round_ == WARM_UP:
                for client in clients.values():
                    client.get(TIMINGS_PATH)
            for name, client in clients.items():
                started = time.perf_counter()
                response = client.get(PATH)
                if response.status_code != 200 or len(response.json()) != 50:
                    raise SystemExit(f"{name}: {response.status_code} {response.text[:300]}")
                if round_ >= WARM_UP:
                    client_ms[name].append((time.perf_counter() - started) * 1000)
        figures: dict[str, Any] = {}
        for name, client in clients.items():
            server = client.get(TIMINGS_PATH).json()
            prefix = "" if name == "candidate" else "baseline_"
            figures[f"{prefix}server_ms_p50"] = round(statistics.median(s[0] for s in server), 2)
            figures[f"{prefix}server_cpu_ms_p50"] = round(
                statistics.median(s[1] for s in server), 2
            )
            figures[f"{prefix}client_ms_p50"] = round(statistics.median(client_ms[name]), 2)
        return figures
    finally:
        for client in clients.values():
            client.close()


def print_profile(path: str) -> None:
    import pstats

    stats = pstats.Stats(path)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)


def run(home: Path, args: argparse.Namespace, findings: int, requests: int) -> dict[str, Any]:
    database = start_database(home)
    bench: dict[str, Any] = {
        "home": str(home), "app": database.urls.app, "owner": database.urls.owner,
        "keys": database.encryption_keys,
    }  # fmt: skip
    import asyncio

    tenant = asyncio.run(create_tenant_with_connection(database))
    load_findings(database, [(tenant.tenant_id, tenant.connection_id, findings)])
    sources = {"candidate": REPO_ROOT / "src"}
    if args.baseline_src:
        sources["baseline"] = Path(args.baseline_src).resolve()
    ports, servers = {}, []
    try:
        for name, src in sources.items():
            ports[name] = free_port()
            profile = args.profile if name == "candidate" else None
            servers.append(start_server({**bench, "port": ports[name], "profile": profile}, src))
        figures = measure(ports, tenant.api_key, requests)
    finally:
        for server in servers:
            stop(server)
    if "baseline_server_ms_p50" in figures:
        figures["ratio"] = round(figures["server_ms_p50"] / figures["baseline_server_ms_p50"], 2)
    figures.update(findings=findings, requests=requests, load_average=os.getloadavg()[0])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--findings", type=int, help="findings in the tenant")
    parser.add_argument("--requests", type=int, help="timed requests per server")
    parser.add_argument("--baseline-src", help="source tree of a second server to compare with")
    parser.add_argument("--profile", help="write this tree's server's cProfile stats here")
    parser.add_argument("--serve-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from valdrix.logging import configure_logging

    configure_logging(json_output=False, level="WARNING")
    if args.serve_child:
        serve_child(json.loads(args.serve_child))
        return
    findings, requests = SIZES["quick" if args.quick else "default"]
    findings, requests = args.findings or findings, args.requests or requests
    with tempfile.TemporaryDirectory(prefix="valdrix-bench-") as tmp:
        try:
            figures = run(Path(tmp), args, findings, requests)
        finally:
            stop_embedded_database(Path(tmp))
    if args.profile:
        print_profile(args.profile)
    for prefix, label in (("", "this tree"), ("baseline_", "baseline")):
        if f"{prefix}server_ms_p50" in figures:
            print(
                f"{label:9} GET {PATH}: server {figures[f'{prefix}server_ms_p50']} ms"
                f" (CPU {figures[f'{prefix}server_cpu_ms_p50']} ms), client"
                f" {figures[f'{prefix}client_ms_p50']} ms (medians of {requests})"
            )
    print(json.dumps({"benchmark": "findings_request", **figures}), flush=True)


if __name__ == "__main__":
    main()
