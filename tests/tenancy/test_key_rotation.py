"""Key rotation: ``rotate_keys`` moves every stored secret to the active key, safely re-runnable.

Rotation touches the whole shared test database, so every test here puts all rows back under the
session's key (and the session's key ring back in place) before it ends.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from valdrix.app import create_app
from valdrix.config import Settings, generate_key_entry
from valdrix.kit.crypto import KeyRing, key_id_of
from valdrix.kit.orm import install_keyring
from valdrix.runtime import Runtime, open_runtime
from valdrix.tenancy.key_rotation import rotate_keys

if TYPE_CHECKING:  # importing them at run time would make pytest try to collect TestDatabase
    from tests.conftest import TenantFixture, TestDatabase


def kid(entry: str) -> str:
    return entry.partition(":")[0]


@asynccontextmanager
async def runtime_with_keys(
    settings: Settings, database: TestDatabase, keys: str
) -> AsyncIterator[Runtime]:
    """A runtime like the session's but with another key ring (installed process-wide)."""
    configured = Settings(**{**settings.model_dump(), "encryption_keys": keys})
    runtime = open_runtime(configured, database.urls)
    try:
        yield runtime
    finally:
        await runtime.close()


@asynccontextmanager
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def stored_secrets(database: TestDatabase, tenant_id: uuid.UUID) -> dict[str, bytes]:
    """The tenant's name and its owner's email as stored, read as superuser (no RLS)."""
    dbname = conninfo_to_dict(database.urls.app)["dbname"]
    with psycopg.connect(database.superuser, dbname=dbname) as conn:
        name = conn.execute("SELECT name FROM tenants WHERE id = %s", (tenant_id,)).fetchone()
        email = conn.execute(
            "SELECT u.email FROM users u JOIN memberships m ON m.user_id = u.id"
            " WHERE m.tenant_id = %s AND m.role = 'owner'",
            (tenant_id,),
        ).fetchone()
    assert name is not None and email is not None
    return {"tenants.name": bytes(name[0]), "users.email": bytes(email[0])}


def assert_sealed_under(stored: dict[str, bytes], key_id: str, tenant: TenantFixture) -> None:
    assert {column: key_id_of(blob) for column, blob in stored.items()} == {
        "tenants.name": key_id,
        "users.email": key_id,
    }
    for plaintext in (tenant.name, tenant.admin_email):
        for form in (plaintext, plaintext.lower(), plaintext.upper()):
            assert form.encode() not in stored["tenants.name"]
            assert form.encode() not in stored["users.email"]


@pytest.fixture
async def new_key(
    settings: Settings, database: TestDatabase, encryption_keys: str
) -> AsyncIterator[str]:
    """A fresh key entry; afterwards every row is back under the session key and ring."""
    entry = generate_key_entry()
    try:
        yield entry
    finally:
        try:
            async with runtime_with_keys(settings, database, f"{encryption_keys},{entry}") as back:
                await rotate_keys(back)
        finally:
            install_keyring(KeyRing(settings.keyring))


async def test_rotation_reencrypts_names_and_emails_so_the_old_key_can_be_retired(
    settings: Settings,
    database: TestDatabase,
    encryption_keys: str,
    make_tenant,  # type: ignore[no-untyped-def]
    new_key: str,
) -> None:
    tenant: TenantFixture = await make_tenant(name=f"Rotation Corp {secrets.token_hex(3)}")
    assert_sealed_under(stored_secrets(database, tenant.tenant_id), kid(encryption_keys), tenant)

    async with runtime_with_keys(settings, database, f"{new_key},{encryption_keys}") as rotating:
        rewritten = await rotate_keys(rotating)
        assert rewritten["tenants.name"] >= 1
        assert rewritten["users.email"] >= 1
        assert_sealed_under(stored_secrets(database, tenant.tenant_id), kid(new_key), tenant)

        assert await rotate_keys(rotating) == {}, "a second rotation must rewrite nothing"

    # Only the new key is configured now: reads need re-encrypted rows, and the email login
    # needs the recomputed email index.
    async with runtime_with_keys(settings, database, new_key) as retired, api(retired) as client:
        response = await client.get("/api/v1/tenant", headers=tenant.auth)
        assert response.status_code == 200, response.text
        assert response.json()["name"] == tenant.name

        response = await client.get("/api/v1/members", headers=tenant.auth)
        assert response.status_code == 200, response.text
        assert [m["email"] for m in response.json()] == [tenant.admin_email]

        response = await client.post(
            "/api/v1/auth/login",
            json={"email": tenant.admin_email.upper(), "password": tenant.admin_password},
        )
        assert response.status_code == 200, response.text
        assert response.json()["tenant_id"] == str(tenant.tenant_id)


async def test_before_rotation_a_ring_with_the_new_key_first_still_reads_and_logs_in(
    settings: Settings,
    database: TestDatabase,
    encryption_keys: str,
    make_tenant,  # type: ignore[no-untyped-def]
    new_key: str,
) -> None:
    tenant: TenantFixture = await make_tenant()
    async with (
        runtime_with_keys(settings, database, f"{new_key},{encryption_keys}") as mid_rotation,
        api(mid_rotation) as client,
    ):
        response = await client.get("/api/v1/tenant", headers=tenant.auth)
        assert response.status_code == 200, response.text
        assert response.json()["name"] == tenant.name

        response = await client.post(
            "/api/v1/auth/login",
            json={"email": tenant.admin_email, "password": tenant.admin_password},
        )
        assert response.status_code == 200, response.text

        # New writes already use the new key.
        renamed = f"Renamed {secrets.token_hex(3)}"
        response = await client.patch("/api/v1/tenant", json={"name": renamed}, headers=tenant.auth)
        assert response.status_code == 200, response.text
        stored = stored_secrets(database, tenant.tenant_id)
        assert key_id_of(stored["tenants.name"]) == kid(new_key)
        assert key_id_of(stored["users.email"]) == kid(encryption_keys)
        assert renamed.encode() not in stored["tenants.name"]
