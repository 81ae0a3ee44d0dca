"""A circuit breaker per LLM provider, kept in process memory.

When a provider is down, every analysis would otherwise wait out its timeouts and retries. After
``failure_threshold`` failed calls in a row the breaker opens and calls are refused at once; once
the cooldown has passed, one probe call at a time is let through to find out whether the provider
is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from valdrix.kit import metrics

CircuitState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Closed -> open after consecutive failures -> half-open (one probe) -> closed or open."""

    def __init__(
        self,
        provider: str,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive_failures = 0
        self._opened_at: float | None = None  # None while closed
        self._probe_in_flight = False
        self._open_gauge = metrics.LLM_CIRCUIT_OPEN.labels(provider=provider)
        self._open_gauge.set(0)

    @property
    def state(self) -> CircuitState:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._probe_in_flight or self._cooldown_elapsed():
                return "half_open"
            return "open"

    def allows_calls(self) -> bool:
        """Whether a call would be let through now, without taking the probe slot."""
        with self._lock:
            return self._opened_at is None or (
                not self._probe_in_flight and self._cooldown_elapsed()
            )

    def acquire(self) -> bool:
        """Whether the caller may call now; in half-open this takes the single probe slot.

        Every True must be followed by ``record_success``, ``record_failure`` or ``release``.
        """
        with self._lock:
            if self._opened_at is None:
                return True
            if self._probe_in_flight or not self._cooldown_elapsed():
                return False
            self._probe_in_flight = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._consecutive_failures = 0
            self._opened_at = None
            self._probe_in_flight = False
            self._open_gauge.set(0)

    def record_failure(self) -> None:
        with self._lock:
            self._consecutive_failures += 1
            # A failed probe re-opens at once, with a fresh cooldown.
            if self._opened_at is not None or (
                self._consecutive_failures >= self.failure_threshold
            ):
                self._opened_at = self._clock()
                self._probe_in_flight = False
                self._open_gauge.set(1)

    def release(self) -> None:
        """The call ended without a verdict on the provider (it was cancelled): free the probe
        slot so the next caller can probe, and change nothing else."""
        with self._lock:
            self._probe_in_flight = False

    def _cooldown_elapsed(self) -> bool:
        assert self._opened_at is not None
        return self._clock() - self._opened_at >= self.cooldown_seconds


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(
    provider: str, *, failure_threshold: int, cooldown_seconds: float
) -> CircuitBreaker:
    """The process's breaker for ``provider``, created on first use (later settings are ignored:
    one provider has one breaker per process)."""
    with _breakers_lock:
        breaker = _breakers.get(provider)
        if breaker is None:
            breaker = CircuitBreaker(
                provider, failure_threshold=failure_threshold, cooldown_seconds=cooldown_seconds
            )
            _breakers[provider] = breaker
        return breaker


def reset_breakers() -> None:
    """Forget every breaker (tests)."""
    with _breakers_lock:
        _breakers.clear()
