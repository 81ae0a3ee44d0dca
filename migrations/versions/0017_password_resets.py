"""Password resets: a global table of reset requests, each counted by address and client IP,
and for an address with an account the hash of the single-use token mailed to it.

Global like ``login_attempts`` (the tenant is not known when someone asks for a reset): rows
hold a keyed blind index of the address, an IP, times, and for a known address the account's
id and the token's hash, never the token or the address itself.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from valdrix.kit.rls import APP_ROLE

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "password_resets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("email_index", sa.LargeBinary(), nullable=False),
        sa.Column("ip", postgresql.INET(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.LargeBinary(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_resets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index("ix_password_resets_email", "password_resets", ["email_index", "requested_at"])
    op.create_index("ix_password_resets_ip", "password_resets", ["ip", "requested_at"])
    op.create_index(op.f("ix_password_resets_user_id"), "password_resets", ["user_id"])
    # As the schema's default privileges would; argued in docs/architecture.md (Global tables).
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON password_resets TO {APP_ROLE}")


def downgrade() -> None:
    op.drop_table("password_resets")
