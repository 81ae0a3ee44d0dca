"""Findings' cost parts as rows: ``finding_cost_parts``, kept by a trigger on ``findings``.

One row per element of a finding's ``cost_parts`` (finding, position; component, resource id,
monthly USD), with what the reads of shared costs ask of its finding: tenant, provider,
account, region, detector, status, and whether the cost is of the finding's own resource.

Why: every findings list worked out the imported recommendations to leave out (those an open
finding of Valdrix's own prices too) by expanding the jsonb of every finding naming parts and
joining them, 9 to 13 ms of each list's SQL at 10,000 findings; the summary's count-each-dollar-
once ranking expanded and sorted every open part on each ask, 16 to 23 ms. jsonb operators
cannot use an index under row-level security (they are not leakproof); these b-tree columns can.

Why a trigger rather than the application's writes: a finding's parts or status change through
the scan's bulk writes, the ORM's flush of a status change (by hand, by a scan's resolution, by
a snooze's end) and cascades; a trigger keeps the rows whichever path writes, in the same
transaction. It runs as the writer (no SECURITY DEFINER): the rows it writes carry the
finding's tenant, which the tenant policy checks as for any write. An update that changes
neither the parts, the status nor the place does nothing (a scan's refresh of a finding it sees
again). Deleting a finding deletes its rows (foreign key).

The parts of the findings already stored are copied in.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from valdrix.kit.rls import tenant_table_rls

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "finding_id, position, tenant_id, provider, account_id, region, detector, status,"
    " component, resource_id, monthly_usd, own"
)
# The parts of the finding ``{row}`` (NEW in the trigger; each of ``{rows}`` in the copy).
PARTS_OF = (
    "SELECT {row}.id, part.position, {row}.tenant_id, {row}.provider, {row}.account_id,"
    " {row}.region, {row}.detector, {row}.status, part.value->>'component',"
    " part.value->>'resource_id', (part.value->>'monthly_usd')::numeric,"
    " part.value->>'resource_id' = {row}.resource_id"
    " FROM {rows}jsonb_array_elements({row}.cost_parts) WITH ORDINALITY AS part(value, position)"
)
KEEP_FUNCTION = f"""
CREATE FUNCTION valdrix_keep_finding_cost_parts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM finding_cost_parts WHERE finding_id = OLD.id;
    END IF;
    INSERT INTO finding_cost_parts ({COLUMNS}) {PARTS_OF.format(row="NEW", rows="")};
    RETURN NULL;
END
$$
"""
# What the rows copy from their finding: a change of anything else leaves them as they are.
KEPT = (
    "cost_parts", "status", "tenant_id", "provider", "account_id", "region", "detector",
    "resource_id",
)  # fmt: skip
KEPT_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in KEPT)
TRIGGERS = (
    (
        "findings_cost_parts_inserted",
        "INSERT",
        "NEW.cost_parts <> '[]'::jsonb",
    ),
    (
        "findings_cost_parts_updated",
        "UPDATE",
        f"(OLD.cost_parts <> '[]'::jsonb OR NEW.cost_parts <> '[]'::jsonb) AND ({KEPT_CHANGED})",
    ),
)


def upgrade() -> None:
    op.create_table(
        "finding_cost_parts",
        sa.Column("finding_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(16, collation="C"), nullable=False),
        sa.Column("account_id", sa.String(32, collation="C"), nullable=False),
        sa.Column("region", sa.String(32, collation="C"), nullable=False),
        sa.Column("detector", sa.String(64, collation="C"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("component", sa.Text(collation="C"), nullable=False),
        sa.Column("resource_id", sa.Text(collation="C"), nullable=False),
        sa.Column("monthly_usd", sa.Numeric(), nullable=False),
        sa.Column("own", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["finding_id"], ["findings.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("finding_id", "position"),
    )
    op.create_index(
        "ix_finding_cost_parts_open_cost",
        "finding_cost_parts",
        ["tenant_id", "resource_id", "component", "provider", "account_id", "region"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "ix_finding_cost_parts_tenant_detector", "finding_cost_parts", ["tenant_id", "detector"]
    )
    for statement in tenant_table_rls("finding_cost_parts"):
        op.execute(statement)
    op.execute(KEEP_FUNCTION)
    # The triggers first: creating them locks findings against writes until this commits, so
    # no finding is written between the copy and them.
    for name, event, when in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON findings FOR EACH ROW WHEN ({when})"
            " EXECUTE FUNCTION valdrix_keep_finding_cost_parts()"
        )
    # Row-level security is forced on the owner too; lifted for the copy only.
    for table in ("findings", "finding_cost_parts"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    copied = PARTS_OF.format(row="f", rows="findings f, ")
    op.execute(f"INSERT INTO finding_cost_parts ({COLUMNS}) {copied}")
    for table in ("findings", "finding_cost_parts"):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    for name, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON findings")
    op.execute("DROP FUNCTION valdrix_keep_finding_cost_parts()")
    op.drop_table("finding_cost_parts")
