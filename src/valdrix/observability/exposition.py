"""/metrics: Prometheus exposition, with database-backed gauges refreshed at scrape time.

The exposition lists every tenant's id with its findings, waste and LLM limits, so it is the
operator's alone. On the API port it answers only to ``VALDRIX_METRICS_TOKEN`` as a bearer token,
and without a token configured the API port does not serve it at all (closed by default).
``VALDRIX_METRICS_LISTEN`` (and a worker's ``--metrics-port``) serves it on an address of its
own, meant for a network only Prometheus reaches; a configured token is asked for there too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from pydantic import SecretStr

from valdrix.config import Settings, SettingsError
from valdrix.costs.models import RunStatus, SourceKind
from valdrix.errors import PROBLEM_JSON, NotFound, Unauthorized
from valdrix.jobs.repository import QueueRepository
from valdrix.jobs.tiers import cadence_seconds
from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.llm.budget import resolve_limits
from valdrix.llm.repository import LedgerRepository, month_of
from valdrix.observability.repository import (
    CostRunTotals,
    MetricsRepository,
    TenantJobFigures,
)
from valdrix.runtime import Runtime
from valdrix.tenancy.auth import RuntimeDep

log = structlog.get_logger(__name__)
router = APIRouter(tags=["health"])
# Queues reported even when empty, so a dashboard shows 0 rather than no data.
QUEUES = ("scans", "analysis", "costs", "system")


# Per-tenant totals and cost history scan whole tables: refreshed at most this often per process.
TENANT_GAUGES_TTL_SECONDS = 60.0
# Per-tenant job figures: the busiest tenants only, so the series stay bounded.
TENANT_JOB_FIGURES_TOP = 20
RECENT_FAILURES = dt.timedelta(hours=24)
_tenant_gauges_read_at = -TENANT_GAUGES_TTL_SECONDS


# The label values each gauge was ever set for, in this process.
_reported: dict[Gauge, set[str]] = {}


def _set_every(gauge: Gauge, label: str, values: Mapping[str, float], *, known: set[str]) -> None:
    """Set the gauge for every value of ``label`` in ``values``, ``known`` ones and every one
    this process reported before (the API process runs no tasks and serves no queue): one
    that drained reads 0, never its last value."""
    reported = _reported.setdefault(gauge, set())
    reported.update(known, values)
    for name in reported:
        gauge.labels(**{label: name}).set(values.get(name, 0))


async def refresh_database_gauges(runtime: Runtime) -> None:
    """Read shared state from the database, so whichever process is scraped tells the truth:
    queue depth and age, stuck jobs, workers, schedule lag, the busiest tenants' jobs; per-tenant
    findings, waste and LLM spend against its limits; cost imports and restatements."""
    global _tenant_gauges_read_at
    from valdrix.jobs.app import job_app

    settings = runtime.settings
    refresh_tenants = time.monotonic() - _tenant_gauges_read_at >= TENANT_GAUGES_TTL_SECONDS
    async with unit_of_work(runtime.sessions, None) as session:
        queues = QueueRepository(session)
        shared = MetricsRepository(session)
        queued = await queues.queued_by_task()
        stuck = await queues.stuck(settings.jobs.stuck_after_seconds)
        lag = await queues.schedule_lag()
        oldest = await shared.oldest_due_by_queue()
        alive, stale = await shared.worker_heartbeats(settings.jobs.stall_timeout_seconds)
        tenant_jobs = await shared.tenant_job_figures(
            utcnow() - RECENT_FAILURES, TENANT_JOB_FIGURES_TOP
        )
        if refresh_tenants:
            today = utcnow().date()
            spend = await LedgerRepository(session).spend_by_tenant(today)
            limits = await shared.llm_budget_limits(month_of(today))
            findings = await shared.open_findings_by_tenant()
            cost_runs = await shared.cost_run_totals()
    ours = {t.name for t in job_app.tasks.values() if not t.name.startswith("procrastinate")}
    _set_every(metrics.BACKGROUND_JOBS_QUEUED, "job_type", queued, known=ours)
    metrics.JOBS_STUCK.set(len(stuck))
    for tier, seconds in cadence_seconds(settings).items():
        metrics.SCHEDULE_LAG.labels(tier=tier).set(lag.get(tier, 0.0))
        metrics.SCHEDULE_SLA.labels(tier=tier).set(seconds)
    _set_every(metrics.QUEUE_OLDEST_DUE, "queue", oldest, known=set(QUEUES))
    metrics.WORKERS_ALIVE.set(alive)
    metrics.WORKERS_STALE.set(stale)
    _set_tenant_job_gauges(tenant_jobs)
    if refresh_tenants:
        _set_tenant_gauges(settings, spend, limits, findings)
        _set_cost_counters(cost_runs)
        _tenant_gauges_read_at = time.monotonic()


def _set_tenant_job_gauges(figures: list[TenantJobFigures]) -> None:
    for gauge in (
        metrics.TENANT_JOBS,
        metrics.TENANT_JOBS_FAILED_RECENT,
        metrics.TENANT_JOB_OLDEST_WAIT,
    ):
        gauge.clear()
    for figure in figures:
        tenant = str(figure.tenant_id)
        metrics.TENANT_JOBS.labels(tenant_id=tenant, status="queued").set(figure.queued)
        metrics.TENANT_JOBS.labels(tenant_id=tenant, status="running").set(figure.running)
        metrics.TENANT_JOBS_FAILED_RECENT.labels(tenant_id=tenant).set(figure.failed)
        metrics.TENANT_JOB_OLDEST_WAIT.labels(tenant_id=tenant).set(figure.oldest_wait_seconds)


def _set_cost_counters(totals: list[CostRunTotals]) -> None:
    # Every kind and outcome from the start, so a first restatement moves a series from 0.
    Totals = dict[tuple[str, ...], float]
    runs: Totals = {(kind.value, status.value): 0.0 for kind in SourceKind for status in RunStatus}
    rows: Totals = {(kind.value,): 0.0 for kind in SourceKind}
    restatements: Totals = dict(rows)
    for total in totals:
        runs[(total.source_kind, total.status)] = total.runs
        if total.status == RunStatus.committed:
            rows[(total.source_kind,)] = rows.get((total.source_kind,), 0.0) + total.rows_accepted
        restatements[(total.source_kind,)] = (
            restatements.get((total.source_kind,), 0.0) + total.adjustments
        )
    metrics.COST_RUNS_TOTAL.set_totals(runs)
    metrics.COST_ROWS_INGESTED.set_totals(rows)
    metrics.COST_RESTATEMENTS.set_totals(restatements)


def _set_tenant_gauges(
    settings: Settings,
    spend: list[tuple[uuid.UUID, Decimal, Decimal]],
    limits: list[tuple[uuid.UUID, str, Decimal | None, Decimal | None]],
    findings: list[tuple[uuid.UUID, int, Decimal]],
) -> None:
    # Tenants that no longer have any drop out rather than freeze at their last value.
    for gauge in (
        metrics.LLM_SPEND,
        metrics.LLM_BUDGET_LIMIT,
        metrics.OPEN_FINDINGS,
        metrics.MONTHLY_WASTE,
    ):
        gauge.clear()
    for tenant_id, day_usd, month_usd in spend:
        metrics.LLM_SPEND.labels(tenant_id=str(tenant_id), window="day").set(float(day_usd))
        metrics.LLM_SPEND.labels(tenant_id=str(tenant_id), window="month").set(float(month_usd))
    for tenant_id, tier, daily, monthly in limits:
        resolved = resolve_limits(settings, tier, daily, monthly)
        tenant = str(tenant_id)
        metrics.LLM_BUDGET_LIMIT.labels(tenant_id=tenant, window="day").set(float(resolved.daily))
        metrics.LLM_BUDGET_LIMIT.labels(tenant_id=tenant, window="month").set(
            float(resolved.monthly)
        )
    for tenant_id, count, waste in findings:
        metrics.OPEN_FINDINGS.labels(tenant_id=str(tenant_id)).set(count)
        metrics.MONTHLY_WASTE.labels(tenant_id=str(tenant_id)).set(float(waste))


async def render_metrics(runtime: Runtime) -> bytes:
    try:
        await refresh_database_gauges(runtime)
    except Exception as exc:  # still expose process metrics when the database is away
        log.warning("metrics.database_unavailable", error=type(exc).__name__)
    return generate_latest()


UNAUTHORIZED_DETAIL = "metrics need the operator's metrics token: Authorization: Bearer <token>"


def bearer_is_token(authorization: str | None, token: SecretStr) -> bool:
    """``Authorization: Bearer <token>`` names the metrics token (compared in constant time)."""
    scheme, _, credential = (authorization or "").partition(" ")
    # As bytes: compare_digest refuses non-ASCII str, and the header is the caller's choice.
    offered, expected = credential.strip().encode(), token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(offered, expected)


async def require_metrics_token(request: Request, runtime: RuntimeDep) -> None:
    """The API port's guard for /metrics (the route-walking test knows routes by it)."""
    token = runtime.settings.metrics.token
    if token is None:
        raise NotFound(
            "metrics are not served on the API port without VALDRIX_METRICS_TOKEN"
            " (or serve them on VALDRIX_METRICS_LISTEN)"
        )
    if not bearer_is_token(request.headers.get("authorization"), token):
        raise Unauthorized(UNAUTHORIZED_DETAIL)


@router.get("/metrics", response_class=Response, dependencies=[Depends(require_metrics_token)])
async def metrics_endpoint(runtime: RuntimeDep) -> Response:
    """Prometheus exposition, for the operator's metrics token only."""
    return Response(await render_metrics(runtime), media_type=CONTENT_TYPE_LATEST)


async def serve_metrics(runtime: Runtime, host: str, port: int) -> asyncio.Server:
    """A minimal HTTP endpoint on an address of its own (``VALDRIX_METRICS_LISTEN``, a worker's
    ``--metrics-port``): any path answers /metrics, to the metrics token if one is set."""
    token = runtime.settings.metrics.token

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if token is None or bearer_is_token(_header(head, b"authorization"), token):
                body = await render_metrics(runtime)
                writer.write(_http_response(b"200 OK", CONTENT_TYPE_LATEST, body))
            else:
                problem = {"title": "Unauthorized", "status": 401, "detail": UNAUTHORIZED_DETAIL}
                writer.write(
                    _http_response(
                        b"401 Unauthorized",
                        PROBLEM_JSON,
                        json.dumps(problem).encode(),
                        b"WWW-Authenticate: Bearer\r\n",
                    )
                )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    try:
        return await asyncio.start_server(handle, host=host, port=port)
    except OSError as exc:
        raise SettingsError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from exc


def _header(head: bytes, name: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        field, _, value = line.partition(b":")
        if field.strip().lower() == name:
            return value.strip().decode("latin-1")
    return None


def _http_response(status: bytes, content_type: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: " + content_type.encode()
        + b"\r\nContent-Length: " + str(len(body)).encode()
        + b"\r\n" + extra + b"Connection: close\r\n\r\n" + body
    )  # fmt: skip
