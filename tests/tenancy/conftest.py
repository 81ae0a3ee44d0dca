"""Browsers and request helpers shared by the tenancy tests (auth, members, audit log)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.tenancy.mailbox import smtp_server  # noqa: F401 (a fixture for the tenancy tests)
from valdrix.app import create_app
from valdrix.runtime import Runtime

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


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is a problem+json error with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def session_cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"valdrix_session={token}"}


async def log_in(browser: httpx.AsyncClient, email: str, password: str) -> str:
    """Log the browser in; returns the CSRF token to send on unsafe requests."""
    response = await browser.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    csrf_token: str = response.json()["csrf_token"]
    return csrf_token


async def create_api_key(
    client: httpx.AsyncClient, auth: dict[str, str], role: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/api-keys", json={"name": f"{role} key", "role": role, **extra}, headers=auth
    )
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


async def invite(
    client: httpx.AsyncClient, auth: dict[str, str], role: str, email: str | None = None
) -> dict[str, Any]:
    """Invite a new person; returns the member as the API shows it, with the invite token."""
    email = email or f"person-{secrets.token_hex(4)}@example.com"
    response = await client.post(
        "/api/v1/members", json={"email": email, "role": role}, headers=auth
    )
    assert response.status_code == 201, response.text
    invited: dict[str, Any] = response.json()
    return invited


async def join_tenant(
    client: httpx.AsyncClient, auth: dict[str, str], role: str
) -> tuple[dict[str, Any], str]:
    """Someone invited with ``role`` who accepted; returns (member, password)."""
    member, password = await invite(client, auth, role), secrets.token_urlsafe(16)
    accepted = await client.post(
        "/api/v1/auth/accept-invite",
        json={"token": member["invite_token"], "password": password},
    )
    assert accepted.status_code == 204, accepted.text
    return member, password
