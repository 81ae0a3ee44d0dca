"""The detector registry: ``@detectors.register`` on each detector class, keyed ``aws.<name>``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from valdrix.scanning.base import Detector


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

    def get(self, key: str) -> type[Detector]:
        return self._detectors[key]

    def for_provider(self, provider: str) -> list[type[Detector]]:
        return [d for k, d in sorted(self._detectors.items()) if d.provider == provider]

    def __iter__(self) -> Iterator[type[Detector]]:
        return iter([self._detectors[k] for k in sorted(self._detectors)])

    def __len__(self) -> int:
        return len(self._detectors)

    def permissions(self, provider: str) -> list[str]:
        """Every IAM action the provider's detectors declare (the customer's policy)."""
        return sorted({p for d in self.for_provider(provider) for p in d.permissions})


detectors = DetectorRegistry()


def load_all_detectors() -> DetectorRegistry:
    """Import every detector module so its classes register themselves."""
    import valdrix.scanning.detectors.aws  # noqa: F401

    return detectors
