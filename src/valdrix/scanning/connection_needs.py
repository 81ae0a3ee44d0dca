"""What scanning needs of a connection (plugged into ``connections.needs`` by
``valdrix.wiring``): the actions its provider and detectors call, and valid threshold
overrides."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from valdrix.errors import InvalidInput
from valdrix.scanning.registry import load_all_detectors, load_all_providers


def scan_permissions(provider: str) -> list[str]:
    """What a scan of the provider's connections calls: the provider's own actions (listing
    regions ...) and every action its detectors declare."""
    found = load_all_providers().find(provider)
    own = found.permissions if found else ()
    return sorted({*own, *load_all_detectors().permissions(provider)})


def check_threshold_overrides(overrides: dict[str, dict[str, Any]]) -> None:
    """Each override names a detector and fits its thresholds; else InvalidInput naming the
    field (``thresholds.<detector>.<field>``)."""
    registry = load_all_detectors()
    for key, values in overrides.items():
        try:
            detector = registry.get(key)
        except KeyError:
            raise InvalidInput(f"thresholds.{key}: no such detector") from None
        try:
            detector.thresholds.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(f"thresholds.{key}.{field}: {first['msg']}") from None
