"""``valdrix costs import``: load a FOCUS export (one file, or the parts of one delivery) for a
tenant; ``valdrix costs show`` and ``export``: read its costs as the API does."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import typer
from rich.table import Table

from valdrix.cli.common import (
    JSON_OPTION,
    console,
    fail,
    print_json,
    print_table,
    readable_errors,
    run_with_runtime,
    settings_for_command,
)
from valdrix.costs import reading
from valdrix.costs.schemas import CostRunOut
from valdrix.costs.sources import focus_files
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.tenancy.service import system_principal

costs_app = typer.Typer(no_args_is_help=True, help="Cost data (FOCUS exports, Cost Explorer).")


@costs_app.command("import")
@readable_errors
def import_files(
    files: list[Path] = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="The export, or every part of one delivery (imported together as one run).",
    ),
    tenant: uuid.UUID = typer.Option(..., "--tenant", help="Tenant id."),
    source: str | None = typer.Option(
        None, help="Name of the export stream (default: the billing accounts in the files)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import a FOCUS export (CSV, gzip CSV or Parquet): all of it, or nothing with the reasons."""
    names = ", ".join(file.name for file in files)

    async def work(runtime: Runtime) -> dict[str, Any]:
        parts = [(file, file.name) for file in files]
        run = await focus_files.import_focus_files(
            runtime, tenant, parts, actor="cli", source=source
        )
        return CostRunOut.model_validate(run).model_dump(mode="json")

    try:
        run = run_with_runtime(settings_for_command(), work)
    except focus_files.ImportRejected as rejected:
        errors = rejected.extra.get("errors", [])
        if as_json:
            print_json({"status": "rejected", "run_id": str(rejected.run.id), "errors": errors})
        for error in errors:
            print(f"  {_where(error)}{error['reason']}", file=sys.stderr)
        verb = "was" if len(files) == 1 else "were"
        fail(f"{names} {verb} rejected; nothing was stored (run {rejected.run.id})")
    if as_json:
        print_json(run)
        return
    out = console
    out.print(
        f"imported {names}: {run['rows_read']} rows into {run['records_written']} daily"
        f" records, {run['window_start']} to {run['window_end']} (run {run['id']})"
    )
    for currency, totals in run["totals"].items():
        out.print(
            f"  {currency}: billed {totals.get('billed_cost')}, effective"
            f" {totals.get('effective_cost')}"
        )
    if run["adjustments"]:
        out.print(f"  {run['adjustments']} restatement(s) recorded: see /api/v1/costs/adjustments")


def _where(error: dict[str, Any]) -> str:
    """``part-2.csv: row 7: BilledCost: ``, as far as the error says."""
    row = f"row {error['row']}" if error.get("row") else None
    return "".join(f"{part}: " for part in (error.get("file"), row, error.get("column")) if part)


TENANT = typer.Option(..., "--tenant", help="Tenant id.")
START = typer.Option(..., formats=["%Y-%m-%d"], help="First day (YYYY-MM-DD).")
END = typer.Option(..., formats=["%Y-%m-%d"], help="Day after the last (YYYY-MM-DD).")
GROUP_BY = typer.Option(
    None, "--group-by", help="Up to 3 dimensions, comma-separated (as the API's group_by)."
)
PROVIDER = typer.Option(None, help="Only this provider.")
SERVICE = typer.Option(None, help="Only this service.")
REGION = typer.Option(None, help="Only this region.")
ACCOUNT = typer.Option(None, help="Only this account (sub-account, else billing account).")
TAG = typer.Option(None, help="Only rows tagged key=value.")


SHOWN_AMOUNTS = ("billed_cost", "effective_cost", "preliminary_billed_cost")


def _cents(amount: str) -> str:
    """An amount as a person reads it (``--json`` and ``export`` keep every digit)."""
    return f"{Decimal(amount):,.2f}"


def _filters(
    provider: str | None,
    service_name: str | None,
    region: str | None,
    account: str | None,
    tag: str | None,
) -> dict[str, str | None]:
    """The filters as ``reading.parse_query`` names them."""
    return {
        "provider": provider,
        "service": service_name,
        "region": region,
        "account": account,
        "tag": tag,
    }


def _query(
    start: dt.datetime,
    end: dt.datetime,
    group_by: str | None,
    filters: dict[str, str | None],
    close_days: int,
    limit: int = reading.MAX_ROWS,
) -> reading.CostQuery:
    return reading.parse_query(
        start.date(),
        end.date(),
        group_by,
        final_before=reading.final_before(close_days),
        filters=filters,
        limit=limit,
    )


@costs_app.command("show")
@readable_errors
def show(
    tenant: uuid.UUID = TENANT,
    start: dt.datetime = START,
    end: dt.datetime = END,
    group_by: str | None = GROUP_BY,
    provider: str | None = PROVIDER,
    service_name: str | None = SERVICE,
    region: str | None = REGION,
    account: str | None = ACCOUNT,
    tag: str | None = TAG,
    limit: int = typer.Option(50, min=1, max=reading.MAX_ROWS, help="Rows shown."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Costs for [start, end), largest first, with totals split into preliminary and final."""
    filters = _filters(provider, service_name, region, account, tag)

    async def work(runtime: Runtime) -> reading.CostAnswer:
        close = runtime.settings.costs.focus_close_days
        query = _query(start, end, group_by, filters, close, limit)
        async with unit_of_work(runtime.sessions, tenant) as session:
            return await reading.read_costs(session, system_principal(tenant), query)

    answer = run_with_runtime(settings_for_command(), work)
    groups = [g.strip() for g in (group_by or "").split(",") if g.strip()]
    if as_json:
        print_json({"rows": answer.rows, "totals": answer.totals, "more": answer.truncated})
        return
    table = Table("currency", *groups, "billed", "effective", "of which preliminary")
    for row in [*answer.rows, *({**t, **dict.fromkeys(groups, "total")} for t in answer.totals)]:
        table.add_row(
            row["currency"],
            *(str(row.get(g) if row.get(g) is not None else "-") for g in groups),
            *(_cents(row[amount]) for amount in SHOWN_AMOUNTS),
        )
    print_table(table)
    if answer.truncated:
        console.print(f"(first {limit} rows; `valdrix costs export` writes them all)")


@costs_app.command("export")
@readable_errors
def export(
    tenant: uuid.UUID = TENANT,
    start: dt.datetime = START,
    end: dt.datetime = END,
    group_by: str | None = GROUP_BY,
    provider: str | None = PROVIDER,
    service_name: str | None = SERVICE,
    region: str | None = REGION,
    account: str | None = ACCOUNT,
    tag: str | None = TAG,
    output: Path | None = typer.Option(
        None, "--output", "-o", dir_okay=False, help="CSV file to write (default: stdout)."
    ),
) -> None:
    """Every row of costs for [start, end) as CSV, read page after page at one data version
    (an import committing during the export stops it; a file is then left as it was)."""
    filters = _filters(provider, service_name, region, account, tag)

    async def work(runtime: Runtime, out: TextIO) -> int:
        query = _query(start, end, group_by, filters, runtime.settings.costs.focus_close_days)
        while True:
            async with unit_of_work(runtime.sessions, tenant) as session:
                answer = await reading.read_costs(session, system_principal(tenant), query)
            first = query.offset == 0
            out.write(reading.rows_as_csv(answer.rows, query.group_by, header=first))
            if answer.next_cursor is None:
                return query.offset + len(answer.rows)
            query = query.after(answer.next_cursor)

    settings = settings_for_command()
    if output is None:
        run_with_runtime(settings, lambda runtime: work(runtime, sys.stdout))
        return
    partial = output.with_name(output.name + ".partial")
    try:
        with partial.open("w", newline="") as out:
            count = run_with_runtime(settings, lambda runtime: work(runtime, out))
        partial.replace(output)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    finally:
        partial.unlink(missing_ok=True)
    console.print(f"wrote {count} rows to {output}")
