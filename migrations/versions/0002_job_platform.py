"""Job platform: procrastinate's schema, schedules, and the tenant-visible job runs.

procrastinate's tables are global (its workers serve every tenant); what a tenant may see of its
jobs is mirrored into ``job_runs`` under row-level security. The scheduler's cross-tenant work goes
through narrow functions owned by ``valdrix_resolver``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from valdrix.kit.rls import (
    APP_ROLE,
    RESOLVER_ROLE,
    resolver_can_read,
    resolver_function,
    tenant_table_rls,
)

PROCRASTINATE_SCHEMA = Path(__file__).resolve().parents[1] / "sql" / "procrastinate-3.10.0.sql"

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_schedules_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("tenant_id", "kind", "target_id", name="uq_schedules_target"),
    )
    op.create_index("ix_schedules_due", "schedules", ["next_due_at"], unique=False)
    op.create_table(
        "job_runs",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("procrastinate_job_id", sa.BigInteger(), nullable=False),
        sa.Column("task_name", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=True),
        sa.Column("schedule_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_summary", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_job_runs_schedule_id_schedules"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_job_runs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("procrastinate_job_id", name=op.f("uq_job_runs_procrastinate_job_id")),
    )
    op.create_index(
        "ix_job_runs_tenant_created", "job_runs", ["tenant_id", "created_at"], unique=False
    )
    op.create_index("ix_job_runs_tenant_status", "job_runs", ["tenant_id", "status"], unique=False)
    op.create_index(
        "ix_job_runs_queued_due",
        "job_runs",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
    )
    op.execute(PROCRASTINATE_SCHEMA.read_text())
    op.execute(
        "DO $$ DECLARE f regprocedure; BEGIN"
        " FOR f IN SELECT p.oid::regprocedure FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate%'"
        f" LOOP EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO {APP_ROLE}', f); END LOOP; END $$"
    )
    for table in ("schedules", "job_runs"):
        for statement in tenant_table_rls(table):
            op.execute(statement)
    _cross_tenant_functions()


def _cross_tenant_functions() -> None:
    for statement in [
        *resolver_can_read("schedules"),
        *resolver_can_read("job_runs"),
        f"GRANT UPDATE ON schedules TO {RESOLVER_ROLE}",
        f"CREATE POLICY resolver_claim ON schedules FOR UPDATE TO {RESOLVER_ROLE} USING (true)",
        f"GRANT INSERT, DELETE ON job_runs TO {RESOLVER_ROLE}",
        f"CREATE POLICY resolver_record ON job_runs FOR INSERT TO {RESOLVER_ROLE} WITH CHECK (true)",
        f"CREATE POLICY resolver_prune ON job_runs FOR DELETE TO {RESOLVER_ROLE}"
        " USING (status IN ('succeeded', 'failed', 'cancelled'))",
        f"GRANT SELECT ON procrastinate_jobs TO {RESOLVER_ROLE}",
    ]:
        op.execute(statement)
    for statements in (
        resolver_function(
            "valdrix_claim_due_schedules(p_now timestamptz, p_limit integer, p_cadence_seconds jsonb)",
            "TABLE (schedule_id uuid, tenant_id uuid, kind text, target_id uuid, tier text,"
            " due_at timestamptz, tenant_backlog integer)",
            CLAIM_DUE_SCHEDULES,
            volatile=True,
        ),
        resolver_function(
            "valdrix_record_job_runs(p_job_ids bigint[])",
            "SETOF bigint",
            RECORD_JOB_RUNS,
            volatile=True,
        ),
        resolver_function(
            "valdrix_schedule_lag(p_now timestamptz)",
            "TABLE (tier text, lag_seconds double precision)",
            SCHEDULE_LAG,
        ),
        resolver_function(
            "valdrix_prune_job_runs(p_before timestamptz)",
            "SETOF bigint",
            "DELETE FROM job_runs r WHERE r.finished_at < p_before"
            " AND r.status IN ('succeeded', 'failed', 'cancelled') RETURNING r.procrastinate_job_id",
            volatile=True,
        ),
    ):
        for statement in statements:
            op.execute(statement)


# Claims due schedules (FOR UPDATE SKIP LOCKED, so concurrent ticks split the work), advances each
# to the first slot of its cadence grid after now (one catch-up run after an outage, never a
# burst) and reports each tenant's backlog so fair priorities can be given.
CLAIM_DUE_SCHEDULES = """
WITH due AS (
    SELECT s.id, s.next_due_at FROM schedules s
    WHERE s.enabled AND s.next_due_at <= p_now
    ORDER BY s.next_due_at
    LIMIT p_limit
    FOR UPDATE OF s SKIP LOCKED
), claimed AS (
    UPDATE schedules s
    SET next_due_at = due.next_due_at + c.cadence * (
            floor(extract(epoch FROM p_now - due.next_due_at) / extract(epoch FROM c.cadence)) + 1
        ),
        last_enqueued_at = p_now
    FROM due
    JOIN tenants t ON true
    CROSS JOIN LATERAL (
        SELECT make_interval(secs => (p_cadence_seconds ->> t.tier)::double precision) AS cadence
    ) c
    WHERE s.id = due.id AND t.id = s.tenant_id
    RETURNING s.id, s.tenant_id, s.kind, s.target_id, t.tier, due.next_due_at AS due_at
)
SELECT c.id, c.tenant_id, c.kind::text, c.target_id, c.tier::text, c.due_at,
       (
           (SELECT count(*) FROM job_runs r
            WHERE r.tenant_id = c.tenant_id AND r.status IN ('queued', 'running', 'retrying'))
           + row_number() OVER (PARTITION BY c.tenant_id ORDER BY c.due_at) - 1
       )::integer
FROM claimed c
"""

# Mirrors jobs into job_runs from procrastinate's own rows (the caller passes only job ids).
RECORD_JOB_RUNS = """
INSERT INTO job_runs (id, tenant_id, procrastinate_job_id, task_name, target_id, schedule_id,
                      status, attempts, priority, due_at, created_at)
SELECT gen_random_uuid(), (j.args ->> 'tenant_id')::uuid, j.id, j.task_name,
       (j.args ->> 'target_id')::uuid, (j.args ->> 'schedule_id')::uuid, 'queued', 0,
       j.priority, (j.args ->> 'due_at')::timestamptz, now()
FROM procrastinate_jobs j
WHERE j.id = ANY (p_job_ids) AND j.args ? 'tenant_id'
ON CONFLICT (procrastinate_job_id) DO NOTHING
RETURNING procrastinate_job_id
"""

# How late due work is in starting, per tier: overdue schedules not yet claimed, and scheduled
# jobs still waiting for a worker.
SCHEDULE_LAG = """
SELECT t.tier::text, max(greatest(0, extract(epoch FROM p_now - x.due)))::double precision
FROM (
    SELECT s.tenant_id, s.next_due_at AS due FROM schedules s
    WHERE s.enabled AND s.next_due_at <= p_now
    UNION ALL
    SELECT r.tenant_id, r.due_at FROM job_runs r WHERE r.status = 'queued' AND r.due_at IS NOT NULL
) x
JOIN tenants t ON t.id = x.tenant_id
GROUP BY t.tier
"""


def downgrade() -> None:
    for function in (
        "valdrix_claim_due_schedules(timestamptz, integer, jsonb)",
        "valdrix_record_job_runs(bigint[])",
        "valdrix_schedule_lag(timestamptz)",
        "valdrix_prune_job_runs(timestamptz)",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.drop_index("ix_job_runs_tenant_created", table_name="job_runs")
    op.drop_table("job_runs")
    op.drop_index("ix_schedules_due", table_name="schedules")
    op.drop_table("schedules")
    op.execute(
        "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,"
        " procrastinate_jobs, procrastinate_workers CASCADE"
    )
