"""Hooks: where a higher domain plugs behaviour into a lower one, so imports stay one-way.

A lower domain declares a hook: what it will call, and when (``scanning.flows.SCAN_FINISHED``:
"a scan finished, in its final transaction"). The composition root, ``valdrix.wiring``, plugs
the higher domains' implementations in at start-up. A hook with nothing plugged in fails loudly
when used, instead of silently doing nothing.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class HookNotWired(RuntimeError):
    """A hook was used before ``valdrix.wiring.wire()`` ran in this process."""


class Hook(Generic[T]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._plugged: list[T] = []

    def plug(self, implementation: T) -> None:
        """Add ``implementation`` (once, however often start-up runs)."""
        if implementation not in self._plugged:
            self._plugged.append(implementation)

    @property
    def plugged(self) -> tuple[T, ...]:
        if not self._plugged:
            raise HookNotWired(
                f"nothing is plugged into {self.name!r}: call valdrix.wiring.wire() at start-up"
            )
        return tuple(self._plugged)
