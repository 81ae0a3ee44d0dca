"""Counting each dollar once when several findings price the same money.

A finding keeps its whole monthly figure: whoever acts on it needs all of it. But detectors may
price the same money from different sides (an instance's finding prices the disks attached to
it, and each disk has a finding of its own; a disk's cheaper-type saving is part of what a
finding about that unused disk prices in full). Such a figure names its shared parts
(``Waste.cost_parts``: so much of one cost component of one resource), and totals count each
(place, component, resource) once, at the largest part any finding claims for it. That finding
*carries* the cost; the other findings' parts are *counted under* it and left out of totals.

The largest part is the right one to keep: every part is a share of the same money (the whole
cost, or a saving on it), so the largest is never more than the money and never less than any
one action on it recovers. The same rule makes every total: a scan's ``monthly_waste_usd`` and
the findings summary (``scanning.summary``), and the per-tenant waste metric (the SQL function
of migration 0015).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Claim:
    """One finding's part of a cost component of one resource."""

    finding: uuid.UUID
    detector: str
    # Where the resource id is unique (provider, account, region): the same id elsewhere is
    # another resource.
    place: tuple[str, ...]
    component: str
    resource_id: str
    monthly_usd: Decimal
    # The cost is of the finding's own resource (a disk's cost in the disk's finding).
    own: bool
    # The finding imports a cloud's recommendation (``Detector.imports_from``).
    imported: bool = False


@dataclass(frozen=True)
class CountedUnder:
    """A claim totals leave out: the same cost is counted under ``carrier``."""

    claim: Claim
    carrier: Claim


def counted_under_others(claims: Iterable[Claim]) -> list[CountedUnder]:
    """Every claim on a cost some other finding carries, with that finding's claim."""
    by_cost: defaultdict[tuple[tuple[str, ...], str, str], list[Claim]] = defaultdict(list)
    for claim in claims:
        by_cost[(claim.place, claim.component, claim.resource_id)].append(claim)
    left_out: list[CountedUnder] = []
    for same_cost in by_cost.values():
        if len(same_cost) < 2:
            continue
        carrier = min(same_cost, key=_carrying_order)
        left_out += [CountedUnder(claim, carrier) for claim in same_cost if claim is not carrier]
    return left_out


def _carrying_order(claim: Claim) -> tuple[Decimal, bool, bool, str, str]:
    # The largest part carries the cost; on a tie Valdrix's own finding rather than an imported
    # recommendation (which is shown with it), then the finding about the resource itself (the
    # disk's own finding rather than its instance's), then a fixed order, so that every total
    # and every finding's detail name the same carrier.
    return -claim.monthly_usd, claim.imported, not claim.own, claim.detector, str(claim.finding)
