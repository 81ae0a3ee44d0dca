"""Getting in and out of the dashboard in a browser: sign in, a wrong password, sign out, an
invitation that is not valid, and a viewer's view."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page

from tests.web.helpers import DemoTenant, check_page, sign_in


async def test_a_page_sends_a_stranger_to_sign_in_and_back_after(
    page: Page, demo: DemoTenant, screenshots: Path
) -> None:
    await page.goto("/")
    assert page.url.endswith("/sign-in")
    await check_page(page, screenshots, "sign-in")
    await page.get_by_label("Email").fill(demo.admin_email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    assert await page.get_by_role("alert").inner_text() == "email or password is wrong"

    await sign_in(page, demo.admin_email, demo.admin_password)
    await page.get_by_role("heading", name="Overview").wait_for()
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/sign-in")
    await page.goto("/")
    assert page.url.endswith("/sign-in"), "the ended session opens nothing"


async def test_signing_in_returns_to_the_page_with_its_filter_and_never_to_a_fragment(
    page: Page, demo: DemoTenant, base_url: str
) -> None:
    await page.goto("/findings?status=dismissed")
    assert "/sign-in?next=" in page.url
    await page.get_by_label("Email").fill(demo.admin_email)
    await page.get_by_label("Password").fill(demo.admin_password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/findings?status=dismissed")

    # A session that ended under an htmx request (a button's POST, a poll) returns to the page
    # the request was made from; a plain form's POST to nothing in particular.
    async with httpx.AsyncClient(base_url=base_url) as stranger:
        clicked = await stranger.post(
            "/findings/status",
            data={"action": "dismiss"},
            headers={"HX-Request": "true", "HX-Current-URL": f"{base_url}/findings?detector=x"},
        )
        posted = await stranger.post("/findings/status", data={"action": "dismiss"})
    assert clicked.status_code == 204
    assert clicked.headers["HX-Redirect"] == "/sign-in?next=/findings%3Fdetector%3Dx"
    assert posted.status_code == 303
    assert posted.headers["location"] == "/sign-in"


async def test_an_unknown_invitation_is_refused_on_the_page(page: Page, screenshots: Path) -> None:
    await page.goto("/accept-invite?token=not-a-real-invitation")
    await check_page(page, screenshots, "accept-invite")
    await page.get_by_label("Password").fill("a long enough password")
    await page.get_by_role("button", name="Accept invitation").click()
    assert await page.get_by_role("alert").inner_text() == "invitation is unknown or expired"


async def test_a_viewer_sees_the_overview_and_their_role(page: Page, demo: DemoTenant) -> None:
    await sign_in(page, demo.viewer_email, demo.viewer_password)
    await page.get_by_role("heading", name="Overview").wait_for()
    assert await page.locator(".role").inner_text() == "viewer"
    # Sign out is the only action in the viewer's header.
    assert await page.locator("main button, main form").count() == 0


@pytest.mark.parametrize(
    "elsewhere",
    [
        "//evil.example",
        "/\\evil.example",
        "/\t/evil.example",
    ],
)
async def test_signing_in_never_sends_the_browser_to_another_site(
    client: httpx.AsyncClient, demo: DemoTenant, elsewhere: str
) -> None:
    """Browsers read ``/\\host`` (and ``/<tab>/host``) as ``//host``: another site."""
    try:
        response = await client.post(
            "/sign-in",
            data={"email": demo.admin_email, "password": demo.admin_password, "next": elsewhere},
        )
    finally:
        client.cookies.clear()  # the session's client stays signed out for other tests
    assert response.status_code == 303
    assert response.headers["location"] == "/"
