"""What a detector is, what it sees, and what it reports.

A detector looks at one region of one account and returns ``Waste``: a resource that costs money
for nothing, with the numbers that prove it (evidence) and a monthly dollar figure from the price
catalog. Detectors are synchronous (boto3) and run in the engine's bounded thread pool; they must
page through every describe call and batch CloudWatch reads (``kit.cloudwatch``).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from valdrix.scanning.pricing.catalog import PriceCatalog
from valdrix.scanning.shared_reads import SharedReads

# ``recommendation``: the saving the cloud's own recommendation estimates (imported as it is).
CostBasis = Literal["billed", "list_price", "recommendation", "unknown"]
IGNORE_TAG = "valdrix:ignore"


class Thresholds(BaseModel):
    """Base of every detector's tunables; tenants may override them per connection."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Price:
    monthly_usd: Decimal | None
    basis: CostBasis
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unknown(cls, why: str) -> Price:
        return cls(None, "unknown", {"why": why})


@dataclass(frozen=True)
class CostPart:
    """Part of a finding's monthly figure that is one named cost (``component``, e.g. everything
    a disk bills) of one resource, which another detector's finding may price too. Totals count
    each (component, resource) once: the largest part any of their findings claims for it."""

    component: str
    resource_id: str
    monthly_usd: Decimal

    def as_json(self) -> dict[str, str]:
        return {
            "component": self.component,
            "resource_id": self.resource_id,
            "monthly_usd": str(self.monthly_usd),
        }


@dataclass(frozen=True)
class Waste:
    """One wasteful resource as a detector reports it."""

    resource_id: str
    resource_type: str
    reason: str
    price: Price
    evidence: dict[str, Any]
    resource_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # The parts of ``price`` another detector may price too (each of a component the detector
    # declares in ``shared_costs``); together never more than ``price.monthly_usd``.
    cost_parts: tuple[CostPart, ...] = ()
    # Where the resource lives, for detectors that run once per connection (``Detector.
    # connection_wide``) and see every partition at once; others' findings are of the
    # partition they scanned.
    region: str | None = None


class DetectorSkipped(Exception):
    """The detector has nothing to judge here for a reason that is nobody's fault (the account
    has not turned on the cloud service it reads): its unit ends ``skipped`` with ``reason``,
    which the customer reads, and the scan is not held to have failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Builds a client for a service in the scanned region (for AWS a boto3 client; credentials,
# endpoint and retry configuration are the scan provider's business).
ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class RegionScope:
    """Everything a detector may use while scanning one region: one partition of its provider
    (an AWS region; an Azure subscription and location ...)."""

    account_id: str
    region: str
    client: ClientFactory
    prices: PriceCatalog
    now: dt.datetime
    # Reads the partition's detectors share in one scan (each describe made once); a scope of
    # its own shares nothing.
    shared: SharedReads = field(default_factory=SharedReads)


class Detector(ABC):
    """A waste detector. Subclasses declare the class attributes and implement ``detect``.

    The class docstring says what the detector flags and why it costs money; the registry test
    refuses detectors without one.
    """

    key: ClassVar[str]
    provider: ClassVar[str]
    resource_type: ClassVar[str]
    permissions: ClassVar[tuple[str, ...]]
    thresholds: ClassVar[type[Thresholds]]
    # The cost components its figures may share with other detectors' (each finding says how
    # much of which resource's component in ``Waste.cost_parts``); detectors that declare the
    # same component overlap, and totals count that money once. Empty: its money is its own.
    shared_costs: ClassVar[tuple[str, ...]] = ()
    # Its resources belong to the whole connection, not to one partition (an account's
    # commitments, read from a billing service that answers for every region): it runs once
    # per scan, in its provider's ``connection_wide_partition``, not once per partition.
    connection_wide: ClassVar[bool] = False
    # Its figure is what the resource costs in full, so the tenant's bill for the resource, where
    # known, replaces the list price. False when the figure is a part of that cost (a cheaper
    # configuration's saving, a commitment's unused share): the bill is shown beside it instead.
    prices_whole_resource: ClassVar[bool] = True
    # The cloud's own recommendation service it imports findings from ("AWS Compute
    # Optimizer"), or None for Valdrix's own detectors. A finding imported about a resource one
    # of Valdrix's own findings also prices is shown with that finding, not on its own.
    imports_from: ClassVar[str | None] = None

    @abstractmethod
    def detect(self, scope: RegionScope, thresholds: Any) -> Iterable[Waste]:
        """Yield the waste found in ``scope.region``."""


def tags_of(raw: Iterable[dict[str, str]] | None) -> dict[str, str]:
    """AWS's ``[{"Key": k, "Value": v}]`` as a dict."""
    return {item["Key"]: item.get("Value", "") for item in raw or []}
