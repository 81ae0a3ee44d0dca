"""The dashboard's two busiest pages with 10,000 findings in the tenant: the overview and the
findings list, served by ``valdrix serve`` on a private embedded PostgreSQL.

    python benchmarks/dashboard.py [--quick] [--findings N] [--requests N]

A tenant gets one AWS connection and 10,000 findings (``--quick``: 2,000) spread like a real
account's: 20 detectors, 12 regions, costs from cents to hundreds of dollars (log-normal), about
80 % open and the rest snoozed, dismissed or resolved, one in five sharing a cost part with
another finding (so the totals' count-each-dollar-once work and the hiding of an imported
recommendation inside the finding that prices the same cost are real), and six scans; and a
year of daily costs up to today (400 records a day: 30 services, 4 regions, 5 accounts). They
are written with ``COPY`` and SQL (the setup is timed apart and not part of the figures).

The app runs in a child process (``valdrix serve``, the app role under row-level security),
with the API rate limits raised: the benchmark's ~1,000 requests in a few seconds from one
signed-in person are a load test, not a person. The parent signs in as the tenant's owner and,
over one keep-alive connection on loopback, asks for ``/`` and ``/findings`` in turn, N times
each (default 300; ``--quick``: 60) after a warm-up, and after each overview the three JSON
requests its charts make (open waste over 30 days, spend per day over 45 days, that window's
restatements), each timed on its own. The app sends no ``Server-Timing``, so the times are the
client's: request sent to body read, which on loopback is the server's time plus well under a
millisecond. Target: p95 under 100 ms for each page (and each chart's data) on a 2-core machine.

Baseline, measured in the same run the same way: ``GET /api/v1/findings?limit=50``, the JSON
behind the findings page (same service, same rows); ``ratio`` is the findings page's p95 over
the API's, the cost of rendering the page on top of reading its data.

Figures are printed for humans, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_stack import (
    BenchTenant,
    create_tenant_with_connection,
    load_findings,
    percentile,
    raised_rate_limits,
    start_database,
    start_valdrix_serve,
    stop,
    store_cost_records,
)

from valdrix.kit.embedded import stop_embedded_database
from valdrix.logging import configure_logging

SIZES = {"default": (10_000, 300), "quick": (2_000, 60)}
WARM_UP = 20
TARGET_P95_MS = 100.0
COST_RECORDS_PER_DAY = 400


def utc_today() -> dt.date:
    """Today as the server counts days (UTC), whatever this machine's zone."""
    return dt.datetime.now(dt.UTC).date()


def _chart_paths(today: dt.date) -> dict[str, str]:
    """The JSON the overview's charts ask for once the page is shown (``static/charts.js``)."""
    window = f"start={today - dt.timedelta(days=44)}&end={today + dt.timedelta(days=1)}"
    return {
        "waste_history": "/api/v1/findings/waste-history?days=30",
        "spend": f"/api/v1/costs?group_by=day&{window}",
        "restatements": f"/api/v1/costs/adjustments?limit=500&{window}",
    }


def time_pages(base_url: str, tenant: BenchTenant, requests: int) -> dict[str, list[float]]:
    paths = {
        "overview": "/",
        **_chart_paths(utc_today()),
        "findings": "/findings",
        "findings_api": "/api/v1/findings?limit=50",
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = client.post(
            "/api/v1/auth/login", json={"email": tenant.email, "password": tenant.password}
        )
        login.raise_for_status()
        for round_ in range(WARM_UP + requests):
            for name, path in paths.items():
                started = time.perf_counter()
                response = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
                if round_ >= WARM_UP:
                    times[name].append(elapsed)
    return times


def run(home: Path, findings: int, requests: int) -> dict[str, Any]:
    bench = start_database(home)
    tenant = asyncio.run(create_tenant_with_connection(bench))
    setup_seconds = load_findings(bench, [(tenant.tenant_id, tenant.connection_id, findings)])
    first_day = utc_today() - dt.timedelta(days=364)
    setup_seconds += store_cost_records(
        bench.superuser, tenant.tenant_id, 365 * COST_RECORDS_PER_DAY, first_day
    )
    server, url = start_valdrix_serve(bench, **raised_rate_limits())
    try:
        times = time_pages(url, tenant, requests)
    finally:
        stop(server)
    figures: dict[str, Any] = {"findings": findings, "requests": requests}
    for name, samples in times.items():
        prefix = "baseline_findings_api" if name == "findings_api" else name
        figures[f"{prefix}_p50_ms"] = round(statistics.median(samples), 1)
        figures[f"{prefix}_p95_ms"] = round(percentile(samples, 0.95), 1)
    figures["ratio"] = round(
        figures["findings_p95_ms"] / figures["baseline_findings_api_p95_ms"], 2
    )
    figures["setup_seconds"] = round(setup_seconds, 1)
    figures["load_average"] = round(os.getloadavg()[0], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--findings", type=int, help="findings in the tenant")
    parser.add_argument("--requests", type=int, help="timed requests of each page")
    args = parser.parse_args()
    configure_logging(json_output=False, level="WARNING")
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    findings, requests = SIZES["quick" if args.quick else "default"]
    findings, requests = args.findings or findings, args.requests or requests
    with tempfile.TemporaryDirectory(prefix="valdrix-bench-") as tmp:
        home = Path(tmp)
        try:
            figures = run(home, findings, requests)
        finally:
            stop_embedded_database(home)
    shown = {"overview": "/", **_chart_paths(utc_today()), "findings": "/findings"}
    for page, path in shown.items():
        verdict = "under" if figures[f"{page}_p95_ms"] < TARGET_P95_MS else "OVER"
        p50, p95 = figures[f"{page}_p50_ms"], figures[f"{page}_p95_ms"]
        print(f"{path[:60]:60} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  ({verdict} the target)")
    print(
        f"GET /api/v1/findings?limit=50 (baseline) p50 {figures['baseline_findings_api_p50_ms']} ms"
        f"  p95 {figures['baseline_findings_api_p95_ms']} ms; findings page / API p95:"
        f" {figures['ratio']}"
    )
    print(
        f"{findings:,} findings (loaded in {figures['setup_seconds']} s), {requests} requests of"
        f" each, 1-minute load average {figures['load_average']} on {os.cpu_count()} cores"
    )
    print(json.dumps({"benchmark": "dashboard", **figures}), flush=True)


if __name__ == "__main__":
    main()
