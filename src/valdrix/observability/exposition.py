"""/metrics: Prometheus exposition, with database-backed gauges refreshed at scrape time."""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from valdrix.config import TIER_NAMES
from valdrix.jobs.repository import QueueRepository
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.llm.repository import LedgerRepository
from valdrix.observability import metrics
from valdrix.runtime import Runtime
from valdrix.tenancy.auth import RuntimeDep

log = structlog.get_logger(__name__)
router = APIRouter(tags=["health"])


async def refresh_database_gauges(runtime: Runtime) -> None:
    """Read shared state (queue depth, stuck jobs, schedule lag, LLM spend) from the database."""
    from valdrix.jobs.app import job_app

    async with unit_of_work(runtime.sessions, None) as session:
        queues = QueueRepository(session)
        queued = await queues.queued_by_task()
        stuck = await queues.stuck(runtime.settings.job_stuck_after_seconds)
        lag = await queues.schedule_lag()
        spend = await LedgerRepository(session).spend_by_tenant(utcnow().date())
    ours = {t.name for t in job_app.tasks.values() if not t.name.startswith("procrastinate")}
    for task_name in ours | set(queued):
        metrics.BACKGROUND_JOBS_QUEUED.labels(job_type=task_name).set(queued.get(task_name, 0))
    metrics.JOBS_STUCK.set(len(stuck))
    for tier in TIER_NAMES:
        metrics.SCHEDULE_LAG.labels(tier=tier).set(lag.get(tier, 0.0))
    metrics.LLM_SPEND.clear()  # tenants without spend this month drop out
    for tenant_id, day_usd, month_usd in spend:
        metrics.LLM_SPEND.labels(tenant_id=str(tenant_id), window="day").set(float(day_usd))
        metrics.LLM_SPEND.labels(tenant_id=str(tenant_id), window="month").set(float(month_usd))


async def render_metrics(runtime: Runtime) -> bytes:
    try:
        await refresh_database_gauges(runtime)
    except Exception as exc:  # still expose process metrics when the database is away
        log.warning("metrics.database_unavailable", error=type(exc).__name__)
    return generate_latest()


@router.get("/metrics", response_class=Response)
async def metrics_endpoint(runtime: RuntimeDep) -> Response:
    return Response(await render_metrics(runtime), media_type=CONTENT_TYPE_LATEST)


async def serve_metrics(runtime: Runtime, port: int) -> asyncio.Server:
    """A minimal HTTP endpoint for workers (``--metrics-port``); any path answers /metrics."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            body = await render_metrics(runtime)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: "
                + CONTENT_TYPE_LATEST.encode()
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host=runtime.settings.api_host, port=port)
