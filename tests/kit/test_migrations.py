"""The migrations and the models describe the same schema."""

from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

from valdrix.kit.db import async_url
from valdrix.kit.migrator import head_revisions, include_in_autogenerate
from valdrix.kit.orm import Base


def test_autogenerate_finds_nothing_to_do(database):
    import valdrix.jobs.models
    import valdrix.tenancy.models  # noqa: F401

    engine = create_engine(async_url(database.urls.owner), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_object": include_in_autogenerate},
        )
        differences = compare_metadata(context, Base.metadata)
        current = set(context.get_current_heads())
    engine.dispose()
    assert differences == [], f"models and migrations disagree: {differences}"
    assert current == head_revisions()


def test_there_is_exactly_one_head():
    assert len(head_revisions()) == 1


def test_identity_migration_turns_pending_invitations_into_address_invitations(database):
    """0007 on data written before it: invitations keep their tokens but name an address, and
    accounts become bound to their one tenant or, if already in several, proven."""
    import psycopg
    from alembic import command

    from valdrix.kit.migrator import alembic_config

    name, url = _scratch_database(database, "identity")
    command.upgrade(alembic_config(url(database.urls.owner)), "0006")
    t1, t2 = uuid.uuid4(), uuid.uuid4()
    invited, single, multi, half = (uuid.uuid4() for _ in range(4))
    with psycopg.connect(url(database.superuser), autocommit=True) as conn:
        for tenant in (t1, t2):
            conn.execute("INSERT INTO tenants (id, name, tier) VALUES (%s, 'x', 'free')", (tenant,))
        for user, password in ((invited, None), (single, "h"), (multi, "h"), (half, "h")):
            conn.execute(
                "INSERT INTO users (id, email, email_index, password_hash) VALUES (%s, %s, %s, %s)",
                (user, b"sealed-" + user.bytes, user.bytes, password),
            )
        for tenant, user, accepted, token in (
            (t1, invited, False, b"token-1"),
            (t1, single, True, None),
            (t1, multi, True, None),
            (t2, multi, True, None),
            (t2, half, True, None),
            (t1, half, False, b"token-2"),
        ):
            conn.execute(
                "INSERT INTO memberships (id, tenant_id, user_id, role, invite_token_hash,"
                " invite_expires_at, accepted_at) VALUES (%s, %s, %s, 'member', %s,"
                " now() + interval '1 day', CASE WHEN %s THEN now() END)",
                (uuid.uuid4(), tenant, user, token, accepted),
            )

    command.upgrade(alembic_config(url(database.urls.owner)), "head")

    with psycopg.connect(url(database.superuser), autocommit=True) as conn:
        invitations = conn.execute(
            "SELECT invite_token_hash, invite_email, invite_delivery FROM memberships"
            " WHERE user_id IS NULL ORDER BY invite_token_hash"
        ).fetchall()
        accounts = {
            row[0]: row[1:]
            for row in conn.execute("SELECT id, home_tenant_id, proven_at IS NOT NULL FROM users")
        }
    with psycopg.connect(database.superuser, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    assert invitations == [
        (b"token-1", b"sealed-" + invited.bytes, "inviter"),
        (b"token-2", b"sealed-" + half.bytes, "inviter"),
    ]
    assert accounts == {
        single: (t1, False),
        multi: (None, True),
        half: (t2, False),
    }


def test_resource_day_migration_carries_the_records_billed_cost_forward(database):
    """0021 on records written before it: findings' billed prices, read from the new roll-up,
    are the records' sums per resource and day, in a month partition under the tenant policy."""
    import psycopg
    from alembic import command

    from valdrix.kit.migrator import alembic_config

    name, url = _scratch_database(database, "resource_days")
    command.upgrade(alembic_config(url(database.urls.owner)), "0020")
    tenant, source, run = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(url(database.superuser), autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name, tier) VALUES (%s, 'x', 'free')", (tenant,))
        conn.execute("SELECT valdrix_ensure_cost_partitions('2026-09-01', '2026-09-30')")
        for service, resource, billed in (
            ("EC2", "i-1", "1.25"),
            ("EBS", "i-1", "0.0000000001"),
            ("EC2", "i-2", "3"),
            ("Support", None, "9"),
        ):
            conn.execute(
                "INSERT INTO cost_records (tenant_id, day, source_id, run_id, currency, provider,"
                " billing_account_id, service, charge_category, billing_period_start,"
                " preliminary, billed_cost, effective_cost, source_rows, resource_key)"
                " VALUES (%s, '2026-09-02', %s, %s, 'USD', 'AWS', '1', %s, 'Usage',"
                " '2026-09-01', false, %s, %s, 1, %s)",
                (tenant, source, run, service, billed, billed, resource),
            )

    command.upgrade(alembic_config(url(database.urls.owner)), "head")

    with psycopg.connect(url(database.superuser), autocommit=True) as conn:
        rolled = conn.execute(
            "SELECT resource_key, day::text, billed_cost::text FROM cost_resource_days"
            " ORDER BY resource_key"
        ).fetchall()
        forced = conn.execute(
            "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'cost_resource_days_202609'"
        ).fetchone()
    with psycopg.connect(database.superuser, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    assert rolled == [("i-1", "2026-09-02", "1.2500000001"), ("i-2", "2026-09-02", "3.0000000000")]
    assert forced == (True,)


def test_cost_parts_migration_copies_the_parts_of_the_findings_already_stored(database):
    """0024 on findings written before it: each part they name is a row of
    ``finding_cost_parts`` with its finding's place, detector and status, and a finding written
    after it gets its rows from the trigger."""
    import psycopg
    from alembic import command

    from valdrix.kit.migrator import alembic_config

    name, url = _scratch_database(database, "cost_parts")
    command.upgrade(alembic_config(url(database.urls.owner)), "0023")
    tenant, connection = uuid.uuid4(), uuid.uuid4()
    stopped, disk, later = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    parts = {
        stopped: '[{"component": "ebs-volume", "resource_id": "vol-1", "monthly_usd": "8.00"},'
        ' {"component": "ebs-volume", "resource_id": "vol-2", "monthly_usd": "0.80"}]',
        disk: '[{"component": "ebs-volume", "resource_id": "vol-1", "monthly_usd": "8.00"}]',
        later: '[{"component": "ipv4", "resource_id": "eip-1", "monthly_usd": "3.65"}]',
    }
    finding = (
        "INSERT INTO findings (id, tenant_id, fingerprint, connection_id, provider, account_id,"
        " region, detector, resource_id, resource_type, reason, status, cost_basis,"
        " price_detail, cost_parts, evidence, tags, first_seen_at, last_seen_at)"
        " VALUES (%s, %s, %s, %s, 'aws', '1', 'us-east-1', %s, %s, 'x', 'x', %s, 'list_price',"
        " '{}', %s, '{}', '{}', now(), now())"
    )
    rows = (
        (stopped, "aws.ec2-stopped", "i-1", "dismissed"),
        (disk, "aws.ebs-unattached", "vol-1", "open"),
        (later, "aws.eip-unassociated", "eip-1", "open"),
    )
    with psycopg.connect(url(database.superuser), autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name, tier) VALUES (%s, 'x', 'free')", (tenant,))
        conn.execute(
            "INSERT INTO cloud_connections (id, tenant_id, provider, name, role_arn,"
            " external_id, status) VALUES (%s, %s, 'aws', 'x', 'x', 'x', 'verified')",
            (connection, tenant),
        )
        for finding_id, detector, resource, status in rows[:2]:
            conn.execute(
                finding,
                (finding_id, tenant, detector, connection, detector, resource, status,
                 parts[finding_id]),
            )  # fmt: skip

    command.upgrade(alembic_config(url(database.urls.owner)), "head")

    with psycopg.connect(url(database.superuser), autocommit=True) as conn:
        finding_id, detector, resource, status = rows[2]
        conn.execute(
            finding,
            (finding_id, tenant, detector, connection, detector, resource, status, parts[later]),
        )
        copied = conn.execute(
            "SELECT finding_id, position, tenant_id, detector, status, resource_id,"
            " monthly_usd::text, own FROM finding_cost_parts ORDER BY detector, position"
        ).fetchall()
        forced = conn.execute(
            "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'finding_cost_parts'"
        ).fetchone()
    with psycopg.connect(database.superuser, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    assert copied == [
        (disk, 1, tenant, "aws.ebs-unattached", "open", "vol-1", "8.00", True),
        (stopped, 1, tenant, "aws.ec2-stopped", "dismissed", "vol-1", "8.00", False),
        (stopped, 2, tenant, "aws.ec2-stopped", "dismissed", "vol-2", "0.80", False),
        (later, 1, tenant, "aws.eip-unassociated", "open", "eip-1", "3.65", True),
    ]
    assert forced == (True,)


def _scratch_database(database, purpose: str):
    """A database of its own (name, and a function giving a role's URL to it) for a test that
    migrates data written at an earlier revision."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from valdrix.kit.embedded import bootstrap_roles_and_database

    name = f"valdrix_{purpose}_{uuid.uuid4().hex[:8]}"

    def url(base: str) -> str:
        return "postgresql://?" + make_conninfo(
            **{**conninfo_to_dict(base), "dbname": name}
        ).replace(" ", "&")

    bootstrap_roles_and_database(database.superuser, name)
    return name, url


def test_writing_scan_events_notifies_once_per_statement(database):
    """Workers commit a unit's events together; their notification costs one trigger call per
    statement, whatever the number of events or the size of their payloads."""
    import psycopg

    with psycopg.connect(database.superuser) as conn:
        levels = conn.execute(
            "SELECT tgtype & 1 FROM pg_trigger WHERE tgname = 'scan_events_written'"
        ).fetchall()
    assert levels == [(0,)], "the trigger must fire FOR EACH STATEMENT"
