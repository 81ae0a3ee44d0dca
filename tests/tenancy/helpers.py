"""Logging in, API keys and invitations over the API, for the tenancy tests."""

from __future__ import annotations

import secrets
from typing import Any

import httpx


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
