"""``valdrix connections|scans|findings ...``: operator equivalents of the scanning API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from valdrix.cli.common import (
    JSON_OPTION,
    console,
    print_json,
    print_table,
    readable_errors,
    run_with_runtime,
    settings_for_command,
)
from valdrix.connections import service as connections
from valdrix.connections.schemas import ConnectionOut
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning import findings, service
from valdrix.scanning.models import FINISHED_SCAN_STATUSES, FindingStatus
from valdrix.scanning.schemas import FindingOut, ScanOut
from valdrix.tenancy.service import system_principal

connections_app = typer.Typer(no_args_is_help=True, help="Cloud connections.")
scans_app = typer.Typer(no_args_is_help=True, help="Waste scans.")
findings_app = typer.Typer(no_args_is_help=True, help="Findings (waste found by scans).")

TENANT_OPTION = typer.Option(..., "--tenant", help="Tenant id.")


@connections_app.command("add-aws")
@readable_errors
def add_aws(
    tenant: uuid.UUID = TENANT_OPTION,
    name: str = typer.Option(..., help="A name for this account."),
    role_arn: str = typer.Option(..., help="The role Valdrix assumes."),
    external_id: str | None = typer.Option(
        None, help="External id from the setup (default: issue a new one)."
    ),
    regions: str | None = typer.Option(None, help="Comma-separated allow-list (default: all)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an AWS account (its scans are scheduled at the tenant's tier cadence)."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        actor = system_principal(tenant)
        async with unit_of_work(runtime.sessions, tenant) as session:
            connection = await connections.create_connection(
                session,
                actor,
                runtime.keyring,
                name=name,
                role_arn=role_arn,
                external_id=external_id or connections.new_external_id(runtime.keyring, tenant),
                regions=regions.split(",") if regions else None,
                thresholds={},
                tag_exclusions=[],
            )
            return ConnectionOut.model_validate(connection).model_dump(mode="json")

    created = run_with_runtime(settings_for_command(), work)
    if as_json:
        print_json(created)
    else:
        console.print(f"connection {created['id']} ({created['name']}) registered")


@scans_app.command("start")
@readable_errors
def start(
    tenant: uuid.UUID = TENANT_OPTION,
    connection: uuid.UUID = typer.Option(..., help="Connection id."),
    wait: bool = typer.Option(False, help="Wait until a worker has finished the scan."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Queue a scan (a worker runs it)."""

    async def work(runtime: Runtime) -> dict[str, Any]:
        actor = system_principal(tenant)
        async with unit_of_work(runtime.sessions, tenant) as session:
            scan = await service.start_scan(
                session, actor, runtime.settings, connection_id=connection
            )
        while wait:
            async with unit_of_work(runtime.sessions, tenant) as session:
                scan, _ = await service.get_scan(session, actor, scan.id)
            if scan.status in FINISHED_SCAN_STATUSES:
                break
            await asyncio.sleep(0.5)
        return ScanOut.model_validate(scan).model_dump(mode="json")

    scan = run_with_runtime(settings_for_command(), work)
    if as_json:
        print_json(scan)
    else:
        console.print(f"scan {scan['id']}: {scan['status']} ({scan['findings_count']} findings)")


@findings_app.command("list")
@readable_errors
def list_findings(
    tenant: uuid.UUID = TENANT_OPTION,
    status: FindingStatus | None = typer.Option(FindingStatus.open, help="Filter by status."),
    detector: str | None = typer.Option(None, help="Filter by detector key."),
    limit: int = typer.Option(100, min=1, max=500),
    as_json: bool = JSON_OPTION,
) -> None:
    """Findings, most expensive first."""

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        async with unit_of_work(runtime.sessions, tenant) as session:
            rows = await findings.list_findings(
                session,
                system_principal(tenant),
                filters={"status": status.value if status else None, "detector": detector},
                sort="monthly_cost_usd",
                descending=True,
                offset=0,
                limit=limit,
            )
            return [FindingOut.model_validate(f).model_dump(mode="json") for f in rows]

    rows = run_with_runtime(settings_for_command(), work)
    if as_json:
        print_json({"findings": rows})
        return
    table = Table("detector", "region", "resource", "$/month", "basis", "status")
    for row in rows:
        table.add_row(
            row["detector"],
            row["region"],
            row["resource_id"],
            row["monthly_cost_usd"] or "?",
            row["cost_basis"],
            row["status"],
        )
    print_table(table)


@findings_app.command("summary")
@readable_errors
def summary(tenant: uuid.UUID = TENANT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Monthly waste of open findings by detector."""

    async def work(runtime: Runtime) -> list[tuple[str, str, int, Any]]:
        async with unit_of_work(runtime.sessions, tenant) as session:
            return await findings.waste_summary(session, system_principal(tenant))

    rows = run_with_runtime(settings_for_command(), work)
    if as_json:
        print_json(
            {
                "total_monthly_usd": str(sum(r[3] for r in rows)),
                "by_detector": [
                    {"provider": p, "detector": d, "open_findings": n, "monthly_usd": str(usd)}
                    for p, d, n, usd in rows
                ],
            }
        )
        return
    print_summary_table(rows)


def print_summary_table(rows: list[tuple[str, str, int, Any]], to: Console = console) -> None:
    table = Table("detector", "open findings", "$/month", title="Monthly waste by detector")
    for _, detector, count, usd in rows:
        table.add_row(detector, str(count), f"{usd:,.2f}")
    table.add_row(
        "[bold]total[/bold]",
        str(sum(r[2] for r in rows)),
        f"[bold]{sum(r[3] for r in rows):,.2f}[/bold]",
    )
    to.print(table)
