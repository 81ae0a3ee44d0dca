"""What one scan's units share while they run (``ScanContext``), and how each unit ended
(``UnitOutcome``): the engine fills them, ``unit_writes`` stores them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from valdrix.connections.models import CloudConnection
from valdrix.runtime import Runtime
from valdrix.scanning.base import Waste
from valdrix.scanning.models import UnitStatus
from valdrix.scanning.providers.base import ProviderSession, ScanProvider
from valdrix.scanning.shared_reads import SharedReads
from valdrix.scanning.unit_pool import UnitPool


@dataclass
class UnitOutcome:
    region: str  # the provider's partition
    detector: str
    status: UnitStatus
    reason: str | None = None
    wastes: list[Waste] = field(default_factory=list)
    started_at: Any = None


@dataclass
class RegionBudgets:
    """When each unit of a region must give up.

    Until a region answers, its units share one budget from its first unit's start: a hung
    region costs the scan one budget, not one a unit. Once a unit of it has answered, the region
    is not hung, and each later unit has the whole budget from when it has its thread (waiting
    for one, behind another region's hung calls, is not the region's fault). A unit that runs out
    of its budget makes the region hung again: its units not yet started end at once.

    ``answered`` and ``timed_out`` are called from the pool's threads, before a thread is free
    again, so the next unit given that thread already knows.
    """

    _shared_deadline: dict[str, float] = field(default_factory=dict)
    _answering: set[str] = field(default_factory=set)

    def deadline(self, region: str, now: float, budget: float) -> float:
        shared = self._shared_deadline.setdefault(region, now + budget)
        return now + budget if region in self._answering else shared

    def answered(self, region: str) -> None:
        self._answering.add(region)

    def timed_out(self, region: str, now: float) -> None:
        self._answering.discard(region)
        self._shared_deadline[region] = min(self._shared_deadline.get(region, now), now)


@dataclass
class ScanContext:
    runtime: Runtime
    tenant_id: uuid.UUID
    scan_id: uuid.UUID
    connection: CloudConnection
    provider: ScanProvider[Any]
    session: ProviderSession
    pool: UnitPool
    budgets: RegionBudgets = field(default_factory=RegionBudgets)
    # Per region: the describes its detectors share (``shared_reads``).
    shared_reads: dict[str, SharedReads] = field(default_factory=dict)
    partitions: tuple[str, ...] = ()
