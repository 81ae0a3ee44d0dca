"""The overview in a browser: the figures the API gives, charts drawn from it, and every
page check (axe, no console error or CSP refusal, a phone's width, light and dark)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
from playwright.async_api import Page

from tests.web.helpers import DemoTenant, check_page, settle, sign_in
from valdrix.web.templating import usd


async def api(base_url: str, demo: DemoTenant, path: str, **params: str) -> object:
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_overview_shows_the_apis_waste_budget_and_scans(
    page: Page, demo: DemoTenant, base_url: str, screenshots: Path
) -> None:
    await sign_in(page, demo.admin_email, demo.admin_password)
    await settle(page)
    summary = await api(base_url, demo, "/api/v1/findings/summary")
    assert isinstance(summary, dict) and summary["open_findings"] > 0

    figure = page.locator("[data-figure=total_monthly_usd]")
    assert (await figure.inner_text()).startswith(usd(summary["total_monthly_usd"]))
    assert await page.locator("[data-figure=open_findings]").inner_text() == str(
        summary["open_findings"]
    )
    for row in summary["by_detector"]:
        cells = page.locator(f"tr[data-detector='{row['detector']}'] td")
        assert await cells.nth(1).inner_text() == str(row["open_findings"])
        assert (await cells.nth(2).inner_text()).startswith(usd(row["monthly_usd"]))
    for provider, amount in summary["by_provider"].items():
        cells = page.locator(f"tr[data-provider='{provider}'] td")
        assert await cells.nth(1).inner_text() == str(
            summary["open_findings_by_provider"][provider]
        )
        assert await cells.nth(2).inner_text() == usd(amount)

    # Open waste over time ends today at the headline total, each dollar counted once.
    history = await api(base_url, demo, "/api/v1/findings/waste-history", days="30")
    assert isinstance(history, list) and history[-1]["monthly_usd"] == summary["total_monthly_usd"]
    waste = page.locator("[data-chart=open-waste] + details")
    await waste.locator("summary").click()
    last = waste.locator("tbody tr").last.locator("td")
    assert await last.all_inner_texts() == [
        history[-1]["day"],
        str(history[-1]["open_findings"]),
        usd(history[-1]["monthly_usd"]),
    ]

    budget = await api(base_url, demo, "/api/v1/llm/budget")
    assert isinstance(budget, dict)
    today = page.locator("[data-figure=llm_today_spent_usd]")
    assert await today.inner_text() == usd(budget["today"]["spent_usd"])

    scans = await api(base_url, demo, "/api/v1/scans")
    assert isinstance(scans, list) and scans
    assert await page.locator(f"tr[data-scan='{scans[0]['id']}']").count() == 1
    schedules = await api(base_url, demo, "/api/v1/schedules")
    assert isinstance(schedules, list) and schedules[0]["kind"] == "scan"
    assert await page.locator("[data-figure=next_scan_at]").count() == 1

    await check_page(page, screenshots, "overview")


async def test_spend_chart_marks_preliminary_days_and_the_restated_day(
    page: Page, demo: DemoTenant, base_url: str
) -> None:
    await sign_in(page, demo.admin_email, demo.admin_password)
    await settle(page)
    adjustments = await api(base_url, demo, "/api/v1/costs/adjustments")
    assert isinstance(adjustments, list) and adjustments, "the demo's second delivery restates"
    restated_day = adjustments[0]["day"]
    before = sum(Decimal(a["old_billed_cost"]) for a in adjustments if a["day"] == restated_day)
    after = sum(Decimal(a["new_billed_cost"]) for a in adjustments if a["day"] == restated_day)

    spend = page.locator("[data-chart=spend] + details")
    await spend.locator("summary").click()
    row = spend.locator(f"tr[data-day='{restated_day}'] td")
    assert await row.nth(3).inner_text() == f"was {usd(before)}, now {usd(after)}"
    statuses = await spend.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert "preliminary" in statuses and "final" in statuses

    # Hovering the restated day's bar shows both figures in the chart's legend.
    chart = page.locator("[data-chart=spend] .u-over")
    box = await chart.bounding_box()
    assert box is not None
    days = await spend.locator("tbody tr").count()
    index = [await r.get_attribute("data-day") for r in await spend.locator("tbody tr").all()]
    x = box["x"] + box["width"] * (index.index(restated_day) + 0.5) / days
    await page.mouse.move(x, box["y"] + box["height"] / 2)
    legend = page.locator("[data-chart=spend] .u-legend")
    assert f"was {usd(before)}, now {usd(after)}" in await legend.inner_text()
