"""Identity: invitations name an address, not an account; accounts are proven or tenant-bound.

- A pending invitation is a membership without a user: it holds the invited address (encrypted,
  with its blind index), the token hash and how the token was delivered. Accepting it attaches
  an account; nothing about any existing account is read or changed when inviting.
- An account is *proven* (``proven_at``) when its address received a secret by mail; otherwise
  it is bound to the one tenant whose invitation created it (``home_tenant_id``) and is never
  matched to another tenant's invitation. One proven account per address; unproven accounts of
  the same address in different tenants are different accounts.
- ``users`` gets forced row-level security: a tenant sees the people who are its members (or
  were created by it), nobody else. Login and acceptance find accounts by address through a
  resolver function.
- API keys work only while their creator is an active member, with at most the creator's role.
- Audit events get a random public id, so ids reveal nothing about other tenants' activity.

Existing data: pending invitations keep their tokens (the address is copied from the account
they pointed at, and accounts left without any membership are deleted). Accounts that belong to
exactly one tenant become bound to it; accounts already in several tenants are kept as proven.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from valdrix.kit.rls import CURRENT_TENANT, resolver_can_read, resolver_function

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE_RANK = "array_position(ARRAY['viewer','member','admin','owner'], {})"


def upgrade() -> None:
    _invitations_name_an_address()
    _accounts_are_proven_or_bound()
    _users_behind_row_level_security()
    _resolvers()
    op.create_index("ix_login_attempts_ip", "login_attempts", ["ip", "attempted_at"])
    op.add_column(
        "audit_log",
        sa.Column(
            "public_id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False
        ),
    )
    op.create_unique_constraint("uq_audit_log_public_id", "audit_log", ["public_id"])


def _invitations_name_an_address() -> None:
    op.add_column("memberships", sa.Column("invite_email", sa.LargeBinary(), nullable=True))
    op.add_column("memberships", sa.Column("invite_email_index", sa.LargeBinary(), nullable=True))
    op.add_column("memberships", sa.Column("invite_delivery", sa.String(16), nullable=True))
    op.alter_column("memberships", "user_id", nullable=True)
    # RLS is forced even on the owner: the data moves below run with it switched off briefly.
    op.execute("ALTER TABLE memberships NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE users NO FORCE ROW LEVEL SECURITY")
    op.execute(
        "UPDATE memberships m SET invite_email = u.email, invite_email_index = u.email_index,"
        " invite_delivery = 'inviter', user_id = NULL"
        " FROM users u WHERE u.id = m.user_id AND m.accepted_at IS NULL"
    )
    op.execute("DELETE FROM memberships WHERE accepted_at IS NULL AND invite_token_hash IS NULL")
    op.execute(
        "DELETE FROM users u WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id)"
    )
    op.execute("ALTER TABLE memberships FORCE ROW LEVEL SECURITY")
    op.create_check_constraint(
        "person",
        "memberships",
        "(user_id IS NOT NULL AND accepted_at IS NOT NULL AND invite_token_hash IS NULL)"
        " OR (user_id IS NULL AND accepted_at IS NULL AND invite_token_hash IS NOT NULL"
        " AND invite_email IS NOT NULL AND invite_email_index IS NOT NULL"
        " AND invite_delivery IN ('mail', 'inviter'))",
    )
    op.create_unique_constraint(
        "uq_memberships_tenant_invite_email", "memberships", ["tenant_id", "invite_email_index"]
    )


def _accounts_are_proven_or_bound() -> None:
    op.add_column("users", sa.Column("proven_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "users",
        sa.Column(
            "home_tenant_id",
            sa.Uuid(),
            sa.ForeignKey("tenants.id", name="fk_users_home_tenant_id_tenants", ondelete="CASCADE"),
            nullable=True,
        ),
    )
    op.execute(
        "UPDATE users u SET home_tenant_id = (SELECT m.tenant_id FROM memberships m"
        " WHERE m.user_id = u.id) WHERE (SELECT count(*) FROM memberships m"
        " WHERE m.user_id = u.id) = 1"
    )
    op.execute("UPDATE users SET proven_at = now() WHERE home_tenant_id IS NULL")
    op.create_check_constraint(
        "proven_or_bound", "users", "(proven_at IS NULL) <> (home_tenant_id IS NULL)"
    )
    op.drop_constraint("uq_users_email_index", "users", type_="unique")
    op.create_index(
        "uq_users_proven_email",
        "users",
        ["email_index"],
        unique=True,
        postgresql_where=sa.text("home_tenant_id IS NULL"),
    )
    op.create_index(
        "uq_users_bound_email",
        "users",
        ["home_tenant_id", "email_index"],
        unique=True,
        postgresql_where=sa.text("home_tenant_id IS NOT NULL"),
    )
    op.create_index("ix_users_email_index", "users", ["email_index"])


def _users_behind_row_level_security() -> None:
    member_here = (
        f"home_tenant_id = {CURRENT_TENANT} OR EXISTS (SELECT 1 FROM memberships m"
        f" WHERE m.user_id = users.id AND m.tenant_id = {CURRENT_TENANT})"
    )
    writable_here = (
        f"{CURRENT_TENANT} IS NOT NULL"
        f" AND (home_tenant_id IS NULL OR home_tenant_id = {CURRENT_TENANT})"
    )
    for statement in (
        "ALTER TABLE users ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE users FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY members_of_tenant ON users USING ({member_here})"
        f" WITH CHECK ({writable_here})",
        *resolver_can_read("users"),
    ):
        op.execute(statement)


def _resolvers() -> None:
    op.execute("DROP FUNCTION valdrix_resolve_api_key(bytea)")
    op.execute("DROP FUNCTION valdrix_resolve_invite(bytea)")
    key_rank = ROLE_RANK.format("k.role")
    member_rank = ROLE_RANK.format("m.role")
    for statements in (
        resolver_function(
            "valdrix_resolve_api_key(p_key_hash bytea)",
            "TABLE (api_key_id uuid, tenant_id uuid, role text)",
            # A person's key acts with at most the person's current role, and only while they
            # are an active member; keys made by the operator (no creator) stand alone.
            f"SELECT k.id, k.tenant_id, CASE WHEN m.role IS NULL OR {key_rank} <= {member_rank}"
            " THEN k.role ELSE m.role END"
            " FROM api_keys k"
            " LEFT JOIN memberships m ON m.user_id = k.created_by_user_id"
            "  AND m.tenant_id = k.tenant_id AND m.accepted_at IS NOT NULL"
            " LEFT JOIN users u ON u.id = m.user_id"
            " WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL"
            " AND (k.expires_at IS NULL OR k.expires_at > now())"
            " AND (k.created_by_user_id IS NULL OR (m.id IS NOT NULL AND u.disabled_at IS NULL))",
        ),
        resolver_function(
            "valdrix_resolve_invite(p_token_hash bytea)",
            "TABLE (membership_id uuid, tenant_id uuid)",
            "SELECT m.id, m.tenant_id FROM memberships m WHERE m.invite_token_hash = p_token_hash"
            " AND m.accepted_at IS NULL AND m.invite_expires_at > now()",
        ),
        resolver_function(
            "valdrix_accounts_for_email(p_email_indexes bytea[])",
            "TABLE (user_id uuid, password_hash text, proven boolean, home_tenant_id uuid,"
            " disabled boolean)",
            "SELECT u.id, u.password_hash, u.proven_at IS NOT NULL, u.home_tenant_id,"
            " u.disabled_at IS NOT NULL FROM users u WHERE u.email_index = ANY(p_email_indexes)"
            " ORDER BY u.proven_at IS NULL, u.created_at",
        ),
    ):
        for statement in statements:
            op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("0007 changes who may reach which account; restore from a backup")
