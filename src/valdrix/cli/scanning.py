"""``valdrix connections|scans|findings ...``: operator equivalents of the scanning API."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
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
from valdrix.connections.policy import aws_quick_create_template
from valdrix.connections.schemas import ConnectionOut
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning import findings, imported, service
from valdrix.scanning.models import FINISHED_SCAN_STATUSES, FindingStatus
from valdrix.scanning.schemas import FindingOut, ScanOut, WasteSummaryOut
from valdrix.scanning.summary import WasteSummary, shared_costs, waste_summary
from valdrix.tenancy.service import system_principal

connections_app = typer.Typer(no_args_is_help=True, help="Cloud connections.")
scans_app = typer.Typer(no_args_is_help=True, help="Waste scans.")
findings_app = typer.Typer(no_args_is_help=True, help="Findings (waste found by scans).")

TENANT_OPTION = typer.Option(..., "--tenant", help="Tenant id.")


@connections_app.command("quick-create-template")
def quick_create_template() -> None:
    """Print the CloudFormation template the setup's quick-create link opens, for the operator
    to publish on S3 (then set VALDRIX_AWS_CLOUDFORMATION_TEMPLATE_URL to its URL)."""
    typer.echo(json.dumps(aws_quick_create_template(), indent=2))


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
    """Findings, most expensive first; a cloud's recommendation for a resource a Valdrix
    finding prices is shown on that finding's line (also reported by)."""

    async def work(runtime: Runtime) -> list[dict[str, Any]]:
        actor = system_principal(tenant)
        importers = imported.importing_detectors()
        async with unit_of_work(runtime.sessions, tenant) as session:
            rows = await findings.list_findings(
                session,
                actor,
                filters={"status": status.value if status else None, "detector": detector},
                sort="monthly_cost_usd",
                descending=True,
                offset=0,
                limit=limit,
                shown_with_others=[] if detector in importers else list(importers),
            )
            shared = await shared_costs(session, actor, rows)
            sources = await imported.sources(session, rows, shared)
            return [
                FindingOut.of(f, shared.get(f.id, []), sources.get(f.id)).model_dump(mode="json")
                for f in rows
            ]

    rows = run_with_runtime(settings_for_command(), work)
    if as_json:
        print_json({"findings": rows})
        return
    table = Table(
        "detector",
        "region",
        "resource",
        "$/month",
        "counted elsewhere",
        "basis",
        "status",
        "also reported by",
    )
    for row in rows:
        table.add_row(
            row["detector"],
            row["region"],
            row["resource_id"],
            row["monthly_cost_usd"] or "?",
            _elsewhere(row["counted_elsewhere_usd"]),
            row["cost_basis"],
            row["status"],
            ", ".join(one["source"] for one in row["also_reported_by"]),
        )
    print_table(table)


@findings_app.command("summary")
@readable_errors
def summary(tenant: uuid.UUID = TENANT_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Monthly waste of open findings by detector, each dollar counted once."""

    async def work(runtime: Runtime) -> WasteSummary:
        async with unit_of_work(runtime.sessions, tenant) as session:
            return await waste_summary(session, system_principal(tenant))

    found = run_with_runtime(settings_for_command(), work)
    if as_json:
        print_json(WasteSummaryOut.of(found).model_dump(mode="json"))
        return
    print_summary_table(found)


def print_summary_table(summary: WasteSummary, to: Console = console) -> None:
    """By detector: its findings' figures and the part the total counts under other findings;
    the total counts each dollar once, and a line under the table says what was left out."""
    table = Table(
        "detector",
        "open findings",
        "$/month",
        "counted elsewhere",
        title="Monthly waste by detector",
    )
    for row in summary.by_detector:
        table.add_row(
            row.detector,
            str(row.open_findings),
            f"{row.monthly_usd:,.2f}",
            _elsewhere(row.counted_elsewhere_usd),
        )
    table.add_row(
        "[bold]total, each dollar once[/bold]",
        str(summary.open_findings),
        f"[bold]{summary.monthly_usd:,.2f}[/bold]",
        _elsewhere(summary.overlap_usd),
    )
    to.print(table)
    for overlap in summary.overlaps:
        to.print(
            f"  {overlap.detector}: ${overlap.monthly_usd:,.2f} in {overlap.parts} cost(s) also "
            f"priced by {overlap.counted_under}, counted there"
        )
    if summary.overlap_usd:
        to.print(
            f"  total ${summary.monthly_usd:,.2f}: the findings' figures add up to "
            f"${summary.gross_usd:,.2f}, less ${summary.overlap_usd:,.2f} that more than one "
            "finding prices"
        )


def _elsewhere(usd: Decimal | str) -> str:
    return f"-{Decimal(usd):,.2f}" if Decimal(usd) else ""
