"""Scan analyses remember when their result was written.

Asking for a scan's analysis again keeps the last good result visible while the new attempt
runs (or is skipped for budget); ``result_at`` says how old that result is. Earlier results
have none (the answer then falls back to the attempt's end, when it was the ready one).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "scan_analyses", sa.Column("result_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("scan_analyses", "result_at")
