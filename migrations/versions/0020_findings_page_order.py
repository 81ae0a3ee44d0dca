"""The findings list's order as an index: ``findings (tenant_id, status, monthly_cost_usd DESC
NULLS LAST, id) INCLUDE (provider, detector)`` replaces ``(tenant_id, status,
monthly_cost_usd)``.

The list (API and dashboard) orders by monthly cost, highest first with unpriced findings last,
then id. The old index was ascending with nulls last, which no scan direction turns into that
order, so every page sorted all of the tenant's findings of the status before its LIMIT: at
10,000 findings the sort was most of the page's query (benchmarks/dashboard.py). This index
gives the order itself (scanned backwards: lowest first, unpriced first), so a page stops after
its rows. ``provider`` and ``detector`` ride along so the waste summary (open findings counted
and summed by provider and detector) reads the index alone.

Only equality on ``tenant_id`` and ``status`` is used as the index condition: those operators
are leakproof, which row-level security requires before a query's own condition may be checked
ahead of the policy's.

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_findings_tenant_status_cost_order ON findings"
        " (tenant_id, status, monthly_cost_usd DESC NULLS LAST, id) INCLUDE (provider, detector)"
    )
    op.drop_index("ix_findings_tenant_status_cost", table_name="findings")


def downgrade() -> None:
    op.create_index(
        "ix_findings_tenant_status_cost", "findings", ["tenant_id", "status", "monthly_cost_usd"]
    )
    op.drop_index("ix_findings_tenant_status_cost_order", table_name="findings")
