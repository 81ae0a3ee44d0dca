"""Metrics read from shared history: cost imports and their restatements, and each busy
tenant's jobs, across tenants only through resolver functions that return totals.

- ``valdrix_cost_run_totals()``: runs, rows and adjustments by source kind and outcome, so a
  cost import counts on /metrics whichever process ran it (the command line included).
- ``valdrix_tenant_job_figures(p_failed_since, p_limit)``: per tenant, jobs waiting and
  running (procrastinate's rows), jobs failed since ``p_failed_since`` (the tenant's mirror)
  and the oldest due job's wait; the ``p_limit`` tenants with the largest backlog first.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from valdrix.kit.rls import RESOLVER_ROLE, resolver_can_read, resolver_function

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COST_RUN_TOTALS = "valdrix_cost_run_totals()"
COST_RUN_TOTALS_SQL = """
SELECT r.source_kind::text, r.status::text, count(*), coalesce(sum(r.rows_accepted), 0)::bigint,
       coalesce(sum(r.adjustments), 0)::bigint
FROM cost_runs r GROUP BY r.source_kind, r.status
"""

TENANT_JOBS = "valdrix_tenant_job_figures(p_failed_since timestamptz, p_limit integer)"
TENANT_JOBS_SQL = """
WITH waiting AS (
    SELECT (j.args ->> 'tenant_id')::uuid AS tenant_id,
           count(*) FILTER (WHERE j.status = 'todo') AS queued,
           count(*) FILTER (WHERE j.status = 'doing') AS running,
           max(extract(epoch FROM now() - coalesce(j.scheduled_at, d.at)))
               FILTER (WHERE j.status = 'todo' AND coalesce(j.scheduled_at, d.at) <= now())
               AS oldest_wait
    FROM procrastinate_jobs j
    LEFT JOIN LATERAL (
        SELECT min(e.at) AS at FROM procrastinate_events e
        WHERE e.job_id = j.id AND e.type = 'deferred'
    ) d ON true
    WHERE j.status IN ('todo', 'doing') AND j.args ? 'tenant_id'
    GROUP BY 1
), failed AS (
    SELECT r.tenant_id, count(*) AS failed FROM job_runs r
    WHERE r.status = 'failed' AND r.finished_at >= p_failed_since
    GROUP BY 1
)
SELECT coalesce(w.tenant_id, f.tenant_id), coalesce(w.queued, 0), coalesce(w.running, 0),
       coalesce(f.failed, 0), greatest(coalesce(w.oldest_wait, 0), 0)::double precision
FROM waiting w FULL JOIN failed f ON f.tenant_id = w.tenant_id
ORDER BY coalesce(w.queued, 0) + coalesce(w.running, 0) DESC, 5 DESC, 4 DESC, 1
LIMIT p_limit
"""


def upgrade() -> None:
    # Failures are looked up by how recent they are; waiting jobs by procrastinate's status.
    op.create_index(
        "ix_job_runs_failed_finished",
        "job_runs",
        ["finished_at"],
        postgresql_where=sa.text("status = 'failed'"),
    )
    for statement in [
        *resolver_can_read("cost_runs"),
        f"GRANT SELECT ON procrastinate_events TO {RESOLVER_ROLE}",
        *resolver_function(
            COST_RUN_TOTALS,
            "TABLE (source_kind text, status text, runs bigint, rows_accepted bigint,"
            " adjustments bigint)",
            COST_RUN_TOTALS_SQL,
        ),
        *resolver_function(
            TENANT_JOBS,
            "TABLE (tenant_id uuid, queued bigint, running bigint, failed bigint,"
            " oldest_wait_seconds double precision)",
            TENANT_JOBS_SQL,
        ),
    ]:
        op.execute(statement)


def downgrade() -> None:
    for function in (TENANT_JOBS, COST_RUN_TOTALS):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.execute(f"REVOKE SELECT ON procrastinate_events FROM {RESOLVER_ROLE}")
    op.execute("DROP POLICY IF EXISTS resolver_read ON cost_runs")
    op.execute(f"REVOKE SELECT ON cost_runs FROM {RESOLVER_ROLE}")
    op.drop_index("ix_job_runs_failed_finished", table_name="job_runs")
