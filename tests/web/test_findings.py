"""The findings pages in a browser: the table is the API's rows under the same filter, its CSV
is the API's export, people snooze, dismiss and reopen with a note, a viewer only reads, and a
finding's page says where its figure comes from."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.web.helpers import (
    DemoTenant,
    answer_confirmation,
    check_page,
    settle,
    sign_in,
    sign_in_at,
)
from valdrix.web.templating import usd


async def api_findings(base_url: str, demo: DemoTenant, **params: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        response = await client.get("/api/v1/findings", params={"limit": "500", **params})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def table_ids(page: Page) -> list[str | None]:
    return [await row.get_attribute("data-finding") for row in await _rows(page)]


async def _rows(page: Page) -> list[Any]:
    return await page.locator("#findings-results tbody tr[data-finding]").all()


async def test_the_table_is_the_apis_rows_filtered_sorted_and_exported(
    page: Page, demo: DemoTenant, base_url: str, screenshots: Path
) -> None:
    await sign_in_at(page, "/findings", demo.admin_email, demo.admin_password)
    open_rows = await api_findings(base_url, demo, status="open")
    assert open_rows, "the demo's scan finds waste"
    assert await table_ids(page) == [row["id"] for row in open_rows[:50]]
    first = page.locator(f"tr[data-finding='{open_rows[0]['id']}'] [data-figure]")
    assert (await first.inner_text()).startswith(usd(open_rows[0]["monthly_cost_usd"]))
    if any(row["also_reported_by"] for row in open_rows[:50]):
        assert await page.locator("#findings-results [data-also]").count() > 0
    matching = await api_count(base_url, demo, status="open")
    await expect(page.locator("[data-figure=rows_shown]")).to_have_text(
        f"Rows 1\N{EN DASH}{min(matching, 50)} of {matching:,}"
    )
    await check_page(page, screenshots, "findings")

    # Filter by detector and a minimum: the URL says so, the rows are the API's.
    detector = open_rows[0]["detector"]
    costs = sorted(
        float(r["monthly_cost_usd"] or 0) for r in open_rows if r["detector"] == detector
    )
    minimum = f"{costs[len(costs) // 2]:.2f}"
    await page.get_by_label("Detector").select_option(detector)
    await page.get_by_label("Min $ a month").fill(minimum)
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(f"**min_monthly_cost_usd={minimum}**")
    assert f"detector={detector}" in page.url
    filtered = await api_findings(
        base_url, demo, status="open", detector=detector, min_monthly_cost_usd=minimum
    )
    await expect(page.locator("#findings-results tr[data-finding]")).to_have_count(len(filtered))
    assert await table_ids(page) == [row["id"] for row in filtered]

    # Lowest first, then the CSV of the whole filter: the API's rows.
    await page.get_by_role("link", name="Monthly").click()
    await page.wait_for_url("**order=asc**")
    assert await table_ids(page) == [row["id"] for row in reversed(filtered)]
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Export CSV").click()
    exported = await (await download_info.value).path()
    lines = list(csv.DictReader(io.StringIO(await asyncio.to_thread(exported.read_text))))
    ascending = await api_findings(
        base_url, demo, status="open", detector=detector, min_monthly_cost_usd=minimum, order="asc"
    )
    assert [(r["id"], r["monthly_cost_usd"]) for r in lines] == [
        (r["id"], r["monthly_cost_usd"] or "") for r in ascending
    ]


async def test_snooze_dismiss_and_reopen_with_a_note(
    page: Page, demo: DemoTenant, base_url: str, screenshots: Path
) -> None:
    await sign_in_at(page, "/findings", demo.admin_email, demo.admin_password)
    open_rows = await api_findings(base_url, demo, status="open")
    snoozed, *two = [row["id"] for row in open_rows[:50][-3:]]

    await page.locator(f"tr[data-finding='{snoozed}'] input[type=checkbox]").check()
    await page.get_by_label("Note").fill("owner is on leave until the migration")
    await page.get_by_role("button", name="Snooze").click()
    await page.get_by_role("status").filter(has_text="1 finding snoozed").wait_for()
    assert snoozed not in await table_ids(page), "a snoozed finding leaves the open list"
    assert snoozed not in [row["id"] for row in await api_findings(base_url, demo, status="open")]

    for finding_id in two:
        await page.locator(f"tr[data-finding='{finding_id}'] input[type=checkbox]").check()
    await page.get_by_role("button", name="Dismiss").click()
    await answer_confirmation(page, "Dismiss 2 findings?", "Dismiss")
    await page.get_by_role("status").filter(has_text="2 findings dismissed").wait_for()
    dismissed = await api_findings(base_url, demo, status="dismissed")
    assert set(two) <= {row["id"] for row in dismissed}

    await page.get_by_label("Status").select_option("dismissed")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**status=dismissed**")
    for finding_id in [*two]:
        await page.locator(f"tr[data-finding='{finding_id}'] input[type=checkbox]").check()
    await page.get_by_role("button", name="Reopen").click()
    await page.get_by_role("status").filter(has_text="2 findings reopened").wait_for()
    reopened = {row["id"] for row in await api_findings(base_url, demo, status="open")}
    assert set(two) <= reopened

    # The snoozed finding's page: its history holds the note and who wrote it.
    await page.goto(f"/findings/{snoozed}")
    change = page.locator("tr[data-history=snoozed]")
    assert "owner is on leave until the migration" in await change.inner_text()
    assert demo.admin_email in await change.inner_text()
    assert await page.locator("[data-figure=status]").inner_text() == "snoozed"
    await check_page(page, screenshots, "finding")

    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        back = await client.patch(f"/api/v1/findings/{snoozed}", json={"status": "open"})
    assert back.status_code == 200, "the shared demo tenant is left as it was"


async def test_a_findings_page_says_where_its_figure_comes_from(
    page: Page, demo: DemoTenant, base_url: str
) -> None:
    rows = await api_findings(base_url, demo, status="open")
    billed = next(r for r in rows if r["cost_basis"] == "billed")
    listed = next(r for r in rows if r["cost_basis"] == "list_price")
    path = f"/findings/{billed['id']}"
    await sign_in_at(page, path, demo.viewer_email, demo.viewer_password)
    basis = await page.locator("[data-figure=cost_basis]").inner_text()
    detail = billed["price_detail"]
    if "billed_usd_30_days" in detail:
        assert basis.startswith(f"billed: {usd(detail['billed_usd_30_days'])} over the last 30")
    else:  # a commitment: what Cost Explorer billed over its period, as a month
        assert basis.startswith(f"billed: {usd(detail['period_usd'])} over the last ")
    await page.goto(f"/findings/{listed['id']}")
    basis = await page.locator("[data-figure=cost_basis]").inner_text()
    assert basis.startswith(f"list price as of {listed['price_detail']['catalog_as_of']}")

    # A viewer reads: no checkbox, no bulk button.
    await page.goto("/findings")
    assert await page.locator("#findings-results tr[data-finding]").count() > 0
    assert await page.locator("#bulk, #findings-results input[type=checkbox]").count() == 0
    for name in ("Snooze", "Dismiss", "Reopen"):
        assert await page.get_by_role("button", name=name).count() == 0

    # A finding that is not there: the problem with its request id, and the navigation still
    # there (in a tab of its own: the browser logs the 404 as a console error).
    missing = await page.context.new_page()
    answer = await missing.goto(f"/findings/{uuid.uuid4()}")
    assert answer is not None and answer.status == 404
    assert await missing.locator("[data-problem-request-id]").inner_text()
    nav = missing.get_by_role("navigation", name="Main")
    assert await nav.get_by_role("link").all_inner_texts() == [
        "Overview", "Findings", "Scans", "Costs", "Jobs", "Connections", "Settings",
    ]  # fmt: skip
    await missing.close()


@pytest.mark.parametrize(
    ("address", "status", "title", "detail"),
    [
        ("/findings?offset=abc", 422, "Invalid input", "query.offset: "),
        ("/findings?min_monthly_cost_usd=-5", 422, "Invalid input", "min_monthly_cost_usd"),
        ("/findings/not-a-finding-id", 422, "Invalid input", "path.finding_id: "),
        ("/no-such-page", 404, "Not found", "there is no such page"),
        ("/sign-out", 405, "Method not allowed", "Method Not Allowed"),
    ],
)
async def test_an_address_edited_by_hand_is_answered_with_a_page_naming_what_is_wrong(
    context: BrowserContext,
    demo: DemoTenant,
    base_url: str,
    address: str,
    status: int,
    title: str,
    detail: str,
) -> None:
    """A page, with the navigation, not the API's problem+json (a tab of its own: the browser
    logs the 4xx as a console error). The API's addresses still answer problem+json."""
    tab = await context.new_page()
    await sign_in(tab, demo.viewer_email, demo.viewer_password)
    await settle(tab)
    answer = await tab.goto(address)
    assert answer is not None and answer.status == status
    if status == 405:
        assert answer.headers["allow"] == "POST"
    assert await tab.get_by_role("heading", level=1).inner_text() == title
    assert detail in await tab.locator("[data-problem-detail]").inner_text()
    assert await tab.get_by_role("navigation", name="Main").get_by_role("link").count() == 7
    await tab.close()
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        api = await client.get("/api/v1/no-such-thing", headers={"Accept": "text/html"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


async def api_count(base_url: str, demo: DemoTenant, **params: str) -> int:
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        response = await client.get("/api/v1/findings/count", params=params)
    assert response.status_code == 200, response.text
    count: int = response.json()["count"]
    return count


async def test_a_whole_page_then_every_finding_of_the_filter_snoozed_and_reopened(
    page: Page, demo: DemoTenant, base_url: str, screenshots: Path
) -> None:
    await sign_in_at(page, "/findings", demo.admin_email, demo.admin_password)
    matching = await api_count(base_url, demo, status="open")
    assert matching > 50, "the demo has more open findings than a page holds"
    snoozed_before = await api_count(base_url, demo, status="snoozed")

    await page.get_by_label("Select every finding on this page").check()
    boxes = page.locator("#findings-results tbody input[name=finding_id]")
    assert await boxes.count() == 50
    for box in await boxes.all():
        await expect(box).to_be_checked()
    every = page.get_by_label("findings matching this filter")
    await expect(every).not_to_be_checked()
    await expect(page.locator("[data-figure=matching_count]")).to_have_text(
        f"Change all {matching} findings matching this filter, not only this page's"
    )
    await check_page(page, screenshots, "findings-select-all")

    # One finding changes elsewhere after the count was shown: the change is refused whole.
    # (Not one holding an imported recommendation: dismissing it would list the recommendation
    # on its own, and the count would not move.)
    alone = [
        one
        for one in await api_findings(base_url, demo, status="open")
        if not one["also_reported_by"]
    ]
    moved = alone[-1]["id"]
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        gone = await client.patch(f"/api/v1/findings/{moved}", json={"status": "dismissed"})
        assert gone.status_code == 200, gone.text
        await every.check()
        await page.get_by_label("Note").fill("quarterly review: all at once")
        await page.get_by_role("button", name="Snooze").click()
        await expect(page.get_by_role("alert")).to_contain_text(
            f"the filter now matches {matching - 1} findings, not {matching}"
        )
        assert await api_count(base_url, demo, status="snoozed") == snoozed_before
        back = await client.patch(f"/api/v1/findings/{moved}", json={"status": "open"})
        assert back.status_code == 200, back.text

    # The change is to the filter shown, not to the filter form's unapplied edits.
    await page.get_by_label("Select every finding on this page").check()
    await page.get_by_label("findings matching this filter").check()
    await page.get_by_label("Status").select_option("")
    await page.get_by_label("Note").fill("quarterly review: all at once")
    await page.get_by_role("button", name="Dismiss").click()
    await answer_confirmation(page, f"Dismiss {matching} findings?", None)
    await page.get_by_role("button", name="Snooze").click()
    await expect(page.get_by_role("status")).to_have_text(f"{matching} findings snoozed.")
    # (Imported recommendations the snoozed findings held are listed on their own now.)
    assert await api_count(base_url, demo, status="snoozed") == snoozed_before + matching

    # Back as they were: every snoozed finding reopened, by the same choice.
    await page.get_by_label("Status").select_option("snoozed")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**status=snoozed**")
    snoozed = await api_count(base_url, demo, status="snoozed")
    await page.get_by_label("Select every finding on this page").check()
    await page.get_by_label("findings matching this filter").check()
    await page.get_by_role("button", name="Reopen").click()
    await page.get_by_role("status").filter(has_text=f"{snoozed} findings reopened").wait_for()
    assert await api_count(base_url, demo, status="open") == matching + snoozed_before


async def test_any_status_stays_chosen_on_the_next_page_and_the_sort_link(
    demo: DemoTenant, base_url: str
) -> None:
    """Without a status in the address the page shows open findings: its links must say
    "any status" again, or the second page quietly becomes the open findings' second page
    (one finding of the first page dismissed here tells the two apart)."""
    top = (await api_findings(base_url, demo, status="open"))[0]["id"]
    async with httpx.AsyncClient(
        base_url=base_url, headers={**demo.auth, "Accept": "text/html"}
    ) as client:
        await _set_status(client, top, status="dismissed", note="kept on purpose")
        try:
            first = await client.get("/findings", params={"status": ""})
            assert first.status_code == 200, first.text
            [next_page] = re.findall(r'<a href="(/findings\?[^"]*)"[^>]*>Next</a>', first.text)
            [sort] = re.findall(r'<a href="(/findings\?[^"]*order=asc[^"]*)"', first.text)
            second = await client.get(html.unescape(next_page))
            ascending = await client.get(html.unescape(sort))
            every = await api_findings(base_url, demo)
            lowest_first = await api_findings(base_url, demo, order="asc")
        finally:
            await _set_status(client, top, status="open", note="back")

    assert len(every) > 50, "the demo holds more than a page of findings"
    assert _row_ids(second.text) == [row["id"] for row in every[50:100]]
    assert _row_ids(ascending.text) == [row["id"] for row in lowest_first[:50]]


async def _set_status(client: httpx.AsyncClient, finding_id: str, **change: str) -> None:
    changed = await client.patch(f"/api/v1/findings/{finding_id}", json=change)
    assert changed.status_code == 200, changed.text


def _row_ids(page_html: str) -> list[str]:
    return re.findall(r'<tr data-finding="([0-9a-f-]+)"', page_html)
