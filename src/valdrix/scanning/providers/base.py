"""What a scan provider is: the part of a scan that knows one cloud.

The engine scans every connection the same way, in units of (partition x detector). The
connection's provider says what that means for its cloud: how to act as the connection
(``open``), what the scan's partitions are (AWS: regions; Azure: subscriptions x locations;
GCP: projects x regions), how a detector reaches the cloud in one partition
(``client_factory``), which catalog prices its resources (``prices``) and which of its errors
mean a permission is missing (``classify``). Its detectors register under its key
(``scanning.registry.detectors``) and declare the permissions they call; the provider declares
the ones it calls itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from valdrix.connections.models import CloudConnection
from valdrix.runtime import Runtime
from valdrix.scanning.base import ClientFactory, Detector
from valdrix.scanning.models import UnitStatus
from valdrix.scanning.pricing.catalog import PriceCatalog


class ProviderAccessError(Exception):
    """The scan cannot start: Valdrix could not act as the connection or list its partitions.
    ``reason`` is for the customer and becomes the failed scan's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ProviderSession:
    """One scan's hold on one connection: the account it answered as, and whatever the
    provider keeps for the scan (credentials, clients), in its own subclass."""

    connection: CloudConnection
    account_id: str

    @property
    def resources_seen(self) -> int:
        """Distinct resources the scan's clients saw (the account's size, for the latency
        metric); 0 where the provider does not count them."""
        return 0


SessionT = TypeVar("SessionT", bound=ProviderSession)


class ScanProvider(ABC, Generic[SessionT]):
    """A cloud Valdrix scans. Subclasses declare the class attributes and register with
    ``@scan_providers.register("<key>")`` (``scanning.registry``), which sets ``key``.

    ``open``, ``partitions`` and the clients block (cloud SDKs are synchronous): the engine
    calls them in worker threads.
    """

    key: ClassVar[str]
    # The cloud's name for people, and what one partition of a scan is (named in unit reasons).
    title: ClassVar[str]
    partition: ClassVar[str]
    # What the provider itself calls (listing partitions ...); its detectors declare the rest.
    permissions: ClassVar[tuple[str, ...]]
    # Where connection-wide detectors (``Detector.connection_wide``) run: one unit per scan,
    # its findings recorded under this partition name, which ``client_factory`` must serve.
    connection_wide_partition: ClassVar[str] = "global"

    @abstractmethod
    def open(self, runtime: Runtime, connection: CloudConnection) -> SessionT:
        """Act as the connection for one scan; ProviderAccessError if that is refused."""

    @abstractmethod
    def partitions(self, session: SessionT) -> list[str]:
        """What the scan covers, one unit per partition and detector; ProviderAccessError if
        the cloud will not say."""

    @abstractmethod
    def client_factory(self, session: SessionT, partition: str, deadline: float) -> ClientFactory:
        """What detectors get as ``scope.client`` in ``partition``. Their calls must give up by
        ``deadline`` (``time.monotonic()``): connect and read timeouts, and retries, derived
        from the time left, so that a cloud that stops answering holds a thread no longer than
        the partition's budget."""

    def units(
        self, partitions: list[str], detectors: list[type[Detector]]
    ) -> list[tuple[str, type[Detector]]]:
        """The scan's units: each detector in every partition, a connection-wide one once.

        Partition after partition: each partition's budget runs from its first unit's start, so
        its units must start together, not spread over the whole scan behind other partitions'.
        The few connection-wide units go first, so a scan cut short still has them.
        """
        regional = [d for d in detectors if not d.connection_wide]
        wide = [d for d in detectors if d.connection_wide]
        return [(self.connection_wide_partition, d) for d in wide] + [
            (partition, d) for partition in partitions for d in regional
        ]

    @abstractmethod
    def prices(self) -> PriceCatalog:
        """The list-price catalog the provider's detectors quote from."""

    def classify(self, error: Exception) -> tuple[UnitStatus, str]:
        """How a unit whose detector raised ``error`` ends, and the reason the customer reads.

        Providers recognise their cloud's refusals (``denied``); anything else failed.
        """
        return UnitStatus.failed, f"{type(error).__name__}: {error}"[:500]
