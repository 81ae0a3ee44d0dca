"""``cost_records`` keeps no foreign key to ``tenants``.

The table takes a record per resource, SKU and day: a large account's month is millions of
rows, inserted in one statement per import. The foreign key's check ran once per row (a
locking read of the tenant) and took a fifth of a 1,000,000-record import. What it guarded is
guarded anyway: the tenant policy's WITH CHECK admits only rows of the tenant the transaction
is bound to, and only an existing tenant is ever bound. ``source_id`` and ``run_id`` carry no
foreign key for the same reason. Deleting a tenant (no such feature yet) must delete its
records explicitly, as docs/architecture.md says.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("fk_cost_records_tenant_id_tenants", "cost_records", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        "fk_cost_records_tenant_id_tenants",
        "cost_records",
        "tenants",
        ["tenant_id"],
        ["id"],
        ondelete="CASCADE",
    )
