"""``cost_records`` keeps two indexes instead of four.

Every index is written once per record, and an import writes a record per resource, SKU and
day: on a 1,000,000-record import the four indexes took about two thirds of the INSERT. Three
of them served the same tenant's rows by source, billing period or day; one index on
(tenant, source, billing period, day) serves all three:

- replacing a delivery deletes by (tenant, source, billing period): its prefix;
- replacing a Cost Explorer window deletes by (tenant, source) and days: its prefix, days
  checked in the index;
- reading a tenant's days (grouped by resource or tag) is pruned to the months' partitions,
  then takes the tenant's entries there (PostgreSQL 18 skips over sources and periods).

The resource index (billed prices of findings) stays.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REPLACED = {
    "ix_cost_records_tenant_day": ["tenant_id", "day"],
    "ix_cost_records_source_day": ["tenant_id", "source_id", "day"],
    "ix_cost_records_source_period": ["tenant_id", "source_id", "billing_period_start"],
}
COMBINED = ["tenant_id", "source_id", "billing_period_start", "day"]


def upgrade() -> None:
    op.create_index("ix_cost_records_source_period_day", "cost_records", COMBINED)
    for name in REPLACED:
        op.drop_index(name, table_name="cost_records")


def downgrade() -> None:
    for name, columns in REPLACED.items():
        op.create_index(name, "cost_records", columns)
    op.drop_index("ix_cost_records_source_period_day", table_name="cost_records")
