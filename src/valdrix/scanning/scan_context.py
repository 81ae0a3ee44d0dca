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
class ScanContext:
    runtime: Runtime
    tenant_id: uuid.UUID
    scan_id: uuid.UUID
    connection: CloudConnection
    provider: ScanProvider[Any]
    session: ProviderSession
    pool: UnitPool
    # When each region's shared budget ends (counted from its first unit's start) ...
    region_deadlines: dict[str, float] = field(default_factory=dict)
    # ... and the regions that have answered a unit (written from the pool's threads).
    answered: set[str] = field(default_factory=set)
    # Per region: the describes its detectors share (``shared_reads``).
    shared_reads: dict[str, SharedReads] = field(default_factory=dict)
    partitions: tuple[str, ...] = ()
