"""Entry point: ``valdrix <command>``."""

from __future__ import annotations

import signal
from enum import StrEnum
from types import FrameType

import typer

from valdrix.cli import costs, demo, jobs, prices, scanning, tenants
from valdrix.cli.common import (
    JSON_OPTION,
    console,
    print_json,
    readable_errors,
    run_with_runtime,
    serve_api,
    settings_for_command,
)
from valdrix.config import generate_key_entry
from valdrix.kit.migrator import upgrade_to_head
from valdrix.runtime import database_urls
from valdrix.tenancy.key_rotation import rotate_keys
from valdrix.wiring import wire

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Valdrix FinOps platform.")
db_app = typer.Typer(no_args_is_help=True, help="Database helpers.")
keys_app = typer.Typer(no_args_is_help=True, help="Encryption keys.")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(tenants.tenants_app, name="tenants")
app.add_typer(tenants.api_keys_app, name="api-keys")
app.command("demo")(demo.demo)
app.command("worker")(jobs.worker)
app.add_typer(jobs.jobs_app, name="jobs")
app.add_typer(scanning.connections_app, name="connections")
app.add_typer(scanning.scans_app, name="scans")
app.add_typer(scanning.findings_app, name="findings")
app.add_typer(costs.costs_app, name="costs")
app.add_typer(prices.prices_app, name="prices")


class DbRole(StrEnum):
    app = "app"
    owner = "owner"


@app.command()
@readable_errors
def serve(
    host: str | None = typer.Option(None, help="Interface to bind (default VALDRIX_API_HOST)."),
    port: int | None = typer.Option(None, help="Port (default VALDRIX_API_PORT)."),
    workers: int = typer.Option(
        1, min=1, help="API processes sharing the port; one per core serves the most."
    ),
) -> None:
    """Serve the HTTP API."""
    settings = settings_for_command()
    serve_api(settings, host or settings.api.host, port or settings.api.port, workers=workers)


@app.command()
@readable_errors
def migrate() -> None:
    """Apply database migrations (as the owner role)."""
    settings = settings_for_command(needs_keys=False)
    upgrade_to_head(database_urls(settings).owner)
    console.print("[green]database is at the latest migration[/green]")


@db_app.command("url")
@readable_errors
def db_url(role: DbRole = typer.Option(DbRole.app, help="Which role's URL to print.")) -> None:
    """Print the database URL (starting the embedded server if it is in use)."""
    # The URL is for another program, so the embedded server must outlive this command.
    urls = database_urls(settings_for_command(needs_keys=False), keep_embedded_running=True)
    print(urls.app if role is DbRole.app else urls.owner)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new key entry for VALDRIX_ENCRYPTION_KEYS (put it first to make it active)."""
    print(generate_key_entry())


@keys_app.command("rotate")
@readable_errors
def keys_rotate(as_json: bool = JSON_OPTION) -> None:
    """Re-encrypt every stored secret with the active (first) key."""
    settings = settings_for_command()
    counts = run_with_runtime(settings, rotate_keys)
    active = settings.keyring[0][0]
    if as_json:
        print_json({"active_key_id": active, "reencrypted": dict(counts)})
        return
    total = sum(counts.values())
    console.print(f"re-encrypted {total} value(s) under key [bold]{active}[/bold]")
    for column, count in sorted(counts.items()):
        console.print(f"  {column}: {count}")


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    wire()
    app()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """End the command like Ctrl-C does, running ``finally`` blocks and exit handlers.

    Each process registers with the embedded database and the last to unregister (at exit)
    stops it, so none may vanish without exit handlers. uvicorn calls this after its graceful
    shutdown, since it re-raises the signal, whose default action would skip them.
    """
    raise SystemExit(128 + signum)
