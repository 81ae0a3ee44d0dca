"""Members: invitations, roles, removal, and the audit log that records it all."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

import psycopg
import pytest
from sqlalchemy import update

from tests.fixtures.http import assert_problem, bearer
from tests.tenancy.helpers import create_api_key, invite, join_tenant, log_in, session_cookie
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.tenancy.models import Membership


async def members_of(client, tenant) -> dict[str, dict]:
    response = await client.get("/api/v1/members", headers=tenant.auth)
    assert response.status_code == 200, response.text
    return {member["email"]: member for member in response.json()}


# --- invitations --------------------------------------------------------------------------------


async def test_owner_invites_a_new_email_and_gets_a_one_time_invitation(client, make_tenant):
    tenant = await make_tenant()
    email = f"new-{secrets.token_hex(4)}@example.com"

    response = await client.post(
        "/api/v1/members", json={"email": email, "role": "member"}, headers=tenant.auth
    )

    assert response.status_code == 201, response.text
    invited = response.json()
    assert (invited["email"], invited["role"], invited["status"]) == (email, "member", "invited")
    assert invited["invite_token"].startswith("vdxinv_")
    assert (await members_of(client, tenant))[email]["status"] == "invited"


async def test_invited_person_cannot_log_in_before_accepting(new_browser, client, make_tenant):
    tenant = await make_tenant()
    invited = await invite(client, tenant.auth, "member")

    response = await new_browser().post(
        "/api/v1/auth/login", json={"email": invited["email"], "password": "any-password-at-all"}
    )

    assert_problem(response, 401)


async def test_accepted_invitation_lets_the_person_log_in_with_the_invited_role(
    new_browser, client, make_tenant
):
    tenant = await make_tenant()
    invited = await invite(client, tenant.auth, "admin")
    password = secrets.token_urlsafe(16)

    accepted = await client.post(
        "/api/v1/auth/accept-invite", json={"token": invited["invite_token"], "password": password}
    )

    assert accepted.status_code == 204, accepted.text
    browser = new_browser()
    login = await browser.post(
        "/api/v1/auth/login", json={"email": invited["email"], "password": password}
    )
    assert login.status_code == 200, login.text
    assert (login.json()["tenant_id"], login.json()["role"]) == (str(tenant.tenant_id), "admin")
    me = (await browser.get("/api/v1/auth/me")).json()
    member = (await members_of(client, tenant))[invited["email"]]
    assert (me["role"], me["actor_id"]) == ("admin", member["user_id"])
    assert member["status"] == "active"


async def test_invitation_token_cannot_be_used_twice(client, make_tenant):
    tenant = await make_tenant()
    invited = await invite(client, tenant.auth, "viewer")
    body = {"token": invited["invite_token"], "password": secrets.token_urlsafe(16)}
    assert (await client.post("/api/v1/auth/accept-invite", json=body)).status_code == 204

    again = await client.post(
        "/api/v1/auth/accept-invite", json={**body, "password": secrets.token_urlsafe(16)}
    )

    assert "invitation" in assert_problem(again, 401)["detail"]


async def test_expired_invitation_cannot_be_accepted(client, make_tenant, runtime):
    tenant = await make_tenant()
    invited = await invite(client, tenant.auth, "member")
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        await session.execute(
            update(Membership)
            .where(Membership.id == uuid.UUID(invited["id"]))
            .values(invite_expires_at=utcnow() - dt.timedelta(seconds=1))
        )

    response = await client.post(
        "/api/v1/auth/accept-invite",
        json={"token": invited["invite_token"], "password": secrets.token_urlsafe(16)},
    )

    assert "expired" in assert_problem(response, 401)["detail"]
    assert (await members_of(client, tenant))[invited["email"]]["status"] == "invited"


async def test_inviting_someone_who_is_already_a_member_conflicts(client, make_tenant):
    tenant = await make_tenant()
    invited = await invite(client, tenant.auth, "member")

    same = await client.post(
        "/api/v1/members", json={"email": invited["email"], "role": "admin"}, headers=tenant.auth
    )
    shouted = await client.post(
        "/api/v1/members", json={"email": invited["email"].upper()}, headers=tenant.auth
    )
    owner = await client.post(
        "/api/v1/members", json={"email": tenant.admin_email}, headers=tenant.auth
    )

    for response in (same, shouted, owner):
        assert "already a member" in assert_problem(response, 409)["detail"]


# --- roles --------------------------------------------------------------------------------------


async def test_admin_cannot_make_anyone_an_owner(client, make_tenant):
    tenant = await make_tenant()
    admin = await create_api_key(client, tenant.auth, "admin")
    member, _ = await join_tenant(client, tenant.auth, "member")

    new_owner = await client.post(
        "/api/v1/members",
        json={"email": f"boss-{secrets.token_hex(4)}@example.com", "role": "owner"},
        headers=bearer(admin["key"]),
    )
    promoted = await client.patch(
        f"/api/v1/members/{member['id']}", json={"role": "owner"}, headers=bearer(admin["key"])
    )

    assert_problem(new_owner, 403)
    assert_problem(promoted, 403)
    assert (await members_of(client, tenant))[member["email"]]["role"] == "member"


async def test_demoting_the_last_owner_is_refused(client, make_tenant):
    tenant = await make_tenant()
    owner = (await members_of(client, tenant))[tenant.admin_email]

    response = await client.patch(
        f"/api/v1/members/{owner['id']}", json={"role": "admin"}, headers=tenant.auth
    )

    assert "at least one owner" in assert_problem(response, 409)["detail"]
    assert (await members_of(client, tenant))[tenant.admin_email]["role"] == "owner"


async def test_an_owner_may_step_down_once_another_owner_exists(client, make_tenant):
    tenant = await make_tenant()
    await join_tenant(client, tenant.auth, "owner")
    owner = (await members_of(client, tenant))[tenant.admin_email]

    response = await client.patch(
        f"/api/v1/members/{owner['id']}", json={"role": "admin"}, headers=tenant.auth
    )

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "admin"


async def test_a_role_change_applies_to_a_logged_in_member_at_once(
    new_browser, client, make_tenant
):
    tenant = await make_tenant()
    member, password = await join_tenant(client, tenant.auth, "admin")
    browser = new_browser()
    csrf_token = await log_in(browser, member["email"], password)

    demoted = await client.patch(
        f"/api/v1/members/{member['id']}", json={"role": "viewer"}, headers=tenant.auth
    )

    assert demoted.status_code == 200, demoted.text
    assert (await browser.get("/api/v1/auth/me")).json()["role"] == "viewer"
    attempt = await browser.post(
        "/api/v1/api-keys", json={"name": "late"}, headers={"X-CSRF-Token": csrf_token}
    )
    assert_problem(attempt, 403)
    events = (await client.get("/api/v1/audit-log", headers=tenant.auth)).json()["items"]
    assert events[0]["action"] == "member.role_change"
    assert events[0]["details"] == {"from": "admin", "to": "viewer"}


async def test_removing_a_member_ends_their_dashboard_sessions(new_browser, client, make_tenant):
    tenant = await make_tenant()
    member, password = await join_tenant(client, tenant.auth, "member")
    browser = new_browser()
    await log_in(browser, member["email"], password)
    token = browser.cookies["valdrix_session"]
    assert (await browser.get("/api/v1/auth/me")).status_code == 200

    removed = await client.delete(f"/api/v1/members/{member['id']}", headers=tenant.auth)

    assert removed.status_code == 204, removed.text
    assert_problem(await new_browser().get("/api/v1/auth/me", headers=session_cookie(token)), 401)
    assert member["email"] not in await members_of(client, tenant)
    relogin = await new_browser().post(
        "/api/v1/auth/login", json={"email": member["email"], "password": password}
    )
    assert_problem(relogin, 401)
    events = (await client.get("/api/v1/audit-log", headers=tenant.auth)).json()["items"]
    removal = next(event for event in events if event["action"] == "member.remove")
    assert removal["target_id"] == member["id"]


async def test_members_of_another_tenant_cannot_be_changed_or_removed(client, make_tenant):
    tenant, outsider = await make_tenant(), await make_tenant()
    member, _ = await join_tenant(client, tenant.auth, "member")

    patched = await client.patch(
        f"/api/v1/members/{member['id']}", json={"role": "viewer"}, headers=outsider.auth
    )
    deleted = await client.delete(f"/api/v1/members/{member['id']}", headers=outsider.auth)

    assert_problem(patched, 404)
    assert_problem(deleted, 404)
    assert (await members_of(client, tenant))[member["email"]]["role"] == "member"


async def test_member_list_shows_emails_in_clear_while_the_database_holds_ciphertext(
    client, make_tenant, database
):
    tenant = await make_tenant()
    invited = await invite(client, tenant.auth, "viewer")

    listed = await members_of(client, tenant)

    assert set(listed) == {tenant.admin_email, invited["email"]}
    async with await psycopg.AsyncConnection.connect(database.superuser) as conn:
        cursor = await conn.execute(
            "SELECT invite_email FROM memberships WHERE id = %s", (invited["id"],)
        )
        (stored,) = await cursor.fetchone()
    assert invited["email"].encode() not in bytes(stored)


# --- audit log ----------------------------------------------------------------------------------


async def test_audit_log_records_each_action_with_its_request_id_and_ip(
    new_browser, client, make_tenant
):
    tenant = await make_tenant()
    owner_key_id = (await client.get("/api/v1/api-keys", headers=tenant.auth)).json()[0]["id"]
    request_ids = {
        action: f"req-{action}-{secrets.token_hex(4)}"
        for action in ("member.invite", "api_key.create", "auth.login")
    }

    responses = [
        await client.post(
            "/api/v1/members",
            json={"email": f"audited-{secrets.token_hex(4)}@example.com"},
            headers={**tenant.auth, "X-Request-ID": request_ids["member.invite"]},
        ),
        await client.post(
            "/api/v1/api-keys",
            json={"name": "audited"},
            headers={**tenant.auth, "X-Request-ID": request_ids["api_key.create"]},
        ),
        await new_browser(ip="127.0.0.1").post(
            "/api/v1/auth/login",
            json={"email": tenant.admin_email, "password": tenant.admin_password},
            headers={"X-Request-ID": request_ids["auth.login"]},
        ),
    ]
    assert all(response.is_success for response in responses)

    response = await client.get("/api/v1/audit-log", headers=tenant.auth)

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    by_request = {event["request_id"]: event for event in items if event["request_id"]}
    for action, request_id in request_ids.items():
        assert by_request[request_id]["action"] == action
        assert by_request[request_id]["ip"] == "127.0.0.1"
    added = by_request[request_ids["member.invite"]]
    assert (added["actor_type"], added["actor_id"], added["details"]) == (
        "api_key",
        owner_key_id,
        {"role": "member", "delivery": "inviter"},
    )
    logged_in = by_request[request_ids["auth.login"]]
    assert (logged_in["actor_type"], logged_in["target_type"]) == ("session", "session")
    created = next(event for event in items if event["action"] == "tenant.create")
    assert (created["actor_type"], created["target_id"]) == ("cli", str(tenant.tenant_id))


async def test_audit_log_is_newest_first_and_pages_with_a_cursor(client, make_tenant):
    tenant = await make_tenant()
    for _ in range(3):
        await create_api_key(client, tenant.auth, "viewer")
    everything = (await client.get("/api/v1/audit-log", headers=tenant.auth)).json()

    pages, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/audit-log", params=params, headers=tenant.auth)).json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    # Only this tenant's events, in the order they happened, newest first.
    assert [event["action"] for event in everything["items"]] == [
        "api_key.create",
        "api_key.create",
        "api_key.create",
        "api_key.create",
        "member.add",
        "tenant.create",
    ]
    assert everything["next_cursor"] is None
    ids = [event["id"] for event in everything["items"]]
    assert [len(page) for page in pages] == [2, 2, 2]
    assert [event["id"] for page in pages for event in page] == ids


@pytest.mark.parametrize("role", ["viewer", "member"])
async def test_audit_log_is_for_admins_only(client, make_tenant, role):
    tenant = await make_tenant()
    key = await create_api_key(client, tenant.auth, role)

    response = await client.get("/api/v1/audit-log", headers=bearer(key["key"]))

    assert "admin" in assert_problem(response, 403)["detail"]


async def test_audit_log_ids_and_cursors_reveal_nothing_about_other_tenants(client, make_tenant):
    tenant = await make_tenant()
    for _ in range(3):
        await create_api_key(client, tenant.auth, "viewer")

    page = (await client.get("/api/v1/audit-log?limit=2", headers=tenant.auth)).json()

    for event in page["items"]:
        uuid.UUID(event["id"])  # random, not a platform-wide counter
    assert not page["next_cursor"].isdigit()
    for cursor in ("99999999999999999999", "1", "not-a-cursor", page["next_cursor"] + "x"):
        response = await client.get(
            "/api/v1/audit-log", params={"cursor": cursor}, headers=tenant.auth
        )
        assert "cursor" in assert_problem(response, 422)["detail"]
