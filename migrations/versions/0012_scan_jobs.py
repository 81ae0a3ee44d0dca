"""Scans remember the job running them; orphaned scans can be found and ended.

A scan whose worker died stayed ``running`` for ever: nothing tied it to its job. ``job_id``
lets a retried job resume the scan it began, and ``valdrix_orphaned_scans`` lists, across
tenants, the unfinished scans no job will run any more (read by the sweeper, which ends each
one ``interrupted`` under its tenant):

- running, and its job is neither waiting (``todo``: a retry will resume it) nor running
  (``doing``: stalled-job recovery decides first);
- running without a job (run in-process) and started before ``p_running_before``;
- queued since before ``p_queued_before`` with no waiting or running scan job for its
  connection (a scheduled job adopts a waiting manual scan, so any of them counts).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from valdrix.kit.rls import resolver_can_read, resolver_function

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ORPHANED = "valdrix_orphaned_scans(p_queued_before timestamptz, p_running_before timestamptz)"
ORPHANED_SQL = """
SELECT s.tenant_id, s.id, s.status::text FROM scans s
WHERE s.status IN ('queued', 'running') AND CASE
    WHEN s.status = 'running' AND s.job_id IS NOT NULL THEN NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs j
        WHERE j.id = s.job_id AND j.status IN ('todo', 'doing'))
    WHEN s.status = 'running' THEN s.started_at < p_running_before
    ELSE s.created_at < p_queued_before AND NOT EXISTS (
        SELECT 1 FROM procrastinate_jobs j
        WHERE j.task_name = 'scans.run' AND j.status IN ('todo', 'doing')
          AND j.args ->> 'target_id' = s.connection_id::text)
END
"""


def upgrade() -> None:
    op.add_column("scans", sa.Column("job_id", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_scans_unfinished",
        "scans",
        ["status"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    for statement in [
        *resolver_can_read("scans"),
        *resolver_function(
            ORPHANED, "TABLE (tenant_id uuid, scan_id uuid, status text)", ORPHANED_SQL
        ),
    ]:
        op.execute(statement)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {ORPHANED}")
    op.execute("DROP POLICY IF EXISTS resolver_read ON scans")
    op.drop_index("ix_scans_unfinished", table_name="scans")
    op.drop_column("scans", "job_id")
