"""Browsers and a mail server for the tenancy tests (auth, members, identity, audit log)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.tenancy.mailbox import Mailbox
from valdrix.app import create_app
from valdrix.runtime import Runtime
from valdrix.simulator.aws_server import free_port

BrowserFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def new_browser(runtime: Runtime) -> AsyncIterator[BrowserFactory]:
    """Fresh clients with their own cookie jars, like separate browsers, over the real app.

    The session-wide ``client`` must never hold a login cookie, or later "unauthenticated"
    requests would silently carry it; cookie tests use these instead.
    """
    opened: list[httpx.AsyncClient] = []

    def open_browser(app_runtime: Runtime = runtime, ip: str | None = None) -> httpx.AsyncClient:
        # Each browser comes from its own loopback address unless told, so failed logins in one
        # test never count against another test's client IP.
        ip = ip or "127." + ".".join(str(secrets.randbelow(250) + 1) for _ in range(3))
        transport = httpx.ASGITransport(
            app=create_app(app_runtime), raise_app_exceptions=False, client=(ip, 123)
        )
        browser = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        await browser.aclose()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()
