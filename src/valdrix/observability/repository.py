"""SQL behind the gauges /metrics reads at scrape time (cross-tenant only through resolver
functions, which return ids and totals)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

OLDEST_DUE_SQL = """
SELECT j.queue_name,
       max(extract(epoch FROM now() - coalesce(j.scheduled_at, d.at)))
FROM procrastinate_jobs j
LEFT JOIN LATERAL (
    SELECT min(e.at) AS at FROM procrastinate_events e
    WHERE e.job_id = j.id AND e.type = 'deferred'
) d ON true
WHERE j.status = 'todo' AND coalesce(j.scheduled_at, d.at) <= now()
GROUP BY j.queue_name
"""


@dataclass(frozen=True)
class CostRunTotals:
    source_kind: str
    status: str
    runs: int
    rows_accepted: int
    adjustments: int


@dataclass(frozen=True)
class TenantJobFigures:
    tenant_id: uuid.UUID
    queued: int
    running: int
    failed: int
    oldest_wait_seconds: float


# The first failure since the connection's last completed scan before ``scan_id`` (which has
# just completed), and when each ended.
FIRST_FAILURE_SQL = """
WITH this AS (
    SELECT s.connection_id, s.finished_at FROM scans s
    WHERE s.id = :scan_id AND s.status = 'completed'
), last_completed AS (
    SELECT max(s.finished_at) AS at FROM scans s, this
    WHERE s.connection_id = this.connection_id AND s.status = 'completed'
      AND s.id <> :scan_id AND s.finished_at <= this.finished_at
)
SELECT s.connection_id, s.finished_at, this.finished_at
FROM scans s, this, last_completed
WHERE s.connection_id = this.connection_id
  AND s.status IN ('failed', 'timed_out', 'interrupted')
  AND s.finished_at <= this.finished_at
  AND (last_completed.at IS NULL OR s.finished_at > last_completed.at)
ORDER BY s.finished_at
LIMIT 1
"""


class MetricsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def oldest_due_by_queue(self) -> dict[str, float]:
        rows = await self.session.execute(text(OLDEST_DUE_SQL))
        return {queue: max(0.0, float(age or 0)) for queue, age in rows}

    async def worker_heartbeats(self, stall_seconds: float) -> tuple[int, int]:
        """(alive, stale) registered workers."""
        row = (
            await self.session.execute(
                text(
                    "SELECT count(*) FILTER (WHERE last_heartbeat >= now() - make_interval(secs"
                    " => :stall)), count(*) FILTER (WHERE last_heartbeat < now() -"
                    " make_interval(secs => :stall)) FROM procrastinate_workers"
                ),
                {"stall": stall_seconds},
            )
        ).one()
        return int(row[0]), int(row[1])

    async def open_findings_by_tenant(self) -> list[tuple[uuid.UUID, int, Decimal]]:
        rows = await self.session.execute(
            text(
                "SELECT tenant_id, open_findings, monthly_waste_usd"
                " FROM valdrix_open_findings_by_tenant()"
            )
        )
        return [(uuid.UUID(str(t)), int(n), Decimal(w)) for t, n, w in rows]

    async def llm_budget_limits(
        self, month: dt.date
    ) -> list[tuple[uuid.UUID, str, Decimal | None, Decimal | None]]:
        rows = await self.session.execute(
            text(
                "SELECT tenant_id, tier, daily_cap_usd, monthly_limit_usd"
                " FROM valdrix_llm_budget_limits(:month)"
            ),
            {"month": month},
        )
        return [(uuid.UUID(str(t)), tier, d, m) for t, tier, d, m in rows]

    async def cost_run_totals(self) -> list[CostRunTotals]:
        rows = await self.session.execute(
            text(
                "SELECT source_kind, status, runs, rows_accepted, adjustments"
                " FROM valdrix_cost_run_totals()"
            )
        )
        return [CostRunTotals(k, s, int(n), int(r), int(a)) for k, s, n, r, a in rows]

    async def tenant_job_figures(
        self, failed_since: dt.datetime, limit: int
    ) -> list[TenantJobFigures]:
        """The ``limit`` tenants with the largest backlog (then the longest wait, the most
        failures since ``failed_since``)."""
        rows = await self.session.execute(
            text(
                "SELECT tenant_id, queued, running, failed, oldest_wait_seconds"
                " FROM valdrix_tenant_job_figures(:since, :limit)"
            ),
            {"since": failed_since, "limit": limit},
        )
        return [
            TenantJobFigures(uuid.UUID(str(t)), int(q), int(r), int(f), float(w))
            for t, q, r, f, w in rows
        ]

    async def outage_ended_by(
        self, scan_id: uuid.UUID
    ) -> tuple[uuid.UUID, dt.datetime, dt.datetime] | None:
        """(connection, first failure's end, this scan's end) when the completed scan
        ``scan_id`` ends an outage of its connection; the current tenant's scans only."""
        row = (await self.session.execute(text(FIRST_FAILURE_SQL), {"scan_id": scan_id})).first()
        return None if row is None else (row[0], row[1], row[2])
