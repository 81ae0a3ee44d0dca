"""Change notifications: PostgreSQL NOTIFY on every change that must reach all API processes.

``valdrix_credentials`` (payload: the tenant id, or empty for "any tenant") fires when a
credential may stop working or change its rights: an API key revoked, expired early, re-roled
or deleted; a browser session revoked or deleted; a membership's role, acceptance or person
changed, or the membership removed; a user disabled or deleted; a tenant deleted. Each API
process drops what it has cached of that tenant's credentials when it hears it. Only those
columns fire: an API key's ``last_used_at`` (written once a minute per busy key) does not.

``valdrix_scan_events`` (payload: the scan id) fires when events of a scan are written and when
its status changes, so each API process reads them once for all of its live watchers. Events are
written by every worker at every unit's commit: their trigger runs once per statement and sends
one notification per scan written, reading nothing of the events but their scan id.

Notifications go out when the writing transaction commits, and never if it rolls back.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFY_FUNCTION = """
CREATE FUNCTION valdrix_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
-- TG_ARGV[0]: the channel; TG_ARGV[1]: the column whose value is the payload (none: empty).
DECLARE
    changed jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
BEGIN
    PERFORM pg_notify(
        TG_ARGV[0], CASE WHEN TG_NARGS > 1 THEN coalesce(changed ->> TG_ARGV[1], '') ELSE '' END
    );
    RETURN NULL;
END
$$
"""

SCAN_EVENTS_FUNCTION = """
CREATE FUNCTION valdrix_notify_scan_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('valdrix_scan_events', scan_id::text)
    FROM (SELECT DISTINCT scan_id FROM written) AS scans;
    RETURN NULL;
END
$$
"""

# (trigger, table, events, channel and payload column)
TRIGGERS = (
    (
        "api_keys_credentials",
        "api_keys",
        "UPDATE OF revoked_at, expires_at, role, key_hash, created_by_user_id, tenant_id OR DELETE",
        "'valdrix_credentials', 'tenant_id'",
    ),
    (
        "browser_sessions_credentials",
        "browser_sessions",
        "UPDATE OF revoked_at, expires_at, token_hash, user_id, tenant_id OR DELETE",
        "'valdrix_credentials', 'tenant_id'",
    ),
    (
        "memberships_credentials",
        "memberships",
        "UPDATE OF role, accepted_at, user_id, tenant_id OR DELETE",
        "'valdrix_credentials', 'tenant_id'",
    ),
    # A person may belong to several tenants: every tenant's cache forgets them.
    ("users_credentials", "users", "UPDATE OF disabled_at OR DELETE", "'valdrix_credentials'"),
    ("tenants_credentials", "tenants", "DELETE", "'valdrix_credentials', 'id'"),
    ("scans_status", "scans", "UPDATE OF status", "'valdrix_scan_events', 'id'"),
)


def upgrade() -> None:
    op.execute(NOTIFY_FUNCTION)
    for name, table, events, arguments in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} AFTER {events} ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION valdrix_notify_change({arguments})"
        )
    op.execute(SCAN_EVENTS_FUNCTION)
    op.execute(
        "CREATE TRIGGER scan_events_written AFTER INSERT ON scan_events"
        " REFERENCING NEW TABLE AS written"
        " FOR EACH STATEMENT EXECUTE FUNCTION valdrix_notify_scan_events()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER scan_events_written ON scan_events")
    op.execute("DROP FUNCTION valdrix_notify_scan_events()")
    for name, table, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION valdrix_notify_change()")
