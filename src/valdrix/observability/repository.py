"""SQL behind the gauges /metrics reads at scrape time (cross-tenant only through resolver
functions, which return ids and totals)."""

from __future__ import annotations

import datetime as dt
import uuid
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
