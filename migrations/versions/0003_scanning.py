"""Scanning: cloud connections, scans with their units and events, findings and their history.

All tenant tables, each with ENABLE + FORCE row-level security and the tenant policy.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from valdrix.kit.rls import tenant_table_rls

TENANT_TABLES = (
    "cloud_connections",
    "scans",
    "scan_units",
    "scan_events",
    "findings",
    "finding_history",
)
revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cloud_connections",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role_arn", sa.String(length=2048), nullable=False),
        sa.Column("external_id", sa.LargeBinary(), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=True),
        sa.Column("regions", postgresql.ARRAY(sa.String(length=32)), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("last_verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "thresholds",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "tag_exclusions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_cloud_connections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cloud_connections")),
    )
    op.create_index(
        op.f("ix_cloud_connections_tenant_id"), "cloud_connections", ["tenant_id"], unique=False
    )
    op.create_index(
        "uq_cloud_connections_active_name",
        "cloud_connections",
        ["tenant_id", "name"],
        unique=True,
        postgresql_where=sa.text("disabled_at IS NULL"),
    )
    op.create_table(
        "scans",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column(
            "regions", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resources_seen", sa.Integer(), server_default="0", nullable=False),
        sa.Column("findings_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "monthly_waste_usd",
            sa.Numeric(precision=14, scale=2),
            server_default="0",
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["cloud_connections.id"],
            name=op.f("fk_scans_connection_id_cloud_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scans_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scans")),
    )
    op.create_index(op.f("ix_scans_connection_id"), "scans", ["connection_id"], unique=False)
    op.create_index("ix_scans_tenant_created", "scans", ["tenant_id", "created_at"], unique=False)
    op.create_table(
        "findings",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("connection_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("detector", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=512), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_name", sa.String(length=512), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("monthly_cost_usd", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("cost_basis", sa.String(length=16), nullable=False),
        sa.Column("price_detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("tags", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_scan_id", sa.Uuid(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_note", sa.String(length=1000), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["cloud_connections.id"],
            name=op.f("fk_findings_connection_id_cloud_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["last_scan_id"],
            ["scans.id"],
            name=op.f("fk_findings_last_scan_id_scans"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_findings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
        sa.UniqueConstraint("tenant_id", "fingerprint", name="uq_findings_fingerprint"),
    )
    op.create_index(
        "ix_findings_connection_region",
        "findings",
        ["connection_id", "region", "detector"],
        unique=False,
    )
    op.create_index(
        "ix_findings_tenant_status_cost",
        "findings",
        ["tenant_id", "status", "monthly_cost_usd"],
        unique=False,
    )
    op.create_table(
        "scan_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("scan_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name=op.f("fk_scan_events_scan_id_scans"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scan_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_events")),
    )
    op.create_index("ix_scan_events_scan_seq", "scan_events", ["scan_id", "id"], unique=False)
    op.create_table(
        "scan_units",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("scan_id", sa.Uuid(), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("detector", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("findings_count", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name=op.f("fk_scan_units_scan_id_scans"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scan_units_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_units")),
        sa.UniqueConstraint("scan_id", "region", "detector", name="uq_scan_units_unit"),
    )
    op.create_table(
        "finding_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("finding_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("scan_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["findings.id"],
            name=op.f("fk_finding_history_finding_id_findings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scan_id"],
            ["scans.id"],
            name=op.f("fk_finding_history_scan_id_scans"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_finding_history_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_finding_history")),
    )
    op.create_index(
        "ix_finding_history_finding", "finding_history", ["finding_id", "created_at"], unique=False
    )
    for table in TENANT_TABLES:
        for statement in tenant_table_rls(table):
            op.execute(statement)
    # History is append-only for the application.
    op.execute("REVOKE UPDATE, DELETE ON finding_history FROM valdrix_app")


def downgrade() -> None:
    op.drop_index("ix_finding_history_finding", table_name="finding_history")
    op.drop_table("finding_history")
    op.drop_table("scan_units")
    op.drop_index("ix_scan_events_scan_seq", table_name="scan_events")
    op.drop_table("scan_events")
    op.drop_index("ix_findings_tenant_status_cost", table_name="findings")
    op.drop_index("ix_findings_connection_region", table_name="findings")
    op.drop_table("findings")
    op.drop_index("ix_scans_tenant_created", table_name="scans")
    op.drop_index(op.f("ix_scans_connection_id"), table_name="scans")
    op.drop_table("scans")
    op.drop_index(op.f("ix_cloud_connections_tenant_id"), table_name="cloud_connections")
    op.drop_table("cloud_connections")
