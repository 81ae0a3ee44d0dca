"""Resetting a forgotten password over the API: a single-use link mailed to the address (through
a real SMTP server), the same answer for an address without an account, and every session of
the account ended when the password changes."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg

from tests.fixtures.http import assert_problem
from tests.tenancy.helpers import log_in
from tests.tenancy.mailbox import Mailbox, mail_runtime
from valdrix.mail import link_base
from valdrix.tenancy.password_reset import MAX_REQUESTS_PER_ADDRESS, MAX_REQUESTS_PER_IP

RESET, CONFIRM = "/api/v1/auth/password-reset", "/api/v1/auth/password-reset/confirm"


def new_address(label: str) -> str:
    return f"{label}-{secrets.token_hex(4)}@example.com"


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def proven_member(api: httpx.AsyncClient, mailbox: Mailbox, *tenants) -> tuple[str, str]:
    """Someone invited by mail to each tenant, who accepted: (email, password)."""
    email, password = new_address("forgetful"), secrets.token_urlsafe(16)
    for tenant in tenants:
        invited = await api.post("/api/v1/members", json={"email": email}, headers=tenant.auth)
        assert invited.status_code == 201, invited.text
        token = mailbox.invite_token_for(email)
        accepted = await api.post(
            "/api/v1/auth/accept-invite", json={"token": token, "password": password}
        )
        assert accepted.status_code == 204, accepted.text
    return email, password


async def reset_link(api: httpx.AsyncClient, mailbox: Mailbox, email: str) -> str:
    before = len(mailbox.to(email))
    asked = await api.post(RESET, json={"email": email})
    assert asked.status_code == 202, asked.text
    for _ in range(100):
        if len(mailbox.to(email)) > before:
            break
        await asyncio.sleep(0.05)
    return mailbox.reset_link_for(email)


async def test_the_mailed_link_sets_a_new_password_once_and_ends_every_session(
    new_browser, make_tenant, runtime, smtp_server
):
    mailbox, port = smtp_server
    tenant_a, tenant_b = await make_tenant(), await make_tenant()
    mailing = mail_runtime(runtime, port)
    api = new_browser(mailing)
    email, old_password = await proven_member(api, mailbox, tenant_a, tenant_b)
    in_a, in_b = new_browser(), new_browser()
    await log_in(in_a, email, old_password)
    assert (
        await in_b.post(
            "/api/v1/auth/login",
            json={"email": email, "password": old_password, "tenant_id": str(tenant_b.tenant_id)},
        )
    ).status_code == 200

    link = await reset_link(api, mailbox, email)
    new_password = secrets.token_urlsafe(16)
    confirmed = await api.post(CONFIRM, json={"token": token_of(link), "password": new_password})
    again = await api.post(CONFIRM, json={"token": token_of(link), "password": new_password})

    assert link.startswith(f"{link_base(mailing.settings)}/reset-password?token=")
    assert confirmed.status_code == 204, confirmed.text
    assert "already used" in assert_problem(again, 400)["detail"]
    for browser in (in_a, in_b):
        assert (await browser.get("/api/v1/auth/me")).status_code == 401
    assert (await new_browser().post("/api/v1/auth/login", json={
        "email": email, "password": old_password})).status_code == 401  # fmt: skip
    await log_in(new_browser(), email, new_password)
    for tenant in (tenant_a, tenant_b):
        audit = (await api.get("/api/v1/audit-log", headers=tenant.auth)).json()["items"]
        assert "auth.password_reset" in [event["action"] for event in audit]


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    new_browser, make_tenant, runtime, smtp_server
):
    mailbox, port = smtp_server
    api = new_browser(mail_runtime(runtime, port))
    known, _ = await proven_member(api, mailbox, await make_tenant())
    unknown = new_address("nobody")

    answers = [await api.post(RESET, json={"email": email}) for email in (known, unknown)]
    mailbox.reset_link_for(known)
    await asyncio.sleep(0.3)

    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json()
    assert mailbox.to(unknown) == []


async def test_an_expired_link_and_a_superseded_link_are_refused(
    new_browser, make_tenant, runtime, smtp_server, database
):
    mailbox, port = smtp_server
    api = new_browser(mail_runtime(runtime, port))
    email, _ = await proven_member(api, mailbox, await make_tenant())
    first = token_of(await reset_link(api, mailbox, email))
    second = token_of(await reset_link(api, mailbox, email))
    with psycopg.connect(database.superuser, autocommit=True) as conn:
        conn.execute(
            "UPDATE password_resets SET expires_at = now() - interval '1 minute'"
            " WHERE token_hash = sha256(%s::bytea)",
            (second.encode(),),
        )

    for token in (first, second):
        refused = await api.post(CONFIRM, json={"token": token, "password": "a new password!"})
        assert "expired" in assert_problem(refused, 400)["detail"]


async def test_the_new_password_follows_the_password_rules(
    new_browser, make_tenant, runtime, smtp_server
):
    mailbox, port = smtp_server
    api = new_browser(mail_runtime(runtime, port))
    email, _ = await proven_member(api, mailbox, await make_tenant())
    token = token_of(await reset_link(api, mailbox, email))

    short = await api.post(CONFIRM, json={"token": token, "password": "short"})
    long_enough = await api.post(CONFIRM, json={"token": token, "password": "twelve chars"})

    assert_problem(short, 422)
    assert long_enough.status_code == 204, long_enough.text


async def test_too_many_requests_for_an_address_or_from_an_ip_are_refused_with_retry_after(
    new_browser, runtime, smtp_server
):
    """Addresses without an account count the same: the limit says nothing about accounts."""
    _, port = smtp_server
    mailing = mail_runtime(runtime, port)
    one_address = new_address("hammered")
    by_address = new_browser(mailing)
    answers = [
        await new_browser(mailing).post(RESET, json={"email": one_address})
        for _ in range(MAX_REQUESTS_PER_ADDRESS)
    ]
    throttled = await by_address.post(RESET, json={"email": one_address})

    assert [a.status_code for a in answers] == [202] * MAX_REQUESTS_PER_ADDRESS
    assert_problem(throttled, 429)
    assert int(throttled.headers["retry-after"]) > 0

    one_ip = new_browser(mailing, ip="10." + ".".join(str(b) for b in secrets.token_bytes(3)))
    spread = [
        await one_ip.post(RESET, json={"email": new_address(f"spray{n}")})
        for n in range(MAX_REQUESTS_PER_IP)
    ]
    refused = await one_ip.post(RESET, json={"email": new_address("one-more")})

    assert {a.status_code for a in spread} == {202}
    assert_problem(refused, 429)
