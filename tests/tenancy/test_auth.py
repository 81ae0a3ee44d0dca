"""Authentication: API keys, dashboard sessions with CSRF, login throttling, external JWTs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import update

from tests.fixtures.http import assert_problem, bearer
from tests.tenancy.helpers import create_api_key, join_tenant, log_in, session_cookie
from valdrix.kit.crypto import hash_token
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.tenancy.models import ApiKey, BrowserSession

# --- API keys -----------------------------------------------------------------------------------


async def test_api_key_authenticates_as_its_tenant_and_role(client, make_tenant):
    tenant = await make_tenant()

    response = await client.get("/api/v1/auth/me", headers=tenant.auth)

    assert response.status_code == 200, response.text
    me = response.json()
    assert (me["tenant_id"], me["role"], me["kind"]) == (str(tenant.tenant_id), "owner", "api_key")


@pytest.mark.parametrize(
    "credential",
    ["vdx_" + secrets.token_urlsafe(32), "vdx_", "not-a-valdrix-key"],
    ids=["unknown-key", "bare-prefix", "foreign-token"],
)
async def test_unknown_bearer_credential_is_refused_with_problem_json(client, credential):
    response = await client.get("/api/v1/tenant", headers=bearer(credential))

    body = assert_problem(response, 401)
    assert body["title"] == "Unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_tampered_api_key_of_a_real_tenant_is_refused(client, make_tenant):
    tenant = await make_tenant()
    # One character changed (never to itself: one key in 64 already ends in "A").
    tampered = tenant.api_key[:-1] + ("B" if tenant.api_key.endswith("A") else "A")

    response = await client.get("/api/v1/tenant", headers=bearer(tampered))

    assert_problem(response, 401)


async def test_revoked_api_key_stops_working_immediately(client, make_tenant):
    tenant = await make_tenant()
    key = await create_api_key(client, tenant.auth, "viewer")
    assert (await client.get("/api/v1/tenant", headers=bearer(key["key"]))).status_code == 200

    revoked = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=tenant.auth)

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert_problem(await client.get("/api/v1/tenant", headers=bearer(key["key"])), 401)


async def test_expired_api_key_is_refused(client, make_tenant, runtime):
    tenant = await make_tenant()
    key = await create_api_key(client, tenant.auth, "viewer", expires_in_days=1)
    assert key["expires_at"] is not None
    assert (await client.get("/api/v1/tenant", headers=bearer(key["key"]))).status_code == 200

    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(key["id"]))
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )

    assert_problem(await client.get("/api/v1/tenant", headers=bearer(key["key"])), 401)


async def test_using_an_api_key_records_when_it_was_last_used(client, make_tenant):
    tenant = await make_tenant()
    key = await create_api_key(client, tenant.auth, "viewer")
    assert key["last_used_at"] is None
    before = utcnow()

    assert (await client.get("/api/v1/tenant", headers=bearer(key["key"]))).status_code == 200

    listed = (await client.get("/api/v1/api-keys", headers=tenant.auth)).json()
    (entry,) = [item for item in listed if item["id"] == key["id"]]
    last_used = dt.datetime.fromisoformat(entry["last_used_at"])
    assert before - dt.timedelta(seconds=5) <= last_used <= utcnow()


async def test_api_key_secret_is_shown_only_when_created(client, make_tenant):
    tenant = await make_tenant()
    key = await create_api_key(client, tenant.auth, "member")

    listed = (await client.get("/api/v1/api-keys", headers=tenant.auth)).json()

    assert key["key"].startswith("vdx_") and key["key"].startswith(key["prefix"])
    assert all("key" not in item for item in listed)
    assert key["key"] not in json.dumps(listed)


async def test_viewer_key_cannot_create_api_keys(client, make_tenant):
    tenant = await make_tenant()
    viewer = await create_api_key(client, tenant.auth, "viewer")

    response = await client.post(
        "/api/v1/api-keys", json={"name": "sneaky", "role": "viewer"}, headers=bearer(viewer["key"])
    )

    body = assert_problem(response, 403)
    assert "admin" in body["detail"]


async def test_admin_key_cannot_create_an_owner_key(client, make_tenant):
    tenant = await make_tenant()
    admin = await create_api_key(client, tenant.auth, "admin")

    owner_attempt = await client.post(
        "/api/v1/api-keys", json={"name": "escalate", "role": "owner"}, headers=bearer(admin["key"])
    )
    admin_attempt = await client.post(
        "/api/v1/api-keys", json={"name": "peer", "role": "admin"}, headers=bearer(admin["key"])
    )

    assert_problem(owner_attempt, 403)
    assert admin_attempt.status_code == 201, admin_attempt.text


# --- dashboard sessions -------------------------------------------------------------------------


async def test_login_sets_httponly_lax_session_cookie_and_a_readable_csrf_cookie(
    new_browser, make_tenant
):
    tenant = await make_tenant()
    browser = new_browser()

    response = await browser.post(
        "/api/v1/auth/login",
        json={"email": tenant.admin_email, "password": tenant.admin_password},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["tenant_id"], body["role"]) == (str(tenant.tenant_id), "owner")
    cookies = {
        header.split("=", 1)[0]: header.lower()
        for header in response.headers.get_list("set-cookie")
    }
    session, csrf = cookies["valdrix_session"], cookies["valdrix_csrf"]
    assert "httponly" in session and "samesite=lax" in session and "path=/" in session
    assert "httponly" not in csrf and "samesite=lax" in csrf
    assert "secure" not in session  # plain http here; https is covered in test_web_security
    assert browser.cookies["valdrix_csrf"] == body["csrf_token"]
    assert browser.cookies["valdrix_session"].startswith("vdxs_")


async def test_session_cookie_authenticates_reads_without_a_csrf_token(new_browser, make_tenant):
    tenant = await make_tenant()
    browser = new_browser()
    await log_in(browser, tenant.admin_email, tenant.admin_password)

    response = await browser.get("/api/v1/auth/me")

    assert response.status_code == 200, response.text
    assert (response.json()["kind"], response.json()["role"]) == ("session", "owner")


async def test_wrong_password_and_unknown_email_get_the_same_answer(client, make_tenant):
    tenant = await make_tenant()

    wrong_password = await client.post(
        "/api/v1/auth/login", json={"email": tenant.admin_email, "password": "not-the-password"}
    )
    unknown_email = await client.post(
        "/api/v1/auth/login",
        json={"email": f"nobody-{secrets.token_hex(4)}@example.com", "password": "whatever!!"},
    )

    assert assert_problem(wrong_password, 401)["detail"] == "email or password is wrong"
    assert assert_problem(unknown_email, 401)["detail"] == "email or password is wrong"
    assert "set-cookie" not in wrong_password.headers


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/api-keys", {"name": "from the dashboard"}),
        ("PATCH", "/api/v1/tenant", {"timezone": "Europe/Paris"}),
        ("DELETE", "/api/v1/api-keys/{doomed_key_id}", None),
    ],
    ids=["POST", "PATCH", "DELETE"],
)
async def test_cookie_authenticated_write_needs_the_sessions_csrf_token(
    client, new_browser, make_tenant, method, path, body
):
    tenant = await make_tenant()
    doomed_key = await create_api_key(client, tenant.auth, "viewer")
    path = path.format(doomed_key_id=doomed_key["id"])
    browser = new_browser()
    csrf_token = await log_in(browser, tenant.admin_email, tenant.admin_password)

    missing = await browser.request(method, path, json=body)
    wrong = await browser.request(method, path, json=body, headers={"X-CSRF-Token": "guess"})
    right = await browser.request(method, path, json=body, headers={"X-CSRF-Token": csrf_token})

    assert "CSRF" in assert_problem(missing, 403)["detail"]
    assert "CSRF" in assert_problem(wrong, 403)["detail"]
    assert right.status_code in (200, 201), right.text


async def test_csrf_token_of_another_session_is_refused(new_browser, make_tenant):
    tenant = await make_tenant()
    victim, attacker = new_browser(), new_browser()
    await log_in(victim, tenant.admin_email, tenant.admin_password)
    attacker_csrf = await log_in(attacker, tenant.admin_email, tenant.admin_password)
    # An attacker who can plant a cookie pairs their own CSRF token with the victim's session.
    victim.cookies.set("valdrix_csrf", attacker_csrf)

    response = await victim.patch(
        "/api/v1/tenant", json={"name": "pwned"}, headers={"X-CSRF-Token": attacker_csrf}
    )

    assert "does not belong" in assert_problem(response, 403)["detail"]


async def test_non_ascii_csrf_token_is_refused_not_a_server_error(new_browser, make_tenant):
    tenant = await make_tenant()
    browser = new_browser()
    await log_in(browser, tenant.admin_email, tenant.admin_password)

    response = await browser.patch(
        "/api/v1/tenant", json={"name": "x"}, headers={"X-CSRF-Token": b"caf\xe9"}
    )

    assert_problem(response, 403)


async def test_bearer_requests_need_no_csrf_token_even_from_a_logged_in_browser(
    new_browser, make_tenant
):
    tenant = await make_tenant()
    browser = new_browser()
    await log_in(browser, tenant.admin_email, tenant.admin_password)

    response = await browser.post(
        "/api/v1/api-keys", json={"name": "script", "role": "viewer"}, headers=tenant.auth
    )

    assert response.status_code == 201, response.text


async def test_eleventh_failed_login_in_a_minute_is_throttled_even_with_the_right_password(
    new_browser, make_tenant, settings
):
    tenant, bystander = await make_tenant(), await make_tenant()
    browser = new_browser()  # every request comes from the same client IP
    wrong = {"email": tenant.admin_email, "password": "wrong-password-123"}
    for _ in range(settings.auth.login_max_failures_per_minute):
        assert_problem(await browser.post("/api/v1/auth/login", json=wrong), 401)

    throttled = await browser.post(
        "/api/v1/auth/login",
        json={"email": tenant.admin_email.upper(), "password": tenant.admin_password},
    )
    other_email = await browser.post(
        "/api/v1/auth/login",
        json={"email": bystander.admin_email, "password": bystander.admin_password},
    )

    assert_problem(throttled, 429)
    assert int(throttled.headers["retry-after"]) > 0
    assert "set-cookie" not in throttled.headers
    assert other_email.status_code == 200, other_email.text


async def test_failed_logins_older_than_a_minute_no_longer_count(
    new_browser, make_tenant, settings, runtime, database
):
    tenant = await make_tenant()
    browser = new_browser()
    wrong = {"email": tenant.admin_email, "password": "wrong-password-123"}
    for _ in range(settings.auth.login_max_failures_per_minute):
        assert_problem(await browser.post("/api/v1/auth/login", json=wrong), 401)
    # The application role may not rewrite login attempts, so age them as the superuser.
    async with await psycopg.AsyncConnection.connect(database.superuser) as conn:
        await conn.execute(
            "UPDATE login_attempts SET attempted_at = attempted_at - interval '61 seconds'"
            " WHERE email_index = %s",
            (runtime.keyring.blind_index(tenant.admin_email),),
        )

    await log_in(browser, tenant.admin_email, tenant.admin_password)


async def test_logout_ends_the_session(new_browser, make_tenant):
    tenant = await make_tenant()
    browser = new_browser()
    csrf_token = await log_in(browser, tenant.admin_email, tenant.admin_password)
    token = browser.cookies["valdrix_session"]

    response = await browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf_token})

    assert response.status_code == 204, response.text
    assert "valdrix_session" not in browser.cookies
    assert_problem(await new_browser().get("/api/v1/auth/me", headers=session_cookie(token)), 401)


async def test_logging_in_again_replaces_the_previous_session(new_browser, make_tenant):
    tenant = await make_tenant()
    browser = new_browser()
    await log_in(browser, tenant.admin_email, tenant.admin_password)
    first = browser.cookies["valdrix_session"]

    await log_in(browser, tenant.admin_email, tenant.admin_password)
    second = browser.cookies["valdrix_session"]

    elsewhere = new_browser()
    assert second != first
    assert_problem(await elsewhere.get("/api/v1/auth/me", headers=session_cookie(first)), 401)
    assert (await elsewhere.get("/api/v1/auth/me", headers=session_cookie(second))).is_success


async def test_expired_session_is_refused(new_browser, make_tenant, runtime):
    tenant = await make_tenant()
    browser = new_browser()
    await log_in(browser, tenant.admin_email, tenant.admin_password)
    token = browser.cookies["valdrix_session"]

    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await session.execute(
            update(BrowserSession)
            .where(BrowserSession.token_hash == hash_token(token))
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )

    body = assert_problem(await browser.get("/api/v1/auth/me"), 401)
    assert "log in again" in body["detail"]


# --- external JWTs (OIDC) -----------------------------------------------------------------------

ISSUER = "https://idp.example.test/"
AUDIENCE = "valdrix-api"
HS256_KEY = "hs256-" + secrets.token_hex(24)


def oidc_runtime(runtime: Runtime, **oidc: str) -> Runtime:
    """The shared runtime (same database and keys) with OIDC settings switched on."""
    settings = runtime.settings.updated(
        auth={"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, **oidc}
    )
    return dataclasses.replace(runtime, settings=settings)


def claims_for(email: str, tenant_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    now = utcnow()
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": email,
        "email": email,
        "email_verified": True,
        "valdrix_tenant_id": str(tenant_id),
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
    }
    claims.update(overrides)
    return claims


@pytest.fixture
def hs256_browser(new_browser, runtime) -> httpx.AsyncClient:
    browser: httpx.AsyncClient = new_browser(oidc_runtime(runtime, oidc_hs256_secret=HS256_KEY))
    return browser


async def test_hs256_token_authenticates_the_member_with_their_role(
    client, hs256_browser, make_tenant
):
    tenant = await make_tenant()
    viewer, _ = await join_tenant(client, tenant.auth, "viewer")
    token = jwt.encode(claims_for(viewer["email"], tenant.tenant_id), HS256_KEY, algorithm="HS256")

    me = await hs256_browser.get("/api/v1/auth/me", headers=bearer(token))
    write = await hs256_browser.post(
        "/api/v1/api-keys", json={"name": "nope"}, headers=bearer(token)
    )

    assert me.status_code == 200, me.text
    assert (me.json()["tenant_id"], me.json()["role"], me.json()["kind"]) == (
        str(tenant.tenant_id),
        "viewer",
        "jwt",
    )
    assert_problem(write, 403)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"aud": "someone-else"}, HS256_KEY),
        ({"iss": "https://evil.example.test/"}, HS256_KEY),
        ({"exp": utcnow() - dt.timedelta(minutes=10)}, HS256_KEY),
        ({}, "another-key-" + secrets.token_hex(24)),
    ],
    ids=["wrong-audience", "wrong-issuer", "expired", "bad-signature"],
)
async def test_hs256_token_that_fails_verification_is_refused(
    hs256_browser, make_tenant, overrides, key
):
    tenant = await make_tenant()
    token = jwt.encode(
        claims_for(tenant.admin_email, tenant.tenant_id, **overrides), key, algorithm="HS256"
    )

    body = assert_problem(await hs256_browser.get("/api/v1/auth/me", headers=bearer(token)), 401)
    assert body["detail"].startswith("token rejected")


async def test_token_for_a_tenant_the_person_does_not_belong_to_is_refused(
    hs256_browser, make_tenant
):
    mine, theirs = await make_tenant(), await make_tenant()
    token = jwt.encode(claims_for(mine.admin_email, theirs.tenant_id), HS256_KEY, algorithm="HS256")

    body = assert_problem(await hs256_browser.get("/api/v1/tenant", headers=bearer(token)), 401)
    assert "not a member" in body["detail"]


async def test_token_without_a_tenant_claim_is_refused(hs256_browser, make_tenant):
    tenant = await make_tenant()
    claims = claims_for(tenant.admin_email, tenant.tenant_id)
    del claims["valdrix_tenant_id"]
    token = jwt.encode(claims, HS256_KEY, algorithm="HS256")

    assert_problem(await hs256_browser.get("/api/v1/tenant", headers=bearer(token)), 401)


@dataclasses.dataclass(frozen=True)
class JwksServer:
    url: str
    key_id: str
    private_key: rsa.RSAPrivateKey


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JwksServer]:
    """A real identity provider's JWKS endpoint, served over HTTP from a thread."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_id = "idp-key-1"
    jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    jwks = json.dumps({"keys": [{**jwk, "kid": key_id, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(jwks)))
            self.end_headers()
            self.wfile.write(jwks)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield JwksServer(f"http://127.0.0.1:{server.server_port}/jwks.json", key_id, private_key)
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def jwks_browser(new_browser, runtime, jwks_server) -> httpx.AsyncClient:
    browser: httpx.AsyncClient = new_browser(oidc_runtime(runtime, oidc_jwks_url=jwks_server.url))
    return browser


async def test_rs256_token_verified_against_the_jwks_url_authenticates(
    jwks_browser, jwks_server, make_tenant
):
    tenant = await make_tenant()
    token = jwt.encode(
        claims_for(tenant.admin_email, tenant.tenant_id),
        jwks_server.private_key,
        algorithm="RS256",
        headers={"kid": jwks_server.key_id},
    )

    response = await jwks_browser.get("/api/v1/auth/me", headers=bearer(token))

    assert response.status_code == 200, response.text
    assert (response.json()["role"], response.json()["kind"]) == ("owner", "jwt")


@pytest.mark.parametrize("key_id", ["idp-key-1", "unknown-key"], ids=["same-kid", "other-kid"])
async def test_rs256_token_signed_by_another_key_is_refused(jwks_browser, make_tenant, key_id):
    tenant = await make_tenant()
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        claims_for(tenant.admin_email, tenant.tenant_id),
        impostor,
        algorithm="RS256",
        headers={"kid": key_id},
    )

    assert_problem(await jwks_browser.get("/api/v1/auth/me", headers=bearer(token)), 401)


async def test_hs256_token_is_refused_when_only_a_jwks_url_is_trusted(jwks_browser, make_tenant):
    tenant = await make_tenant()
    token = jwt.encode(
        claims_for(tenant.admin_email, tenant.tenant_id),
        HS256_KEY,
        algorithm="HS256",
        headers={"kid": "idp-key-1"},
    )

    assert_problem(await jwks_browser.get("/api/v1/auth/me", headers=bearer(token)), 401)


@pytest.mark.parametrize("verified", [False, "true", None], ids=["false", "string", "missing"])
async def test_token_whose_email_is_not_verified_is_refused(hs256_browser, make_tenant, verified):
    tenant = await make_tenant()
    claims = claims_for(tenant.admin_email, tenant.tenant_id, email_verified=verified)
    if verified is None:
        del claims["email_verified"]
    token = jwt.encode(claims, HS256_KEY, algorithm="HS256")

    body = assert_problem(await hs256_browser.get("/api/v1/auth/me", headers=bearer(token)), 401)
    assert "verified" in body["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "script", "expires_in_days": True}, "body.expires_in_days"),
        ({"name": "   "}, "body.name"),
    ],
    ids=["true-as-days", "blank-name"],
)
async def test_an_api_key_needs_a_visible_name_and_a_number_of_days(
    client, make_tenant, body, field
):
    tenant = await make_tenant()

    response = await client.post("/api/v1/api-keys", json=body, headers=tenant.auth)

    assert assert_problem(response, 422)["detail"].startswith(f"{field}: ")
