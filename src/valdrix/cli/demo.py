"""``valdrix demo``: everything on one machine, with a demo tenant and a simulated AWS account
full of waste, scanned once through a worker before the API serves the findings."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from pydantic import SecretStr
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.cli.common import (
    fail,
    print_json,
    readable_errors,
    serve_api,
    settings_for_command,
)
from valdrix.cli.demo_analysis import finished_analysis, print_analysis, start_demo_analyst
from valdrix.cli.demo_services import publish_demo_services, withdraw_demo_services
from valdrix.cli.scanning import print_summary_table
from valdrix.cli.tenants import create_tenant_with_owner_key
from valdrix.config import Settings, load_settings
from valdrix.connections import service as connections
from valdrix.connections.models import CloudConnection
from valdrix.jobs.service import push_back_schedule
from valdrix.kit.crypto import KeyRing
from valdrix.kit.db import unit_of_work
from valdrix.kit.migrator import upgrade_to_head
from valdrix.runtime import Runtime, database_urls, open_runtime
from valdrix.scanning import service as scanning
from valdrix.scanning.models import FINISHED_SCAN_STATUSES
from valdrix.scanning.schemas import ScanOut
from valdrix.scanning.summary import WasteSummary, waste_summary
from valdrix.simulator.aws_server import (
    REAL_AWS_ENV,
    SIMULATED_AWS_ENV,
    SimulatedAws,
    missing_simulator_module,
    start_simulated_aws,
)
from valdrix.simulator.demo_account import (
    DEMO_ACCOUNT_ID,
    DEMO_REGIONS,
    DEMO_ROLE_ARN,
    DEMO_THRESHOLDS,
    DemoAccount,
    seed_demo_account,
)
from valdrix.simulator.demo_costs import import_demo_costs
from valdrix.simulator.llm_server import SimulatedLLM
from valdrix.tenancy import api_keys, service
from valdrix.tenancy.auth import Principal
from valdrix.tenancy.models import Role, Tier

DEMO_TENANT_NAME = "Acme Corp (demo)"
DEMO_ADMIN_EMAIL = "admin@acme.example"
DEMO_CONNECTION_NAME = "Simulated AWS (demo)"
STATE_FILE = "demo.json"
SCAN_POLL_SECONDS = 0.25
# How long a queued scan may wait for the worker to pick it up, on top of the scan's budget.
SCAN_PICKUP_SECONDS = 60.0


@dataclass
class _Background:
    """What the demo runs besides the API, stopped when it ends: the worker, then AWS."""

    simulator: SimulatedAws
    home: Path
    worker: subprocess.Popen[bytes] | None = None
    analyst: SimulatedLLM | None = None

    def stop(self) -> None:
        withdraw_demo_services(self.home)
        if self.worker is not None:
            _stop(self.worker)
        self.simulator.stop()
        if self.analyst is not None:
            self.analyst.stop()


@readable_errors
def demo(
    as_json: bool = typer.Option(
        False, "--json", help="First print one JSON line with the URL, credentials and scan."
    ),
    once: bool = typer.Option(False, "--once", help="Set up, scan, print the summary and exit."),
    host: str = typer.Option("127.0.0.1", help="Interface for the API."),
    port: int = typer.Option(8000, help="API port (another free port is used if it is taken)."),
) -> None:
    """Run Valdrix on this machine: embedded database, demo tenant, admin, API key, a simulated
    AWS account scanned by a worker, the scan's LLM analysis, and the API."""
    missing = missing_simulator_module()
    if missing is not None:
        fail(
            f"the demo's simulated AWS account is not installed (no module named {missing!r}): "
            "install valdrix[demo] (from a clone: pip install -e '.[demo]')"
        )
    key_file_existed = load_settings().key_file.exists()
    settings = settings_for_command(demo=True)
    out = Console(stderr=as_json, soft_wrap=True)
    key_file_created = not settings.encryption_keys and not key_file_existed
    # /metrics stays closed without a token, the demo's too: it makes one unless one is set.
    metrics_token = settings.metrics.token or SecretStr(secrets.token_hex(32))
    settings = settings.updated(metrics={"token": metrics_token})
    _use_simulated_aws_env()
    background = _Background(start_simulated_aws(), settings.home)
    try:
        endpoint_url = background.simulator.endpoint_url
        settings = settings.updated(aws={"endpoint_url": endpoint_url})
        settings, background.analyst = start_demo_analyst(settings)
        worker_metrics_port = None if once else _free_port(settings.api.host)
        with ThreadPoolExecutor(max_workers=1) as pool:
            # The simulator fills up while the database starts and migrates.
            seeding = pool.submit(seed_demo_account, endpoint_url)
            upgrade_to_head(database_urls(settings).owner)
            password = secrets.token_urlsafe(12)
            credentials = asyncio.run(_prepare_demo_tenant(settings, password))
            # It boots while the simulator fills up; it has nothing to scan until then (any
            # scheduled scan of the demo account is held back until the first scan is queued).
            background.worker = _start_worker(settings, worker_metrics_port)
            account = seeding.result()
        # Workers started by hand on this home find the simulator (and analyst) here.
        publish_demo_services(
            settings.home,
            _services_environment(settings, simulated_analyst=background.analyst is not None),
        )
        tenant_id = uuid.UUID(credentials["tenant_id"])
        if key_file_created:
            out.print(f"created encryption key file {settings.key_file} (mode 0600) for the demo")
        serving: dict[str, str] = {}
        if not once:
            port = port if _port_is_free(host, port) else _free_port(host)
            serving = _serving(settings, f"http://{host}:{port}", worker_metrics_port)
        _print_welcome(out, settings, serving, credentials, account)
        worker_metrics = (
            f"; metrics {serving['worker_metrics_url']}" if "worker_metrics_url" in serving else ""
        )
        out.print(
            f"  worker      pid {background.worker.pid} (valdrix worker: scans, schedules"
            f"{worker_metrics})"
        )
        connection_id, scan_id = asyncio.run(_queue_first_scan(settings, tenant_id))
        out.print(f"  scanning    {', '.join(account.regions)} through the worker (scan {scan_id})")
        scan, waste = asyncio.run(_finished_scan(settings, tenant_id, scan_id, background.worker))
        analysis = asyncio.run(finished_analysis(settings, tenant_id, scan_id))
        if as_json:
            print_json(
                {
                    **serving,
                    **credentials,
                    "aws_endpoint_url": endpoint_url,
                    "aws_account_id": DEMO_ACCOUNT_ID,
                    "aws_regions": list(account.regions),
                    "seeded_resources": len(account.resources),
                    "connection_id": str(connection_id),
                    "scan_id": str(scan.id),
                    "scan_status": scan.status.value,
                    "scan": scan.model_dump(mode="json"),
                    "summary": _summary(waste),
                    "analysis": analysis.model_dump(mode="json") if analysis else None,
                }
            )
        _print_scan(out, scan, waste)
        print_analysis(out, analysis, simulated=background.analyst is not None)
        if once:
            out.print("  --once      done: no API is served (run `valdrix demo` to serve one)")
            return
        api_url = serving["api_url"]
        out.print(
            f"  findings    curl -H 'Authorization: Bearer {credentials['api_key']}' "
            f"{api_url}/api/v1/findings"
        )
        serve_api(settings, host, port)
    finally:
        background.stop()
        # The simulator leaves millions of objects behind: spare the exit a last walk over them
        # all by the garbage collector (seconds, on a busy machine).
        gc.freeze()


def _use_simulated_aws_env() -> None:
    """The demo (and the worker it starts) talk to the simulator only, never as the user's AWS
    identity: dummy credentials replace whatever the environment holds."""
    for name in REAL_AWS_ENV:
        os.environ.pop(name, None)
    os.environ.update(SIMULATED_AWS_ENV)


def _serving(settings: Settings, api_url: str, worker_metrics_port: int | None) -> dict[str, str]:
    """Where the demo serves (only when it does): the API, and the worker's metrics."""
    assert settings.metrics.token is not None  # the demo makes one
    serving = {
        "dashboard_url": f"{api_url}/",
        "api_url": api_url,
        "docs_url": f"{api_url}/docs",
        "metrics_token": settings.metrics.token.get_secret_value(),
    }
    if worker_metrics_port is not None:
        serving["worker_metrics_url"] = f"http://{settings.api.host}:{worker_metrics_port}/metrics"
    return serving


def _print_welcome(
    out: Console,
    settings: Settings,
    serving: dict[str, str],
    credentials: dict[str, str],
    account: DemoAccount,
) -> None:
    out.print(f"[bold]Valdrix demo[/bold] — data in {settings.home}")
    if serving:
        api_url = serving["api_url"]
        out.print(
            f"  dashboard   {serving['dashboard_url']}   sign in as {DEMO_ADMIN_EMAIL} / "
            f"{credentials['admin_password']}"
        )
        out.print(f"  API         {api_url}   (docs: {serving['docs_url']})")
    out.print(f"  tenant      {credentials['tenant_id']}  ({DEMO_TENANT_NAME})")
    out.print(f"  admin       {DEMO_ADMIN_EMAIL} / {credentials['admin_password']}")
    out.print(f"  API key     {credentials['api_key']}")
    if serving:
        out.print(
            f"  metrics     curl -H 'Authorization: Bearer {serving['metrics_token']}' "
            f"{api_url}/metrics"
        )
        out.print(
            f"  try:        curl -H 'Authorization: Bearer {credentials['api_key']}' "
            f"{api_url}/api/v1/tenant"
        )
    out.print(
        f"  AWS         simulated account {DEMO_ACCOUNT_ID} at {account.endpoint_url}: "
        f"{len(account.resources)} resources in {', '.join(account.regions)} "
        f"(seeded in {account.seconds:.1f} s)"
    )
    out.print(
        "  note        age thresholds are 0 days on this connection: the simulator cannot "
        "backdate resources, so everything in it is minutes old"
    )


def _print_scan(out: Console, scan: ScanOut, waste: WasteSummary) -> None:
    took = (
        f" in {(scan.finished_at - scan.started_at).total_seconds():.1f} s"
        if scan.started_at and scan.finished_at
        else ""
    )
    reason = f" ({scan.status_reason})" if scan.status_reason else ""
    out.print(
        f"  scan        {scan.status.value}{took}{reason}: {scan.findings_count} findings, "
        f"{scan.resources_seen} resources seen"
    )
    print_summary_table(waste, to=out)


def _summary(waste: WasteSummary) -> dict[str, Any]:
    """Open findings and monthly dollars by detector (each finding's whole figure, and the part
    counted under other findings), and in total, each dollar counted once."""
    return {
        "by_detector": {
            row.detector: {
                "findings": row.open_findings,
                "monthly_usd": str(row.monthly_usd),
                "counted_elsewhere_usd": str(row.counted_elsewhere_usd),
            }
            for row in waste.by_detector
        },
        "total": {
            "findings": waste.open_findings,
            "monthly_usd": str(waste.monthly_usd),
            "gross_monthly_usd": str(waste.gross_usd),
            "overlap_monthly_usd": str(waste.overlap_usd),
        },
        "overlaps": [
            {
                "detector": row.detector,
                "counted_under": row.counted_under,
                "parts": row.parts,
                "monthly_usd": str(row.monthly_usd),
            }
            for row in waste.overlaps
        ],
    }


def _services_environment(settings: Settings, *, simulated_analyst: bool) -> dict[str, str]:
    """What a worker needs to scan the demo's account and analyse its scans: the simulator's
    endpoint and credentials, and the simulated analyst's settings when the demo runs one."""
    environment = {name: os.environ[name] for name in SIMULATED_AWS_ENV}
    if settings.aws.endpoint_url:
        environment["VALDRIX_AWS_ENDPOINT_URL"] = settings.aws.endpoint_url
    if simulated_analyst:  # (a provider of the user's own stays out of the file, key and all)
        environment.update(
            {name: value for name, value in os.environ.items() if name.startswith("VALDRIX_LLM_")}
        )
    return environment


def _start_worker(settings: Settings, metrics_port: int | None) -> subprocess.Popen[bytes]:
    """A separate worker process, as in production: the API process never runs jobs."""
    env = {**os.environ, "VALDRIX_DEMO": "true", "VALDRIX_HOME": str(settings.home)}
    env.pop("VALDRIX_METRICS_LISTEN", None)  # the API process serves metrics there
    if settings.aws.endpoint_url:
        env["VALDRIX_AWS_ENDPOINT_URL"] = settings.aws.endpoint_url
    # Killed, the demo must not leave its worker behind, scanning a simulator that is gone.
    args = ["worker", "--concurrency", "2", "--name", "demo", "--parent-pid", str(os.getpid())]
    if metrics_port is not None:
        # Its own port, behind the demo's metrics token like the API's /metrics.
        args += ["--metrics-port", str(metrics_port)]
        assert settings.metrics.token is not None
        env["VALDRIX_METRICS_TOKEN"] = settings.metrics.token.get_secret_value()
    return subprocess.Popen(  # noqa: S603 (this program, its own arguments)
        [sys.executable, "-m", "valdrix", *args],
        env=env,
        # It logs to stderr; the demo's stdout is its own (one JSON line with --json).
        stdout=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


async def _queue_first_scan(
    settings: Settings, tenant_id: uuid.UUID
) -> tuple[uuid.UUID, uuid.UUID]:
    """Register (or refresh) the connection to the simulated account, verify it, queue a scan."""
    runtime = open_runtime(settings)
    actor = service.system_principal(tenant_id, "demo")
    try:
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            connection = await _demo_connection(session, actor, runtime.keyring)
            await connections.verify_connection(session, actor, runtime.settings, connection.id)
            scan = await scanning.start_scan(
                session, actor, runtime.settings, connection_id=connection.id
            )
            return connection.id, scan.id
    finally:
        await runtime.close()


async def _demo_connection(
    session: AsyncSession, actor: Principal, keyring: KeyRing
) -> CloudConnection:
    """The connection of an earlier run, if any: each run seeds a fresh simulator behind the same
    role, so a resource seen again keeps its finding and one gone is resolved by the scan."""
    regions, thresholds = list(DEMO_REGIONS), DEMO_THRESHOLDS
    existing = await _existing_demo_connection(session, actor)
    if existing is not None:
        changes = {"regions": regions, "thresholds": thresholds}
        return await connections.update_connection(session, actor, existing.id, changes)
    return await connections.create_connection(
        session,
        actor,
        keyring,
        name=DEMO_CONNECTION_NAME,
        role_arn=DEMO_ROLE_ARN,
        external_id=connections.new_external_id(keyring, actor.tenant_id),
        # Only the seeded regions: discovering and scanning all of them would take far longer.
        regions=regions,
        thresholds=thresholds,
        tag_exclusions=[],
    )


async def _existing_demo_connection(
    session: AsyncSession, actor: Principal
) -> CloudConnection | None:
    active = await connections.list_connections(session, actor)
    return next((c for c in active if c.role_arn == DEMO_ROLE_ARN), None)


async def _finished_scan(
    settings: Settings, tenant_id: uuid.UUID, scan_id: uuid.UUID, worker: subprocess.Popen[bytes]
) -> tuple[ScanOut, WasteSummary]:
    """Wait for the worker to finish the scan; then the tenant's waste by detector."""
    runtime = open_runtime(settings)
    actor = service.system_principal(tenant_id, "demo")
    deadline = time.monotonic() + settings.scans.budget_seconds + SCAN_PICKUP_SECONDS
    try:
        while True:
            async with unit_of_work(runtime.sessions, tenant_id) as session:
                scan, _ = await scanning.get_scan(session, actor, scan_id)
                if scan.status in FINISHED_SCAN_STATUSES:
                    waste = await waste_summary(session, actor)
                    return ScanOut.model_validate(scan), waste
            if worker.poll() is not None:
                fail(f"the worker exited (code {worker.returncode}) before scan {scan_id} finished")
            if time.monotonic() > deadline:
                fail(f"scan {scan_id} did not finish in time: is the worker stuck?")
            await asyncio.sleep(SCAN_POLL_SECONDS)
    finally:
        await runtime.close()


async def _prepare_demo_tenant(settings: Settings, password: str) -> dict[str, str]:
    """Create the demo tenant once; on later runs reuse it with a fresh password and key."""
    runtime = open_runtime(settings)
    state_path = settings.home / STATE_FILE
    try:
        tenant_id = _remembered_tenant(state_path)
        if tenant_id and await _tenant_exists(runtime, tenant_id):
            key = await _reuse_tenant(runtime, tenant_id, password)
        else:
            created = await create_tenant_with_owner_key(
                runtime,
                name=DEMO_TENANT_NAME,
                tier=Tier.growth,
                admin_email=DEMO_ADMIN_EMAIL,
                admin_password=password,
            )
            tenant_id, key = uuid.UUID(str(created["tenant_id"])), str(created["api_key"])
            state_path.write_text(json.dumps({"tenant_id": str(tenant_id)}))
        # The dashboard shows spend, preliminary days and a restatement from the first run.
        await import_demo_costs(runtime, tenant_id)
    finally:
        await runtime.close()
    return {
        "tenant_id": str(tenant_id),
        "api_key": key,
        "admin_email": DEMO_ADMIN_EMAIL,
        "admin_password": password,
    }


def _remembered_tenant(state_path: Path) -> uuid.UUID | None:
    try:
        return uuid.UUID(json.loads(state_path.read_text())["tenant_id"])
    except (OSError, ValueError, KeyError):
        return None


async def _tenant_exists(runtime: Runtime, tenant_id: uuid.UUID) -> bool:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        try:
            await service.get_tenant(session, service.system_principal(tenant_id))
        except Exception:
            return False
    return True


async def _reuse_tenant(runtime: Runtime, tenant_id: uuid.UUID, password: str) -> str:
    """A fresh password and API key; the demo account's scheduled scan is held back, since the
    simulator of this run is still filling up."""
    actor = service.system_principal(tenant_id, "demo")
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        await service.set_password(
            session, runtime.keyring, email=DEMO_ADMIN_EMAIL, password=password
        )
        issued = await api_keys.create_api_key(session, actor, name="demo key", role=Role.owner)
        connection = await _existing_demo_connection(session, actor)
        if connection is not None:
            await push_back_schedule(
                session,
                actor,
                runtime.settings,
                kind=connections.SCAN_KIND,
                target_id=connection.id,
            )
    return issued.secret


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
