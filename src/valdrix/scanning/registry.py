"""The plugin registries: ``@detectors.register("aws.<name>")`` on each detector class and
``@scan_providers.register("aws")`` on each provider class (``scanning.providers.base``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from valdrix.scanning.base import Detector
from valdrix.scanning.providers.base import ScanProvider

ProviderT = TypeVar("ProviderT", bound=type[ScanProvider[Any]])


class DetectorRegistry:
    def __init__(self) -> None:
        self._detectors: dict[str, type[Detector]] = {}

    def register(self, key: str) -> Callable[[type[Detector]], type[Detector]]:
        def decorate(cls: type[Detector]) -> type[Detector]:
            if key in self._detectors:
                raise ValueError(f"detector {key!r} is registered twice")
            if not key.startswith(f"{cls.provider}."):
                raise ValueError(f"detector key {key!r} must start with '{cls.provider}.'")
            cls.key = key
            self._detectors[key] = cls
            return cls

        return decorate

    def unregister(self, key: str) -> None:
        del self._detectors[key]

    def get(self, key: str) -> type[Detector]:
        return self._detectors[key]

    def for_provider(self, provider: str) -> list[type[Detector]]:
        return [d for k, d in sorted(self._detectors.items()) if d.provider == provider]

    def __iter__(self) -> Iterator[type[Detector]]:
        return iter([self._detectors[k] for k in sorted(self._detectors)])

    def __len__(self) -> int:
        return len(self._detectors)

    def shared_costs(self) -> dict[str, list[str]]:
        """Each cost component detectors declare they may price in common, with their keys:
        findings of these detectors may overlap, and totals count such money once."""
        sharing: dict[str, list[str]] = {}
        for key, detector in sorted(self._detectors.items()):
            for component in detector.shared_costs:
                sharing.setdefault(component, []).append(key)
        return sharing

    def permissions(self, provider: str) -> list[str]:
        """Every IAM action the provider's detectors declare (the customer's policy)."""
        return sorted({p for d in self.for_provider(provider) for p in d.permissions})


class ProviderRegistry:
    """Scan providers by key, the ``provider`` of the connections they scan."""

    def __init__(self) -> None:
        self._providers: dict[str, type[ScanProvider[Any]]] = {}

    def register(self, key: str) -> Callable[[ProviderT], ProviderT]:
        def decorate(cls: ProviderT) -> ProviderT:
            if key in self._providers:
                raise ValueError(f"scan provider {key!r} is registered twice")
            cls.key = key
            self._providers[key] = cls
            return cls

        return decorate

    def unregister(self, key: str) -> None:
        del self._providers[key]

    def find(self, key: str) -> type[ScanProvider[Any]] | None:
        return self._providers.get(key)


detectors = DetectorRegistry()
scan_providers = ProviderRegistry()


def load_all_detectors() -> DetectorRegistry:
    """Import every detector module so its classes register themselves."""
    import valdrix.scanning.detectors.aws  # noqa: F401

    return detectors


def load_all_providers() -> ProviderRegistry:
    """Import every provider module so it registers itself."""
    import valdrix.scanning.providers.aws  # noqa: F401

    return scan_providers
