"""Each API process keeps the credentials it resolved for a few seconds; a credential withdrawn
through one process stops working in every other within seconds, not at the cache's expiry.
Two ``valdrix serve`` processes on the test database, spoken to over real HTTP."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.helpers import env_for_session_database, free_ports, in_background
from tests.conftest import TenantFixture
from tests.fixtures.http import api_client, bearer
from tests.fixtures.jobs import SuperuserDb
from tests.observability.helpers import value
from tests.tenancy.helpers import create_api_key, join_tenant, log_in
from valdrix.config import Settings
from valdrix.kit.listener import Listener
from valdrix.runtime import Runtime
from valdrix.tenancy.credential_cache import CACHE_SECONDS

if TYPE_CHECKING:  # importing it at run time would make pytest try to collect it
    from tests.conftest import TestDatabase

# The notification reaches the other process in milliseconds; well under the cache's lifetime,
# so a refusal this soon was the notification's doing, not the entry's expiry.
REFUSED_WITHIN_SECONDS = 2.0
assert REFUSED_WITHIN_SECONDS < CACHE_SECONDS


@pytest.fixture(scope="module")
async def processes(
    database: TestDatabase,
    encryption_keys: str,
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Clients of two API processes, A and B."""
    home = tmp_path_factory.mktemp("two-processes")
    assert settings.metrics.token is not None
    env = env_for_session_database(database, encryption_keys, home)
    env["VALDRIX_METRICS_TOKEN"] = settings.metrics.token.get_secret_value()
    ports = free_ports(2)
    with ExitStack() as stack:
        served = [
            stack.enter_context(in_background("serve", "--port", str(port), env=env, logs=home))
            for port in ports
        ]
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports]
        for process, client in zip(served, clients, strict=True):
            process.wait_until_ready(str(client.base_url).rstrip("/"))
        yield clients
        for client in clients:
            await client.aclose()


async def cache_hits(process: httpx.AsyncClient, settings: Settings, credential: str) -> float:
    assert settings.metrics.token is not None
    token = settings.metrics.token.get_secret_value()
    scraped = await process.get("/metrics", headers=bearer(token))
    assert scraped.status_code == 200, scraped.text
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    return value(families, "valdrix_credential_cache_total", credential=credential, result="hit")


async def seconds_until_refused(
    process: httpx.AsyncClient, path: str, withdraw: Any, **request: Any
) -> float:
    """Ask ``process`` for ``path`` (it must answer), withdraw the credential elsewhere, then ask
    again and again: how long after the withdrawal the process refused it."""
    assert (await process.get(path, **request)).status_code == 200
    await withdraw()
    withdrawn_at = time.monotonic()
    while (await process.get(path, **request)).status_code == 200:
        assert time.monotonic() - withdrawn_at < CACHE_SECONDS + 5, "never refused"
    return time.monotonic() - withdrawn_at


async def test_a_key_revoked_through_one_process_is_refused_by_another_within_seconds(
    processes: list[httpx.AsyncClient], make_tenant: Any, settings: Settings
) -> None:
    a, b = processes
    tenant: TenantFixture = await make_tenant()
    key = await create_api_key(a, tenant.auth, "viewer")
    hits_before = await cache_hits(b, settings, "api_key")
    for _ in range(3):
        assert (await b.get("/api/v1/tenant", headers=bearer(key["key"]))).status_code == 200
    # B answers the key's repeated requests from its cache...
    assert await cache_hits(b, settings, "api_key") >= hits_before + 2

    async def revoke_through_a() -> None:
        revoked = await a.delete(f"/api/v1/api-keys/{key['id']}", headers=tenant.auth)
        assert revoked.status_code == 200, revoked.text

    # ...and still refuses it as soon as A has revoked it.
    refused_after = await seconds_until_refused(
        b, "/api/v1/tenant", revoke_through_a, headers=bearer(key["key"])
    )
    assert refused_after < REFUSED_WITHIN_SECONDS


async def test_a_member_removed_through_one_process_is_signed_out_of_another_within_seconds(
    processes: list[httpx.AsyncClient], make_tenant: Any
) -> None:
    a, b = processes
    tenant: TenantFixture = await make_tenant()
    member, password = await join_tenant(a, tenant.auth, "member")
    async with httpx.AsyncClient(base_url=b.base_url, timeout=30) as browser_on_b:
        await log_in(browser_on_b, member["email"], password)

        async def remove_through_a() -> None:
            removed = await a.delete(f"/api/v1/members/{member['id']}", headers=tenant.auth)
            assert removed.status_code == 204, removed.text

        refused_after = await seconds_until_refused(
            browser_on_b, "/api/v1/auth/me", remove_through_a
        )
    assert refused_after < REFUSED_WITHIN_SECONDS


async def test_a_process_that_cannot_listen_serves_no_credential_from_its_cache(
    runtime: Runtime, make_tenant: Any, superuser_db: SuperuserDb
) -> None:
    # Its LISTEN connection never comes up: it could miss any revocation, so it must not
    # answer from what it resolved earlier.
    deaf = dataclasses.replace(runtime, listener=Listener("postgresql://nobody@127.0.0.1:1/none"))
    tenant: TenantFixture = await make_tenant()
    async with api_client(deaf) as process:
        key = await create_api_key(process, tenant.auth, "viewer")
        assert (await process.get("/api/v1/tenant", headers=bearer(key["key"]))).status_code == 200
        # Revoked behind the process's back, as another process would (the notification this
        # sends never reaches it).
        await superuser_db.rows(
            "UPDATE api_keys SET revoked_at = now() WHERE id = %s RETURNING id", key["id"]
        )
        refused = await process.get("/api/v1/tenant", headers=bearer(key["key"]))
        await deaf.notifications.close()
    assert refused.status_code == 401
