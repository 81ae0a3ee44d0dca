"""Observability: the per-tenant figures /metrics reports, read across tenants only through two
resolver functions that return tenant ids and totals.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

from valdrix.kit.rls import resolver_can_read, resolver_function

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINDINGS = "valdrix_open_findings_by_tenant()"
BUDGETS = "valdrix_llm_budget_limits(p_month date)"


def upgrade() -> None:
    for statement in [
        *resolver_can_read("findings"),
        *resolver_function(
            FINDINGS,
            "TABLE (tenant_id uuid, open_findings bigint, monthly_waste_usd numeric)",
            "SELECT f.tenant_id, count(*), coalesce(sum(f.monthly_cost_usd), 0)"
            " FROM findings f WHERE f.status = 'open' GROUP BY f.tenant_id",
        ),
        *resolver_function(
            BUDGETS,
            "TABLE (tenant_id uuid, tier text, daily_cap_usd numeric, monthly_limit_usd numeric)",
            "SELECT b.tenant_id, t.tier, b.daily_cap_usd, b.monthly_limit_usd"
            " FROM llm_budgets b JOIN tenants t ON t.id = b.tenant_id WHERE b.month = p_month",
        ),
    ]:
        op.execute(statement)


def downgrade() -> None:
    for function in (FINDINGS, BUDGETS):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
    op.execute("DROP POLICY IF EXISTS resolver_read ON findings")
