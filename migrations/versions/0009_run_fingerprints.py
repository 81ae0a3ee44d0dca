"""A committed cost run remembers a fingerprint of the records it stored; readings by day.

- A run that stores exactly the records its source's last run stored (the same file imported
  again) changes nothing a reader sees, so it leaves the tenant's data version, and with it the
  ETag of every cost answer, as it was.
- ``GET /costs/readings`` lists every reading of a day's keys (each restatement, small or
  large): ``cost_readings`` gets an index by tenant and day.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cost_runs", sa.Column("records_fingerprint", sa.String(64), nullable=True))
    op.create_index("ix_cost_readings_day", "cost_readings", ["tenant_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_cost_readings_day", table_name="cost_readings")
    op.drop_column("cost_runs", "records_fingerprint")
