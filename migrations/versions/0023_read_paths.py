"""The findings list's other orders and filters as indexes.

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

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
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
    op.drop_index("ix_findings_tenant_detector_region", table_name="findings")
    op.drop_index("ix_findings_tenant_status_seen_order", table_name="findings")
    op.drop_index("ix_findings_tenant_cost_order", table_name="findings")
