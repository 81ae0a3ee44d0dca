"""No cache keeps an API answer: every /api/v1 response says ``Cache-Control: no-store`` unless
its endpoint chose otherwise, so a new API key, an invitation token or a CSRF token never lands
in a browser's disk cache or a proxy's."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import httpx


async def test_answers_carrying_a_new_api_key_invitation_or_csrf_token_are_not_stored(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant = await make_tenant()

    issued = await client.post(
        "/api/v1/api-keys", json={"name": "ci", "role": "viewer"}, headers=tenant.auth
    )
    invited = await client.post(
        "/api/v1/members",
        json={"email": f"person-{secrets.token_hex(4)}@example.com", "role": "viewer"},
        headers=tenant.auth,
    )
    logged_in = await client.post(
        "/api/v1/auth/login",
        json={"email": tenant.admin_email, "password": tenant.admin_password},
    )
    client.cookies.clear()  # the shared client must not stay logged in

    for response in (issued, invited, logged_in):
        assert response.status_code in (200, 201), response.text
        assert response.headers["cache-control"] == "no-store", response.request.url
    assert issued.json()["key"] and logged_in.json()["csrf_token"]


async def test_every_api_answer_is_not_stored_errors_included(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant = await make_tenant()

    for response in (
        await client.get("/api/v1/tenant", headers=tenant.auth),
        await client.get("/api/v1/tenant"),
        await client.get("/api/v1/no-such-thing", headers=tenant.auth),
        await client.post("/api/v1/auth/login", json={"email": "nobody"}),
    ):
        assert response.headers["cache-control"] == "no-store", response.request.url


async def test_an_endpoint_that_revalidates_with_its_etag_keeps_its_own_policy(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant = await make_tenant()
    today = dt.date.today()
    params = {"start": str(today - dt.timedelta(days=30)), "end": str(today)}

    costs = await client.get("/api/v1/costs", params=params, headers=tenant.auth)

    assert costs.status_code == 200, costs.text
    assert costs.headers["cache-control"] == "private, no-cache"
    assert costs.headers["etag"]
