"""A scan's event stream lasts only as long as the credential that opened it: revoking the API
key, or logging the browser out, ends a stream that is already open within seconds, with a last
``error`` event saying why. Read from a real HTTP server, as a browser would."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from tests.conftest import TenantFixture
from tests.fixtures.http import parse_sse, served_app
from tests.scanning.helpers import queued_scan
from valdrix.runtime import Runtime

# The stream re-checks its credential every 2 s, and polls for events every 0.25 s.
ENDS_WITHIN_SECONDS = 5.0


async def events_after(
    response: httpx.Response, withdraw: Any
) -> tuple[list[dict[str, Any]], float]:
    """Withdraw the credential once the stream has sent its first event; then every event it
    sends until it closes, and how long after the withdrawal it closed."""
    text, withdrawn_at = "", None
    async with asyncio.timeout(ENDS_WITHIN_SECONDS + 5):
        async for chunk in response.aiter_text():
            text += chunk
            if withdrawn_at is None and "\n\n" in text:
                await withdraw()
                withdrawn_at = time.monotonic()
    assert withdrawn_at is not None, text
    return parse_sse(text), time.monotonic() - withdrawn_at


async def test_a_stream_ends_within_seconds_of_its_api_key_being_revoked(
    runtime: Runtime, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    async with served_app(runtime) as server:
        scan_id = await queued_scan(server, runtime, tenant)
        issued = await server.post(
            "/api/v1/api-keys", json={"name": "wallboard", "role": "viewer"}, headers=tenant.auth
        )
        assert issued.status_code == 201, issued.text
        key_id = issued.json()["id"]

        async def revoke() -> None:
            revoked = await server.delete(f"/api/v1/api-keys/{key_id}", headers=tenant.auth)
            assert revoked.status_code == 200, revoked.text

        viewer = {"Authorization": f"Bearer {issued.json()['key']}"}
        async with server.stream(
            "GET", f"/api/v1/scans/{scan_id}/events", headers=viewer
        ) as response:
            assert response.status_code == 200
            events, ended_after = await events_after(response, revoke)

    assert ended_after < ENDS_WITHIN_SECONDS
    assert events[0]["event"] == "scan.queued"
    assert events[-1]["event"] == "error"
    assert "revoked" in json.loads(events[-1]["data"])["detail"]


async def test_a_stream_ends_within_seconds_of_its_browser_logging_out(
    runtime: Runtime, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    async with served_app(runtime) as server:
        scan_id = await queued_scan(server, runtime, tenant)
        # A browser of its own: the server's client carries the owner's API key elsewhere.
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as browser:
            login = await browser.post(
                "/api/v1/auth/login",
                json={"email": tenant.admin_email, "password": tenant.admin_password},
            )
            assert login.status_code == 200, login.text
            csrf = login.json()["csrf_token"]

            async def log_out() -> None:
                # Another tab of the same browser: same cookies.
                logged_out = await browser.post(
                    "/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}
                )
                assert logged_out.status_code == 204, logged_out.text

            async with browser.stream("GET", f"/api/v1/scans/{scan_id}/events") as response:
                assert response.status_code == 200
                events, ended_after = await events_after(response, log_out)

    assert ended_after < ENDS_WITHIN_SECONDS
    assert events[-1]["event"] == "error"
    assert "logged out" in json.loads(events[-1]["data"])["detail"]


async def test_a_stream_whose_credential_stays_valid_keeps_going(
    runtime: Runtime, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    async with served_app(runtime) as server:
        scan_id = await queued_scan(server, runtime, tenant)
        async with server.stream(
            "GET", f"/api/v1/scans/{scan_id}/events", headers=tenant.auth
        ) as response:
            assert response.status_code == 200
            # Longer than several credential checks, without the stream ending.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(ENDS_WITHIN_SECONDS):
                    async for _ in response.aiter_text():
                        pass
