"""Our migrations build exactly procrastinate's own schema for the pinned version.

procrastinate's SQL (queries, worker functions) assumes its schema; a migration that drifted from
``procrastinate/sql/schema.sql`` would fail at run time in ways no unit test sees. Here the
installed package's ``schema.sql`` is applied to a scratch database and both catalogs are
described object by object.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from importlib import resources
from typing import Any

import psycopg
import pytest
from psycopg import sql

from valdrix.kit.rls import APP_ROLE

# procrastinate's object names; a few of its indexes are named idx_procrastinate_*. Ours on its
# tables are named valdrix_* and listed here.
OWNED = "(c.relname LIKE 'procrastinate%' OR c.relname LIKE 'idx_procrastinate%')"
OUR_INDEXES = {
    "valdrix_procrastinate_jobs_lock_idx": (
        "CREATE INDEX valdrix_procrastinate_jobs_lock_idx ON public.procrastinate_jobs"
        " USING btree (lock) WHERE (status = ANY (ARRAY['todo'::procrastinate_job_status,"
        " 'doing'::procrastinate_job_status]))"
    ),
}

CATALOG_QUERIES = {
    "relations": f"""
        SELECT c.relname, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
               coalesce(c.reloptions, '{{}}')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND {OWNED}
    """,
    "columns": f"""
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               pg_get_expr(d.adbin, d.adrelid), a.attnotnull, a.attidentity, a.attgenerated
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND {OWNED} AND c.relkind IN ('r', 'p', 'c', 'v')
          AND a.attnum > 0 AND NOT a.attisdropped
    """,
    "indexes": f"""
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND t.relname LIKE 'procrastinate%' AND {OWNED}
    """,
    "constraints": """
        SELECT t.relname, con.conname, con.contype, pg_get_constraintdef(con.oid),
               con.condeferrable, con.condeferred
        FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND t.relname LIKE 'procrastinate%'
    """,
    "sequences": """
        SELECT sequencename, data_type::text, start_value, increment_by, max_value, cycle
        FROM pg_sequences WHERE schemaname = 'public' AND sequencename LIKE 'procrastinate%'
    """,
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid),
               pg_get_function_result(p.oid), pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate%'
    """,
    "triggers": """
        SELECT t.relname, tg.tgname, pg_get_triggerdef(tg.oid), tg.tgenabled
        FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public' AND t.relname LIKE 'procrastinate%' AND NOT tg.tgisinternal
    """,
    "types": """
        SELECT t.typname, t.typtype,
               array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                   FILTER (WHERE e.enumlabel IS NOT NULL)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        LEFT JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE n.nspname = 'public' AND t.typname LIKE 'procrastinate%'
        GROUP BY t.typname, t.typtype
    """,
}


def describe(url: str, **connect: Any) -> dict[str, set[tuple[Any, ...]]]:
    """procrastinate's objects in one database, as comparable rows per kind of object."""
    with psycopg.connect(url, **connect) as conn:
        return {
            kind: {
                tuple(tuple(v) if isinstance(v, list) else v for v in row)
                for row in conn.execute(query)  # type: ignore[call-overload]
            }
            for kind, query in CATALOG_QUERIES.items()
        }


@pytest.fixture(scope="module")
def canonical_schema(database) -> Iterator[dict[str, set[tuple[Any, ...]]]]:
    """procrastinate's own schema.sql, applied as superuser to a scratch database."""
    schema_sql = resources.files("procrastinate.sql").joinpath("schema.sql").read_text()
    scratch = f"procrastinate_canonical_{secrets.token_hex(4)}"
    with psycopg.connect(database.superuser, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    try:
        with psycopg.connect(database.superuser, dbname=scratch, autocommit=True) as conn:
            conn.execute(schema_sql.encode())
        yield describe(database.superuser, dbname=scratch)
    finally:
        with psycopg.connect(database.superuser, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
            )


@pytest.fixture(scope="module")
def migrated_schema(database) -> dict[str, set[tuple[Any, ...]]]:
    return describe(database.urls.owner)


@pytest.mark.parametrize("kind", list(CATALOG_QUERIES))
def test_migrated_procrastinate_objects_match_its_schema_sql(
    kind, canonical_schema, migrated_schema
):
    expected, actual = canonical_schema[kind], migrated_schema[kind]
    assert expected, f"procrastinate's schema.sql created no {kind}?"
    assert actual - expected == set(), f"{kind} only in the migrated database"
    assert expected - actual == set(), f"{kind} missing from the migrated database"


def test_our_indexes_on_procrastinate_tables_are_exactly_the_listed_ones(database):
    """Only indexes procrastinate's schema migrations cannot collide with, and the one that keeps
    its fetch fast under tenant slot locks (migration 0016)."""
    with psycopg.connect(database.urls.owner) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid)"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_class t ON t.oid = i.indrelid"
            " JOIN pg_namespace n ON n.oid = t.relnamespace"
            " WHERE n.nspname = 'public' AND t.relname LIKE 'procrastinate%%'"
            f" AND NOT {OWNED.replace('%', '%%')}"
        ).fetchall()
    assert dict(rows) == OUR_INDEXES


def test_the_app_role_can_run_every_procrastinate_function(database):
    with psycopg.connect(database.urls.owner) as conn:
        functions = conn.execute(
            "SELECT p.oid::regprocedure::text, has_function_privilege(%s, p.oid, 'EXECUTE')"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate%%'",
            (APP_ROLE,),
        ).fetchall()
    assert len(functions) > 10
    assert [name for name, allowed in functions if not allowed] == []


def test_the_app_role_can_use_procrastinate_tables_and_sequences(database):
    with psycopg.connect(database.urls.owner) as conn:
        denied = conn.execute(
            "SELECT c.relname, p.privilege"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " CROSS JOIN unnest(CASE c.relkind WHEN 'r' THEN"
            "   ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'] ELSE ARRAY['USAGE'] END)"
            "   AS p(privilege)"
            " WHERE n.nspname = 'public' AND c.relname LIKE 'procrastinate%%'"
            " AND c.relkind IN ('r', 'S') AND NOT CASE c.relkind"
            "   WHEN 'r' THEN has_table_privilege(%(role)s, c.oid, p.privilege)"
            "   ELSE has_sequence_privilege(%(role)s, c.oid, p.privilege) END",
            {"role": APP_ROLE},
        ).fetchall()
    assert denied == []


def test_the_app_role_registers_and_unregisters_a_worker(database):
    """Calling a function as the app role, not only holding the privilege on paper."""
    with psycopg.connect(database.urls.app) as conn:
        worker_id = conn.execute("SELECT procrastinate_register_worker_v1()").fetchone()[0]
        conn.execute("SELECT procrastinate_unregister_worker_v1(%s)", (worker_id,))
        gone = conn.execute(
            "SELECT count(*) FROM procrastinate_workers WHERE id = %s", (worker_id,)
        ).fetchone()[0]
    assert gone == 0
