"""What every part of the demo account's seeding shares: the ``valdrix-demo:expect`` tag that
says what a scan should report about a resource, the record of each seeded resource, and the
metric series idle detectors read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

EXPECT_TAG = "valdrix-demo:expect"
KEEP = "keep"
WASTE_PREFIX = "waste:"
IGNORE = {"Key": "valdrix:ignore", "Value": "true"}


def expect_value(detectors: Sequence[str]) -> str:
    """The ``valdrix-demo:expect`` value for a resource these detectors flag (none: keep)."""
    return WASTE_PREFIX + ",".join(detectors) if detectors else KEEP


def expected_detectors(value: str) -> tuple[str, ...]:
    """The detectors a ``valdrix-demo:expect`` value names (empty for ``keep``)."""
    if value == KEEP:
        return ()
    if not value.startswith(WASTE_PREFIX) or len(value) == len(WASTE_PREFIX):
        raise ValueError(f"not a {EXPECT_TAG} value: {value!r}")
    return tuple(value.removeprefix(WASTE_PREFIX).split(","))


@dataclass(frozen=True)
class SeededResource:
    """One resource of the demo account, named as a finding names it."""

    resource_id: str
    region: str
    kind: str
    detectors: tuple[str, ...]  # empty: no detector may flag it


def expect_tags(
    detectors: Sequence[str], name: str | None = None, *extra: dict[str, str]
) -> list[Any]:
    """AWS tags saying what a scan should report, with a ``Name`` and ``extra`` tags."""
    tags = [{"Key": EXPECT_TAG, "Value": expect_value(detectors)}, *extra]
    return tags + ([{"Key": "Name", "Value": name}] if name else [])


def tag_spec(resource_type: str, tags: list[Any]) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": tags}]


@dataclass
class Series:
    """A metric series the seeder gives a datapoint a day (see ``RegionSeeder.put_metrics``)."""

    namespace: str
    metric: str
    dimension: tuple[str, str]
    daily: float
    # Further dimensions, for metrics published under several at once.
    more: tuple[tuple[str, str], ...] = ()
