"""``valdrix worker`` and ``valdrix jobs ...``."""

from __future__ import annotations

import uuid

import typer
from procrastinate.jobs import Status
from rich.table import Table

from valdrix.cli.common import (
    JSON_OPTION,
    print_json,
    print_table,
    readable_errors,
    run_with_runtime,
    settings_for_command,
)
from valdrix.jobs.repository import QueueRepository
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.worker import run_worker_blocking

jobs_app = typer.Typer(no_args_is_help=True, help="Inspect the job queue.")


@readable_errors
def worker(
    concurrency: int = typer.Option(4, min=1, max=256, help="Jobs run at once by this worker."),
    queues: str | None = typer.Option(None, help="Comma-separated queues to serve (default: all)."),
    name: str | None = typer.Option(None, help="Worker name shown in logs."),
    metrics_port: int | None = typer.Option(
        None, help="Serve Prometheus metrics on this port (of VALDRIX_METRICS_LISTEN's host)."
    ),
    periodic: bool = typer.Option(
        True, help="Also schedule periodic tasks (tick, recovery, retention)."
    ),
    parent_pid: int | None = typer.Option(
        None,
        help="The pid of the process that started this worker: stop gracefully once it exits.",
    ),
) -> None:
    """Run background jobs until SIGTERM or Ctrl-C (running jobs get a grace period)."""
    settings = settings_for_command()
    run_worker_blocking(
        settings,
        concurrency=concurrency,
        queues=[q.strip() for q in queues.split(",") if q.strip()] if queues else None,
        name=name,
        metrics_port=metrics_port,
        periodic=periodic,
        parent_pid=parent_pid,
    )


@jobs_app.command("list")
@readable_errors
def list_jobs(
    status: Status | None = typer.Option(None, help="Only jobs in this state."),
    tenant: uuid.UUID | None = typer.Option(None, help="Only this tenant's jobs."),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = JSON_OPTION,
) -> None:
    """Recent jobs across all tenants (operator view), newest first."""

    async def work(runtime: Runtime) -> list[dict[str, object]]:
        async with unit_of_work(runtime.sessions, None) as session:
            return await QueueRepository(session).recent_jobs(
                limit=limit, status=status.value if status else None, tenant_id=tenant
            )

    rows = run_with_runtime(settings_for_command(), work)
    if as_json:
        print_json({"jobs": rows})
        return
    table = Table("id", "task", "queue", "status", "attempts", "priority", "tenant", "updated")
    for row in rows:
        table.add_row(
            *(
                str(row[key] or "")
                for key in (
                    "id",
                    "task_name",
                    "queue_name",
                    "status",
                    "attempts",
                    "priority",
                    "tenant_id",
                    "updated_at",
                )
            )
        )
    print_table(table)
