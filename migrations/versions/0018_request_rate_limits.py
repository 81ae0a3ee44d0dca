"""API rate limits: token buckets shared by every API process, and the one statement that takes
tokens from a credential's bucket and its tenant's together.

- ``request_buckets`` (unlogged, tenant table under row-level security): one row per tenant
  (subject ``tenant``) and per credential that made requests (``api_key:<id>``,
  ``user:<id>``); tokens and when they were last refilled.
- ``valdrix_take_request_tokens(...)``: refills both buckets to now, then takes up to
  ``p_want`` tokens from both, or none; when none, which bucket is empty and how long until it
  holds a token. It sets the tenant for its own statements (and puts the previous value
  back), so called in autocommit it is one round trip; SECURITY INVOKER, so row-level security
  applies to the caller exactly as to any other statement.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from valdrix.kit.rls import APP_ROLE, TENANT_SETTING, tenant_table_rls

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TAKE_TOKENS = (
    "valdrix_take_request_tokens(p_tenant_id uuid, p_credential text, p_want integer,"
    " p_credential_rate double precision, p_credential_burst double precision,"
    " p_tenant_rate double precision, p_tenant_burst double precision)"
)
TAKE_TOKENS_ARGS = (
    "valdrix_take_request_tokens(uuid, text, integer, double precision, double precision,"
    " double precision, double precision)"
)

# Under READ COMMITTED each upsert locks its row (a new bucket starts full) and refills it from
# the row's latest committed value; the tenant's row is always locked first, so two callers
# never wait on each other in opposite orders. Tokens are taken from both rows or from neither.
TAKE_TOKENS_BODY = f"""
DECLARE
    previous text := current_setting('{TENANT_SETTING}', true);
    at_ timestamptz := clock_timestamp();
    tenant_tokens double precision;
    credential_tokens double precision;
BEGIN
    PERFORM set_config('{TENANT_SETTING}', p_tenant_id::text, true);
    INSERT INTO request_buckets AS b (tenant_id, subject, tokens, refilled_at)
    VALUES (p_tenant_id, 'tenant', p_tenant_burst, at_)
    ON CONFLICT (tenant_id, subject) DO UPDATE SET
        tokens = least(p_tenant_burst, b.tokens
                       + p_tenant_rate * greatest(0, extract(epoch FROM at_ - b.refilled_at))),
        refilled_at = at_
    RETURNING b.tokens INTO tenant_tokens;
    INSERT INTO request_buckets AS b (tenant_id, subject, tokens, refilled_at)
    VALUES (p_tenant_id, p_credential, p_credential_burst, at_)
    ON CONFLICT (tenant_id, subject) DO UPDATE SET
        tokens = least(p_credential_burst, b.tokens
                       + p_credential_rate * greatest(0, extract(epoch FROM at_ - b.refilled_at))),
        refilled_at = at_
    RETURNING b.tokens INTO credential_tokens;
    granted := least(p_want, floor(tenant_tokens), floor(credential_tokens))::integer;
    IF granted > 0 THEN
        UPDATE request_buckets SET tokens = tokens - granted
        WHERE tenant_id = p_tenant_id AND subject IN ('tenant', p_credential);
        limited_by := NULL;
        wait_seconds := 0;
    ELSE
        granted := 0;
        limited_by := CASE WHEN credential_tokens < 1 THEN 'credential' ELSE 'tenant' END;
        wait_seconds := greatest(
            CASE WHEN credential_tokens < 1
                 THEN (1 - credential_tokens) / p_credential_rate ELSE 0 END,
            CASE WHEN tenant_tokens < 1 THEN (1 - tenant_tokens) / p_tenant_rate ELSE 0 END);
    END IF;
    PERFORM set_config('{TENANT_SETTING}', coalesce(previous, ''), true);
    RETURN NEXT;
END
"""


def upgrade() -> None:
    op.create_table(
        "request_buckets",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("refilled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_request_buckets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "subject", name=op.f("pk_request_buckets")),
        prefixes=["UNLOGGED"],
    )
    for statement in (
        *tenant_table_rls("request_buckets"),
        f"CREATE FUNCTION {TAKE_TOKENS} RETURNS TABLE (granted integer, limited_by text,"
        " wait_seconds double precision) LANGUAGE plpgsql VOLATILE SECURITY INVOKER"
        f" SET search_path = pg_catalog, public AS $fn$ {TAKE_TOKENS_BODY} $fn$",
        f"REVOKE ALL ON FUNCTION {TAKE_TOKENS_ARGS} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {TAKE_TOKENS_ARGS} TO {APP_ROLE}",
    ):
        op.execute(statement)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {TAKE_TOKENS_ARGS}")
    op.drop_table("request_buckets")
