"""Adding a cloud is a plugin, not an engine change: a toy provider and its one detector,
registered the way AWS and its detectors are, are scanned end to end by the engine (real
PostgreSQL, ``run_scan`` in-process) into units, findings and totals of their own.

The toy cloud is an in-memory dict of disks per zone; its provider opens a connection with the
connection's secret, scans two zones, hands detectors a client over that dict, prices disks from
its own catalog and calls its cloud's refusals ``denied``. Registration lasts one test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from pydantic import Field

from tests.conftest import TenantFixture
from tests.scanning.helpers import (
    by_resource,
    new_scan,
    scan_events,
    scan_once,
    scan_units,
    tenant_findings,
)
from valdrix.connections.models import CloudConnection
from valdrix.connections.needs import role_permissions
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.scanning.base import ClientFactory, Detector, Price, RegionScope, Thresholds, Waste
from valdrix.scanning.engine import run_scan
from valdrix.scanning.findings import fingerprint
from valdrix.scanning.models import Scan, UnitStatus
from valdrix.scanning.pricing.catalog import PriceCatalog, Quote
from valdrix.scanning.providers.base import ProviderAccessError, ProviderSession, ScanProvider
from valdrix.scanning.registry import detectors, scan_providers
from valdrix.scanning.repository import ScanRepository

ACCOUNT = "toy-account-42"
SECRET = "toy-secret"
DETECTOR = "toy.disk-unattached"
GB_MONTH = Decimal("0.05")


# --- the toy cloud --------------------------------------------------------------------------


class ToyRefused(Exception):
    """The toy cloud's answer to a call the connection may not make."""

    def __init__(self, operation: str) -> None:
        super().__init__(f"{operation} refused")
        self.operation = operation


@dataclass
class ToyCloud:
    """Disks per zone (``{"id", "size_gb", "attached_to", "tags"}``), and zones that refuse."""

    disks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refusing: set[str] = field(default_factory=set)


class ToyDisks:
    """The client detectors get for the ``disks`` service of one zone."""

    def __init__(self, cloud: ToyCloud, zone: str, seen: set[str]) -> None:
        self._cloud, self._zone, self._seen = cloud, zone, seen

    def list_disks(self) -> list[dict[str, Any]]:
        if self._zone in self._cloud.refusing:
            raise ToyRefused("ListDisks")
        disks = self._cloud.disks.get(self._zone, [])
        self._seen.update(disk["id"] for disk in disks)
        return disks


class ToyPrices(PriceCatalog):
    """The toy cloud's list prices: a disk's GB-month."""

    def disk_gb_month(self, zone: str) -> Quote | None:
        return self._quote(zone, "GB-month", "disk_gb_month")


TOY_PRICES = ToyPrices(
    {
        "as_of": "2025-01-01",
        "hours_per_month": 730,
        "reference_region": "p1",
        "regions": ["p1", "p2"],
        "sources": {"list": {"file": "toy cloud list prices", "as_of": "2025-01-01"}},
        "prices": {
            zone: {"disk_gb_month": {"usd": str(GB_MONTH), "unit": "GB-month", "source": "list"}}
            for zone in ("p1", "p2")
        },
    }
)


# --- its provider and detector, as a provider's folder would declare them -------------------


@dataclass
class ToySession(ProviderSession):
    seen: set[str] = field(default_factory=set)

    @property
    def resources_seen(self) -> int:
        return len(self.seen)


class ToyProvider(ScanProvider[ToySession]):
    """Scans the toy cloud: two zones, one client per zone, its own price list."""

    title = "Toy cloud"
    partition = "zone"
    permissions = ("toy:ListZones",)
    cloud: ClassVar[ToyCloud]  # where the provider reaches its cloud (for AWS: settings)

    def open(self, runtime: Runtime, connection: CloudConnection) -> ToySession:
        if connection.external_id != SECRET:
            raise ProviderAccessError("the toy cloud refused the connection's secret")
        return ToySession(connection, ACCOUNT)

    def partitions(self, session: ToySession) -> list[str]:
        return ["p1", "p2"]

    def client_factory(self, session: ToySession, partition: str, deadline: float) -> ClientFactory:
        def client(service: str) -> ToyDisks:
            assert service == "disks"
            return ToyDisks(self.cloud, partition, session.seen)

        return client

    def prices(self) -> PriceCatalog:
        return TOY_PRICES

    def classify(self, error: Exception) -> tuple[UnitStatus, str]:
        if isinstance(error, ToyRefused):
            return UnitStatus.denied, f"{error.operation}: refused"
        return super().classify(error)


class UnattachedDiskThresholds(Thresholds):
    min_size_gb: int = Field(0, ge=0, description="Smaller disks are not reported.")


class UnattachedToyDisk(Detector):
    """Flags toy disks attached to nothing. A disk bills for its size every month whether or
    not anything uses it."""

    provider = "toy"
    resource_type = "toy-disk"
    permissions = ("toy:ListDisks",)
    thresholds = UnattachedDiskThresholds

    def detect(self, scope: RegionScope, thresholds: UnattachedDiskThresholds) -> Iterable[Waste]:
        prices = scope.prices
        assert isinstance(prices, ToyPrices)
        for disk in scope.client("disks").list_disks():
            if disk["attached_to"] is not None or disk["size_gb"] < thresholds.min_size_gb:
                continue
            quote = prices.disk_gb_month(scope.region)
            assert quote is not None
            yield Waste(
                resource_id=disk["id"],
                resource_type=self.resource_type,
                reason=f"Disk of {disk['size_gb']} GB attached to nothing.",
                price=Price(quote.unit_price * disk["size_gb"], "list_price", quote.detail(prices)),
                evidence={"size_gb": disk["size_gb"]},
                tags=disk.get("tags", {}),
            )


@pytest.fixture
def toy_cloud() -> Iterator[ToyCloud]:
    """The toy provider and its detector registered, over an empty cloud, for one test."""
    ToyProvider.cloud = ToyCloud()
    scan_providers.register("toy")(ToyProvider)
    detectors.register(DETECTOR)(UnattachedToyDisk)
    try:
        yield ToyProvider.cloud
    finally:
        detectors.unregister(DETECTOR)
        scan_providers.unregister("toy")


def disk(disk_id: str, size_gb: int, *, attached_to: str | None = None, **tags: str) -> Any:
    return {"id": disk_id, "size_gb": size_gb, "attached_to": attached_to, "tags": tags}


async def toy_connection(
    runtime: Runtime, tenant_id: uuid.UUID, *, secret: str = SECRET
) -> CloudConnection:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        connection = CloudConnection(
            tenant_id=tenant_id,
            provider="toy",
            name=f"toy-{uuid.uuid4().hex[:6]}",
            role_arn=f"toy:{ACCOUNT}",
            external_id=secret,
            status="verified",
        )
        session.add(connection)
        await session.flush()
        return connection


async def scan_row(runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID) -> Scan:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        scan = await ScanRepository(session).get(scan_id)
    assert scan is not None
    return scan


# --- scans ----------------------------------------------------------------------------------


async def test_registered_toy_provider_is_scanned_per_zone_into_priced_findings_of_its_own(
    runtime: Runtime, make_tenant: Any, toy_cloud: ToyCloud
) -> None:
    tenant: TenantFixture = await make_tenant()
    toy_cloud.disks = {
        "p1": [disk("d-1", 100), disk("d-2", 50, attached_to="vm-1")],
        "p2": [disk("d-3", 20), disk("d-4", 500, **{"valdrix:ignore": "true"})],
    }
    connection = await toy_connection(runtime, tenant.tenant_id)

    scan_id, status = await scan_once(runtime, tenant.tenant_id, connection.id)

    assert status == "completed"
    units = await scan_units(runtime, tenant.tenant_id, scan_id)
    assert {(u.region, u.detector, u.status, u.findings_count) for u in units} == {
        ("p1", DETECTOR, "ok", 1),
        ("p2", DETECTOR, "ok", 1),
    }
    findings = by_resource(await tenant_findings(runtime, tenant.tenant_id))
    assert set(findings) == {(DETECTOR, "d-1"), (DETECTOR, "d-3")}
    for resource_id, zone, size_gb in (("d-1", "p1", 100), ("d-3", "p2", 20)):
        found = findings[(DETECTOR, resource_id)]
        assert (found.provider, found.account_id, found.region) == ("toy", ACCOUNT, zone)
        assert found.fingerprint == fingerprint("toy", ACCOUNT, zone, resource_id, DETECTOR)
        assert (found.cost_basis, found.monthly_cost_usd) == ("list_price", GB_MONTH * size_gb)
        assert found.price_detail["catalog_as_of"] == "2025-01-01"
        assert found.evidence == {"size_gb": size_gb}

    scan = await scan_row(runtime, tenant.tenant_id, scan_id)
    assert scan.regions == ["p1", "p2"]
    assert (scan.findings_count, scan.monthly_waste_usd) == (2, GB_MONTH * 120)
    assert scan.resources_seen == 4
    events = await scan_events(runtime, tenant.tenant_id, scan_id)
    assert [e.type for e in events].count("unit.finished") == 2
    assert events[-1].type == "scan.finished"
    assert events[-1].payload["units"] == {"ok": 2}
    assert Decimal(events[-1].payload["monthly_waste_usd"]) == GB_MONTH * 120


class AccountWideToyDisk(UnattachedToyDisk):
    """Flags the toy account's shared disks attached to nothing, listed once for the whole
    account. They bill like any other disk."""

    connection_wide = True


async def test_connection_wide_detector_runs_once_per_scan_in_the_providers_partition(
    runtime: Runtime, make_tenant: Any, toy_cloud: ToyCloud
) -> None:
    tenant: TenantFixture = await make_tenant()
    # What the toy cloud answers for the whole account sits under its connection-wide name.
    toy_cloud.disks = {"p1": [disk("d-1", 10)], "global": [disk("shared-1", 40)]}
    wide = "toy.shared-disk-unattached"
    detectors.register(wide)(AccountWideToyDisk)
    try:
        connection = await toy_connection(runtime, tenant.tenant_id)
        scan_id, status = await scan_once(runtime, tenant.tenant_id, connection.id)
    finally:
        detectors.unregister(wide)

    assert status == "completed"
    units = await scan_units(runtime, tenant.tenant_id, scan_id)
    assert sorted((u.region, u.detector, u.findings_count) for u in units) == [
        ("global", wide, 1),
        ("p1", DETECTOR, 1),
        ("p2", DETECTOR, 0),
    ]
    findings = by_resource(await tenant_findings(runtime, tenant.tenant_id))
    assert findings[(wide, "shared-1")].region == "global"
    assert (await scan_row(runtime, tenant.tenant_id, scan_id)).regions == ["p1", "p2"]


async def test_toy_cloud_refusing_a_zone_is_a_denied_unit_in_the_providers_words(
    runtime: Runtime, make_tenant: Any, toy_cloud: ToyCloud
) -> None:
    tenant: TenantFixture = await make_tenant()
    toy_cloud.disks = {"p1": [disk("d-1", 10)], "p2": [disk("d-2", 10)]}
    toy_cloud.refusing = {"p2"}
    connection = await toy_connection(runtime, tenant.tenant_id)

    scan_id, status = await scan_once(runtime, tenant.tenant_id, connection.id)

    assert status == "partial"
    units = {u.region: u for u in await scan_units(runtime, tenant.tenant_id, scan_id)}
    assert (units["p1"].status, units["p1"].findings_count) == ("ok", 1)
    assert (units["p2"].status, units["p2"].reason) == ("denied", "ListDisks: refused")
    assert [f.resource_id for f in await tenant_findings(runtime, tenant.tenant_id)] == ["d-1"]


async def test_toy_connection_the_cloud_refuses_fails_the_scan_with_the_providers_reason(
    runtime: Runtime, make_tenant: Any, toy_cloud: ToyCloud
) -> None:
    tenant: TenantFixture = await make_tenant()
    connection = await toy_connection(runtime, tenant.tenant_id, secret="wrong")
    scan_id = await new_scan(runtime, tenant.tenant_id, connection.id)

    assert await run_scan(runtime, tenant.tenant_id, scan_id) == "failed"
    scan = await scan_row(runtime, tenant.tenant_id, scan_id)
    assert scan.status_reason == "the toy cloud refused the connection's secret"
    assert await scan_units(runtime, tenant.tenant_id, scan_id) == []


async def test_connection_of_a_provider_nobody_registered_fails_its_scan_saying_so(
    runtime: Runtime, make_tenant: Any
) -> None:
    tenant: TenantFixture = await make_tenant()
    connection = await toy_connection(runtime, tenant.tenant_id)
    scan_id = await new_scan(runtime, tenant.tenant_id, connection.id)

    assert await run_scan(runtime, tenant.tenant_id, scan_id) == "failed"
    scan = await scan_row(runtime, tenant.tenant_id, scan_id)
    assert scan.status_reason == "Valdrix cannot scan 'toy' connections"


def test_toy_connections_role_needs_what_the_provider_and_its_detector_declare(
    toy_cloud: ToyCloud,
) -> None:
    assert role_permissions("toy") == {"toy:ListZones", "toy:ListDisks"}


async def test_a_unit_whose_findings_cannot_be_stored_is_failed_not_missing(
    runtime: Runtime, make_tenant: Any, toy_cloud: ToyCloud
) -> None:
    """p2's cloud names a disk with an id longer than any Valdrix stores: that unit is recorded
    failed with the database's reason, p1's finding is kept, and the scan is partial (not
    completed with p2's results silently missing)."""
    tenant: TenantFixture = await make_tenant()
    toy_cloud.disks = {"p1": [disk("d-1", 10)], "p2": [disk("d-" + "x" * 600, 10)]}
    connection = await toy_connection(runtime, tenant.tenant_id)

    scan_id, status = await scan_once(runtime, tenant.tenant_id, connection.id)

    assert status == "partial"
    units = {u.region: u for u in await scan_units(runtime, tenant.tenant_id, scan_id)}
    assert (units["p1"].status, units["p1"].findings_count) == ("ok", 1)
    assert (units["p2"].status, units["p2"].findings_count) == ("failed", 0)
    assert (units["p2"].reason or "").startswith("its results could not be stored: ")
    assert "value too long" in (units["p2"].reason or "")
    assert "INSERT" not in (units["p2"].reason or "")  # the database's words, not the SQL
    assert set(by_resource(await tenant_findings(runtime, tenant.tenant_id))) == {(DETECTOR, "d-1")}
    finished = (await scan_events(runtime, tenant.tenant_id, scan_id))[-1]
    assert finished.payload["units"] == {"ok": 1, "failed": 1}
