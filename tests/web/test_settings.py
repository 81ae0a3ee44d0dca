"""The settings page in a browser: an admin creates an API key, sees it once, uses it and
revokes it (the API then refuses it), invites someone and withdraws the invitation, sees a
refused budget cap with the API's reason, and finds all of it in the audit log; a viewer sees the
members and the budget and no admin action."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.web.helpers import DemoTenant, answer_confirmation, check_page, sign_in_at
from valdrix.web.templating import usd

KEY_NAME = "Key made in the browser"


async def api(
    base_url: str, demo: DemoTenant, method: str, path: str, *, key: str | None = None, **body: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else demo.auth
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
        return await client.request(method, path, json=body or None)


async def test_an_admin_manages_keys_and_invitations_and_reads_the_audit_log(
    page: Page, demo: DemoTenant, base_url: str, screenshots: Path
) -> None:
    await sign_in_at(page, "/settings", demo.admin_email, demo.admin_password)
    members = (await api(base_url, demo, "GET", "/api/v1/members")).json()
    shown = await page.locator("tr[data-member]").evaluate_all("r => r.map(e => e.dataset.member)")
    assert shown == [m["id"] for m in members]
    budget = (await api(base_url, demo, "GET", "/api/v1/llm/budget")).json()
    assert await page.locator("[data-figure=daily_cap_usd]").inner_text() == usd(
        budget["daily_cap"]["usd"]
    )
    assert await page.locator("[data-figure=month_spent_usd]").inner_text() == usd(
        budget["this_month"]["spent_usd"]
    )

    # An API key: shown once, usable, then revoked and refused.
    await page.get_by_label("Key name").fill(KEY_NAME)
    await page.get_by_label("Key role").select_option("viewer")
    await page.get_by_role("button", name="Create a key").click()
    key = await (await page.wait_for_selector("[data-figure=new_key]")).inner_text()
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await page.get_by_role("button", name="Copy the key").click()
    # A locator's wait, not wait_for_function: polling a string would be eval, which the CSP
    # refuses (as it should).
    await expect(page.locator("#key-copied")).to_have_text("Copied.")
    assert await page.evaluate("navigator.clipboard.readText()") == key
    used = await api(base_url, demo, "GET", "/api/v1/findings/summary", key=key)
    assert used.status_code == 200, used.text
    await page.reload()
    assert key not in await page.content()
    row = page.locator("tr[data-key]", has_text=KEY_NAME).first
    # Revoking asks first: cancelled, the key still works.
    await row.get_by_role("button", name=f"Revoke {KEY_NAME}").click()
    await answer_confirmation(page, f'Revoke the key "{KEY_NAME}"?', None)
    assert await row.locator("[data-figure=status]").inner_text() == "active"
    still = await api(base_url, demo, "GET", "/api/v1/findings/summary", key=key)
    assert still.status_code == 200, "a cancelled revocation revokes nothing"
    await row.get_by_role("button", name=f"Revoke {KEY_NAME}").click()
    await answer_confirmation(page, f'Revoke the key "{KEY_NAME}"?', "Revoke")
    await page.wait_for_selector("#api-keys [data-figure=outcome]")
    assert await row.locator("[data-figure=status]").inner_text() == "revoked"
    refused = await api(base_url, demo, "GET", "/api/v1/findings/summary", key=key)
    assert refused.status_code == 401

    # An invitation, listed as the API lists it, then withdrawn (the demo keeps its people).
    email = f"invited-{secrets.token_hex(3)}@acme.example"
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Role", exact=True).select_option("viewer")
    await page.get_by_role("button", name="Invite").click()
    invited = page.locator("tr[data-member]", has_text=email)
    await invited.wait_for()
    listed = {m["email"]: m for m in (await api(base_url, demo, "GET", "/api/v1/members")).json()}
    assert listed[email]["status"] == "invited" and listed[email]["role"] == "viewer"
    assert await invited.locator("[data-figure=status]").inner_text() == "invited"
    await invited.get_by_role("button", name=f"Revoke the invitation for {email}").click()
    await answer_confirmation(page, f"Revoke the invitation for {email}?", "Revoke the invitation")
    await invited.wait_for(state="detached")
    members_after = (await api(base_url, demo, "GET", "/api/v1/members")).json()
    assert email not in [m["email"] for m in members_after]

    # A cap above the tier's ceiling: the API's reason, nothing changed.
    ceiling = float(budget["daily_cap"]["ceiling_usd"])
    await page.get_by_label("Daily cap ($)").fill(str(ceiling + 1))
    await page.get_by_role("button", name="Save the caps").click()
    await page.wait_for_selector("#llm-budget [data-figure=outcome]")
    problem = await api(
        base_url, demo, "PATCH", "/api/v1/llm/budget", daily_cap_usd=str(ceiling + 1)
    )
    assert (
        await page.locator("#llm-budget [data-figure=outcome]").inner_text()
        == (problem.json()["detail"])
    )

    await page.reload()
    audit = (await api(base_url, demo, "GET", "/api/v1/audit-log")).json()["items"]
    actions = await page.locator("#audit-log [data-figure=action]").all_inner_texts()
    assert actions == [event["action"] for event in audit]
    for done in ("api_key.create", "api_key.revoke", "member.invite", "member.remove"):
        assert done in actions
    await check_page(page, screenshots, "settings")


async def test_a_viewer_sees_members_and_the_budget_and_no_admin_action(
    page: Page, demo: DemoTenant, base_url: str
) -> None:
    await sign_in_at(page, "/settings", demo.viewer_email, demo.viewer_password)
    members = (await api(base_url, demo, "GET", "/api/v1/members")).json()
    assert await page.locator("tr[data-member]").count() == len(members)
    assert await page.locator("[data-figure=daily_cap_usd]").count() == 1
    assert await page.locator("#api-keys, #audit-log, main form").count() == 0
    assert await page.get_by_role("button").all_inner_texts() == ["Sign out"]
