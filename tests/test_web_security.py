"""What every HTTP answer promises: security headers, request ids, problem+json errors, limits."""

from __future__ import annotations

import dataclasses
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from valdrix.app import create_app
from valdrix.runtime import Runtime

PROXY_IP = "10.9.8.7"

ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def new_client(runtime: Runtime) -> AsyncIterator[ClientFactory]:
    """Clients over the real app, optionally over https or connecting from another address."""
    opened: list[httpx.AsyncClient] = []

    def open_client(
        *, base_url: str = "http://testserver", peer: str = "127.0.0.1", **settings: Any
    ) -> httpx.AsyncClient:
        app_runtime = dataclasses.replace(runtime, settings=runtime.settings.updated(**settings))
        transport = httpx.ASGITransport(
            app=create_app(app_runtime), raise_app_exceptions=False, client=(peer, 40000)
        )
        opened.append(httpx.AsyncClient(transport=transport, base_url=base_url))
        return opened[-1]

    yield open_client
    for client in opened:
        await client.aclose()


@pytest.fixture
def behind_proxy(new_client) -> Callable[[str], httpx.AsyncClient]:
    """A client reaching the app from ``peer``, with the app trusting only ``PROXY_IP``."""
    return lambda peer: new_client(peer=peer, api={"trusted_proxies": [PROXY_IP]})


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "camera=()" in headers["permissions-policy"]
    assert headers["x-request-id"]


async def _send(client: httpx.AsyncClient, case: str, auth: dict[str, str]) -> httpx.Response:
    """One request per kind of answer the API gives."""
    if case == "ok":
        return await client.get("/api/v1/tenant", headers=auth)
    if case == "unauthenticated":
        return await client.get("/api/v1/tenant")
    if case == "forbidden":
        return await client.get("/api/v1/tenant", headers={"Authorization": "Bearer vdx_nope"})
    if case == "not-found":
        return await client.get("/api/v1/no-such-thing", headers=auth)
    if case == "method-not-allowed":
        return await client.delete("/api/v1/tenant", headers=auth)
    if case == "invalid":
        return await client.post("/api/v1/auth/login", json={"email": "nobody"})
    if case == "public":
        return await client.get("/healthz")
    raise AssertionError(case)


EXPECTED_STATUS = {
    "ok": 200,
    "public": 200,
    "unauthenticated": 401,
    "forbidden": 401,
    "not-found": 404,
    "method-not-allowed": 405,
    "invalid": 422,
}


@pytest.mark.parametrize("case", list(EXPECTED_STATUS))
async def test_every_response_carries_the_security_headers_and_a_request_id(
    client, make_tenant, case
):
    tenant = await make_tenant()

    response = await _send(client, case, tenant.auth)

    assert response.status_code == EXPECTED_STATUS[case], response.text
    assert_security_headers(response)
    assert "strict-transport-security" not in response.headers  # plain http


@pytest.mark.parametrize(
    ("case", "title"),
    [
        ("unauthenticated", "Unauthorized"),
        ("not-found", "Not found"),
        ("method-not-allowed", "Method not allowed"),
        ("invalid", "Invalid input"),
    ],
)
async def test_errors_are_problem_json_with_title_status_and_request_id(
    client, make_tenant, case, title
):
    tenant = await make_tenant()

    response = await _send(client, case, tenant.auth)

    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == title
    assert body["status"] == response.status_code == EXPECTED_STATUS[case]
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["detail"]


async def test_api_docs_get_their_own_policy_that_still_forbids_framing(client):
    response = await client.get("/docs")

    assert response.status_code == 200
    assert "https://cdn.jsdelivr.net" in response.headers["content-security-policy"]
    assert_security_headers(response)


# --- HTTPS and proxies --------------------------------------------------------------------------


async def test_hsts_is_sent_over_https_only(new_client):
    over_https = await new_client(base_url="https://testserver").get("/healthz")
    over_http = await new_client().get("/healthz")

    assert over_https.headers["strict-transport-security"].startswith("max-age=")
    assert "includeSubDomains" in over_https.headers["strict-transport-security"]
    assert "strict-transport-security" not in over_http.headers


async def test_forwarded_proto_is_believed_only_from_a_trusted_proxy(behind_proxy):
    https_header = {"X-Forwarded-Proto": "https"}

    via_proxy = await behind_proxy(PROXY_IP).get("/healthz", headers=https_header)
    direct = await behind_proxy("192.0.2.50").get("/healthz", headers=https_header)

    assert "strict-transport-security" in via_proxy.headers
    assert "strict-transport-security" not in direct.headers


def _login_cookies(response: httpx.Response) -> dict[str, str]:
    return {
        header.split("=", 1)[0]: header.lower()
        for header in response.headers.get_list("set-cookie")
    }


async def test_login_over_https_sets_secure_cookies(new_client, make_tenant):
    tenant = await make_tenant()
    credentials = {"email": tenant.admin_email, "password": tenant.admin_password}

    response = await new_client(base_url="https://testserver").post(
        "/api/v1/auth/login", json=credentials
    )

    assert response.status_code == 200, response.text
    cookies = _login_cookies(response)
    assert "; secure" in cookies["valdrix_session"] and "; secure" in cookies["valdrix_csrf"]


async def test_login_behind_a_tls_terminating_trusted_proxy_sets_secure_cookies(
    behind_proxy, make_tenant
):
    tenant = await make_tenant()
    credentials = {"email": tenant.admin_email, "password": tenant.admin_password}

    response = await behind_proxy(PROXY_IP).post(
        "/api/v1/auth/login", json=credentials, headers={"X-Forwarded-Proto": "https"}
    )

    assert response.status_code == 200, response.text
    cookies = _login_cookies(response)
    assert "; secure" in cookies["valdrix_session"] and "; secure" in cookies["valdrix_csrf"]


async def _login_ip(
    client: httpx.AsyncClient, audit_client: httpx.AsyncClient, tenant, forwarded_for: str
) -> str:
    """Log in with the given X-Forwarded-For; returns the address the audit log recorded."""
    request_id = f"login-{secrets.token_hex(6)}"
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": tenant.admin_email, "password": tenant.admin_password},
        headers={"X-Forwarded-For": forwarded_for, "X-Request-ID": request_id},
    )
    assert response.status_code == 200, response.text
    events = (await audit_client.get("/api/v1/audit-log", headers=tenant.auth)).json()["items"]
    (login,) = [event for event in events if event["request_id"] == request_id]
    ip: str = login["ip"]
    return ip


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(behind_proxy, client, make_tenant):
    tenant = await make_tenant()

    ip = await _login_ip(behind_proxy("192.0.2.50"), client, tenant, "203.0.113.9")

    assert ip == "192.0.2.50"


@pytest.mark.parametrize(
    "forwarded_for",
    ["203.0.113.9", "198.51.100.66, 203.0.113.9", f"198.51.100.66, 203.0.113.9, {PROXY_IP}"],
    ids=["plain", "client-spoofed-first-hop", "through-two-proxies"],
)
async def test_client_address_is_the_one_our_trusted_proxy_saw(
    behind_proxy, client, make_tenant, forwarded_for
):
    # A proxy appends the address it saw to whatever X-Forwarded-For the client sent, so only
    # the entries added by trusted proxies, read from the right, can be believed.
    tenant = await make_tenant()

    ip = await _login_ip(behind_proxy(PROXY_IP), client, tenant, forwarded_for)

    assert ip == "203.0.113.9"


async def test_garbage_forwarded_for_from_a_trusted_proxy_falls_back_to_the_proxy_address(
    behind_proxy, client, make_tenant
):
    tenant = await make_tenant()

    ip = await _login_ip(behind_proxy(PROXY_IP), client, tenant, "unknown")

    assert ip == PROXY_IP


async def test_spoofed_forwarded_for_does_not_escape_the_login_throttle(
    behind_proxy, make_tenant, settings
):
    tenant = await make_tenant()
    proxy = behind_proxy(PROXY_IP)
    real_client = "203.0.113.77"

    for attempt in range(settings.auth.login_max_failures_per_minute + 1):
        response = await proxy.post(
            "/api/v1/auth/login",
            json={"email": tenant.admin_email, "password": "wrong-password-123"},
            headers={"X-Forwarded-For": f"198.51.100.{attempt}, {real_client}"},
        )

    assert response.status_code == 429, response.text


# --- request ids --------------------------------------------------------------------------------


async def test_offered_request_id_is_echoed_in_the_header_and_the_problem_body(client):
    request_id = f"trace-{secrets.token_hex(6)}"

    response = await client.get("/api/v1/tenant", headers={"X-Request-ID": request_id})

    assert response.status_code == 401
    assert response.headers["x-request-id"] == request_id
    assert response.json()["request_id"] == request_id


@pytest.mark.parametrize("offered", ["has spaces", "x" * 65, "<script>", ""])
async def test_unusable_request_id_is_replaced_with_a_fresh_one(client, offered):
    response = await client.get("/api/v1/tenant", headers={"X-Request-ID": offered})

    assert response.headers["x-request-id"] != offered
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["x-request-id"])
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_each_request_gets_its_own_request_id(client):
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(5)}

    assert len(ids) == 5


# --- request bodies -----------------------------------------------------------------------------


async def test_body_declared_larger_than_the_limit_is_refused_with_413(client, settings):
    oversized = b"{" + b" " * settings.api.max_request_body_bytes + b"}"

    response = await client.post(
        "/api/v1/auth/login", content=oversized, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Payload too large"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert_security_headers(response)


async def test_a_length_too_long_to_read_is_too_large_and_one_not_in_digits_is_not_a_500(client):
    body = b'{"email": "a@example.com", "password": "pw"}'

    huge = await client.post("/api/v1/auth/login", content=body, headers={
        "Content-Type": "application/json", "Content-Length": "9" * 5000,
    })  # fmt: skip
    odd = await client.post("/api/v1/auth/login", content=body, headers={
        "Content-Type": "application/json", "Content-Length": "²".encode("latin-1"),
    })  # fmt: skip

    assert huge.status_code == 413
    assert odd.status_code < 500, odd.text


async def test_streamed_body_larger_than_the_limit_is_refused_with_413(client, settings):
    chunk = b" " * 65536
    chunks = settings.api.max_request_body_bytes // len(chunk) + 2

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(chunks):
            yield chunk

    response = await client.post(
        "/api/v1/auth/login", content=stream(), headers={"Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers  # chunked: no size declared
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Payload too large"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert_security_headers(response)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/auth/login", {"email": "not-an-email", "password": "pw"}, "body.email"),
        ("POST", "/api/v1/auth/login", {"email": "a@example.com"}, "body.password"),
        ("POST", "/api/v1/api-keys", {"name": "k", "bogus": 1}, "body.bogus"),
        ("POST", "/api/v1/api-keys", {"name": "k", "role": "god"}, "body.role"),
        ("GET", "/api/v1/audit-log?limit=0", None, "query.limit"),
        ("GET", "/api/v1/audit-log?cursor=latest", None, "query.cursor"),
        ("DELETE", "/api/v1/api-keys/not-a-uuid", None, "path.api_key_id"),
    ],
    ids=["bad-email", "missing-password", "unknown-field", "bad-enum", "query", "cursor", "path"],
)
async def test_validation_errors_name_the_offending_field(
    client, make_tenant, method, path, body, field
):
    tenant = await make_tenant()

    response = await client.request(method, path, json=body, headers=tenant.auth)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["title"] == "Invalid input"
    assert problem["detail"].startswith(f"{field}: ")
    assert [error["field"] for error in problem["errors"]] == [field]


async def test_error_pages_count_against_the_rate_limit_and_a_pages_429_says_when_to_retry(
    new_client: ClientFactory, make_tenant: Callable[..., Any]
) -> None:
    tenant = await make_tenant()
    limited = new_client(rate_limits={"credential_burst": 3, "credential_per_second": 0.01})
    browser = {**tenant.auth, "Accept": "text/html"}

    pages = [await limited.get(f"/no-such-page-{n}", headers=browser) for n in range(5)]

    assert [page.status_code for page in pages] == [404] * 5
    # The navigation is read for the caller while their limit allows; past it, not at all.
    assert ['aria-label="Main"' in page.text for page in pages] == [True] * 3 + [False] * 2
    refused = await limited.get("/findings", headers=browser)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert int(refused.headers["Retry-After"]) >= 1
    assert 'aria-label="Main"' not in refused.text

    # A page whose request was counted, then refused (an address edited by hand), counts once.
    other = {**(await make_tenant()).auth, "Accept": "text/html"}
    edited = [await limited.get("/findings?offset=abc", headers=other) for _ in range(4)]
    assert [page.status_code for page in edited] == [422] * 3 + [429]
    assert all('aria-label="Main"' in page.text for page in edited[:3])


async def test_a_pages_405_names_every_method_of_its_path(
    client: httpx.AsyncClient, make_tenant: Callable[..., Any]
) -> None:
    tenant = await make_tenant()
    path = f"/settings/members/{uuid.uuid4()}"
    answer = await client.get(path, headers={**tenant.auth, "Accept": "text/html"})
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["Allow"] == "DELETE, PATCH"
