"""The findings list's order as an index, and the findings that name shared cost parts apart.

``findings (tenant_id, status, monthly_cost_usd DESC NULLS LAST, id) INCLUDE (provider,
detector)`` replaces ``(tenant_id, status, monthly_cost_usd)``.

The list (API and dashboard) orders by monthly cost, highest first with unpriced findings last,
then id. The old index was ascending with nulls last, which no scan direction turns into that
order, so every page sorted all of the tenant's findings of the status before its LIMIT: at
10,000 findings the sort was most of the page's query (benchmarks/dashboard.py). This index
gives the order itself (scanned backwards: lowest first, unpriced first), so a page stops after
its rows. ``provider`` and ``detector`` ride along so the waste summary (open findings counted
and summed by provider and detector) reads the index alone.

``findings.has_cost_parts`` (stored, generated: ``cost_parts <> '[]'``) and the partial index
``ix_findings_with_cost_parts (tenant_id, status) WHERE has_cost_parts``: the totals'
count-each-dollar-once work and the hiding of imported recommendations read only the findings
that name shared cost parts (a minority: six detector families name any), instead of expanding
every open finding's ``cost_parts``. Adding the column rewrites the table once.

Why not a GIN index on ``cost_parts``: under row-level security, PostgreSQL checks a query's
own conditions before the policy's only when their operators are leakproof, and jsonb
containment (``@>``, ``?|``) is not, so no such index is ever used for the app role. Equality
and a boolean column are: both indexes here serve the app role.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_findings_tenant_status_cost_order ON findings"
        " (tenant_id, status, monthly_cost_usd DESC NULLS LAST, id) INCLUDE (provider, detector)"
    )
    op.drop_index("ix_findings_tenant_status_cost", table_name="findings")
    op.add_column(
        "findings",
        sa.Column(
            "has_cost_parts",
            sa.Boolean(),
            sa.Computed("cost_parts <> '[]'::jsonb", persisted=True),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_findings_with_cost_parts",
        "findings",
        ["tenant_id", "status"],
        postgresql_where=sa.text("has_cost_parts"),
    )


def downgrade() -> None:
    op.drop_index("ix_findings_with_cost_parts", table_name="findings")
    op.drop_column("findings", "has_cost_parts")
    op.create_index(
        "ix_findings_tenant_status_cost", "findings", ["tenant_id", "status", "monthly_cost_usd"]
    )
    op.drop_index("ix_findings_tenant_status_cost_order", table_name="findings")
