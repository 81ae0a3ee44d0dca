"""The overview in a browser: the figures the API gives, charts drawn from it, and every
page check (axe, no console error or CSP refusal, a phone's width, light and dark)."""

from __future__ import annotations

import csv
import datetime as dt
import secrets
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
from playwright.async_api import Page, expect

from tests.web.helpers import DemoTenant, check_page, settle, sign_in
from valdrix.cli.tenants import create_tenant_with_owner_key
from valdrix.costs.sources.focus_files import import_focus_file
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.simulator.demo_costs import HEADER
from valdrix.tenancy.models import Tier
from valdrix.web.templating import usd, when


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
    # The demo's imported recommendations are shown inside findings: the list has fewer rows,
    # and the overview says how many, as the findings page counts them.
    listed = await api(base_url, demo, "/api/v1/findings/count", status="open")
    assert isinstance(listed, dict) and listed["count"] < summary["open_findings"]
    assert await page.locator("[data-figure=listed_open]").inner_text() == str(listed["count"])
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

    budget = await api(base_url, demo, "/api/v1/llm/budget")
    assert isinstance(budget, dict)
    today = page.locator("[data-figure=llm_today_spent_usd]")
    assert await today.inner_text() == usd(budget["today"]["spent_usd"])
    month = page.locator("[data-figure=llm_month_spent_usd]")
    assert await month.inner_text() == usd(budget["this_month"]["spent_usd"])
    budget_card = await page.locator("dl", has=month).inner_text()
    assert f"of {usd(budget['daily_cap']['usd'])}" in budget_card
    assert f"of {usd(budget['monthly_limit']['usd'])}" in budget_card

    scans = await api(base_url, demo, "/api/v1/scans")
    assert isinstance(scans, list) and scans
    assert await page.locator(f"tr[data-scan='{scans[0]['id']}']").count() == 1
    schedules = await api(base_url, demo, "/api/v1/schedules")
    assert isinstance(schedules, list) and schedules[0]["kind"] == "scan"
    next_due = dt.datetime.fromisoformat(schedules[0]["next_due_at"])
    assert await page.locator("[data-figure=next_scan_at]").inner_text() == when(next_due)

    await check_page(page, screenshots, "overview")

    # Open waste over time ends today at the headline total, each dollar counted once.
    history = await api(base_url, demo, "/api/v1/findings/waste-history", days="30")
    assert isinstance(history, list)
    assert Decimal(history[-1]["monthly_usd"]) == Decimal(summary["total_monthly_usd"])
    waste = page.locator("[data-chart=open-waste] + details")
    await waste.locator("summary").click()
    last = waste.locator("tbody tr").last.locator("td")
    assert await last.all_inner_texts() == [
        history[-1]["day"],
        str(history[-1]["open_findings"]),
        usd(history[-1]["monthly_usd"]),
    ]


async def test_spend_chart_marks_preliminary_days_and_the_restated_day(
    page: Page, demo: DemoTenant, base_url: str
) -> None:
    await sign_in(page, demo.admin_email, demo.admin_password)
    await settle(page)
    adjustments = await api(base_url, demo, "/api/v1/costs/adjustments")
    assert isinstance(adjustments, list) and adjustments, "the demo's second delivery restates"
    restated_day = adjustments[0]["day"]
    that_day = [a for a in adjustments if a["day"] == restated_day]
    assert len({(a["service"], a["account"]) for a in that_day}) == len(that_day)
    before = sum(Decimal(a["old_billed_cost"]) for a in that_day)
    after = sum(Decimal(a["new_billed_cost"]) for a in that_day)

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


async def test_a_figure_restated_twice_reads_from_its_first_value_to_its_last(
    page: Page, runtime: Runtime, tmp_path: Path
) -> None:
    tenant_id, email, password = await new_owner(runtime, "Restated Twice Ltd")
    day = utcnow().date() - dt.timedelta(days=3)
    period = (day - dt.timedelta(days=5), day + dt.timedelta(days=25))
    for billed in ("100.00", "110.00", "120.00"):
        ec2 = (day, "Amazon Elastic Compute Cloud", "USD", billed, "")
        export = focus_export(tmp_path / "delivery.csv", period, [ec2])
        await import_focus_file(runtime, tenant_id, export, actor="test")

    await sign_in(page, email, password)
    await settle(page)
    spend = page.locator("[data-chart=spend] + details")
    await spend.locator("summary").click()
    row = spend.locator(f"tr[data-day='{day}'] td")
    assert await row.nth(1).inner_text() == "$120.00"
    assert await row.nth(3).inner_text() == "was $100.00, now $120.00"


Line = tuple[dt.date, str, str, str, str]  # day, service, currency, billed, invoice id


def focus_export(path: Path, period: tuple[dt.date, dt.date], lines: list[Line]) -> Path:
    """Daily lines of one account in the billing period ``period``, which is open: a line is
    final only with its invoice id."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*HEADER, "InvoiceId"])
        for day, service, currency, billed, invoice in lines:
            writer.writerow(
                [
                    billed, billed, billed, billed, "111122223333", "Acme", currency,
                    f"{period[0]}T00:00:00Z", f"{period[1]}T00:00:00Z",
                    f"{day}T00:00:00Z", f"{day + dt.timedelta(days=1)}T00:00:00Z",
                    "Usage", "", f"{service} usage", "24", "Hours", service, "Compute",
                    "AWS", "Amazon Web Services", "Amazon Web Services, Inc.",
                    "111122223333", "us-east-1", "{}", invoice or None,
                ]
            )  # fmt: skip
    return path


def two_currency_export(path: Path, today: dt.date) -> Path:
    """Three days in US dollars (final; final and preliminary; preliminary) and a larger
    preliminary amount in euros on the middle day."""
    amounts = [  # days ago, service, currency, billed, invoice id
        (4, "Amazon Elastic Compute Cloud", "USD", "120.00", "INV-1"),
        (3, "Amazon Elastic Compute Cloud", "USD", "100.00", "INV-1"),
        (3, "Amazon Simple Storage Service", "USD", "50.00", ""),
        (2, "Amazon Elastic Compute Cloud", "USD", "80.00", ""),
        (3, "Amazon Relational Database Service", "EUR", "500.00", ""),
    ]
    lines = [(today - dt.timedelta(days=back), *line) for back, *line in amounts]
    period = (today - dt.timedelta(days=10), today + dt.timedelta(days=20))
    return focus_export(path, period, lines)


async def new_owner(runtime: Runtime, name: str) -> tuple[uuid.UUID, str, str]:
    """A tenant of its own: its id, and its owner's email and password."""
    email, password = f"owner-{secrets.token_hex(3)}@example.com", secrets.token_urlsafe(16)
    created = await create_tenant_with_owner_key(
        runtime, name=name, tier=Tier.growth, admin_email=email, admin_password=password
    )
    return uuid.UUID(str(created["tenant_id"])), email, password


# The spend chart's bar for the day with final and preliminary costs, read off the canvas:
# how tall the final part and the whole bar are (pixels above the plot's foot), and whether
# the preliminary part is on top.
BAR_OF_A_MIXED_DAY = """() => {
  const chart = document.querySelector("[data-chart=spend]");
  const canvas = chart.querySelector("canvas");
  const style = getComputedStyle(document.documentElement);
  const rgb = (name) => {
    const hex = style.getPropertyValue(name).trim().slice(1);
    return [0, 2, 4].map((at) => parseInt(hex.slice(at, at + 2), 16));
  };
  const final = rgb("--chart-final"), prelim = rgb("--chart-prelim");
  const near = (pixel, colour) => colour.every((c, i) => Math.abs(pixel[i] - c) < 12);
  const { width, height } = canvas;
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const at = (x, y) => Array.from(pixels.slice((y * width + x) * 4, (y * width + x) * 4 + 3));
  const columns = [];
  for (let x = 0; x < width; x++) {
    let finalTop = null, finalFoot = null, prelimTop = null, prelimFoot = null;
    for (let y = 0; y < height; y++) {
      const pixel = at(x, y);
      if (near(pixel, final)) { finalTop ??= y; finalFoot = y; }
      if (near(pixel, prelim)) { prelimTop ??= y; prelimFoot = y; }
    }
    if (finalTop === null || prelimTop === null) continue;
    columns.push({ finalTop, finalFoot, prelimTop, prelimFoot });
  }
  const middle = columns[Math.floor(columns.length / 2)];
  const foot = middle.finalFoot + 1;
  return {
    columns: columns.length,
    finalHeight: foot - middle.finalTop,
    wholeHeight: foot - middle.prelimTop,
    prelimOnTop: middle.prelimFoot < middle.finalTop + 2,
  };
}"""


async def test_spend_chart_stacks_a_day_from_zero_in_one_currency(
    page: Page, runtime: Runtime, tmp_path: Path
) -> None:
    tenant_id, email, password = await new_owner(runtime, "Two Currencies GmbH")
    today = utcnow().date()
    export = two_currency_export(tmp_path / "two-currencies.csv", today)
    await import_focus_file(runtime, tenant_id, export, actor="test")
    mixed_day = str(today - dt.timedelta(days=3))

    await sign_in(page, email, password)
    await settle(page)
    spend = page.locator("[data-chart=spend] + details")
    await spend.locator("summary").click()
    # Only the dollars are charted, and the day with both kinds says so in the costs page's words.
    assert await spend.locator("tbody tr").count() == 3
    mixed = spend.locator(f"tr[data-day='{mixed_day}'] td")
    assert await mixed.nth(1).inner_text() == "$150.00"
    assert await mixed.nth(2).inner_text() == "partly preliminary"
    caption = page.locator("[data-chart-caption=spend]")
    await expect(caption).to_contain_text("Amounts in USD. Costs in EUR are not added in")
    await expect(caption.get_by_role("link", name="the costs page")).to_have_attribute(
        "href", "/costs"
    )
    label = await page.locator("[data-chart=spend]").get_attribute("aria-label") or ""
    assert "in USD" in label and "on a scale from $0.00 to" in label

    # On the canvas: the preliminary $50 stands on the final $100, from a foot at $0.
    bar = await page.evaluate(BAR_OF_A_MIXED_DAY)
    assert bar["columns"] > 2 and bar["prelimOnTop"], bar
    assert abs(bar["wholeHeight"] / bar["finalHeight"] - 1.5) < 0.08, bar

    # The costs page writes each amount in its own currency.
    await page.goto("/costs")
    await expect(page.locator("[data-total=EUR] strong")).to_have_text("500.00 EUR")
    await expect(page.locator("[data-total=USD] strong")).to_have_text("$350.00")
