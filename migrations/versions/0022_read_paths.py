"""The findings list's other orders and filters as indexes, and costs rolled up by month.

Beside 0020's ``(tenant_id, status, monthly_cost_usd DESC NULLS LAST, id)``, which serves a list
of one status in cost order, three more shapes the API and the dashboard ask for:

* ``(tenant_id, monthly_cost_usd DESC NULLS LAST, id)``: every finding, highest cost first (the
  list with no status filter, the default of ``GET /api/v1/findings``). Without it each page
  read and sorted all of the tenant's findings; with it the scan stops after the page's rows.
* ``(tenant_id, status, last_seen_at DESC NULLS LAST, id)``: findings of a status by when they
  were last seen (``sort=last_seen_at``, either direction), the same way. The price: scans
  refresh ``last_seen_at`` of every finding they see again, and such an update now writes this
  index too.
* ``(tenant_id, detector, region)``: findings of one detector (and region), which only
  ``(connection_id, region, detector)`` could narrow before, searched once per connection.

All three are plain b-tree columns and equality, which serve the app role under row-level
security (its policy is checked first; these conditions are leakproof).

``cost_monthly``: ``cost_daily`` summed by month (every column of it but ``day``, and ``month``,
the month's first day), a tenant table with the tenant policy. Costs over a year grouped by
anything but day summed some 365 rows per group from ``cost_daily``; they now sum the whole
months from here and only the days of a partial first or last month from ``cost_daily``. Each
import refreshes the months it changed in its own transaction (``IngestRepository
.refresh_monthly``); this migration fills it from the ``cost_daily`` already stored. Not
partitioned: a twelfth of ``cost_daily``'s rows or less.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from valdrix.kit.rls import tenant_table_rls

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


DAILY_COLUMNS = (
    "tenant_id, source_id, run_id, currency, provider, billing_account_id, sub_account_id,"
    " service, region, charge_category, billing_period_start, billing_period_end, preliminary"
)


def upgrade() -> None:
    op.create_table(
        "cost_monthly",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("billing_account_id", sa.String(100), nullable=False),
        sa.Column("sub_account_id", sa.String(100), nullable=True),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("charge_category", sa.String(16), nullable=False),
        sa.Column("billing_period_start", sa.Date(), nullable=False),
        sa.Column("billing_period_end", sa.Date(), nullable=True),
        sa.Column("preliminary", sa.Boolean(), nullable=False),
        # A month of days that each fit Numeric(24, 10).
        sa.Column("billed_cost", sa.Numeric(28, 10), nullable=False),
        sa.Column("effective_cost", sa.Numeric(28, 10), nullable=False),
        sa.Column("list_cost", sa.Numeric(28, 10), nullable=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_cost_monthly_tenant_month", "cost_monthly", ["tenant_id", "month"])
    op.create_index(
        "ix_cost_monthly_source_month", "cost_monthly", ["tenant_id", "source_id", "month"]
    )
    op.create_index("ix_cost_monthly_period", "cost_monthly", ["tenant_id", "billing_period_start"])
    # Row-level security is forced on the owner too; lifted from cost_daily for the copy only.
    op.execute("ALTER TABLE cost_daily NO FORCE ROW LEVEL SECURITY")
    op.execute(
        f"INSERT INTO cost_monthly ({DAILY_COLUMNS}, month, billed_cost, effective_cost,"
        f" list_cost) SELECT {DAILY_COLUMNS}, date_trunc('month', day)::date,"
        " sum(billed_cost), sum(effective_cost), sum(list_cost) FROM cost_daily"
        f" GROUP BY {DAILY_COLUMNS}, date_trunc('month', day)::date"
    )
    op.execute("ALTER TABLE cost_daily FORCE ROW LEVEL SECURITY")
    for statement in tenant_table_rls("cost_monthly"):
        op.execute(statement)
    op.execute(
        "CREATE INDEX ix_findings_tenant_cost_order ON findings"
        " (tenant_id, monthly_cost_usd DESC NULLS LAST, id)"
    )
    op.execute(
        "CREATE INDEX ix_findings_tenant_status_seen_order ON findings"
        " (tenant_id, status, last_seen_at DESC NULLS LAST, id)"
    )
    op.create_index(
        "ix_findings_tenant_detector_region", "findings", ["tenant_id", "detector", "region"]
    )


def downgrade() -> None:
    op.drop_table("cost_monthly")
    op.drop_index("ix_findings_tenant_detector_region", table_name="findings")
    op.drop_index("ix_findings_tenant_status_seen_order", table_name="findings")
    op.drop_index("ix_findings_tenant_cost_order", table_name="findings")
