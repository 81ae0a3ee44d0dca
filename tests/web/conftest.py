"""The dashboard in a real browser: one server on the session's database holding the demo's
data (its simulated AWS account scanned, its 45 days of costs), one chromium for the
session (seeding and scanning the demo's account is the slow part: done once).

Chromium is Debian's (``apt-get install chromium``; .ci/run installs it): Playwright's own
browser download is not reachable from these machines."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.fixtures.http import served_url
from tests.web.helpers import BrowserProblems, DemoTenant, watch_for_problems
from valdrix.cli.tenants import create_tenant_with_owner_key
from valdrix.connections.service import create_connection, new_external_id
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning.engine import run_scan
from valdrix.scanning.service import open_scheduled_scan
from valdrix.simulator.aws_server import (
    REAL_AWS_ENV,
    SIMULATED_AWS_ENV,
    start_simulated_aws,
)
from valdrix.simulator.demo_account import DEMO_ROLE_ARN, DEMO_THRESHOLDS, seed_demo_account
from valdrix.simulator.demo_costs import import_demo_costs
from valdrix.tenancy import service, sessions
from valdrix.tenancy.models import Role, Tier

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# Screenshots of every page, light and dark (gitignored; docs/ keeps one of the overview).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"


async def _make_demo_tenant(runtime: Runtime, endpoint_url: str) -> DemoTenant:
    email, password = f"admin-{secrets.token_hex(3)}@acme.example", secrets.token_urlsafe(16)
    created = await create_tenant_with_owner_key(
        runtime, name="Acme Corp (demo)", tier=Tier.growth, admin_email=email,
        admin_password=password,
    )  # fmt: skip
    tenant_id = uuid.UUID(str(created["tenant_id"]))
    actor = service.system_principal(tenant_id, "test")
    account = await asyncio.to_thread(seed_demo_account, endpoint_url)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        connection = await create_connection(
            session, actor, runtime.keyring, name="Simulated AWS (demo)", role_arn=DEMO_ROLE_ARN,
            external_id=new_external_id(runtime.keyring, tenant_id),
            regions=list(account.regions), thresholds=DEMO_THRESHOLDS, tag_exclusions=[],
        )  # fmt: skip
        scan_id = await open_scheduled_scan(session, tenant_id, connection.id, job_id=None)
    aws = dataclasses.replace(
        runtime, settings=runtime.settings.updated(aws={"endpoint_url": endpoint_url})
    )
    await run_scan(aws, tenant_id, scan_id)
    await import_demo_costs(runtime, tenant_id)
    viewer_email, viewer_password = (
        f"viewer-{secrets.token_hex(3)}@acme.example",
        "viewer-" + (secrets.token_urlsafe(12)),
    )
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        invited = await service.invite_member(
            session, actor, runtime.settings, runtime.keyring, email=viewer_email, role=Role.viewer
        )
    assert invited.invite_token is not None
    await sessions.accept_invite(runtime, token=invited.invite_token, password=viewer_password)
    return DemoTenant(
        tenant_id, str(created["api_key"]), email, password, viewer_email, viewer_password
    )


@pytest.fixture(scope="session")
def simulated_demo_aws() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        for name in REAL_AWS_ENV:
            patch.delenv(name, raising=False)
        for name, value in SIMULATED_AWS_ENV.items():
            patch.setenv(name, value)
        server = start_simulated_aws()
        try:
            # The simulator's backends live in the process: start from none of another test's.
            httpx.post(f"{server.endpoint_url}/moto-api/reset").raise_for_status()
            yield server.endpoint_url
        finally:
            server.stop()


@pytest.fixture(scope="session")
async def demo(runtime: Runtime, simulated_demo_aws: str) -> DemoTenant:
    return await _make_demo_tenant(runtime, simulated_demo_aws)


@pytest.fixture(scope="session")
async def base_url(runtime: Runtime) -> AsyncIterator[str]:
    """The app behind uvicorn on loopback, in this process (its event loop is the tests')."""
    async with served_url(runtime) as url:
        yield url


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser, base_url: str) -> AsyncIterator[BrowserContext]:
    new = await browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    yield new
    await new.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """A tab that fails its test on any console error or refused CSP rule."""
    tab = await context.new_page()
    problems: BrowserProblems = watch_for_problems(tab)
    yield tab
    assert problems.messages == [], "the browser reported:\n" + "\n".join(problems.messages)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
