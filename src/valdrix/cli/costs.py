"""``valdrix costs import``: load a FOCUS export (one file, or the parts of one delivery) for a
tenant."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import typer

from valdrix.cli.common import (
    JSON_OPTION,
    console,
    fail,
    print_json,
    readable_errors,
    run_with_runtime,
    settings_for_command,
)
from valdrix.costs import service
from valdrix.costs.schemas import CostRunOut
from valdrix.runtime import Runtime

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
        run = await service.import_focus_files(runtime, tenant, parts, actor="cli", source=source)
        return CostRunOut.model_validate(run).model_dump(mode="json")

    try:
        run = run_with_runtime(settings_for_command(), work)
    except service.ImportRejected as rejected:
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
