"""The scan engine end to end: real PostgreSQL, AWS as a moto server on loopback (with a fault
proxy in front where trouble is needed), scans run in-process with ``run_scan``.

What a customer relies on: waste is found with a dollar figure and its evidence, every
(region x detector) unit reports its own outcome, a hanging region or a denied permission costs
only that part of the scan (within its budget), a scan that runs out of time keeps what it found,
and tag exclusions hide what the tenant asked to hide, while the demo's answer-key tag changes
nothing.
"""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from typing import Any

import structlog
from prometheus_client import REGISTRY

from tests.conftest import TenantFixture
from tests.fixtures.aws import (
    HEALTHY_REGION,
    OTHER_REGION,
    aws_client,
    aws_runtime,
    elastic_ip,
    register_connection,
    unattached_volume,
)
from tests.scanning.helpers import (
    by_resource,
    new_scan,
    scan_events,
    scan_once,
    scan_units,
    tenant_findings,
    warm_the_simulator,
)
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning.engine import run_scan
from valdrix.scanning.providers.aws_pricing import aws_catalog
from valdrix.scanning.registry import load_all_detectors, load_all_providers
from valdrix.scanning.repository import ScanRepository

AWS_DETECTORS = [d.key for d in load_all_detectors().for_provider("aws")]
REGIONAL_DETECTORS = [
    d.key for d in load_all_detectors().for_provider("aws") if not d.connection_wide
]
ACCOUNT_WIDE_DETECTORS = [
    d.key for d in load_all_detectors().for_provider("aws") if d.connection_wide
]
IMPORTING_DETECTORS = {d.key for d in load_all_detectors().for_provider("aws") if d.imports_from}
# The detectors a role that may not call DescribeAddresses cannot run.
ADDRESS_DETECTORS = [
    d.key
    for d in load_all_detectors().for_provider("aws")
    if "ec2:DescribeAddresses" in d.permissions
]
IGNORE = {"valdrix:ignore": "true"}
SCAN_LATENCY_COUNT = "valdrix_zombie_scan_latency_seconds_count"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def log_events(captured: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [entry for entry in captured if entry["event"] == event]


async def scan_row(runtime: Runtime, tenant_id: Any, scan_id: Any) -> Any:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await ScanRepository(session).get(scan_id)


async def test_scan_of_two_regions_with_waste_completes_with_priced_findings_units_and_events(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str
) -> None:
    tenant: TenantFixture = await make_tenant()
    scanner = aws_runtime(runtime, aws_endpoint)
    volume_id = unattached_volume(aws_endpoint, HEALTHY_REGION, size_gb=100)
    address_id = elastic_ip(aws_endpoint, OTHER_REGION)
    connection = await register_connection(
        scanner, tenant.tenant_id, regions=[HEALTHY_REGION, OTHER_REGION]
    )
    scans_before = {
        size: sample(SCAN_LATENCY_COUNT, account_size=size)
        for size in ("small", "medium", "large", "xlarge")
    }
    describes = ("DescribeVolumes", "DescribeInstances", "DescribeAddresses")
    describes_before = {
        name: sample("valdrix_aws_api_calls_total", service="ec2", operation=name)
        for name in describes
    }

    with structlog.testing.capture_logs() as captured:
        scan_id, status = await scan_once(scanner, tenant.tenant_id, connection.id)

    assert status == "completed"
    findings = by_resource(await tenant_findings(scanner, tenant.tenant_id))
    assert set(findings) == {
        ("aws.ebs-unattached", volume_id),
        ("aws.eip-unassociated", address_id),
    }
    catalog = aws_catalog()
    volume = findings[("aws.ebs-unattached", volume_id)]
    gp3 = catalog.ebs_gb_month(HEALTHY_REGION, "gp3")
    assert gp3 is not None
    assert volume.region == HEALTHY_REGION
    assert volume.account_id == "123456789012"
    assert (volume.cost_basis, volume.monthly_cost_usd) == ("list_price", gp3.unit_price * 100)
    assert volume.price_detail["catalog_as_of"] == catalog.as_of.isoformat()
    assert volume.evidence["state"] == "available"
    assert volume.evidence["size_gb"] == 100
    address = findings[("aws.eip-unassociated", address_id)]
    ipv4 = catalog.public_ipv4_hour(OTHER_REGION)
    assert ipv4 is not None
    assert (address.cost_basis, address.monthly_cost_usd) == ("list_price", catalog.monthly(ipv4))
    assert address.evidence["association_id"] is None
    assert address.evidence["public_ip"]

    units = await scan_units(scanner, tenant.tenant_id, scan_id)
    # Account-wide detectors run once, where the provider serves account-wide APIs.
    assert {(u.region, u.detector) for u in units} == set(
        itertools.product([HEALTHY_REGION, OTHER_REGION], REGIONAL_DETECTORS)
    ) | {("global", key) for key in ACCOUNT_WIDE_DETECTORS}
    # The simulated account has turned on none of AWS's recommendation services.
    assert {u.status for u in units} == {"ok", "skipped"}
    assert {u.detector for u in units if u.status == "skipped"} == IMPORTING_DETECTORS
    assert {(u.region, u.detector): u.findings_count for u in units if u.findings_count} == {
        (HEALTHY_REGION, "aws.ebs-unattached"): 1,
        (OTHER_REGION, "aws.eip-unassociated"): 1,
    }

    scan = await scan_row(scanner, tenant.tenant_id, scan_id)
    assert scan.findings_count == 2
    assert scan.monthly_waste_usd == volume.monthly_cost_usd + address.monthly_cost_usd
    assert scan.regions == sorted([HEALTHY_REGION, OTHER_REGION])

    events = await scan_events(scanner, tenant.tenant_id, scan_id)
    types = [e.type for e in events]
    assert types[0] == "scan.started"
    assert types[-1] == "scan.finished"
    assert types.count("unit.finished") == len(units)
    assert sorted(e.payload["finding_id"] for e in events if e.type == "finding") == sorted(
        str(f.id) for f in findings.values()
    )
    assert events[-1].payload["status"] == "completed"
    assert events[-1].payload["findings"] == 2

    [complete] = log_events(captured, "scan.complete")
    assert complete["tenant_id"] == str(tenant.tenant_id)
    assert complete["connection_id"] == str(connection.id)
    assert complete["scan_id"] == str(scan_id)
    assert complete["status"] == "completed"
    assert complete["duration_seconds"] > 0
    assert complete["findings"] == 2
    skipped = len([u for u in units if u.status == "skipped"])
    assert complete["units"] == {"ok": len(units) - skipped, "skipped": skipped}
    assert complete["resources_seen"] >= 2

    size = complete["account_size"]
    assert sample(SCAN_LATENCY_COUNT, account_size=size) == scans_before.get(size, 0) + 1
    # Each region's volumes, instances and addresses are described once, however many of its
    # detectors judge them.
    assert {
        name: sample("valdrix_aws_api_calls_total", service="ec2", operation=name)
        - describes_before[name]
        for name in describes
    } == dict.fromkeys(describes, 2)


async def test_hanging_region_and_denied_detector_end_partial_within_the_region_budget(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str, fault_proxy: Any
) -> None:
    """eu-west-1 never answers and the role may not call DescribeAddresses. The healthy region's
    findings are stored, and each unit says what went wrong, naming the region or operation."""
    tenant: TenantFixture = await make_tenant()
    # Long enough for the healthy region's units (one per detector) on a loaded 2-core machine.
    region_budget = 5.0
    proxy = fault_proxy(hang_regions={OTHER_REGION}, deny_operations={"DescribeAddresses"})
    scanner = aws_runtime(runtime, proxy.url, region_budget=region_budget)
    healthy_volume = unattached_volume(aws_endpoint, HEALTHY_REGION)
    unattached_volume(aws_endpoint, OTHER_REGION)
    elastic_ip(aws_endpoint, HEALTHY_REGION)
    await warm_the_simulator(runtime, aws_endpoint, [HEALTHY_REGION])
    connection = await register_connection(
        scanner, tenant.tenant_id, regions=[HEALTHY_REGION, OTHER_REGION]
    )
    scan_id = await new_scan(scanner, tenant.tenant_id, connection.id)
    denials = {"service": "ec2", "region": HEALTHY_REGION, "code": "UnauthorizedOperation"}
    denials_before = sample("valdrix_aws_api_errors_total", **denials)

    started = time.monotonic()
    status = await run_scan(scanner, tenant.tenant_id, scan_id)
    elapsed = time.monotonic() - started

    assert status == "partial"
    assert elapsed < region_budget + 2.0, f"the scan took {elapsed:.1f} s"
    findings = await tenant_findings(scanner, tenant.tenant_id)
    assert [(f.region, f.detector, f.resource_id) for f in findings] == [
        (HEALTHY_REGION, "aws.ebs-unattached", healthy_volume)
    ]
    units = {
        (u.region, u.detector): u for u in await scan_units(scanner, tenant.tenant_id, scan_id)
    }
    assert len(units) == 2 * len(REGIONAL_DETECTORS) + len(ACCOUNT_WIDE_DETECTORS)
    for detector in REGIONAL_DETECTORS:
        hung = units[(OTHER_REGION, detector)]
        assert hung.status == "timed_out"
        assert OTHER_REGION in (hung.reason or "")
        assert f"{region_budget:g} s budget" in (hung.reason or "")
    for detector in ADDRESS_DETECTORS:
        denied = units[(HEALTHY_REGION, detector)]
        assert denied.status == "denied"
        assert denied.reason == "DescribeAddresses: UnauthorizedOperation"
    assert {u.status for u in units.values() if u.region == HEALTHY_REGION} == {
        "ok",
        "denied",
        "skipped",
    }
    assert sample("valdrix_aws_api_errors_total", **denials) == denials_before + len(
        ADDRESS_DETECTORS
    )
    scan = await scan_row(scanner, tenant.tenant_id, scan_id)
    assert scan.status == "partial"
    assert "timed_out" in scan.status_reason and "denied" in scan.status_reason


async def test_scan_budget_overrun_ends_timed_out_and_keeps_what_finished_units_found(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str, fault_proxy: Any
) -> None:
    """Every call is slowed down and one region never answers within the whole-scan budget (its
    own region budget is longer), so not all units can finish."""
    tenant: TenantFixture = await make_tenant()
    scan_budget = 5.0
    proxy = fault_proxy(latency_seconds=0.05, hang_regions={OTHER_REGION})
    scanner = aws_runtime(
        runtime,
        proxy.url,
        region_budget=scan_budget + 3,
        scan_budget=scan_budget,
    )
    volume_id = unattached_volume(aws_endpoint, HEALTHY_REGION)
    address_id = elastic_ip(aws_endpoint, HEALTHY_REGION)
    unattached_volume(aws_endpoint, OTHER_REGION)
    connection = await register_connection(
        scanner, tenant.tenant_id, regions=[HEALTHY_REGION, OTHER_REGION]
    )
    scan_id = await new_scan(scanner, tenant.tenant_id, connection.id)

    started = time.monotonic()
    with structlog.testing.capture_logs() as captured:
        status = await run_scan(scanner, tenant.tenant_id, scan_id)
    elapsed = time.monotonic() - started

    assert status == "timed_out"
    assert elapsed < scan_budget + 2.5, f"the scan took {elapsed:.1f} s"
    units = await scan_units(scanner, tenant.tenant_id, scan_id)
    assert len(units) == 2 * len(REGIONAL_DETECTORS) + len(ACCOUNT_WIDE_DETECTORS)
    finished = [u for u in units if u.status == "ok"]
    # The connection-wide units (``global``, served by the healthy simulator, first) finish too.
    assert {u.region for u in finished} == {HEALTHY_REGION, "global"}
    cut_off = [u for u in units if u.region == OTHER_REGION]
    assert {u.status for u in cut_off} == {"timed_out"}
    assert all("scan's 5 s budget ran out" in (u.reason or "") for u in cut_off), [
        (u.detector, u.reason, str(u.finished_at - u.started_at))
        for u in cut_off
        if "scan's" not in (u.reason or "")
    ]
    # What finished units found is in the database, not thrown away with the rest.
    findings = by_resource(await tenant_findings(scanner, tenant.tenant_id))
    assert set(findings) == {
        ("aws.ebs-unattached", volume_id),
        ("aws.eip-unassociated", address_id),
    }
    assert sum(u.findings_count for u in finished) == 2
    scan = await scan_row(scanner, tenant.tenant_id, scan_id)
    assert (scan.status, scan.findings_count) == ("timed_out", 2)
    [timeout] = log_events(captured, "scan.timeout")
    assert timeout["tenant_id"] == str(tenant.tenant_id)
    assert timeout["connection_id"] == str(connection.id)
    assert timeout["findings"] == 2
    assert timeout["units"]["timed_out"] == len(cut_off)
    assert timeout["duration_seconds"] >= scan_budget
    assert not log_events(captured, "scan.complete")


async def test_ignore_tag_and_tenant_tag_rules_hide_resources_that_are_reported_untagged(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str
) -> None:
    tenant: TenantFixture = await make_tenant()
    scanner = aws_runtime(runtime, aws_endpoint)
    ignored = unattached_volume(aws_endpoint, HEALTHY_REGION, tags=IGNORE)
    sandbox = unattached_volume(aws_endpoint, HEALTHY_REGION, tags={"env": "sandbox"})
    scratch = elastic_ip(aws_endpoint, HEALTHY_REGION, tags={"team": "scratch"})
    production = unattached_volume(aws_endpoint, HEALTHY_REGION, tags={"env": "prod"})
    connection = await register_connection(
        scanner,
        tenant.tenant_id,
        regions=[HEALTHY_REGION],
        # A rule with a value matches that value only; a null value matches any.
        tag_exclusions=[{"key": "env", "value": "sandbox"}, {"key": "team", "value": None}],
    )

    _, status = await scan_once(scanner, tenant.tenant_id, connection.id)
    assert status == "completed"
    assert [f.resource_id for f in await tenant_findings(scanner, tenant.tenant_id)] == [production]

    ec2 = aws_client(aws_endpoint, "ec2", HEALTHY_REGION)
    ec2.delete_tags(Resources=[ignored], Tags=[{"Key": "valdrix:ignore"}])
    ec2.delete_tags(Resources=[sandbox], Tags=[{"Key": "env"}])
    ec2.delete_tags(Resources=[scratch], Tags=[{"Key": "team"}])
    _, status = await scan_once(scanner, tenant.tenant_id, connection.id)

    assert status == "completed"
    assert set(by_resource(await tenant_findings(scanner, tenant.tenant_id))) == {
        ("aws.ebs-unattached", ignored),
        ("aws.ebs-unattached", sandbox),
        ("aws.ebs-unattached", production),
        ("aws.eip-unassociated", scratch),
    }


async def test_demo_answer_key_tag_does_not_change_what_is_found(
    runtime: Runtime, make_tenant: Any, aws_endpoint: str
) -> None:
    """Detectors never read ``valdrix-demo:expect``: the same resources give the same findings
    with and without it (even a waste resource mislabelled ``keep`` is still reported)."""
    tenant: TenantFixture = await make_tenant()
    scanner = aws_runtime(runtime, aws_endpoint)
    expect = "valdrix-demo:expect"
    resources = [
        unattached_volume(aws_endpoint, HEALTHY_REGION, tags={expect: "waste:aws.ebs-unattached"}),
        unattached_volume(aws_endpoint, HEALTHY_REGION, size_gb=20, tags={expect: "keep"}),
        elastic_ip(aws_endpoint, HEALTHY_REGION, tags={expect: "waste:aws.eip-unassociated"}),
    ]
    connection = await register_connection(scanner, tenant.tenant_id, regions=[HEALTHY_REGION])

    def outcome(findings: list[Any]) -> dict[tuple[str, str], tuple[Any, ...]]:
        return {
            key: (f.status, f.reason, f.monthly_cost_usd, f.cost_basis, _stable(f.evidence))
            for key, f in by_resource(findings).items()
        }

    _, with_tag_status = await scan_once(scanner, tenant.tenant_id, connection.id)
    with_tag = await tenant_findings(scanner, tenant.tenant_id)
    assert all(expect in f.tags for f in with_tag)
    aws_client(aws_endpoint, "ec2", HEALTHY_REGION).delete_tags(
        Resources=resources, Tags=[{"Key": expect}]
    )
    _, without_tag_status = await scan_once(scanner, tenant.tenant_id, connection.id)
    without_tag = await tenant_findings(scanner, tenant.tenant_id)

    assert with_tag_status == without_tag_status == "completed"
    assert not any(expect in f.tags for f in without_tag)
    assert {f.resource_id for f in with_tag} == set(resources)
    assert outcome(with_tag) == outcome(without_tag)
    assert sum((f.monthly_cost_usd for f in without_tag), Decimal(0)) > 0


def _stable(evidence: dict[str, Any]) -> dict[str, Any]:
    """Evidence without what moves with the clock between two scans."""
    return {k: v for k, v in evidence.items() if k != "age_days"}


def test_a_partitions_units_start_together_not_spread_over_the_whole_scan() -> None:
    """Each region's budget runs from its first unit's start: a region whose units were queued
    behind every other region's would time its last detectors out on a large account."""
    provider_class = load_all_providers().find("aws")
    assert provider_class is not None
    regions = ["us-east-1", "eu-west-1", "ap-south-1"]
    units = provider_class().units(regions, load_all_detectors().for_provider("aws"))

    order = [region for region, _ in units if region in regions]
    # Each region's units are one run: the region changes exactly len(regions) - 1 times.
    changes = sum(a != b for a, b in itertools.pairwise(order))
    assert changes == len(regions) - 1
    assert [(r, d.key) for r, d in units if r not in regions] == [
        ("global", key) for key in ACCOUNT_WIDE_DETECTORS
    ]
