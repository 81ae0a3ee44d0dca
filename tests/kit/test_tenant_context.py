"""Tenant context is per transaction: it never leaks through a pooled connection."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text

from valdrix.app import create_app
from valdrix.kit.db import create_engine, session_factory, tenant_context, unit_of_work
from valdrix.runtime import Runtime

COUNT_TENANTS = text("SELECT count(*) FROM tenants")
CURRENT_SETTING = text("SELECT current_setting('valdrix.tenant_id', true)")


async def test_context_does_not_leak_to_the_next_transaction_on_the_same_connection(
    database, make_tenant
):
    tenant = await make_tenant()
    engine = create_engine(database.urls.app, pool_size=1, max_overflow=0)
    sessions = session_factory(engine)
    try:
        async with unit_of_work(sessions, tenant.tenant_id) as session:
            pid_a = await session.scalar(text("SELECT pg_backend_pid()"))
            assert await session.scalar(COUNT_TENANTS) == 1
        async with unit_of_work(sessions, None) as session:
            assert await session.scalar(text("SELECT pg_backend_pid()")) == pid_a
            assert await session.scalar(COUNT_TENANTS) == 0
            assert (await session.scalar(CURRENT_SETTING) or "") == ""
        # A bare connection (no session hook re-setting anything) finds nothing left behind.
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT pg_backend_pid()")) == pid_a
            assert (await connection.scalar(CURRENT_SETTING) or "") == ""
            assert await connection.scalar(COUNT_TENANTS) == 0
    finally:
        await engine.dispose()


async def test_context_does_not_survive_a_rolled_back_transaction(database, make_tenant):
    tenant = await make_tenant()
    engine = create_engine(database.urls.app, pool_size=1, max_overflow=0)
    sessions = session_factory(engine)
    try:
        try:
            async with unit_of_work(sessions, tenant.tenant_id) as session:
                await session.scalar(COUNT_TENANTS)
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        async with sessions() as session:  # no context manager: a plain session
            assert await session.scalar(COUNT_TENANTS) == 0
    finally:
        await engine.dispose()


async def test_concurrent_tenants_each_see_only_their_own_rows(database, make_tenant):
    tenants = [await make_tenant() for _ in range(4)]
    engine = create_engine(database.urls.app, pool_size=2, max_overflow=0)
    sessions = session_factory(engine)

    async def seen_by(tenant_id):
        names = set()
        for _ in range(10):
            with tenant_context(tenant_id):
                async with sessions() as session, session.begin():
                    rows = await session.execute(text("SELECT id FROM tenants"))
                    names |= {row[0] for row in rows}
                    await asyncio.sleep(0)
        return names

    try:
        results = await asyncio.gather(*(seen_by(t.tenant_id) for t in tenants))
    finally:
        await engine.dispose()
    assert results == [{t.tenant_id} for t in tenants]


async def test_requests_sharing_one_pooled_connection_see_only_their_tenant(
    runtime: Runtime, database, make_tenant
):
    """Alternating API requests of two tenants over a one-connection pool never cross over."""
    a, b = await make_tenant(), await make_tenant()
    engine = create_engine(database.urls.app, pool_size=1, max_overflow=0)
    single = Runtime(
        runtime.settings, runtime.urls, engine, session_factory(engine), runtime.keyring
    )
    transport = httpx.ASGITransport(app=create_app(single))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for _ in range(5):
                for tenant in (a, b):
                    response = await client.get("/api/v1/tenant", headers=tenant.auth)
                    assert response.json()["id"] == str(tenant.tenant_id)
                    unauthenticated = await client.get("/api/v1/members")
                    assert unauthenticated.status_code == 401
            async with unit_of_work(single.sessions, None) as session:
                assert await session.scalar(COUNT_TENANTS) == 0
    finally:
        await engine.dispose()
