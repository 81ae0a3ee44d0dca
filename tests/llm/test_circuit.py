"""The per-provider circuit breaker: after repeated failures calls are refused without reaching
the provider, and after the cooldown one probe at a time finds out whether it is back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from valdrix.llm.circuit import CircuitBreaker, breaker_for, reset_breakers
from valdrix.llm.client import ChatClient, ProviderConfig, ProviderRejected, ProviderUnavailable
from valdrix.simulator.llm_server import SimulatedLLM

COOLDOWN = 30.0
MESSAGES = [{"role": "user", "content": "Summarise the findings."}]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def llm() -> Iterator[SimulatedLLM]:
    with SimulatedLLM(lambda request: "{}") as server:
        yield server


def new_breaker(clock: FakeClock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker(
        f"sim-{uuid.uuid4().hex[:8]}",
        failure_threshold=threshold,
        cooldown_seconds=COOLDOWN,
        clock=clock,
    )


def client_for(llm: SimulatedLLM, breaker: CircuitBreaker) -> ChatClient:
    config = ProviderConfig(
        name=breaker.provider,
        base_url=llm.base_url,
        api_key=None,
        model="sim-model",
        connect_timeout=0.5,
        read_timeout=2.0,
        max_retries=0,
    )
    return ChatClient(config, breaker=breaker)


def circuit_gauge(breaker: CircuitBreaker) -> float | None:
    return REGISTRY.get_sample_value("valdrix_llm_circuit_open", {"provider": breaker.provider})


async def complete(client: ChatClient) -> None:
    await client.complete(MESSAGES, max_tokens=50, json_mode=True)


def test_circuit_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = new_breaker(clock, threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # the count is of failures in a row
    breaker.record_failure()
    breaker.record_failure()
    assert (breaker.state, breaker.allows_calls(), circuit_gauge(breaker)) == ("closed", True, 0)

    breaker.record_failure()

    assert (breaker.state, breaker.allows_calls(), breaker.acquire()) == ("open", False, False)
    assert circuit_gauge(breaker) == 1


def test_after_cooldown_one_probe_at_a_time_and_its_success_closes(clock: FakeClock) -> None:
    breaker = new_breaker(clock, threshold=1)
    breaker.record_failure()
    clock.advance(COOLDOWN - 1)
    assert not breaker.allows_calls()

    clock.advance(1)
    assert (breaker.state, breaker.allows_calls()) == ("half_open", True)
    assert breaker.acquire()
    assert not breaker.acquire()  # the probe is in flight
    assert not breaker.allows_calls()
    assert circuit_gauge(breaker) == 1

    breaker.record_success()

    assert (breaker.state, breaker.acquire(), circuit_gauge(breaker)) == ("closed", True, 0)


def test_failed_probe_reopens_for_a_whole_new_cooldown(clock: FakeClock) -> None:
    breaker = new_breaker(clock, threshold=1)
    breaker.record_failure()
    clock.advance(COOLDOWN)
    assert breaker.acquire()

    breaker.record_failure()

    assert (breaker.state, breaker.allows_calls()) == ("open", False)
    clock.advance(COOLDOWN - 1)
    assert not breaker.acquire()
    clock.advance(1)
    assert breaker.acquire()


def test_registry_keeps_one_breaker_per_provider() -> None:
    reset_breakers()
    groq = breaker_for("api.groq.com", failure_threshold=5, cooldown_seconds=COOLDOWN)

    assert breaker_for("api.groq.com", failure_threshold=5, cooldown_seconds=COOLDOWN) is groq
    assert breaker_for("ollama", failure_threshold=5, cooldown_seconds=COOLDOWN) is not groq
    reset_breakers()
    assert breaker_for("api.groq.com", failure_threshold=5, cooldown_seconds=COOLDOWN) is not groq


async def test_open_circuit_refuses_calls_without_reaching_the_provider(
    llm: SimulatedLLM, clock: FakeClock
) -> None:
    llm.fail_status = 500
    breaker = new_breaker(clock, threshold=2)
    client = client_for(llm, breaker)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await complete(client)
    assert not client.available()

    with pytest.raises(ProviderUnavailable) as raised:
        await complete(client)

    assert "circuit open" in raised.value.reason
    assert llm.calls == 2
    labels = {"provider": breaker.provider, "outcome": "circuit_open"}
    assert REGISTRY.get_sample_value("valdrix_llm_requests_total", labels) == 1


async def test_probe_reaching_a_recovered_provider_closes_the_circuit(
    llm: SimulatedLLM, clock: FakeClock
) -> None:
    llm.fail_status = 500
    breaker = new_breaker(clock, threshold=1)
    client = client_for(llm, breaker)
    with pytest.raises(ProviderUnavailable):
        await complete(client)
    llm.fail_status = None

    clock.advance(COOLDOWN)
    assert client.available()
    await complete(client)

    assert llm.calls == 2
    assert (breaker.state, circuit_gauge(breaker)) == ("closed", 0)


async def test_probe_failing_again_keeps_the_circuit_open(
    llm: SimulatedLLM, clock: FakeClock
) -> None:
    llm.fail_status = 503
    breaker = new_breaker(clock, threshold=1)
    client = client_for(llm, breaker)
    with pytest.raises(ProviderUnavailable):
        await complete(client)

    clock.advance(COOLDOWN)
    with pytest.raises(ProviderUnavailable):
        await complete(client)
    with pytest.raises(ProviderUnavailable):
        await complete(client)

    assert llm.calls == 2  # the first call, the probe; the third was refused locally
    assert breaker.state == "open"


async def test_rejected_requests_do_not_open_the_circuit(
    llm: SimulatedLLM, clock: FakeClock
) -> None:
    llm.fail_status = 400
    breaker = new_breaker(clock, threshold=2)
    client = client_for(llm, breaker)

    for _ in range(3):
        with pytest.raises(ProviderRejected):
            await complete(client)

    assert llm.calls == 3
    assert breaker.state == "closed"


async def test_cancelled_probe_lets_the_next_caller_probe(
    llm: SimulatedLLM, clock: FakeClock
) -> None:
    breaker = new_breaker(clock, threshold=1)
    breaker.record_failure()
    clock.advance(COOLDOWN)
    llm.delay_seconds = 5
    probe = asyncio.create_task(complete(client_for(llm, breaker)))
    while llm.calls == 0:  # noqa: ASYNC110 (the count is kept by the server's thread)
        await asyncio.sleep(0.02)
    assert not breaker.allows_calls()

    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe

    assert breaker.allows_calls()
    assert breaker.state == "half_open"
