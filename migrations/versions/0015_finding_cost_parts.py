"""Totals count each dollar once: findings name the parts of their figure other findings may
price too, and scans keep how much of their findings' sum was such overlap.

- ``findings.cost_parts``: ``[{"component", "resource_id", "monthly_usd"}]``, the shared parts of
  the finding's figure (``scanning.overlaps``); older findings have none until scanned again.
- ``scans.monthly_waste_overlap_usd``: the findings' figures summed, less ``monthly_waste_usd``.
- ``valdrix_open_findings_by_tenant()`` (the waste metric) counts each (provider, account, region,
  component, resource) once, at its largest part, as the API's totals do.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from valdrix.kit.rls import resolver_function

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINDINGS = "valdrix_open_findings_by_tenant()"
RETURNS = "TABLE (tenant_id uuid, open_findings bigint, monthly_waste_usd numeric)"
SUMMED_ONCE = """
WITH open_now AS (
    SELECT f.tenant_id, f.provider, f.account_id, f.region, f.monthly_cost_usd, f.cost_parts
    FROM findings f WHERE f.status = 'open'
), overlap AS (
    SELECT o.tenant_id, sum(p.usd) - max(p.usd) AS usd
    FROM open_now o
    CROSS JOIN LATERAL (
        SELECT e->>'component' AS component, e->>'resource_id' AS resource_id,
               (e->>'monthly_usd')::numeric AS usd
        FROM jsonb_array_elements(o.cost_parts) e
    ) p
    GROUP BY o.tenant_id, o.provider, o.account_id, o.region, p.component, p.resource_id
)
SELECT o.tenant_id, count(*),
       coalesce(sum(o.monthly_cost_usd), 0)
       - coalesce((SELECT sum(v.usd) FROM overlap v WHERE v.tenant_id = o.tenant_id), 0)
FROM open_now o GROUP BY o.tenant_id
"""
SUMMED_TWICE = (
    "SELECT f.tenant_id, count(*), coalesce(sum(f.monthly_cost_usd), 0)"
    " FROM findings f WHERE f.status = 'open' GROUP BY f.tenant_id"
)


def upgrade() -> None:
    op.add_column(
        "findings",
        sa.Column(
            "cost_parts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )
    op.add_column(
        "scans",
        sa.Column(
            "monthly_waste_overlap_usd",
            sa.Numeric(precision=14, scale=2),
            server_default="0",
            nullable=False,
        ),
    )
    _replace_waste_function(SUMMED_ONCE)


def downgrade() -> None:
    _replace_waste_function(SUMMED_TWICE)
    op.drop_column("scans", "monthly_waste_overlap_usd")
    op.drop_column("findings", "cost_parts")


def _replace_waste_function(body: str) -> None:
    op.execute(f"DROP FUNCTION {FINDINGS}")
    for statement in resolver_function(FINDINGS, RETURNS, body):
        op.execute(statement)
