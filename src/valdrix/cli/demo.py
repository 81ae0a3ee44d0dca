"""``valdrix demo``: everything on one machine, with a demo tenant, ready to explore."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import uuid

import typer
from rich.console import Console

from valdrix.cli.common import print_json, readable_errors, serve_api, settings_for_command
from valdrix.cli.tenants import create_tenant_with_owner_key
from valdrix.config import Settings, load_settings
from valdrix.kit.db import unit_of_work
from valdrix.kit.migrator import upgrade_to_head
from valdrix.runtime import Runtime, database_urls, open_runtime
from valdrix.tenancy import api_keys, service
from valdrix.tenancy.models import Role, Tier

DEMO_TENANT_NAME = "Acme Corp (demo)"
DEMO_ADMIN_EMAIL = "admin@acme.example"
STATE_FILE = "demo.json"


@readable_errors
def demo(
    as_json: bool = typer.Option(
        False, "--json", help="First print one JSON line with the URL and credentials."
    ),
    once: bool = typer.Option(False, "--once", help="Set up, print the summary and exit."),
    host: str = typer.Option("127.0.0.1", help="Interface for the API."),
    port: int = typer.Option(8000, help="API port (another free port is used if it is taken)."),
) -> None:
    """Run Valdrix on this machine: embedded database, demo tenant, admin, API key, API."""
    key_file_existed = load_settings().key_file.exists()
    settings = settings_for_command(demo=True)
    out = Console(stderr=as_json, soft_wrap=True)
    key_file_created = not settings.encryption_keys and not key_file_existed
    urls = database_urls(settings)
    upgrade_to_head(urls.owner)
    port = port if _port_is_free(host, port) else _free_port(host)
    password = secrets.token_urlsafe(12)
    credentials = asyncio.run(_prepare_demo_tenant(settings, password))
    api_url = f"http://{host}:{port}"
    summary = {"api_url": api_url, **credentials, "docs_url": f"{api_url}/docs"}
    if as_json:
        print_json(summary)
    if key_file_created:
        out.print(f"created encryption key file {settings.key_file} (mode 0600) for the demo")
    out.print(f"[bold]Valdrix demo[/bold] — data in {settings.home}")
    out.print(f"  API         {api_url}   (docs: {api_url}/docs)")
    out.print(f"  tenant      {credentials['tenant_id']}  ({DEMO_TENANT_NAME})")
    out.print(f"  admin       {DEMO_ADMIN_EMAIL} / {password}")
    out.print(f"  API key     {credentials['api_key']}")
    out.print(
        f"  try:        curl -H 'Authorization: Bearer {credentials['api_key']}' "
        f"{api_url}/api/v1/tenant"
    )
    if once:
        return
    worker = _start_worker(settings)
    out.print(f"  worker      pid {worker.pid} (valdrix worker, runs scheduled jobs)")
    try:
        serve_api(settings, host, port)
    finally:
        _stop(worker)


def _start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """A separate worker process, as in production: the API process never runs jobs."""
    env = {**os.environ, "VALDRIX_DEMO": "true", "VALDRIX_HOME": str(settings.home)}
    return subprocess.Popen(
        [sys.executable, "-m", "valdrix", "worker", "--concurrency", "2", "--name", "demo"],
        env=env,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


async def _prepare_demo_tenant(settings: Settings, password: str) -> dict[str, str]:
    """Create the demo tenant once; on later runs reuse it with a fresh password and key."""
    runtime = open_runtime(settings)
    state_path = settings.home / STATE_FILE
    try:
        tenant_id = _remembered_tenant(state_path)
        if tenant_id and await _tenant_exists(runtime, tenant_id):
            key = await _refresh_credentials(runtime, tenant_id, password)
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
    finally:
        await runtime.close()
    return {
        "tenant_id": str(tenant_id),
        "api_key": key,
        "admin_email": DEMO_ADMIN_EMAIL,
        "admin_password": password,
    }


def _remembered_tenant(state_path: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(json.loads(state_path.read_text())["tenant_id"])  # type: ignore[attr-defined]
    except (OSError, ValueError, KeyError):
        return None


async def _tenant_exists(runtime: Runtime, tenant_id: uuid.UUID) -> bool:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        try:
            await service.get_tenant(session, service.system_principal(tenant_id))
        except Exception:
            return False
    return True


async def _refresh_credentials(runtime: Runtime, tenant_id: uuid.UUID, password: str) -> str:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        await service.set_password(
            session, runtime.keyring, email=DEMO_ADMIN_EMAIL, password=password
        )
        issued = await api_keys.create_api_key(
            session, service.system_principal(tenant_id, "demo"), name="demo key", role=Role.owner
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
