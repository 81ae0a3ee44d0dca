"""Counting the resources a scan saw: the account's size, for latency buckets."""

from __future__ import annotations

import threading
from typing import Any

SIZE_BUCKETS = ((100, "small"), (1000, "medium"), (5000, "large"))


def account_size(resources_seen: int) -> str:
    return next((name for limit, name in SIZE_BUCKETS if resources_seen < limit), "xlarge")


class ResourceCounter:
    """Distinct resources in describe/list responses (the account size, for latency buckets).

    Several detectors describe the same volumes and instances, so resources are counted once
    by their id, whichever detector saw them.
    """

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    @property
    def seen(self) -> int:
        return len(self._ids)

    def __call__(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if not model.name.startswith(("Describe", "List")) or model.name == "DescribeRegions":
            return
        ids: set[str] = set()
        for key, value in parsed.items():
            if not isinstance(value, list) or key == "ResponseMetadata":
                continue
            noun = "Instance" if key == "Reservations" else key.removesuffix("s")
            for item in _flatten_reservations(value):
                identity = _identity(item, noun)
                if identity is not None:
                    ids.add(identity)
        with self._lock:
            self._ids |= ids


def _flatten_reservations(items: list[Any]) -> list[dict[str, Any]]:
    # EC2 wraps instances in reservations.
    flat: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict):
            flat.extend(i for i in item.get("Instances") or [item] if isinstance(i, dict))
    return flat


def _identity(item: dict[str, Any], noun: str) -> str | None:
    """The item's own id: ``<Noun>Id``/``Arn``/``Identifier``/``Name`` of its list, else the
    first id-like field (a volume also names its source snapshot, so order matters)."""
    for suffix in ("Id", "Arn", "Identifier", "Name"):
        value = item.get(noun + suffix)
        if isinstance(value, str) and value:
            return f"{noun}{suffix}:{value}"
    for key, value in item.items():
        if isinstance(value, str) and value and key.endswith(("Id", "Arn", "Identifier")):
            return f"{key}:{value}"
    return None
