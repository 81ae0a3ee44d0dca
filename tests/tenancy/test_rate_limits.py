"""API rate limits per credential and per tenant, held across two API processes on one database
(real HTTP), and the tolerance of the batches a process takes from the shared buckets."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.http import api_key, api_processes, assert_problem
from tests.fixtures.jobs import SuperuserDb
from tests.observability.helpers import value
from valdrix.config import Settings
from valdrix.config.groups import RateLimitSettings
from valdrix.errors import TooManyRequests
from valdrix.jobs.app import open_job_app
from valdrix.jobs.maintenance import prune_finished
from valdrix.runtime import Runtime
from valdrix.tenancy.auth import Principal
from valdrix.tenancy.models import Role
from valdrix.tenancy.rate_limits import RequestRateLimiter

# Small limits, so a test reaches them in a few requests. The credential's bucket refills a
# token in 5 s: a burst's few requests leave it empty, and waiting its Retry-After stays cheap.
# The tenant's refills a token in 50 s, longer than any test here.
LIMITS = RateLimitSettings(
    credential_per_second=0.2, credential_burst=4, tenant_per_second=0.02, tenant_burst=7
)
LIMITS_ENV = {
    RateLimitSettings.variable(name): str(value) for name, value in LIMITS.model_dump().items()
}


@pytest.fixture(scope="module")
def two_processes(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with api_processes(settings, 2, tmp_path_factory.mktemp("serve"), **LIMITS_ENV) as urls:
        yield urls


async def _get(url: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.get("/api/v1/tenant", headers=headers)


async def _until_refused(urls: list[str], headers: dict[str, str]) -> tuple[int, httpx.Response]:
    """Requests alternating between the processes until one is refused: how many got through,
    and the refusal."""
    for sent in range(50):
        response = await _get(urls[sent % len(urls)], headers)
        if response.status_code != 200:
            return sent, response
    raise AssertionError("50 requests and none refused")


async def _refused_count(url: str, settings: Settings, limit: str) -> float:
    token = settings.metrics.token.get_secret_value() if settings.metrics.token else ""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        scraped = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200, scraped.text
    families = {family.name: family for family in text_string_to_metric_families(scraped.text)}
    return value(families, "valdrix_api_rate_limited_total", limit=limit)


async def test_a_keys_burst_is_refused_on_every_process_until_its_retry_after_has_passed(
    two_processes: list[str], make_tenant: Any
) -> None:
    tenant = await make_tenant()
    first, second = two_processes

    started = time.monotonic()
    admitted, refused = await _until_refused(two_processes, tenant.auth)

    # Counted together, not per process (on a slow machine the bucket may refill a token).
    refilled = int((time.monotonic() - started) * LIMITS.credential_per_second)
    assert LIMITS.credential_burst <= admitted <= LIMITS.credential_burst + refilled
    body = assert_problem(refused, 429)
    assert body["limit"] == "credential"
    # The other process refuses the key too, and says when to come back.
    on_first = await _get(first, tenant.auth)
    on_second = await _get(second, tenant.auth)
    assert (on_first.status_code, on_second.status_code) == (429, 429)
    retry_after = max(int(on_first.headers["retry-after"]), int(on_second.headers["retry-after"]))
    assert 1 <= retry_after <= 1 / LIMITS.credential_per_second

    await asyncio.sleep(retry_after)

    assert (await _get(second, tenant.auth)).status_code == 200


async def test_another_key_of_the_tenant_is_held_by_the_tenant_limit_and_other_tenants_are_not(
    two_processes: list[str], make_tenant: Any, settings: Settings
) -> None:
    tenant, other_tenant = await make_tenant(), await make_tenant()
    refused_before = [await _refused_count(url, settings, "tenant") for url in two_processes]
    async with httpx.AsyncClient(base_url=two_processes[0], timeout=30) as client:
        second_key = await api_key(client, tenant.auth, "viewer")  # a request of the owner key
    owner_admitted, owner_refused = await _until_refused(two_processes, tenant.auth)
    assert assert_problem(owner_refused, 429)["limit"] == "credential"

    admitted, refused = await _until_refused(two_processes, second_key)

    # The second key's own bucket is full; its tenant's holds what the owner key left.
    assert admitted == LIMITS.tenant_burst - (1 + owner_admitted) < LIMITS.credential_burst
    body = assert_problem(refused, 429)
    assert body["limit"] == "tenant"
    assert int(refused.headers["retry-after"]) >= 1
    refused_after = [await _refused_count(url, settings, "tenant") for url in two_processes]
    assert sum(refused_after) == sum(refused_before) + 1
    for url in two_processes:
        assert (await _get(url, other_tenant.auth)).status_code == 200


async def test_refusals_are_counted_by_the_process_that_refused_them(
    two_processes: list[str], make_tenant: Any, settings: Settings
) -> None:
    tenant = await make_tenant()
    url = two_processes[0]
    before = await _refused_count(url, settings, "credential")

    await _until_refused([url], tenant.auth)

    assert await _refused_count(url, settings, "credential") == before + 1


async def test_processes_taking_tokens_in_batches_admit_no_more_than_the_burst(
    runtime: Runtime, make_tenant: Any
) -> None:
    """What docs/operations/rate-limits.md states: every admitted request spent a token taken
    from the shared buckets, and the tokens one process holds while another is refused are at
    most a batch."""
    limits = RateLimitSettings(
        credential_per_second=0.01, credential_burst=400, tenant_per_second=0.01, tenant_burst=400
    )
    processes = [RequestRateLimiter(limits), RequestRateLimiter(limits)]
    tenant = await make_tenant()
    principal = Principal(tenant.tenant_id, Role.owner, "api_key", "batch-test-key")

    async def request(limiter: RequestRateLimiter) -> bool:
        try:
            await limiter.admit(runtime, principal)
        except TooManyRequests:
            return False
        return True

    started = time.monotonic()
    outcomes = await asyncio.gather(*(request(processes[n % 2]) for n in range(600)))
    elapsed = time.monotonic() - started

    refill = int(elapsed * limits.credential_per_second)
    assert sum(outcomes) <= limits.credential_burst + refill
    assert sum(outcomes) >= limits.credential_burst - len(processes) * processes[0].max_batch


async def test_the_hourly_retention_prunes_buckets_idle_long_enough_to_be_full(
    runtime: Runtime, make_tenant: Any, superuser_db: SuperuserDb
) -> None:
    idle, busy = await make_tenant(), await make_tenant()
    for tenant, key in ((idle, "idle-key"), (busy, "busy-key")):
        principal = Principal(tenant.tenant_id, Role.owner, "api_key", key)
        await RequestRateLimiter(runtime.settings.rate_limits).admit(runtime, principal)

    async def subjects() -> dict[str, list[str]]:
        rows = await superuser_db.rows(
            "SELECT tenant_id::text, array_agg(subject ORDER BY subject) FROM request_buckets"
            " WHERE tenant_id = ANY(%s) GROUP BY tenant_id",
            [idle.tenant_id, busy.tenant_id],
        )
        return dict(rows)

    await superuser_db.rows(
        "UPDATE request_buckets SET refilled_at = now() - interval '2 hours' WHERE tenant_id = %s",
        idle.tenant_id,
    )
    await open_job_app(runtime.urls.app)
    # A bucket that takes longer than its idle time to refill is not full yet: it stays.
    slow = runtime.settings.updated(rate_limits={"credential_per_second": 0.01})
    await prune_finished(dataclasses.replace(runtime, settings=slow))
    assert (await subjects())[str(idle.tenant_id)] == ["api_key:idle-key", "tenant"]

    await prune_finished(runtime)
    assert await subjects() == {str(busy.tenant_id): ["api_key:busy-key", "tenant"]}
