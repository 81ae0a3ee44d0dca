"""The costs page in a browser: the explorer's figures and flags equal the API's, the demo's
restated day is listed with its earlier and new figure, the CSV is the API's, the FOCUS sample
uploaded shows its per-provider totals, a bad file its reasons row by row; a viewer has no
upload form."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.costs.focus_files import sample_path, sample_rows, write_csv
from tests.fixtures.http import served_url
from tests.web.helpers import DemoTenant, check_page, settle, sign_in, watch_for_problems
from valdrix.runtime import Runtime
from valdrix.web.templating import usd


async def api(base_url: str, demo: DemoTenant, path: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response


def bad_file(folder: Path) -> Path:
    """The sample's first rows, two of them wrong in a way a person can fix."""
    header, rows = sample_rows()
    rows = [list(row) for row in rows[:5]]
    rows[1][header.index("BilledCost")] = "twelve"
    rows[3][header.index("ChargePeriodStart")] = "yesterday"
    return write_csv(folder / "broken-focus.csv", header, rows)


async def test_costs_show_the_apis_figures_the_restated_day_and_uploads(
    page: Page, demo: DemoTenant, base_url: str, screenshots: Path, tmp_path: Path
) -> None:
    await sign_in(page, demo.admin_email, demo.admin_password)
    await settle(page)
    await page.goto("/costs")

    start = await page.get_by_label("From").input_value()
    end = await page.get_by_label("Before").input_value()
    view = {"start": start, "end": end, "group_by": "day,provider"}
    costs = (await api(base_url, demo, "/api/v1/costs", **view)).json()
    [total] = costs["totals"]
    assert usd(total["billed_cost"]) in await page.locator("[data-total=USD]").inner_text()
    for row in costs["rows"]:
        cells = page.locator(f"tr[data-day='{row['day']}'][data-provider='{row['provider']}']")
        assert await cells.locator("[data-figure=billed_cost]").inner_text() == usd(
            row["billed_cost"]
        )
    flags = set(await page.locator("[data-figure=flag] > span").all_inner_texts())
    assert {"preliminary", "final"} <= flags, "the demo has preliminary and final days"

    adjustments = (await api(base_url, demo, "/api/v1/costs/adjustments")).json()
    assert adjustments, "the demo's second delivery restates a day"
    for adjustment in adjustments:
        listed = page.locator(
            f"tr[data-day='{adjustment['day']}'][data-service='{adjustment['service']}']"
        )
        assert (await listed.locator("[data-figure=old_billed_cost]").inner_text()).startswith(
            usd(adjustment["old_billed_cost"])
        )
        assert (await listed.locator("[data-figure=new_billed_cost]").inner_text()).startswith(
            usd(adjustment["new_billed_cost"])
        )

    export = await page.request.get(await page.get_by_text("as CSV").get_attribute("href") or "")
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        as_csv = await client.get("/api/v1/costs", params=view, headers={"Accept": "text/csv"})
    assert await export.text() == as_csv.text
    await check_page(page, screenshots, "costs")

    # Grouped by a tag in one go: choosing "Tag" offers the API's tag keys at once (read only
    # then: every record's tags are read for them), the rows are the API's.
    keys = (await api(base_url, demo, "/api/v1/costs/tag-keys", start=start, end=end)).json()
    assert keys, "the demo's costs are tagged"
    await expect(page.get_by_label("Tag key")).to_be_disabled()
    await page.get_by_label("Grouped by", exact=True).select_option("tag")
    await expect(page.get_by_label("Tag key").locator("option")).to_have_text(keys)
    await expect(page.get_by_label("Tag key")).to_be_enabled()
    # Another window's dates, another window's keys: none in a year before the demo's costs.
    await page.get_by_label("From").fill("2020-01-01")
    # Half-typed, the window is too long: the chooser says so (no alert, no console error).
    await expect(page.get_by_label("Tag key")).to_have_text(re.compile("at most .* days"))
    await page.get_by_label("Before").fill("2020-02-01")
    await expect(page.get_by_label("Tag key")).to_be_disabled()
    await expect(page.get_by_label("Tag key")).to_have_text("no tags in this window")
    await page.get_by_label("From").fill(start)
    await page.get_by_label("Before").fill(end)
    await expect(page.get_by_label("Tag key").locator("option")).to_have_text(keys)
    await page.get_by_label("Tag key").select_option(keys[-1])
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url(f"**tag_key={keys[-1]}**")
    by_tag = f"tag:{keys[-1]}"
    tagged = await api(base_url, demo, "/api/v1/costs", **view | {"group_by": f"day,{by_tag}"})
    rows = tagged.json()["rows"]
    assert await page.locator("tbody tr[data-tag]").count() == len(rows) > 0
    for row in rows:
        cells = page.locator(f"tr[data-day='{row['day']}'][data-tag='{row[by_tag] or ''}']")
        assert await cells.locator("[data-figure=billed_cost]").inner_text() == usd(
            row["billed_cost"]
        )
    await check_page(page, screenshots, "costs-by-tag")

    await page.get_by_label("FOCUS export").set_input_files(sample_path())
    await page.get_by_role("button", name="Upload").click()
    await page.get_by_text("Imported:").wait_for()
    # The bar counted the request's bytes to the last: the file and its multipart wrapping.
    progress = page.get_by_role("progressbar", name="Upload")
    sent = int(await progress.get_attribute("max") or 0)
    assert sent > sample_path().stat().st_size
    assert await progress.get_attribute("value") == str(sent)
    await expect(page.locator("[data-figure=upload_bytes]")).to_contain_text(" sent")
    await page.get_by_role("link", name="Show its costs by provider").click()
    await page.wait_for_url("**/costs?start=*")
    shown = {
        provider: await page.locator(
            f"tr[data-provider='{provider}'] [data-figure=billed_cost]"
        ).inner_text()
        for provider in ("AWS", "Microsoft", "Oracle")
    }
    assert shown == {"AWS": "$18.01", "Microsoft": "$1.98", "Oracle": "$0.54"}
    by_provider = (
        await api(base_url, demo, "/api/v1/costs", start="2024-09-01", end="2024-10-01",
                  group_by="provider")
    ).json()  # fmt: skip
    assert {r["provider"]: usd(Decimal(r["billed_cost"])) for r in by_provider["rows"]} == shown

    await page.get_by_label("FOCUS export").set_input_files(bad_file(tmp_path))
    await page.get_by_role("button", name="Upload").click()
    await page.get_by_text("Rejected: nothing was stored").wait_for()
    [run] = (await api(base_url, demo, "/api/v1/costs/runs", limit="1")).json()
    assert run["status"] == "rejected" and run["errors"]
    reasons = await page.locator("tr[data-rejection] td:nth-child(4)").all_inner_texts()
    assert reasons == [error["reason"] for error in run["errors"]]
    rows = await page.locator("tr[data-rejection] td:nth-child(2)").all_inner_texts()
    assert {"2", "4"} <= set(rows) or {"3", "5"} <= set(rows)


async def test_a_viewer_reads_costs_without_an_upload_form(page: Page, demo: DemoTenant) -> None:
    await sign_in(page, demo.viewer_email, demo.viewer_password)
    await settle(page)
    await page.goto("/costs")
    assert await page.locator("input[type=file]").count() == 0
    assert sorted(await page.get_by_role("button").all_inner_texts()) == ["Show", "Sign out"]


async def test_an_upload_over_the_limit_says_why_and_stops_saying_it_is_checking(
    context: BrowserContext, demo: DemoTenant, runtime: Runtime
) -> None:
    # The same database behind a server whose upload limit the sample exceeds.
    small = dataclasses.replace(
        runtime, settings=runtime.settings.updated(costs={"max_upload_bytes": 1024})
    )
    tab = await context.new_page()
    problems = watch_for_problems(tab)
    async with served_url(small) as url:
        await tab.goto(f"{url}/costs")
        await tab.get_by_label("Email").fill(demo.admin_email)
        await tab.get_by_label("Password").fill(demo.admin_password)
        await tab.get_by_role("button", name="Sign in").click()
        await tab.wait_for_url("**/costs")
        await tab.get_by_label("FOCUS export").set_input_files(sample_path())
        async with tab.expect_response("**/costs/imports") as refused:
            await tab.get_by_role("button", name="Upload").click()
        answer = await refused.value
        assert answer.status == 413
        alert = tab.get_by_role("alert")
        await expect(alert.locator("[data-figure=problem_title]")).to_have_text("Payload too large")
        await expect(alert.locator("[data-figure=problem_request_id]")).to_have_text(
            (await answer.json())["request_id"]
        )
        await expect(tab.locator("[data-figure=upload_bytes]")).to_have_text("")
        await expect(tab.get_by_role("progressbar", name="Upload")).to_be_hidden()
        await alert.get_by_role("button", name="Dismiss").click()
        await expect(alert).to_have_count(0)
    await tab.close()
    # The browser logs the refused answer as a console error, and htmx its own line: those,
    # and nothing else.
    assert problems.messages and all("413" in line for line in problems.messages), problems


@pytest.mark.parametrize(
    ("address", "detail"),
    [
        ("/costs?end=0001-01-10", "end: 0001-01-10 leaves no 45 days before it"),
        ("/costs?start=1704067200", "query.start: must be a date written as YYYY-MM-DD"),
        ("/costs/export.csv?end=0001-01-10", "end: 0001-01-10 leaves no 45 days before it"),
        ("/costs/tag-keys?end=0001-01-01", "end: 0001-01-01 leaves no 45 days before it"),
    ],
    ids=["year-one", "seconds", "export", "tag-keys"],
)
async def test_a_window_the_page_cannot_read_is_refused_in_words(
    client: httpx.AsyncClient, make_tenant: Callable[..., Awaitable[Any]], address: str, detail: str
) -> None:
    tenant = await make_tenant()
    answer = await client.get(address, headers={**tenant.auth, "Accept": "text/html"})
    assert answer.status_code == 422, answer.text
    assert detail in html.unescape(answer.text)
