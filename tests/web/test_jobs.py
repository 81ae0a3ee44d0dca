"""The jobs page in a browser: the tenant's jobs as GET /api/v1/jobs lists them, filtered by
status, with their timings, attempts and errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page

from tests.jobs.helpers import give_tenant_a_queued_job
from tests.web.helpers import DemoTenant, check_page, sign_in_at
from valdrix.runtime import Runtime
from valdrix.web.templating import when


async def api_jobs(base_url: str, demo: DemoTenant, **params: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        response = await client.get("/api/v1/jobs", params={"limit": "50", **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def shown(page: Page) -> list[tuple[str | None, str]]:
    rows = await page.locator("tr[data-job]").all()
    return [
        (await row.get_attribute("data-job"), await row.locator("td").nth(1).inner_text())
        for row in rows
    ]


async def test_the_jobs_page_lists_the_apis_jobs_by_status(
    page: Page, demo: DemoTenant, base_url: str, screenshots: Path, runtime: Runtime
) -> None:
    await give_tenant_a_queued_job(runtime, demo.tenant_id)
    await sign_in_at(page, "/jobs", demo.viewer_email, demo.viewer_password)
    jobs = await api_jobs(base_url, demo)
    assert jobs, "the queued job is listed"
    assert await shown(page) == [(job["id"], job["status"]) for job in jobs]
    first = page.locator(f"tr[data-job='{jobs[0]['id']}'] td")
    assert await first.nth(2).inner_text() == when(dt.datetime.fromisoformat(jobs[0]["queued_at"]))
    assert await first.nth(6).inner_text() == str(jobs[0]["attempts"])
    await check_page(page, screenshots, "jobs")

    status = jobs[-1]["status"]
    await page.get_by_label("Status").select_option(status)
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url(f"**status={status}")
    chosen = await api_jobs(base_url, demo, status=status)
    assert await shown(page) == [(job["id"], status) for job in chosen]
