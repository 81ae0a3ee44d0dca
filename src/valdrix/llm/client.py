"""A client for any OpenAI-compatible chat-completions endpoint (Groq, OpenAI, Ollama, vLLM).

One ``complete`` call makes up to ``max_retries + 1`` HTTP attempts and gives the provider's
circuit breaker one verdict. Errors say whether trying later (or the fallback provider) may help:
``ProviderUnavailable``, or not: ``ProviderRejected``. Reasons never carry the API key.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from valdrix.config import Settings
from valdrix.kit import metrics
from valdrix.llm.circuit import CircuitBreaker

MAX_BACKOFF_SECONDS = 8.0
# A provider asking us to wait longer than this is better served by the fallback or a later job.
MAX_RETRY_AFTER_SECONDS = 8.0


@dataclass(frozen=True)
class ProviderConfig:
    name: str  # metric label and the prefix of error reasons
    base_url: str
    api_key: str | None = field(repr=False)
    model: str
    connect_timeout: float
    read_timeout: float
    max_retries: int


def providers_from_settings(settings: Settings) -> list[ProviderConfig]:
    """The primary provider, then the fallback if one is configured; none when LLM is off."""
    if not settings.llm.enabled:
        return []
    primary = ProviderConfig(
        name=settings.llm.provider_name or _host(settings.llm.base_url),
        base_url=settings.llm.base_url,
        api_key=_reveal(settings.llm.api_key),
        model=settings.llm.model,
        connect_timeout=settings.llm.connect_timeout_seconds,
        read_timeout=settings.llm.read_timeout_seconds,
        max_retries=settings.llm.max_retries,
    )
    if not settings.llm.fallback_base_url:
        return [primary]
    name = settings.llm.fallback_provider_name or _host(settings.llm.fallback_base_url)
    if name == primary.name:  # two breakers and two metric series, not one shared
        name += "-fallback"
    assert settings.llm.fallback_model, "Settings requires a model with a fallback URL"
    fallback = ProviderConfig(
        name=name,
        base_url=settings.llm.fallback_base_url,
        api_key=_reveal(settings.llm.fallback_api_key),
        model=settings.llm.fallback_model,
        connect_timeout=settings.llm.connect_timeout_seconds,
        read_timeout=settings.llm.read_timeout_seconds,
        max_retries=settings.llm.max_retries,
    )
    return [primary, fallback]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Completion:
    text: str
    usage: Usage | None  # None when the provider reported no usage
    model: str
    provider: str


class ProviderError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderUnavailable(ProviderError):
    """Unreachable, too slow, rate limited, failing or circuit open: later or elsewhere may work."""


class ProviderRejected(ProviderError):
    """The provider refused the request or answered nonsense: sending it again will not help."""


class _TryAgain(Exception):
    """One attempt failed in a way another attempt may fix."""

    def __init__(self, reason: str, wait_seconds: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_seconds = wait_seconds  # the provider's Retry-After, if it sent one


class ChatClient:
    def __init__(
        self,
        config: ProviderConfig,
        *,
        breaker: CircuitBreaker,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.breaker = breaker
        self._transport = transport
        self._url = config.base_url.rstrip("/") + "/chat/completions"

    def available(self) -> bool:
        return self.breaker.allows_calls()

    async def complete(
        self, messages: list[dict[str, str]], *, max_tokens: int, json_mode: bool
    ) -> Completion:
        if not self.breaker.acquire():
            self._count("circuit_open")
            raise ProviderUnavailable(
                f"{self.config.name}: circuit open after repeated failures, not called"
            )
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        try:
            completion = await self._send_with_retries(body)
        except ProviderUnavailable:
            self.breaker.record_failure()
            raise
        except ProviderRejected:
            self.breaker.record_success()  # the provider answered; a bad request is ours to fix
            raise
        except BaseException:
            self.breaker.release()  # cancelled (or a bug here): no verdict on the provider
            raise
        self.breaker.record_success()
        return completion

    async def _send_with_retries(self, body: dict[str, Any]) -> Completion:
        attempts = self.config.max_retries + 1
        # A client per call: nothing pooled outlives a provider restart or the event loop, and
        # its set-up (~25 ms) is small beside an LLM answer.
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout()) as http:
            for attempt in range(attempts):
                try:
                    return await self._attempt(http, body)
                except _TryAgain as failure:
                    if attempt + 1 == attempts:
                        plural = "s" if attempts > 1 else ""
                        raise ProviderUnavailable(
                            f"{failure.reason} after {attempts} attempt{plural}"
                        ) from None
                    wait = failure.wait_seconds
                    if wait is None:  # full jitter keeps many workers from retrying in step
                        wait = random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.5 * 2**attempt))  # noqa: S311
                    await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self, http: httpx.AsyncClient, body: dict[str, Any]) -> Completion:
        """One HTTP request, counted in the metrics by outcome."""
        name = self.config.name
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        try:
            response = await http.post(self._url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            self._count("timeout")
            raise _TryAgain(f"{name}: {_timeout_phase(exc)} timed out") from None
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            self._count("unreachable")
            detail = _network_detail(exc)
            raise _TryAgain(f"{name}: {self._where()} unreachable ({detail})") from None
        except httpx.HTTPError as exc:  # an unsupported URL scheme and the like: configuration
            self._count("rejected")
            raise ProviderRejected(f"{name}: request failed ({type(exc).__name__})") from None

        status = response.status_code
        if response.is_success:
            completion = self._parse(response)
            self._count("ok" if completion is not None else "rejected")
            if completion is None:
                raise ProviderRejected(f"{name}: HTTP {status} but no chat completion in the body")
            return completion
        if status == 429 or status == 408 or status >= 500:
            self._count("rate_limited" if status == 429 else "server_error")
            wait = _retry_after_seconds(response) if status in (429, 503) else None
            if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                raise ProviderUnavailable(f"{name}: HTTP {status}, asks to wait {wait:g} s")
            raise _TryAgain(f"{name}: HTTP {status}", wait)
        self._count("rejected")
        detail = self._error_message(response)
        raise ProviderRejected(f"{name}: HTTP {status}" + (f" ({detail})" if detail else ""))

    def _parse(self, response: httpx.Response) -> Completion | None:
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"]
        except (ValueError, LookupError, TypeError, httpx.DecodingError):
            return None
        if not isinstance(text, str):
            return None
        model = data.get("model")
        return Completion(
            text=text,
            usage=_usage(data.get("usage")),
            model=model if isinstance(model, str) and model else self.config.model,
            provider=self.config.name,
        )

    def _error_message(self, response: httpx.Response) -> str:
        """The provider's own explanation ("model not found"), short and without our key."""
        try:
            message = response.json()["error"]["message"]
        except (ValueError, LookupError, TypeError, httpx.DecodingError):
            return ""
        if not isinstance(message, str):
            return ""
        if self.config.api_key:
            message = message.replace(self.config.api_key, "***")
        return message[:200]

    def _timeout(self) -> httpx.Timeout:
        connect, read = self.config.connect_timeout, self.config.read_timeout
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)

    def _where(self) -> str:
        """host:port of the endpoint (never the userinfo a URL may carry)."""
        url = httpx.URL(self.config.base_url)
        return f"{url.host}:{url.port}" if url.port else url.host

    def _count(self, outcome: str) -> None:
        metrics.LLM_REQUESTS.labels(provider=self.config.name, outcome=outcome).inc()


def _usage(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = _token_count(raw.get("prompt_tokens"))
    completion = _token_count(raw.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _token_count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After in seconds; the HTTP-date form is ignored (plain backoff applies)."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _timeout_phase(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting"
    if isinstance(exc, httpx.ReadTimeout):
        return "waiting for the answer"
    return "request"


def _network_detail(exc: httpx.HTTPError) -> str:
    text = str(exc).lower()
    if "refused" in text or "all connection attempts failed" in text:
        return "connection refused"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection dropped mid-answer"
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect"
    return "connection lost"


def _host(url: str) -> str:
    return httpx.URL(url).host or url


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
