"""Totals count each dollar once.

A stopped instance's finding prices its disks, and each disk has a finding of its own; a gp2
disk's gp3 saving is part of what an unattached or stopped disk's finding prices in full. Each
finding keeps its whole figure, while the scan's total, the findings summary and the waste
metric count that money once, and say what they left out and under which finding it is counted.

One account is seeded and scanned for the module (a moto server on loopback); the expected
totals are worked out from the findings as the API shows them (``distinct_costs``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import update

from tests.conftest import TenantFixture, TestDatabase
from tests.fixtures.aws import (
    HEALTHY_REGION,
    aws_client,
    aws_runtime,
    empty_aws,
    register_connection,
    unattached_volume,
)
from tests.observability.helpers import sample, scrape
from tests.scanning.distinct_costs import distinct_monthly_usd, gross_monthly_usd
from tests.scanning.helpers import create_tenant, scan_once
from valdrix.analysis.models import AnalysisStatus
from valdrix.analysis.repository import AnalysisRepository
from valdrix.analysis.runs import run_analysis
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.observability import exposition
from valdrix.runtime import Runtime
from valdrix.scanning.models import Finding
from valdrix.simulator.aws_server import SimulatedAws
from valdrix.simulator.llm_server import SimulatedLLM

FINDINGS = "/api/v1/findings"
LINUX_AMI = "ami-760aaa0f"  # moto's Amazon Linux AMI
# Stopped just now is stopped long enough: the simulator cannot backdate a stop.
STOPPED_AT_ONCE = {
    "aws.ec2-stopped": {"stopped_days": 0},
    "aws.ebs-on-stopped-instance": {"stopped_days": 0},
}


@dataclass(frozen=True)
class Account:
    tenant: TenantFixture
    scan_id: uuid.UUID
    stopped_instance: str
    stopped_disks: tuple[str, str]  # moto's 8 GiB gp2 root disk, a 100 GiB gp2 data disk
    spare_gp2: str
    spare_gp3: str
    running_root: str


@pytest.fixture(scope="module")
async def account(runtime: Runtime, simulated_aws: SimulatedAws) -> AsyncIterator[Account]:
    """A stopped instance with two gp2 disks, a running one with its gp2 root disk, an
    unattached gp2 disk and an unattached gp3 disk, scanned once."""
    endpoint = empty_aws(simulated_aws)
    ec2 = aws_client(endpoint, "ec2", HEALTHY_REGION)
    zone = f"{HEALTHY_REGION}a"

    def launch() -> str:
        return str(
            ec2.run_instances(
                ImageId=LINUX_AMI,
                MinCount=1,
                MaxCount=1,
                InstanceType="t3.micro",
                Placement={"AvailabilityZone": zone},
            )["Instances"][0]["InstanceId"]
        )

    def root_disk(instance_id: str) -> str:
        filters = [{"Name": "attachment.instance-id", "Values": [instance_id]}]
        [volume] = ec2.describe_volumes(Filters=filters)["Volumes"]
        return str(volume["VolumeId"])

    stopped, running = launch(), launch()
    stopped_root, running_root = root_disk(stopped), root_disk(running)
    data = ec2.create_volume(AvailabilityZone=zone, Size=100, VolumeType="gp2")["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=stopped, Device="/dev/sdf")
    ec2.stop_instances(InstanceIds=[stopped])
    spare_gp2 = ec2.create_volume(AvailabilityZone=zone, Size=50, VolumeType="gp2")["VolumeId"]
    spare_gp3 = unattached_volume(endpoint, HEALTHY_REGION, size_gb=20)

    tenant = await create_tenant(runtime)
    scanner = aws_runtime(runtime, endpoint)
    connection = await register_connection(
        scanner, tenant.tenant_id, regions=[HEALTHY_REGION], thresholds=STOPPED_AT_ONCE
    )
    scan_id, status = await scan_once(scanner, tenant.tenant_id, connection.id)
    assert status == "completed"
    yield Account(
        tenant, scan_id, stopped, (stopped_root, data), spare_gp2, spare_gp3, running_root
    )


async def get(client: httpx.AsyncClient, tenant: TenantFixture, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=tenant.auth)
    assert response.status_code == 200, response.text
    return response.json()


async def open_findings(client: httpx.AsyncClient, tenant: TenantFixture) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await get(client, tenant, FINDINGS, status="open", limit=500)
    return found


def one(findings: list[dict[str, Any]], detector: str, resource_id: str) -> dict[str, Any]:
    [found] = [f for f in findings if (f["detector"], f["resource_id"]) == (detector, resource_id)]
    return found


async def test_each_finding_keeps_its_whole_figure_while_totals_count_each_dollar_once(
    client: httpx.AsyncClient, account: Account
) -> None:
    tenant = account.tenant
    findings = await open_findings(client, tenant)
    assert sorted((f["detector"], f["resource_id"]) for f in findings) == sorted(
        [
            ("aws.ec2-stopped", account.stopped_instance),
            *(("aws.ebs-on-stopped-instance", disk) for disk in account.stopped_disks),
            ("aws.ebs-unattached", account.spare_gp2),
            ("aws.ebs-unattached", account.spare_gp3),
            *(
                ("aws.ebs-gp2-to-gp3", disk)
                for disk in (*account.stopped_disks, account.spare_gp2, account.running_root)
            ),
        ]
    )
    # Whoever acts on the stopped instance needs its whole storage bill: both disks, in full.
    stopped = one(findings, "aws.ec2-stopped", account.stopped_instance)
    disks = {
        f["resource_id"]: Decimal(f["monthly_cost_usd"])
        for f in findings
        if f["detector"] == "aws.ebs-on-stopped-instance"
    }
    assert Decimal(stopped["monthly_cost_usd"]) == sum(disks.values()) > 0

    gross, once = gross_monthly_usd(findings), distinct_monthly_usd(findings)
    assert once < gross

    summary = await get(client, tenant, f"{FINDINGS}/summary")
    assert Decimal(summary["total_monthly_usd"]) == once
    assert Decimal(summary["gross_monthly_usd"]) == gross
    assert Decimal(summary["overlap_monthly_usd"]) == gross - once
    assert summary["by_provider"] == {"aws": summary["total_monthly_usd"]}
    assert summary["open_findings_by_provider"] == {"aws": len(findings)}
    await assert_open_waste_today_is(client, tenant, once, len(findings))
    rows = {row["detector"]: row for row in summary["by_detector"]}
    assert sum(Decimal(row["counted_usd"]) for row in rows.values()) == once
    for detector, row in rows.items():
        figures = [Decimal(f["monthly_cost_usd"]) for f in findings if f["detector"] == detector]
        assert Decimal(row["monthly_usd"]) == sum(figures), "each finding's whole figure"
    # The instance's disks are counted under the disks' own findings; every gp3 saving on a
    # disk priced in full is counted under that disk's finding; the running instance's is not.
    assert Decimal(rows["aws.ec2-stopped"]["counted_usd"]) == 0
    assert Decimal(rows["aws.ebs-on-stopped-instance"]["counted_elsewhere_usd"]) == 0
    assert Decimal(rows["aws.ebs-gp2-to-gp3"]["counted_usd"]) == Decimal(
        one(findings, "aws.ebs-gp2-to-gp3", account.running_root)["monthly_cost_usd"]
    )
    assert {
        (row["detector"], row["counted_under"], row["parts"]) for row in summary["overlaps"]
    } == {
        ("aws.ec2-stopped", "aws.ebs-on-stopped-instance", 2),
        ("aws.ebs-gp2-to-gp3", "aws.ebs-on-stopped-instance", 2),
        ("aws.ebs-gp2-to-gp3", "aws.ebs-unattached", 1),
    }
    assert sum(Decimal(row["monthly_usd"]) for row in summary["overlaps"]) == gross - once

    # The scan says the same of what it found.
    scan = await get(client, tenant, f"/api/v1/scans/{account.scan_id}")
    assert Decimal(scan["monthly_waste_usd"]) == once
    assert Decimal(scan["monthly_waste_gross_usd"]) == gross
    assert Decimal(scan["monthly_waste_overlap_usd"]) == gross - once

    # So does the operator's per-tenant metric.
    exposition._tenant_gauges_read_at = -exposition.TENANT_GAUGES_TTL_SECONDS
    scraped = await scrape(client)
    waste = sample(scraped, "valdrix_monthly_waste_usd", tenant_id=str(tenant.tenant_id))
    assert Decimal(str(waste)) == once


async def test_a_finding_says_which_part_of_its_cost_is_counted_under_another_finding(
    client: httpx.AsyncClient, account: Account
) -> None:
    tenant = account.tenant
    findings = await open_findings(client, tenant)
    spare = one(findings, "aws.ebs-unattached", account.spare_gp2)
    saving = one(findings, "aws.ebs-gp2-to-gp3", account.spare_gp2)

    detail = await get(client, tenant, f"{FINDINGS}/{saving['id']}")
    assert detail["monthly_cost_usd"] == saving["monthly_cost_usd"], "its own figure stays whole"
    assert Decimal(detail["counted_elsewhere_usd"]) == Decimal(detail["monthly_cost_usd"])
    [shared] = detail["shared_costs"]
    assert shared["resource_id"] == account.spare_gp2
    assert Decimal(shared["monthly_usd"]) == Decimal(detail["monthly_cost_usd"])
    assert (shared["other_finding_id"], shared["other_detector"]) == (
        spare["id"],
        "aws.ebs-unattached",
    )
    assert shared["counted_under"] == spare["id"]

    detail = await get(client, tenant, f"{FINDINGS}/{spare['id']}")
    assert Decimal(detail["counted_elsewhere_usd"]) == 0
    [shared] = detail["shared_costs"]
    assert (shared["other_finding_id"], shared["counted_under"]) == (saving["id"], spare["id"])

    # The stopped instance: both disks are counted under their own findings.
    stopped = one(findings, "aws.ec2-stopped", account.stopped_instance)
    assert Decimal(stopped["counted_elsewhere_usd"]) == Decimal(stopped["monthly_cost_usd"])
    assert {s["resource_id"] for s in stopped["shared_costs"]} == set(account.stopped_disks)
    assert {s["other_detector"] for s in stopped["shared_costs"]} == {"aws.ebs-on-stopped-instance"}
    # A disk nothing else prices shares nothing.
    alone = one(findings, "aws.ebs-unattached", account.spare_gp3)
    assert (alone["shared_costs"], Decimal(alone["counted_elsewhere_usd"])) == ([], 0)


async def test_the_analysis_prompt_quotes_the_total_counted_once(
    client: httpx.AsyncClient,
    account: Account,
    llm_runtime: Callable[..., Runtime],
    llm_server: SimulatedLLM,
) -> None:
    """The advice is asked for the waste the scan's total shows, not for a sum that counts the
    stopped instance's disks twice."""
    once = distinct_monthly_usd(await open_findings(client, account.tenant))
    assert once < gross_monthly_usd(await open_findings(client, account.tenant))
    runtime = llm_runtime()
    async with unit_of_work(runtime.sessions, account.tenant.tenant_id) as session:
        # The scan ran with no LLM provider; one is configured now.
        analysis = await AnalysisRepository(session).for_scan(account.scan_id)
        assert analysis is not None
        analysis.status = AnalysisStatus.pending.value

    status = await run_analysis(runtime, account.tenant.tenant_id, account.scan_id)

    assert status == "ready"
    user_prompt = llm_server.requests[0]["messages"][1]["content"]
    assert f"about ${once:.2f} per month in total" in user_prompt
    # Not verified, the connection has no account id yet: the prompt names it instead.
    assert "Scan of cloud account unknown" not in user_prompt


async def test_open_waste_today_counts_a_finding_whose_snooze_has_ended(
    runtime: Runtime, client: httpx.AsyncClient, account: Account
) -> None:
    """Asked for on its own (no other read ended the snooze first), open waste over time ends
    at the summary's total with the finding back."""
    tenant = account.tenant
    findings = await open_findings(client, tenant)
    once = distinct_monthly_usd(findings)
    spare = one(findings, "aws.ebs-unattached", account.spare_gp3)
    snoozed = await client.patch(
        f"{FINDINGS}/{spare['id']}",
        json={"status": "snoozed", "snoozed_until": "2099-01-01T00:00:00Z", "note": "later"},
        headers=tenant.auth,
    )
    assert snoozed.status_code == 200, snoozed.text
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        # Time passes: only the snooze's end moves (ending it is a read's work).
        await session.execute(
            update(Finding)
            .where(Finding.id == uuid.UUID(spare["id"]))
            .values(snoozed_until=utcnow() - dt.timedelta(seconds=1))
        )

    await assert_open_waste_today_is(client, tenant, once, len(findings))
    summary = await get(client, tenant, f"{FINDINGS}/summary")
    assert Decimal(summary["total_monthly_usd"]) == once


async def test_open_waste_on_past_days_counts_the_findings_then_open_each_dollar_once(
    database: TestDatabase, client: httpx.AsyncClient, account: Account
) -> None:
    """Every finding first opened ten days ago; the stopped instance's finding dismissed six
    days ago and reopened four days ago; one of its disks' findings dismissed two days ago and
    reopened yesterday (the instance's finding carries that disk's cost meanwhile). Each day's
    point is what the findings open at that day's end cost, each dollar once (worked out here
    from the findings as the API shows them)."""
    tenant = account.tenant
    findings = await open_findings(client, tenant)
    now = utcnow()
    stopped = one(findings, "aws.ec2-stopped", account.stopped_instance)
    disk = one(findings, "aws.ebs-on-stopped-instance", account.stopped_disks[1])
    closed = {  # finding id: [(dismissed at, reopened at)]
        stopped["id"]: [(now - dt.timedelta(days=6), now - dt.timedelta(days=4))],
        disk["id"]: [(now - dt.timedelta(days=2), now - dt.timedelta(days=1))],
    }
    # The history is the app's to append to, never to rewrite: the owner rewrites it here.
    with psycopg.connect(database.superuser, autocommit=True) as owner:
        owner.execute(
            "UPDATE finding_history SET created_at = %s"
            " WHERE tenant_id = %s AND from_status IS NULL",
            (now - dt.timedelta(days=10), tenant.tenant_id),
        )
        for finding_id, spells in closed.items():
            for dismissed_at, reopened_at in spells:
                owner.execute(
                    "INSERT INTO finding_history (tenant_id, finding_id, from_status,"
                    " to_status, actor, created_at) VALUES"
                    " (%(t)s, %(f)s, 'open', 'dismissed', 'test', %(off)s),"
                    " (%(t)s, %(f)s, 'dismissed', 'open', 'test', %(on)s)",
                    {
                        "t": tenant.tenant_id,
                        "f": finding_id,
                        "off": dismissed_at,
                        "on": reopened_at,
                    },
                )

    history = await get(client, tenant, f"{FINDINGS}/waste-history", days=12)
    assert len(history) == 12
    for point in history:
        day_end = dt.datetime.combine(
            dt.date.fromisoformat(point["day"]) + dt.timedelta(days=1), dt.time(), dt.UTC
        )
        open_then = [
            f
            for f in findings
            if now - dt.timedelta(days=10) < day_end
            and not any(off < day_end <= on for off, on in closed.get(f["id"], []))
        ]
        assert (point["open_findings"], Decimal(point["monthly_usd"])) == (
            len(open_then),
            distinct_monthly_usd(open_then),
        ), point["day"]
    # The window's first days hold nothing; on the days either was away one finding less.
    counts = {point["open_findings"] for point in history}
    assert counts == {0, len(findings) - 1, len(findings)}


async def test_dismissing_a_finding_moves_its_shared_costs_to_the_next_finding_that_prices_them(
    client: httpx.AsyncClient, account: Account
) -> None:
    """Dismissing the disks' own findings leaves the total as it was: the instance's finding
    now carries their cost. Dismissing that too leaves the disks' gp3 savings."""
    tenant = account.tenant
    before = await get(client, tenant, f"{FINDINGS}/summary")
    findings = await open_findings(client, tenant)
    for disk in account.stopped_disks:
        await dismiss(client, tenant, one(findings, "aws.ebs-on-stopped-instance", disk)["id"])

    after = await get(client, tenant, f"{FINDINGS}/summary")
    findings = await open_findings(client, tenant)
    assert after["total_monthly_usd"] == before["total_monthly_usd"]
    assert Decimal(after["total_monthly_usd"]) == distinct_monthly_usd(findings)
    stopped = one(findings, "aws.ec2-stopped", account.stopped_instance)
    assert Decimal(stopped["counted_elsewhere_usd"]) == 0

    await dismiss(client, tenant, stopped["id"])
    findings = await open_findings(client, tenant)
    last = await get(client, tenant, f"{FINDINGS}/summary")
    savings = sum(
        Decimal(one(findings, "aws.ebs-gp2-to-gp3", disk)["monthly_cost_usd"])
        for disk in account.stopped_disks
    )
    assert Decimal(last["total_monthly_usd"]) == (
        Decimal(before["total_monthly_usd"]) - Decimal(stopped["monthly_cost_usd"]) + savings
    )
    assert Decimal(last["total_monthly_usd"]) == distinct_monthly_usd(findings)
    assert Decimal(last["gross_monthly_usd"]) == gross_monthly_usd(findings)
    await assert_open_waste_today_is(
        client, tenant, Decimal(last["total_monthly_usd"]), len(findings)
    )


async def assert_open_waste_today_is(
    client: httpx.AsyncClient, tenant: TenantFixture, monthly_usd: Decimal, open_findings: int
) -> None:
    """Open waste over time ends today at the summary's total: each dollar counted once."""
    history = await get(client, tenant, f"{FINDINGS}/waste-history", days=2)
    assert [day["open_findings"] for day in history][-1] == open_findings
    assert Decimal(history[-1]["monthly_usd"]) == monthly_usd


async def dismiss(client: httpx.AsyncClient, tenant: TenantFixture, finding_id: str) -> None:
    response = await client.patch(
        f"{FINDINGS}/{finding_id}",
        json={"status": "dismissed", "note": "kept on purpose"},
        headers=tenant.auth,
    )
    assert response.status_code == 200, response.text
    # A finding no longer open shares nothing: no total counts it.
    assert response.json()["shared_costs"] == []
