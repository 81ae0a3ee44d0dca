"""Rate-limit buckets are pruned once idle: ``valdrix_prune_request_buckets(p_before)`` deletes
every tenant's buckets last refilled before ``p_before`` (a revoked key's, a departed member's),
for the hourly retention job, and never one used in the last hour. A bucket idle longer than its
refill takes is full, and a missing one is made full on the next request: pruning such buckets
changes no limit (the job computes that time from its own rate-limit settings, which must be
the API processes').

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

from valdrix.kit.rls import RESOLVER_ROLE, resolver_can_read, resolver_function

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRUNE = "valdrix_prune_request_buckets(p_before timestamptz)"


def upgrade() -> None:
    for statement in (
        *resolver_can_read("request_buckets"),
        f"GRANT DELETE ON request_buckets TO {RESOLVER_ROLE}",
        f"CREATE POLICY resolver_prune ON request_buckets FOR DELETE TO {RESOLVER_ROLE}"
        " USING (true)",
        *resolver_function(
            PRUNE,
            "bigint",
            # Never a bucket used in the last hour, whatever the caller asks: the function
            # works across tenants, and a later time would refill every tenant's buckets.
            "WITH gone AS (DELETE FROM request_buckets"
            " WHERE refilled_at < least(p_before, now() - interval '1 hour') RETURNING 1)"
            " SELECT count(*) FROM gone",
            volatile=True,
        ),
    ):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION valdrix_prune_request_buckets(timestamptz)")
    op.execute("DROP POLICY resolver_prune ON request_buckets")
    op.execute("DROP POLICY resolver_read ON request_buckets")
    op.execute(f"REVOKE SELECT, DELETE ON request_buckets FROM {RESOLVER_ROLE}")
