"""The connections pages in a browser: an admin adds the demo's simulated AWS account step by
step, sees a refused role ARN and refused thresholds with the API's own reasons, verifies it,
edits its regions (as the API then reads them), disables, enables and disables it again; a viewer
sees the connections and no button to change them."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.fixtures.http import served_url
from tests.web.helpers import DemoTenant, answer_confirmation, check_page, sign_in_at
from valdrix.runtime import Runtime
from valdrix.simulator.demo_account import DEMO_ACCOUNT_ID, DEMO_ROLE_ARN

NAME = "Simulated AWS (added in the browser)"
BAD_THRESHOLDS = '{"aws.ebs-unattached": {"min_age_days": "old"}}'


async def api(base_url: str, demo: DemoTenant, method: str, path: str, **body: Any) -> Any:
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        response = await client.request(method, path, json=body or None)
    return response.json() if response.content else None


async def outcome(page: Page, where: str) -> str:
    return await page.locator(f"{where} [data-figure]").inner_text()


async def test_an_admin_adds_verifies_edits_disables_and_enables_a_connection(
    page: Page,
    demo: DemoTenant,
    base_url: str,
    screenshots: Path,
    simulated_demo_aws: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The server's AWS calls reach the simulated account (boto3 reads the variable).
    monkeypatch.setenv("AWS_ENDPOINT_URL", simulated_demo_aws)
    await sign_in_at(page, "/connections", demo.admin_email, demo.admin_password)
    listed = await api(base_url, demo, "GET", "/api/v1/connections")
    rows = page.locator("tr[data-connection]")
    assert await rows.evaluate_all("rows => rows.map(r => r.dataset.connection)") == [
        c["id"] for c in listed
    ]
    assert await rows.locator("[data-figure=status]").all_inner_texts() == [
        c["status"] for c in listed
    ]
    await check_page(page, screenshots, "connections")

    external_id = await page.locator("[data-figure=external_id]").inner_text()
    await page.get_by_label("Name").fill(NAME)
    await page.get_by_label("Role ARN").fill("arn:aws:iam::12345:role/ValdrixScanRole")
    await page.get_by_role("button", name="Add the connection").click()
    refused = await api(
        base_url, demo, "POST", "/api/v1/connections",
        name=NAME, role_arn="arn:aws:iam::12345:role/ValdrixScanRole", external_id=external_id,
    )  # fmt: skip
    await page.wait_for_selector("#add-result [data-figure]")
    assert await outcome(page, "#add-result") == refused["detail"]

    await page.get_by_label("Role ARN").fill(DEMO_ROLE_ARN)
    await page.get_by_label("Regions").fill("us-east-1")
    await page.get_by_role("button", name="Add the connection").click()
    await page.wait_for_url("**/connections/*-*")
    connection_id = page.url.rsplit("/", 1)[1]
    try:
        await page.get_by_role("button", name="Verify").click()
        await page.wait_for_selector("#verify-result [data-figure]")
        verified = await api(base_url, demo, "GET", f"/api/v1/connections/{connection_id}")
        assert verified["status"] == "verified" and verified["account_id"] == DEMO_ACCOUNT_ID
        assert await outcome(page, "#verify-result") == (
            f"Verified: Valdrix assumed the role in account {DEMO_ACCOUNT_ID}."
        )

        await page.get_by_label("Regions").fill("us-west-2, us-east-1")
        await page.get_by_role("button", name="Save").click()
        await page.wait_for_selector("#edit-result [data-figure]")
        assert await outcome(page, "#edit-result") == "Saved."
        saved = await api(base_url, demo, "GET", f"/api/v1/connections/{connection_id}")
        assert saved["regions"] == ["us-east-1", "us-west-2"]

        await page.get_by_label("Thresholds").fill(BAD_THRESHOLDS)
        await page.get_by_role("button", name="Save").click()
        await page.wait_for_selector("#edit-result .error")
        problem = await api(
            base_url, demo, "PATCH", f"/api/v1/connections/{connection_id}",
            thresholds={"aws.ebs-unattached": {"min_age_days": "old"}},
        )  # fmt: skip
        assert await outcome(page, "#edit-result") == problem["detail"]
        await page.reload()
        assert await page.locator("[data-figure=regions]").inner_text() == "us-east-1, us-west-2"
        await check_page(page, screenshots, "connection")

        await page.get_by_role("button", name="Disable the connection").click()
        await answer_confirmation(page, f"Disable {NAME}?", "Disable")
        await page.wait_for_url("**/connections")
        # Disabled, it is listed apart, and Enable brings it back (then it is disabled again).
        disabled = await api(base_url, demo, "GET", "/api/v1/connections?disabled=true")
        assert connection_id in [c["id"] for c in disabled]
        await page.get_by_role("button", name=f"Enable {NAME}").click()
        await page.wait_for_url(f"**/connections/{connection_id}")
        assert (await api(base_url, demo, "GET", f"/api/v1/connections/{connection_id}"))[
            "disabled_at"
        ] is None
        await page.get_by_role("button", name="Disable the connection").click()
        await answer_confirmation(page, f"Disable {NAME}?", "Disable")
        await page.wait_for_url("**/connections")
    finally:
        # The demo keeps only its own connection, whatever happened above.
        await api(base_url, demo, "DELETE", f"/api/v1/connections/{connection_id}")
    remaining = await api(base_url, demo, "GET", "/api/v1/connections")
    assert connection_id not in [c["id"] for c in remaining]
    assert await page.locator(f"tr[data-connection='{connection_id}']").count() == 0


async def test_a_viewer_sees_the_connections_and_no_button_to_change_them(
    page: Page, demo: DemoTenant, base_url: str
) -> None:
    await sign_in_at(page, "/connections", demo.viewer_email, demo.viewer_password)
    listed = await api(base_url, demo, "GET", "/api/v1/connections")
    assert await page.locator("tr[data-connection]").count() == len(listed)
    assert await page.locator("[data-figure=external_id]").count() == 0
    assert await page.get_by_role("button").all_inner_texts() == ["Sign out"]
    await page.locator("tr[data-connection] a").first.click()
    await page.wait_for_url("**/connections/*-*")
    assert await page.get_by_role("button").all_inner_texts() == ["Sign out"]
    assert await page.locator("textarea, form[hx-patch], form[hx-delete]").count() == 0


async def test_an_admin_gets_a_quick_create_link_when_the_operator_published_the_template(
    page: Page, demo: DemoTenant, runtime: Runtime, screenshots: Path
) -> None:
    template_url = "https://valdrix-public.s3.us-east-1.amazonaws.com/scan-role.json"
    principal = "arn:aws:iam::999988887777:role/valdrix-scanner"
    published = dataclasses.replace(
        runtime,
        settings=runtime.settings.updated(
            aws={"principal_arn": principal, "cloudformation_template_url": template_url}
        ),
    )
    async with served_url(published) as url:
        await sign_in_at(page, f"{url}/connections", demo.admin_email, demo.admin_password)
        external_id = await page.locator("[data-figure=external_id]").inner_text()
        link = page.get_by_role("link", name="Create the role in the AWS console")
        href = urlsplit(str(await link.get_attribute("href")))
        assert href.netloc == "us-east-1.console.aws.amazon.com"
        route, _, query = href.fragment.partition("?")
        assert route == "/stacks/quickcreate"
        assert dict(parse_qsl(query)) == {
            "templateURL": template_url,
            "stackName": "ValdrixScanRole",
            "param_ExternalId": external_id,
            "param_ValdrixPrincipalArn": principal,
        }
        await expect(page.get_by_role("link", name="download the template")).to_be_visible()
        await check_page(page, screenshots, "connections-quick-create")


@pytest.mark.parametrize(
    ("thresholds", "reason"),
    [("[" * 5000, "not JSON (nested too deeply)"), ("9" * 5000, "not JSON")],
    ids=["nested-5000-deep", "a-5000-digit-number"],
)
async def test_thresholds_python_cannot_read_are_refused_in_words_and_change_nothing(
    demo: DemoTenant, base_url: str, thresholds: str, reason: str
) -> None:
    [connection] = [
        c
        for c in await api(base_url, demo, "GET", "/api/v1/connections")
        if c["name"] == "Simulated AWS (demo)"
    ]
    async with httpx.AsyncClient(base_url=base_url, headers=demo.auth) as client:
        answer = await client.patch(
            f"/connections/{connection['id']}",
            data={"regions": "eu-north-1", "thresholds": thresholds, "tag_exclusions": ""},
        )

    assert answer.status_code == 200, answer.text
    assert f"thresholds: {reason}" in answer.text
    after = await api(base_url, demo, "GET", f"/api/v1/connections/{connection['id']}")
    assert after["regions"] == connection["regions"]
