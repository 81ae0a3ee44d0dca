"""Row-level-security DDL shared by every migration that creates a tenant table.

How to add a tenant table: give it ``tenant_id uuid NOT NULL`` and, in the same migration,
``for statement in tenant_table_rls("my_table"): op.execute(statement)``.
"""

from __future__ import annotations

TENANT_SETTING = "valdrix.tenant_id"
CURRENT_TENANT = f"NULLIF(current_setting('{TENANT_SETTING}', true), '')::uuid"
POLICY_NAME = "tenant_isolation"
APP_ROLE = "valdrix_app"
RESOLVER_ROLE = "valdrix_resolver"


def tenant_table_rls(table: str, column: str = "tenant_id") -> list[str]:
    """ENABLE + FORCE row-level security and the one tenant policy (reads and writes)."""
    predicate = f"{column} = {CURRENT_TENANT}"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {POLICY_NAME} ON {table} USING ({predicate}) WITH CHECK ({predicate})",
    ]


def resolver_can_read(table: str) -> list[str]:
    """Let the credential resolver (and only it) read ``table`` across tenants."""
    return [
        f"GRANT SELECT ON {table} TO {RESOLVER_ROLE}",
        f"CREATE POLICY resolver_read ON {table} FOR SELECT TO {RESOLVER_ROLE} USING (true)",
    ]


def resolver_function(
    signature: str, returns: str, body: str, *, volatile: bool = False
) -> list[str]:
    """A SECURITY DEFINER function owned by the resolver, callable only by the app role."""
    volatility = "VOLATILE" if volatile else "STABLE"
    return [
        f"CREATE FUNCTION {signature} RETURNS {returns} LANGUAGE sql {volatility} SECURITY DEFINER"
        f" SET search_path = pg_catalog, public AS $fn$ {body} $fn$",
        f"ALTER FUNCTION {signature} OWNER TO {RESOLVER_ROLE}",
        f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_ROLE}",
    ]
