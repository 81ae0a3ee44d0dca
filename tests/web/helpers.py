"""What the dashboard's browser tests share: the demo tenant's credentials, signing in, and the
checks every page must pass (no console error or CSP refusal, axe, phone width, Tab reaching
every control, screenshots)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

SERIOUS = frozenset({"serious", "critical"})
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@dataclass(frozen=True)
class DemoTenant:
    tenant_id: uuid.UUID
    api_key: str
    admin_email: str
    admin_password: str
    viewer_email: str
    viewer_password: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class BrowserProblems:
    messages: list[str] = field(default_factory=list)


def watch_for_problems(page: Page) -> BrowserProblems:
    """Console errors (a CSP refusal is one), uncaught exceptions and failed requests."""
    problems = BrowserProblems()
    page.on(
        "console",
        lambda message: (
            problems.messages.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.messages.append(f"page error: {error}"))
    # A request the browser cancels because the page moved on (net::ERR_ABORTED: a favicon or a
    # chart's data still loading at a click) is not a failure; an answer of 4xx/5xx is logged
    # by the browser as a console error, caught above.
    page.on(
        "requestfailed",
        lambda request: (
            problems.messages.append(f"request failed: {request.url} ({request.failure})")
            if "ERR_ABORTED" not in (request.failure or "")
            else None
        ),
    )
    return problems


async def sign_in(page: Page, email: str, password: str) -> None:
    await page.goto("/sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/sign-in" not in url)


async def sign_in_at(page: Page, path: str, email: str, password: str) -> None:
    """Sign in on the way to ``path`` (the overview's charts would load, and be cut off)."""
    await page.goto(path)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{path}")


async def settle(page: Page) -> None:
    """Wait until the page's charts have drawn (or said why they cannot)."""
    await page.wait_for_load_state("networkidle")
    # A locator's wait: wait_for_function polls a string with eval, which the CSP refuses.
    await expect(page.locator("[aria-busy=true]")).to_have_count(0)


async def assert_accessible(page: Page) -> None:
    results = await Axe().run(page)
    serious = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in SERIOUS
    ]
    assert serious == [], "axe found:\n" + "\n".join(serious)


async def assert_fits_a_phone(page: Page) -> None:
    await page.set_viewport_size(PHONE)
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at 390 px wide"
    await page.set_viewport_size(DESKTOP)


# The page's controls a keyboard user must reach: visible, enabled, not taken out of the tab
# order. Each is marked with its place, so the focused element can be named after each Tab; the
# first has the focus, so Tab starts from the top (not from where the test last clicked).
_MARK_CONTROLS = """() => {
  const controls = [...document.querySelectorAll(
    "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]"
  )].filter(
    (e) => !e.disabled && e.tabIndex >= 0 && e.checkVisibility()
  );
  controls.forEach((e, i) => { e.dataset.tabPlace = String(i); });
  if (controls.length) controls[0].focus();
  return controls.map((e) => e.outerHTML.slice(0, 120));
}"""
# The focused control's place; "" for an element focused that is not one of them (a scrolling
# box Chromium lets the keyboard reach), null once the focus has left the page's elements.
_FOCUSED_PLACE = """() => {
  const focused = document.activeElement;
  if (!focused || focused === document.body) return null;
  return focused.dataset?.tabPlace ?? "";
}"""
_UNMARK_CONTROLS = """() => {
  for (const e of document.querySelectorAll("[data-tab-place]")) delete e.dataset.tabPlace;
}"""


async def assert_every_control_reachable_by_tab(page: Page) -> None:
    """At a phone's size, Tab alone reaches every visible control of the page."""
    await page.set_viewport_size(PHONE)
    controls: list[str] = await page.evaluate(_MARK_CONTROLS)
    reached = {0} if controls else set()
    # Once round the page: from the top until the focus leaves its last element.
    for _ in range(2 * len(controls) + 20):
        await page.keyboard.press("Tab")
        place = await page.evaluate(_FOCUSED_PLACE)
        if place is None or len(reached) == len(controls):
            break
        if place:
            reached.add(int(place))
    await page.evaluate(_UNMARK_CONTROLS)
    await page.set_viewport_size(DESKTOP)
    missing = [html for place, html in enumerate(controls) if place not in reached]
    assert missing == [], "Tab never reaches:\n" + "\n".join(missing)


async def screenshot_both_schemes(page: Page, folder: Path, name: str) -> None:
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        await settle(page)
        await page.screenshot(path=folder / f"{name}-{scheme}.png", full_page=True)
    await page.emulate_media(color_scheme="light")


async def check_page(page: Page, folder: Path, name: str) -> None:
    """What every page must pass: axe in light and dark, a phone's width, every control
    reached by Tab, screenshots."""
    await settle(page)
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        await assert_accessible(page)
    await page.emulate_media(color_scheme="light")
    await assert_fits_a_phone(page)
    await assert_every_control_reachable_by_tab(page)
    await screenshot_both_schemes(page, folder, name)


async def answer_confirmation(page: Page, question: str, button: str | None) -> None:
    """The page's confirmation dialog asks ``question`` (a part of it); ``button`` answers
    (None: Cancel). Nothing is sent before the answer."""
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text(question)
    await dialog.get_by_role("button", name=button or "Cancel", exact=True).click()
    await expect(dialog).to_be_hidden()
