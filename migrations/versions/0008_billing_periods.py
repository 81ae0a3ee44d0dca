"""Cost data keyed by billing period: the unit a delivery replaces, and the clock of "final".

- ``cost_records``, ``cost_daily`` and ``cost_readings`` get ``billing_period_start`` (the period
  the charge is billed in; a correction for an April day delivered with May's data is in May's
  period), and the records ``billing_period_end``. A FOCUS delivery replaces exactly the billing
  periods it is for; readings compare like with like (same period, day, service, account).
- Preliminary data turns final when ``billing_period_end`` is far enough in the past, evaluated
  when read, so nothing needs a re-import to flip.
- ``cost_adjustments.change_percent`` may be null when the change is too large to be a
  meaningful percentage (from a fraction of a cent to dollars).

Existing rows: the billing period is taken to be the calendar month of the day (what every
provider bills by); ``billing_period_end`` stays empty, so their stored flag keeps deciding.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONTH_OF_DAY = "date_trunc('month', day)::date"


def upgrade() -> None:
    for table in ("cost_records", "cost_daily", "cost_readings"):
        op.add_column(table, sa.Column("billing_period_start", sa.Date(), nullable=True))
        # Row-level security is forced on the owner too; lift it for the backfill only.
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"UPDATE {table} SET billing_period_start = {MONTH_OF_DAY}")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.alter_column(table, "billing_period_start", nullable=False)
    for table in ("cost_records", "cost_daily"):
        op.add_column(table, sa.Column("billing_period_end", sa.Date(), nullable=True))
        op.create_index(
            f"ix_{table}_source_period",
            table,
            ["tenant_id", "source_id", "billing_period_start"],
        )
    op.drop_index("ix_cost_readings_key", table_name="cost_readings")
    op.create_index(
        "ix_cost_readings_key",
        "cost_readings",
        ["tenant_id", "source_id", "billing_period_start", "day", "service", "account"],
    )


def downgrade() -> None:
    op.drop_index("ix_cost_readings_key", table_name="cost_readings")
    op.create_index(
        "ix_cost_readings_key",
        "cost_readings",
        ["tenant_id", "source_id", "day", "service", "account"],
    )
    for table in ("cost_records", "cost_daily"):
        op.drop_index(f"ix_{table}_source_period", table_name=table)
        op.drop_column(table, "billing_period_end")
    for table in ("cost_records", "cost_daily", "cost_readings"):
        op.drop_column(table, "billing_period_start")
