"""The scans pages in a browser: a member starts a scan and watches it live to its end, the
page's figures equal the API's; a viewer sees a finished scan as it ended and no "Scan now"."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import BrowserContext, Locator, Page, Route, expect

from tests.fixtures.http import served_url
from tests.scanning.helpers import queued_scan
from tests.web.helpers import DemoTenant, check_page, settle, sign_in
from valdrix.analysis.runs import run_analysis
from valdrix.cli.tenants import create_tenant_with_owner_key
from valdrix.connections.service import list_connections
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning.engine import run_scan
from valdrix.scanning.service import open_scheduled_scan
from valdrix.tenancy.models import Tier
from valdrix.tenancy.service import system_principal

FINAL = ("completed", "partial", "timed_out", "failed", "interrupted")
# The live view's finding count at the moment the stream says the scan ended, before the
# server's rendering of the finished scan replaces it.
LIVE_END = f"""() => {{
  const status = document.querySelector("#scan-state[data-finished=false] [data-figure=status]");
  if (!status || !{list(FINAL)}.includes(status.textContent)) return null;
  return document.querySelector("#scan-state [data-figure=findings_count]").textContent;
}}"""


async def api(base_url: str, demo: DemoTenant, path: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert isinstance(answer, dict)
    return answer


async def api_list(base_url: str, demo: DemoTenant, path: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert isinstance(answer, list)
    return answer


def worker_runtime(runtime: Runtime, endpoint_url: str) -> Runtime:
    """What a worker would run the scan with: the simulated AWS account's endpoint."""
    return dataclasses.replace(
        runtime, settings=runtime.settings.updated(aws={"endpoint_url": endpoint_url})
    )


async def test_a_member_starts_a_scan_and_watches_it_live_to_its_end(
    page: Page,
    demo: DemoTenant,
    base_url: str,
    runtime: Runtime,
    simulated_demo_aws: str,
    screenshots: Path,
) -> None:
    await sign_in(page, demo.admin_email, demo.admin_password)
    await settle(page)  # the overview's charts have read their data
    await page.goto("/scans")
    await check_page(page, screenshots, "scans")

    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
    async with page.expect_response(re.compile(r"/api/v1/scans/[^/]+/events$")):
        await page.get_by_role("button", name="Scan now").click()
    scan_id = uuid.UUID(page.url.rsplit("/", 1)[1])
    # htmx's SSE extension holds the stream.
    live = page.locator(f"#scan-live[sse-connect='/api/v1/scans/{scan_id}/events']")
    assert await live.count() == 1
    # No worker serves the browser suite: the test runs the queued scan as one would.
    scanning = asyncio.create_task(
        run_scan(worker_runtime(runtime, simulated_demo_aws), demo.tenant_id, scan_id)
    )

    await page.wait_for_selector("#scan-state[data-finished=false] td[data-status=ok]")
    live_count = await (await page.wait_for_function(LIVE_END)).json_value()
    await scanning
    await page.wait_for_selector("#scan-state[data-finished=true]")

    scan = await api(base_url, demo, f"/api/v1/scans/{scan_id}")
    assert scan["status"] in FINAL
    assert live_count == str(scan["findings_count"])
    state = page.locator("#scan-state")
    assert await state.locator("[data-figure=findings_count]").inner_text() == str(
        scan["findings_count"]
    )
    assert await state.locator("[data-figure=status]").inner_text() == scan["status"]
    unit_counts = scan["unit_counts"]
    assert isinstance(unit_counts, dict) and unit_counts.get("ok")
    assert await state.locator("td[data-status=ok]").count() == unit_counts["ok"]

    analysis = page.locator("[data-figure=analysis_status]")
    await page.wait_for_function(
        "() => document.querySelector('[data-figure=analysis_status]').textContent !== 'pending'"
    )
    answer = await api(base_url, demo, f"/api/v1/scans/{scan_id}/analysis")
    assert await analysis.inner_text() == str(answer["status"]).replace("_", " ")
    await check_page(page, screenshots, "scan")
    # One connection to the stream, closed at its end: never opened again.
    assert streams == [f"{page.url.split('/scans/')[0]}/api/v1/scans/{scan_id}/events"]


async def test_a_viewer_sees_a_finished_scan_as_it_ended_and_no_scan_now(
    page: Page, demo: DemoTenant, base_url: str
) -> None:
    await sign_in(page, demo.viewer_email, demo.viewer_password)
    await settle(page)
    await page.goto("/scans")
    assert await page.get_by_role("button", name="Scan now").count() == 0
    # The oldest: the demo's own scan, finished before the browser opened it.
    await page.locator("tr[data-scan] a").last.click()
    await page.wait_for_selector("#scan-state[data-finished=true]")
    scan_id = page.url.rsplit("/", 1)[1]
    scan = await api(base_url, demo, f"/api/v1/scans/{scan_id}")
    state = page.locator("#scan-state")
    assert await state.locator("[data-figure=status]").inner_text() == scan["status"]
    assert await state.locator("[data-figure=findings_count]").inner_text() == str(
        scan["findings_count"]
    )
    assert await page.get_by_role("button").all_inner_texts() == ["Sign out"]


async def test_a_member_asks_again_for_an_ended_scans_analysis_and_sees_it_ready(
    page: Page,
    demo: DemoTenant,
    base_url: str,
    llm_runtime: Callable[..., Runtime],
    screenshots: Path,
) -> None:
    # A server with an LLM provider (the simulated one), on the same database: the same
    # sessions. No worker serves the browser suite: the test runs the analysis as one would.
    with_llm = llm_runtime()
    scans = await api_list(base_url, demo, "/api/v1/scans")
    oldest = str(scans[-1]["id"])  # the demo's own scan, ended before the browser opened it
    async with served_url(with_llm) as llm_url:
        await sign_in(page, demo.viewer_email, demo.viewer_password)
        await page.goto(f"{llm_url}/scans/{oldest}")
        status = page.locator("[data-figure=analysis_status]")
        assert await status.inner_text() != "pending"
        assert await page.get_by_role("button", name="Analyse this scan again").count() == 0
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url("**/sign-in**")

        await sign_in(page, demo.admin_email, demo.admin_password)
        await page.goto(f"{llm_url}/scans/{oldest}")
        await check_page(page, screenshots, "scan-analyse-again")
        await page.get_by_role("button", name="Analyse this scan again").click()
        await expect(status).to_have_text("pending")
        answer = await api(base_url, demo, f"/api/v1/scans/{oldest}/analysis")
        assert answer["status"] == "pending"
        assert await page.get_by_role("button", name="Analyse this scan again").count() == 0

        assert await run_analysis(with_llm, demo.tenant_id, uuid.UUID(oldest)) == "ready"
        # The page asks again every 2 s while pending, and shows the advice once ready.
        await expect(status).to_have_text("ready", timeout=15_000)
        answer = await api(base_url, demo, f"/api/v1/scans/{oldest}/analysis")
        result = answer["result"]
        assert isinstance(result, dict) and result["summary"]
        summary = page.locator("[data-figure=analysis_summary]")
        assert await summary.inner_text() == result["summary"]
        await check_page(page, screenshots, "scan-analysis-ready")


async def test_a_new_tenant_is_told_to_add_a_connection_before_scanning(
    page: Page, runtime: Runtime
) -> None:
    email, password = f"owner-{secrets.token_hex(3)}@new.example", secrets.token_urlsafe(16)
    await create_tenant_with_owner_key(
        runtime, name="Brand New Ltd", tier=Tier.free, admin_email=email, admin_password=password
    )
    await sign_in(page, email, password)
    await settle(page)
    await page.get_by_role("link", name="add a connection").click()
    await page.wait_for_url("**/connections")
    await page.goto("/scans")
    assert await page.get_by_role("button", name="Scan now").count() == 0
    await page.get_by_role("link", name="Add a connection first").click()
    await page.wait_for_url("**/connections")


def _findings_stream(ids: list[int]) -> str:
    """Server-sent events as the scan's stream sends them: one finding each, with its id."""
    return "".join(
        f"id: {i}\nevent: finding\ndata: "
        + json.dumps(
            {
                "finding_id": str(uuid.uuid4()),
                "detector": "aws.ebs-unattached",
                "region": "us-east-1",
                "resource_id": f"vol-{i}",
                "monthly_cost_usd": "10.00",
                "cost_basis": "list_price",
            }
        )
        + "\n\n"
        for i in ids
    )


async def _open_scan_with_its_stream(
    context: BrowserContext,
    demo: DemoTenant,
    runtime: Runtime,
    stream: Callable[[Route], Awaitable[None]],
) -> tuple[Page, Locator]:
    """A queued scan's page, in a tab of its own (the browser logs every refused connection as
    a console error), whose event stream ``stream`` answers; and the page's ``#scan-state``."""
    async with unit_of_work(runtime.sessions, demo.tenant_id) as session:
        actor = system_principal(demo.tenant_id, "test")
        connection = (await list_connections(session, actor))[0]
        scan_id = await open_scheduled_scan(session, demo.tenant_id, connection.id, job_id=None)
    tab = await context.new_page()
    await tab.route(f"**/api/v1/scans/{scan_id}/events", stream)
    await sign_in(tab, demo.admin_email, demo.admin_password)
    await settle(tab)
    await tab.goto(f"/scans/{scan_id}")
    return tab, tab.locator("#scan-state")


async def _assert_given_up(tab: Page, state: Locator, asked: list[str]) -> None:
    """The page says the live updates stopped, and asks for the stream no more."""
    await expect(state.locator("[data-figure=status]")).to_have_text("stopped", timeout=30_000)
    meaning = state.locator("[data-figure=status_meaning]")
    assert "could not be reached" in await meaning.inner_text()
    tries = len(asked)
    await tab.wait_for_timeout(3_000)
    assert len(asked) == tries, "a stream given up is not asked for again"
    await tab.close()


async def test_the_live_view_shows_a_replayed_event_once_and_gives_up_on_a_stream_it_cannot_open(
    context: BrowserContext, demo: DemoTenant, runtime: Runtime
) -> None:
    """The stream answers two findings, then refuses once (a restart: the browser gives up on
    that connection and htmx opens a new one, replayed from the start), then answers three,
    then refuses for good. The page shows three findings, not five, then says it stopped."""
    answers = [
        (200, "retry: 50\n\n" + _findings_stream([1, 2])),
        (503, ""),
        (200, "retry: 50\n\n" + _findings_stream([1, 2, 3])),
    ]
    asked: list[str] = []

    async def stream(route: Route) -> None:
        asked.append(route.request.url)
        status, body = answers[len(asked) - 1] if len(asked) <= len(answers) else (503, "")
        await route.fulfill(status=status, body=body, content_type="text/event-stream")

    tab, state = await _open_scan_with_its_stream(context, demo, runtime, stream)
    await expect(state.locator("[data-figure=findings_count]")).to_have_text("3")
    await expect(state.locator("[data-figure=arriving_usd]")).to_have_text("$30.00")
    await _assert_given_up(tab, state, asked)


async def test_the_live_view_gives_up_on_a_server_it_cannot_reach(
    context: BrowserContext, demo: DemoTenant, runtime: Runtime
) -> None:
    """Every connection to the stream fails at the network (the server gone): the browser
    would retry it by itself forever; the page stops after a few tries and says so."""
    asked: list[str] = []

    async def unreachable(route: Route) -> None:
        asked.append(route.request.url)
        await route.abort("connectionrefused")

    tab, state = await _open_scan_with_its_stream(context, demo, runtime, unreachable)
    await _assert_given_up(tab, state, asked)


async def test_a_disabled_connections_scans_keep_its_name(
    client: httpx.AsyncClient, runtime: Runtime, make_tenant: Callable[..., Awaitable[Any]]
) -> None:
    tenant = await make_tenant()
    scan_id = await queued_scan(client, runtime, tenant)
    [connection] = (await client.get("/api/v1/connections", headers=tenant.auth)).json()
    disabled = await client.delete(f"/api/v1/connections/{connection['id']}", headers=tenant.auth)
    assert disabled.status_code == 204, disabled.text
    browser = {**tenant.auth, "Accept": "text/html"}

    scans = await client.get("/scans", headers=browser)
    scan = await client.get(f"/scans/{scan_id}", headers=browser)
    overview = await client.get("/", headers=browser)

    named = f"{connection['name']} (disabled)"
    assert all(named in page.text for page in (scans, scan, overview))
    assert all("removed connection" not in page.text for page in (scans, scan, overview))
