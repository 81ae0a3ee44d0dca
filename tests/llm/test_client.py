"""The chat-completions client against a real local server (``SimulatedLLM``): what it sends,
what it returns, which failures it retries, and how it reports the ones it cannot fix."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import REGISTRY

from valdrix.config import Settings
from valdrix.llm.circuit import CircuitBreaker
from valdrix.llm.client import (
    ChatClient,
    ProviderConfig,
    ProviderRejected,
    ProviderUnavailable,
    Usage,
    providers_from_settings,
)
from valdrix.simulator.llm_server import SimulatedLLM

API_KEY = "sk-test-0123456789abcdef"
REPLY = '{"summary": "two idle volumes"}'
MESSAGES = [
    {"role": "system", "content": "Answer in JSON."},
    {"role": "user", "content": "Summarise the findings."},
]


@pytest.fixture
def llm() -> Iterator[SimulatedLLM]:
    with SimulatedLLM(lambda request: REPLY) as server:
        yield server


def client_for(
    base_url: str,
    *,
    max_retries: int = 2,
    read_timeout: float = 2.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ChatClient:
    name = f"sim-{uuid.uuid4().hex[:8]}"  # a breaker and metric series of its own
    config = ProviderConfig(
        name=name,
        base_url=base_url,
        api_key=API_KEY,
        model="sim-model",
        connect_timeout=0.5,
        read_timeout=read_timeout,
        max_retries=max_retries,
    )
    breaker = CircuitBreaker(name, failure_threshold=100, cooldown_seconds=60)
    return ChatClient(config, breaker=breaker, transport=transport)


def requests_counted(client: ChatClient, outcome: str) -> float:
    labels = {"provider": client.config.name, "outcome": outcome}
    return REGISTRY.get_sample_value("valdrix_llm_requests_total", labels) or 0.0


async def complete(client: ChatClient, *, json_mode: bool = True) -> object:
    return await client.complete(MESSAGES, max_tokens=300, json_mode=json_mode)


async def test_completion_carries_the_reply_text_and_the_reported_usage(
    llm: SimulatedLLM,
) -> None:
    client = client_for(llm.base_url)

    completion = await client.complete(MESSAGES, max_tokens=300, json_mode=True)

    prompt_bytes = len("Answer in JSON.Summarise the findings.")
    assert completion.text == REPLY
    assert completion.usage == Usage(
        prompt_tokens=math.ceil(prompt_bytes / 4), completion_tokens=math.ceil(len(REPLY) / 4)
    )
    assert (completion.model, completion.provider) == ("sim-model", client.config.name)
    assert llm.requests == [
        {
            "model": "sim-model",
            "messages": MESSAGES,
            "max_tokens": 300,
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
    ]
    assert requests_counted(client, "ok") == 1


async def test_without_json_mode_no_response_format_is_requested(llm: SimulatedLLM) -> None:
    await complete(client_for(llm.base_url), json_mode=False)

    assert "response_format" not in llm.requests[0]


async def test_reply_without_usage_has_no_usage(llm: SimulatedLLM) -> None:
    llm.report_usage = False

    completion = await client_for(llm.base_url).complete(MESSAGES, max_tokens=50, json_mode=True)

    assert completion.text == REPLY
    assert completion.usage is None


async def test_server_error_is_retried_and_the_next_answer_returned(llm: SimulatedLLM) -> None:
    llm.fail_status, llm.fail_remaining = 500, 1
    client = client_for(llm.base_url)

    completion = await client.complete(MESSAGES, max_tokens=50, json_mode=True)

    assert completion.text == REPLY
    assert llm.calls == 2
    assert requests_counted(client, "server_error") == 1
    assert requests_counted(client, "ok") == 1


async def test_rate_limit_waits_as_long_as_retry_after_asks(llm: SimulatedLLM) -> None:
    llm.fail_status, llm.fail_remaining, llm.retry_after = 429, 1, "1"
    client = client_for(llm.base_url)

    started = time.monotonic()
    completion = await client.complete(MESSAGES, max_tokens=50, json_mode=True)

    assert completion.text == REPLY
    assert time.monotonic() - started >= 1.0
    assert llm.calls == 2
    assert requests_counted(client, "rate_limited") == 1


async def test_retry_after_longer_than_eight_seconds_gives_up_at_once(llm: SimulatedLLM) -> None:
    llm.fail_status, llm.retry_after = 429, "120"

    with pytest.raises(ProviderUnavailable) as raised:
        await complete(client_for(llm.base_url))

    assert "HTTP 429" in raised.value.reason
    assert "120 s" in raised.value.reason
    assert llm.calls == 1


async def test_persistent_server_errors_are_unavailable_after_every_retry(
    llm: SimulatedLLM,
) -> None:
    llm.fail_status = 503
    client = client_for(llm.base_url, max_retries=2)

    with pytest.raises(ProviderUnavailable) as raised:
        await complete(client)

    assert llm.calls == 3
    assert raised.value.reason == f"{client.config.name}: HTTP 503 after 3 attempts"
    assert requests_counted(client, "server_error") == 3


async def test_unauthorized_is_rejected_after_one_call(llm: SimulatedLLM) -> None:
    llm.fail_status = 401
    client = client_for(llm.base_url)

    with pytest.raises(ProviderRejected) as raised:
        await complete(client)

    assert raised.value.reason.startswith(f"{client.config.name}: HTTP 401")
    assert llm.calls == 1
    assert requests_counted(client, "rejected") == 1


async def test_killed_server_is_unavailable_until_it_comes_back(llm: SimulatedLLM) -> None:
    client = client_for(llm.base_url, max_retries=1)
    await complete(client)
    llm.kill()

    with pytest.raises(ProviderUnavailable) as raised:
        await complete(client)
    assert f"127.0.0.1:{llm.port} unreachable (connection refused)" in raised.value.reason
    assert requests_counted(client, "unreachable") == 2

    llm.revive()
    completion = await client.complete(MESSAGES, max_tokens=50, json_mode=True)
    assert completion.text == REPLY


async def test_server_dying_mid_answer_is_unavailable(llm: SimulatedLLM) -> None:
    llm.delay_seconds = 5
    call = asyncio.create_task(complete(client_for(llm.base_url, max_retries=0)))
    while llm.calls == 0:  # noqa: ASYNC110 (the count is kept by the server's thread)
        await asyncio.sleep(0.02)

    await asyncio.to_thread(llm.kill)

    with pytest.raises(ProviderUnavailable):
        await asyncio.wait_for(call, timeout=3)


async def test_answer_slower_than_the_read_timeout_is_unavailable(llm: SimulatedLLM) -> None:
    llm.delay_seconds = 1.0
    client = client_for(llm.base_url, max_retries=0, read_timeout=0.2)

    with pytest.raises(ProviderUnavailable) as raised:
        await complete(client)

    assert "timed out" in raised.value.reason
    assert requests_counted(client, "timeout") == 1


async def test_success_body_that_is_not_a_chat_completion_is_rejected_without_retry() -> None:
    seen: list[httpx.Request] = []

    def not_a_completion(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"object": "list", "data": []})

    client = client_for("https://llm.example/v1", transport=httpx.MockTransport(not_a_completion))

    with pytest.raises(ProviderRejected):
        await complete(client)

    assert len(seen) == 1
    assert str(seen[0].url) == "https://llm.example/v1/chat/completions"
    assert seen[0].headers["Authorization"] == f"Bearer {API_KEY}"


async def test_api_key_never_shows_in_repr_or_error_reasons() -> None:
    def echoes_the_key(request: httpx.Request) -> httpx.Response:
        message = f"Incorrect API key provided: {API_KEY}"
        return httpx.Response(401, json={"error": {"message": message}})

    client = client_for("https://llm.example/v1", transport=httpx.MockTransport(echoes_the_key))

    with pytest.raises(ProviderRejected) as raised:
        await complete(client)

    assert "Incorrect API key provided: ***" in raised.value.reason
    assert API_KEY not in raised.value.reason
    assert API_KEY not in repr(client.config)


def test_no_providers_when_llm_analysis_is_not_configured() -> None:
    assert providers_from_settings(Settings(llm={"api_key": None})) == []


def test_providers_are_named_after_their_host_and_never_share_a_name() -> None:
    settings = Settings(
        llm={
            "api_key": API_KEY,
            "read_timeout_seconds": 12,
            "fallback_base_url": "https://api.groq.com/openai/v1",
            "fallback_model": "llama-3.1-8b-instant",
        }
    )

    primary, fallback = providers_from_settings(settings)

    assert (primary.name, primary.api_key, primary.read_timeout) == ("api.groq.com", API_KEY, 12)
    assert (fallback.name, fallback.model) == ("api.groq.com-fallback", "llama-3.1-8b-instant")
    assert fallback.api_key is None  # the primary's key is never sent to another endpoint


def test_configured_provider_names_are_used() -> None:
    settings = Settings(
        llm={
            "base_url": "http://localhost:11434/v1",
            "provider_name": "ollama",
            "fallback_base_url": "https://api.openai.com/v1",
            "fallback_api_key": "sk-fallback",
            "fallback_model": "gpt-4o-mini",
            "fallback_provider_name": "openai",
        }
    )

    names = [(p.name, p.api_key) for p in providers_from_settings(settings)]

    assert names == [("ollama", None), ("openai", "sk-fallback")]


def test_simulator_answers_in_the_chat_completions_shape(llm: SimulatedLLM) -> None:
    response = httpx.post(
        f"{llm.base_url}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )

    body = response.json()
    assert (body["object"], body["model"]) == ("chat.completion", "m")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": REPLY}
    assert body["usage"]["total_tokens"] == 1 + math.ceil(len(REPLY) / 4)
