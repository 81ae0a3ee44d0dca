"""What the application role may do to tables that row-level security does not guard.

Every such grant must be argued in docs/architecture.md ("Global tables"): the test reads the
grants from the database and the arguments from the document, and fails on any difference.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"


def _grants_on_tables_without_rls(conn: psycopg.Connection) -> dict[str, set[str]]:
    rows = conn.execute(
        """
        SELECT g.table_name, g.privilege_type
        FROM information_schema.role_table_grants g
        JOIN pg_class c ON c.relname = g.table_name
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = g.table_schema
        WHERE g.grantee = 'valdrix_app' AND g.table_schema = 'public'
          AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
        """
    ).fetchall()
    grants: dict[str, set[str]] = {}
    for table, privilege in rows:
        grants.setdefault(table, set()).add(privilege)
    return grants


def _argued_grants() -> dict[str, set[str]]:
    """Rows of the "Global tables" table in the architecture doc: | `table` | GRANTS | why |"""
    section = ARCHITECTURE.read_text().split("### Global tables", 1)[1].split("\n#", 1)[0]
    argued: dict[str, set[str]] = {}
    for table, privileges in re.findall(r"^\|\s*`(\w+)`\s*\|\s*([A-Z, ]+?)\s*\|", section, re.M):
        argued[table] = {p.strip() for p in privileges.split(",") if p.strip()}
    return argued


def test_every_grant_on_a_table_without_rls_is_argued_in_the_architecture_doc(database):
    with psycopg.connect(database.urls.app, autocommit=True) as conn:
        grants = _grants_on_tables_without_rls(conn)

    assert "users" not in grants, "users are reachable only through memberships and resolvers"
    assert grants == _argued_grants()


async def test_the_app_role_sees_only_its_tenants_people(database, make_tenant):
    tenant_a, tenant_b = (await make_tenant()).tenant_id, (await make_tenant()).tenant_id
    with psycopg.connect(database.urls.app, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT set_config('valdrix.tenant_id', %s, true)", (str(tenant_a),))
        visible = {row[0] for row in conn.execute("SELECT id FROM users").fetchall()}
        changed = conn.execute("UPDATE users SET disabled_at = now()").rowcount
        conn.execute("SELECT set_config('valdrix.tenant_id', '', true)")
        anonymous = conn.execute("SELECT count(*) FROM users").fetchone()

    owners = _owner_ids(database, tenant_a, tenant_b)
    assert visible == {owners[tenant_a]}
    assert changed == 1
    assert anonymous == (0,)
    with psycopg.connect(database.superuser, autocommit=True) as conn:
        conn.execute("UPDATE users SET disabled_at = NULL WHERE id = %s", (owners[tenant_a],))


def _owner_ids(database, *tenants):
    with psycopg.connect(database.superuser, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tenant_id, user_id FROM memberships WHERE tenant_id = ANY(%s)", (list(tenants),)
        ).fetchall()
    return dict(rows)
