"""AWS as a scan provider: the connection's IAM role, assumed with its external id; one
partition per region (the connection's allow-list, else every region the account has enabled);
boto3 clients per (service, region), each counting the resources it lists; the shipped AWS list
prices; a unit is denied when AWS refuses one of its calls for want of a permission."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from valdrix.connections.access import aws_access
from valdrix.connections.models import CloudConnection
from valdrix.connections.providers.aws import (
    DENIED_CODES,
    AwsAccess,
    AwsAccessError,
    Credentials,
    error_code,
)
from valdrix.runtime import Runtime
from valdrix.scanning.base import ClientFactory
from valdrix.scanning.models import UnitStatus
from valdrix.scanning.pricing.catalog import PriceCatalog
from valdrix.scanning.providers.aws_pricing import aws_catalog
from valdrix.scanning.providers.base import ProviderAccessError, ProviderSession, ScanProvider
from valdrix.scanning.registry import scan_providers
from valdrix.scanning.resources import ResourceCounter

GLOBAL_SERVICES_REGION = "us-east-1"


@dataclass
class AwsSession(ProviderSession):
    access: AwsAccess
    credentials: Credentials
    counter: ResourceCounter = field(default_factory=ResourceCounter)
    # Each client with the time its calls were given when it was built.
    _clients: dict[tuple[str, str], tuple[Any, float]] = field(
        default_factory=dict, init=False, repr=False
    )
    _building: dict[tuple[str, str], threading.Lock] = field(
        default_factory=dict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def resources_seen(self) -> int:
        return self.counter.seen

    def client(self, service: str, region: str, deadline: float) -> Any:
        # boto3 clients are thread-safe and costly to build: one per (service, region) per scan,
        # its calls bounded by the budget the unit that builds it has left.
        # A unit whose client exists never waits while another one is built (building takes
        # tens of ms of CPU, hundreds of clients in a large scan): one lock per client.
        # One built late in a region's shared budget has short timeouts: a unit with much more
        # time (its region has answered since) builds a new one rather than inherit them.
        key = (service, region)
        built = self._clients.get(key)
        if built is not None and not _outgrown(built, deadline):
            return built[0]
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        with building:
            built = self._clients.get(key)
            if built is None or _outgrown(built, deadline):
                within = deadline - time.monotonic()
                client = self.access.client(service, region, self.credentials, within=within)
                client.meta.events.register("after-call", self.counter)
                built = self._clients[key] = (client, within)
        return built[0]


def _outgrown(built: tuple[Any, float], deadline: float) -> bool:
    """The unit asking has more than twice the time the client's calls were built for."""
    return deadline - time.monotonic() > 2 * built[1]


@contextmanager
def _starting() -> Iterator[None]:
    """AWS's refusals before the first unit, as the reason the scan could not start."""
    try:
        yield
    except AwsAccessError as exc:
        raise ProviderAccessError(exc.reason) from exc
    except (BotoCoreError, ClientError) as exc:  # AWS unreachable or refusing region discovery
        raise ProviderAccessError(f"could not start the scan: {exc}"[:500]) from exc


@scan_providers.register("aws")
class AwsScanProvider(ScanProvider[AwsSession]):
    title = "Amazon Web Services"
    partition = "region"
    permissions = ("ec2:DescribeRegions",)

    def open(self, runtime: Runtime, connection: CloudConnection) -> AwsSession:
        access = aws_access(runtime.settings)
        with _starting():
            credentials = access.assume(connection.role_arn, connection.external_id)
            account_id = connection.account_id or access.caller_account(credentials)
        return AwsSession(connection, account_id, access, credentials)

    def partitions(self, session: AwsSession) -> list[str]:
        with _starting():
            regions = session.connection.regions or session.access.enabled_regions(
                session.credentials
            )
        return list(regions)

    def client_factory(self, session: AwsSession, partition: str, deadline: float) -> ClientFactory:
        # AWS's account-wide services (Cost Explorer, Savings Plans) answer in us-east-1.
        region = (
            GLOBAL_SERVICES_REGION if partition == self.connection_wide_partition else partition
        )
        return lambda service: session.client(service, region, deadline)

    def prices(self) -> PriceCatalog:
        return aws_catalog()

    def classify(self, error: Exception) -> tuple[UnitStatus, str]:
        if isinstance(error, ConnectTimeoutError | ReadTimeoutError):
            # The clients' timeouts come from the region's budget: its calls ran out of it.
            return UnitStatus.timed_out, f"{type(error).__name__}: {error}"[:500]
        if isinstance(error, ClientError):
            code = error_code(error) or "Unknown"
            status = UnitStatus.denied if code in DENIED_CODES else UnitStatus.failed
            return status, f"{error.operation_name}: {code}"
        return super().classify(error)
