"""Findings' billed prices read ``cost_resource_days``; ``cost_records`` drops its resource index.

``cost_resource_days`` holds the billed cost of the records per (source, billing period, day,
account, currency, resource), written by every import beside the records and replaced with
them; it is partitioned by month like them, by the same ``valdrix_ensure_cost_partitions``.

Why: the resource index ``ix_cost_records_resource (tenant_id, resource_key, day)`` was written
once per record, and a detailed export has about a record per row. On 200,000 records it took
over 40 % of the INSERT into ``cost_records`` (1.6 to 1.8 backend CPU-seconds with it, 0.9 to
1.0 without). A finding's billed price only needs the resource's billed cost per day, which
has a row per resource-day (a fifth of the records on a daily export with five lines per
resource), and is the same sum: each roll-up row adds up its records' stored amounts.

Existing records are rolled up into the new table before the index goes.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from valdrix.kit.rls import POLICY_NAME, tenant_table_rls

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENSURE_PARTITIONS = "valdrix_ensure_cost_partitions(p_from date, p_to date)"
PARTITIONED = "ARRAY['cost_records', 'cost_daily', 'cost_resource_days']"
BEFORE = "ARRAY['cost_records', 'cost_daily']"
ROLL_UP_KEYS = (
    "tenant_id, day, source_id, billing_period_start, currency, billing_account_id,"
    " sub_account_id, resource_key"
)


def _ensure_partitions_function(parents: str) -> str:
    """0005's function, creating the months of ``parents``."""
    current = op.get_bind().scalar(
        sa.text("SELECT prosrc FROM pg_proc WHERE proname = 'valdrix_ensure_cost_partitions'")
    )
    assert current is not None
    body = str(current).replace(BEFORE, parents).replace(PARTITIONED, parents)
    assert parents in body
    return (
        f"CREATE OR REPLACE FUNCTION {ENSURE_PARTITIONS} RETURNS integer LANGUAGE plpgsql"
        f" SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$ {body} $fn$"
    )


def upgrade() -> None:
    op.create_table(
        "cost_resource_days",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("billing_period_start", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("billing_account_id", sa.String(length=100), nullable=False),
        sa.Column("sub_account_id", sa.String(length=100), nullable=True),
        sa.Column("resource_key", sa.String(length=256), nullable=False),
        sa.Column("billed_cost", sa.Numeric(precision=24, scale=10), nullable=False),
        postgresql_partition_by="RANGE (day)",
    )
    op.create_index(
        "ix_cost_resource_days_source_period_day",
        "cost_resource_days",
        ["tenant_id", "source_id", "billing_period_start", "day"],
    )
    op.create_index(
        "ix_cost_resource_days_resource",
        "cost_resource_days",
        ["tenant_id", "resource_key", "day"],
    )
    for statement in tenant_table_rls("cost_resource_days"):
        op.execute(statement)
    op.execute(_ensure_partitions_function(PARTITIONED))
    # The months the records already have (the function adds what is missing, with its RLS).
    op.execute(
        "SELECT valdrix_ensure_cost_partitions(month, month) FROM ("
        " SELECT to_date(right(c.relname, 6), 'YYYYMM') AS month FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'public.cost_records'::regclass) AS months"
    )
    # Row-level security is forced on the owner too; lift it for the backfill only.
    for table in ("cost_records", "cost_resource_days"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(
        f"INSERT INTO cost_resource_days ({ROLL_UP_KEYS}, billed_cost)"
        f" SELECT {ROLL_UP_KEYS}, sum(billed_cost) FROM cost_records"
        f" WHERE resource_key IS NOT NULL GROUP BY {ROLL_UP_KEYS}"
    )
    for table in ("cost_records", "cost_resource_days"):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.drop_index(
        "ix_cost_records_resource",
        table_name="cost_records",
        postgresql_where=sa.text("resource_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.create_index(
        "ix_cost_records_resource",
        "cost_records",
        ["tenant_id", "resource_key", "day"],
        postgresql_where=sa.text("resource_key IS NOT NULL"),
    )
    op.execute(_ensure_partitions_function(BEFORE))
    op.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON cost_resource_days")
    op.drop_table("cost_resource_days")
