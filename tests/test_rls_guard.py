"""The build fails if any tenant table could leak: RLS enabled + forced with the tenant policy,
and an application role that can neither bypass RLS nor act as the owner."""

from __future__ import annotations

import psycopg
import pytest

from tests.costs.helpers import give_tenant_cost_data
from tests.jobs.helpers import give_tenant_a_queued_job
from tests.llm.helpers import give_tenant_llm_spend
from tests.scanning.helpers import give_tenant_a_scanned_connection
from valdrix.kit.rls import CURRENT_TENANT, POLICY_NAME, RESOLVER_ROLE

APP_ROLE = "valdrix_app"
OWNER_ROLE = "valdrix_owner"
OWNER_RUN_FUNCTIONS = {"valdrix_ensure_cost_partitions", "valdrix_refresh_job_queue_statistics"}


def _tenant_tables(conn: psycopg.Connection, *, partitions: bool = True) -> list[str]:
    rows = conn.execute(
        """
        SELECT c.table_name FROM information_schema.columns c
        JOIN information_schema.tables t USING (table_schema, table_name)
        JOIN pg_class k ON k.relname = c.table_name
        JOIN pg_namespace n ON n.oid = k.relnamespace AND n.nspname = c.table_schema
        WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id'
          AND t.table_type = 'BASE TABLE' AND (%s OR NOT k.relispartition)
        ORDER BY 1
        """,
        (partitions,),
    ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def app_conn(database):
    with psycopg.connect(database.urls.app, autocommit=True) as conn:
        yield conn


def test_every_tenant_table_has_forced_rls_and_the_tenant_policy(app_conn):
    tables = _tenant_tables(app_conn)
    assert {"api_keys", "memberships", "browser_sessions", "audit_log"} <= set(tables)
    problems = []
    for table in [*tables, "tenants"]:
        enabled, forced = app_conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
            (table,),
        ).fetchone()
        if not (enabled and forced):
            problems.append(f"{table}: enabled={enabled} forced={forced}")
        policies = app_conn.execute(
            "SELECT policyname, cmd, roles::text[], qual, with_check FROM pg_policies"
            " WHERE schemaname = 'public' AND tablename = %s",
            (table,),
        ).fetchall()
        key = "id" if table == "tenants" else "tenant_id"
        expected = (
            f"({key} = NULLIF(current_setting('valdrix.tenant_id'::text, true), ''::text))::uuid"
        )
        tenant_policies = [p for p in policies if p[0] == POLICY_NAME]
        if len(tenant_policies) != 1:
            problems.append(f"{table}: no {POLICY_NAME} policy")
            continue
        _, cmd, roles, qual, with_check = tenant_policies[0]
        if cmd != "ALL" or roles != ["public"]:
            problems.append(f"{table}: tenant policy must cover ALL commands for PUBLIC")
        for clause, text in (("USING", qual), ("WITH CHECK", with_check)):
            if text is None or _normalise(text) != _normalise(expected):
                problems.append(f"{table}: {clause} is {text!r}")
        for name, cmd, roles, _, _ in policies:
            if name != POLICY_NAME and roles != [RESOLVER_ROLE]:
                problems.append(f"{table}: extra policy {name} ({cmd} to {roles}) widens access")
    assert not problems, "\n".join(problems)


def _normalise(sql: str) -> str:
    return "".join(sql.split()).replace("(", "").replace(")", "")


def test_app_role_cannot_bypass_rls_or_act_as_owner(app_conn):
    superuser, bypass, createrole = app_conn.execute(
        "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert app_conn.execute("SELECT current_user").fetchone()[0] == APP_ROLE
    assert (superuser, bypass, createrole) == (False, False, False)
    owned = app_conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relowner = (SELECT oid FROM pg_roles"
        " WHERE rolname = %s)",
        (APP_ROLE,),
    ).fetchone()[0]
    assert owned == 0
    for role in (OWNER_ROLE, RESOLVER_ROLE):
        member = app_conn.execute(
            "SELECT pg_has_role(%s, %s, 'MEMBER')", (APP_ROLE, role)
        ).fetchone()[0]
        assert member is False, f"{APP_ROLE} must not be a member of {role}"


def test_the_owner_cannot_bypass_rls_either(database):
    with psycopg.connect(database.urls.owner, autocommit=True) as conn:
        bypass = conn.execute(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()[0]
    assert bypass is False


async def test_without_tenant_context_every_tenant_table_reads_empty(
    app_conn, client, make_tenant, runtime
):
    tenant = await make_tenant()
    await give_tenant_a_queued_job(runtime, tenant.tenant_id)
    await give_tenant_a_scanned_connection(runtime, tenant.tenant_id)
    await give_tenant_llm_spend(runtime, tenant.tenant_id)
    await give_tenant_cost_data(runtime, tenant.tenant_id)
    login = await client.post(
        "/api/v1/auth/login", json={"email": tenant.admin_email, "password": tenant.admin_password}
    )
    assert login.status_code == 200
    client.cookies.clear()
    # A request counted against the rate limits fills their buckets.
    assert (await client.get("/api/v1/tenant", headers=tenant.auth)).status_code == 200
    # Monthly partitions are read through their parent (and checked for RLS above).
    tables = [*_tenant_tables(app_conn, partitions=False), "tenants"]
    with app_conn.transaction():
        app_conn.execute(
            "SELECT set_config('valdrix.tenant_id', %s, true)", (str(tenant.tenant_id),)
        )
        seen = {t: app_conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    assert all(count > 0 for count in seen.values()), f"fixture should fill every table: {seen}"
    for table in tables:
        count = app_conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert count == 0, f"{table} shows {count} rows without a tenant context"


async def test_writes_without_tenant_context_are_rejected(app_conn, make_tenant):
    tenant = await make_tenant()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute(
            "INSERT INTO audit_log (tenant_id, actor_type, action) VALUES (%s, 'test', 'x')",
            (tenant.tenant_id,),
        )


async def test_writes_into_another_tenant_are_rejected(app_conn, make_tenant):
    a, b = await make_tenant(), await make_tenant()
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app_conn.transaction():
        app_conn.execute("SELECT set_config('valdrix.tenant_id', %s, true)", (str(a.tenant_id),))
        app_conn.execute(
            "INSERT INTO audit_log (tenant_id, actor_type, action) VALUES (%s, 'test', 'x')",
            (b.tenant_id,),
        )


def test_resolver_functions_are_narrow(app_conn):
    rows = app_conn.execute(
        """
        SELECT p.proname, r.rolname, p.prosecdef, p.proconfig,
               has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_roles r ON r.oid = p.proowner
        WHERE n.nspname = 'public' AND p.prosecdef
        """
    ).fetchall()
    assert rows, "the credential resolver functions should exist"
    for name, owner, _, config, public_exec in rows:
        # The exceptions are maintenance only the tables' owner may run, reading and writing
        # no tenant rows: adding a month's cost partitions (DDL; each partition gets forced
        # RLS) and analyzing the global job queue.
        expected = OWNER_ROLE if name in OWNER_RUN_FUNCTIONS else RESOLVER_ROLE
        assert owner == expected, f"{name} runs as {owner}"
        assert any(c.startswith("search_path=") for c in config or []), f"{name}: no search_path"
        assert public_exec is False, f"{name} is executable by PUBLIC"


def test_policy_expression_matches_the_documented_setting():
    assert CURRENT_TENANT == "NULLIF(current_setting('valdrix.tenant_id', true), '')::uuid"
