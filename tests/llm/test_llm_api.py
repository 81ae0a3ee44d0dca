"""The budget API, spend alerts and the spend gauge, as a tenant sees them."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY

from tests.fixtures.http import api_client, api_key
from tests.llm.helpers import give_tenant_llm_spend
from tests.observability.helpers import metrics_auth
from valdrix.llm import budget
from valdrix.llm.budget import BudgetExceeded
from valdrix.observability import exposition
from valdrix.runtime import Runtime
from valdrix.tenancy.models import Tier

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_budget_shows_tier_defaults_and_only_admins_change_it(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient
) -> None:
    tenant = await make_tenant(tier=Tier.starter)
    viewer = await api_key(client, tenant.auth, "viewer")
    member = await api_key(client, tenant.auth, "member")

    shown = (await client.get("/api/v1/llm/budget", headers=viewer)).json()
    assert shown["tier"] == "starter"
    assert shown["daily_cap"] == {
        "usd": "0.50", "source": "tier default", "ceiling_usd": "5.00", "set_usd": None,
    }  # fmt: skip
    assert shown["monthly_limit"]["usd"] == "10.00"
    assert shown["monthly_limit"]["source"] == "tier default"
    assert shown["today"]["spent_usd"] == "0" and shown["open_reservations"] == 0

    denied = await client.patch("/api/v1/llm/budget", json={"daily_cap_usd": "5"}, headers=member)
    assert denied.status_code == 403

    changed = await client.patch(
        "/api/v1/llm/budget", json={"daily_cap_usd": "0.25"}, headers=tenant.auth
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["daily_cap"]["usd"] == "0.2500"
    assert changed.json()["daily_cap"]["source"] == "tenant"
    assert changed.json()["monthly_limit"]["source"] == "tier default"
    audit = (await client.get("/api/v1/audit-log", headers=tenant.auth)).json()["items"]
    assert audit[0]["action"] == "llm.budget.update"

    too_high = await client.patch(
        "/api/v1/llm/budget",
        json={"daily_cap_usd": "5", "monthly_limit_usd": "4"},
        headers=tenant.auth,
    )
    assert too_high.status_code == 422
    assert too_high.headers["content-type"] == "application/problem+json"
    assert "cannot be above monthly_limit_usd" in too_high.json()["detail"]
    for bad in ({"daily_cap_usd": "-1"}, {"daily_cap_usd": "abc"}, {"weekly": "1"}, {}):
        response = await client.patch("/api/v1/llm/budget", json=bad, headers=tenant.auth)
        assert response.status_code in (400, 422), (bad, response.status_code)

    reset = await client.patch(
        "/api/v1/llm/budget", json={"daily_cap_usd": None}, headers=tenant.auth
    )
    assert reset.json()["daily_cap"]["usd"] == "0.50"
    assert reset.json()["daily_cap"]["source"] == "tier default"


async def test_admins_change_limits_only_within_the_ceiling_the_operator_set_for_their_tier(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient
) -> None:
    tenant = await make_tenant(tier=Tier.free)

    shown = (await client.get("/api/v1/llm/budget", headers=tenant.auth)).json()
    assert shown["daily_cap"] == {
        "usd": "0.10", "source": "tier default", "ceiling_usd": "1.00", "set_usd": None,
    }  # fmt: skip
    assert shown["monthly_limit"]["ceiling_usd"] == "10.00"

    for patch, detail in [
        (
            {"daily_cap_usd": "1000000"},
            "daily_cap_usd 1000000 is above the free tier's ceiling of $1.00 set by the operator",
        ),
        (
            {"daily_cap_usd": "0.50", "monthly_limit_usd": 1e6},
            "monthly_limit_usd 1000000 is above the free tier's ceiling of $10.00 set by the"
            " operator",
        ),
        (
            {"daily_cap_usd": "1.0001"},
            "daily_cap_usd 1.0001 is above the free tier's ceiling of $1.00 set by the operator",
        ),
    ]:
        refused = await client.patch("/api/v1/llm/budget", json=patch, headers=tenant.auth)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"] == detail
    unchanged = (await client.get("/api/v1/llm/budget", headers=tenant.auth)).json()
    assert (
        unchanged["daily_cap"]["source"] == unchanged["monthly_limit"]["source"] == "tier default"
    )

    raised = await client.patch(
        "/api/v1/llm/budget",
        json={"daily_cap_usd": "1.00", "monthly_limit_usd": "10"},
        headers=tenant.auth,
    )
    assert raised.status_code == 200, raised.text
    assert raised.json()["daily_cap"]["usd"] == "1.0000"
    assert raised.json()["monthly_limit"]["usd"] == "10.0000"
    lowered = await client.patch(
        "/api/v1/llm/budget", json={"daily_cap_usd": "0.05"}, headers=tenant.auth
    )
    assert lowered.json()["daily_cap"] == {
        "usd": "0.0500",
        "source": "tenant",
        "ceiling_usd": "1.00",
        "set_usd": "0.0500",
    }


async def test_a_limit_set_before_the_operator_lowered_the_ceiling_counts_only_up_to_it(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(tier=Tier.growth)
    changed = await client.patch(
        "/api/v1/llm/budget", json={"daily_cap_usd": "20.00"}, headers=tenant.auth
    )
    assert changed.status_code == 200, changed.text
    ceilings = {**runtime.settings.llm.daily_cap_ceiling_usd, "growth": Decimal("5.00")}
    lowered = dataclasses.replace(
        runtime,
        settings=runtime.settings.updated(llm={"daily_cap_ceiling_usd": ceilings}),
    )

    async with api_client(lowered) as api:
        shown = (await api.get("/api/v1/llm/budget", headers=tenant.auth)).json()
        # The settings form sends both limits back: the one kept above the ceiling is not a
        # change, so the other one saves; raising it further is refused.
        saved = await api.patch(
            "/api/v1/llm/budget",
            json={"daily_cap_usd": "20.0000", "monthly_limit_usd": "50.00"},
            headers=tenant.auth,
        )
        raised = await api.patch(
            "/api/v1/llm/budget", json={"daily_cap_usd": "21.00"}, headers=tenant.auth
        )
    # What the admin set is kept (the page offers it again, rather than the ceiling).
    assert shown["daily_cap"] == {
        "usd": "5.00", "source": "tier ceiling", "ceiling_usd": "5.00", "set_usd": "20.0000",
    }  # fmt: skip
    assert saved.status_code == 200, saved.text
    assert saved.json()["monthly_limit"]["set_usd"] == "50.0000"
    assert raised.status_code == 422
    with pytest.raises(BudgetExceeded, match=r"daily cap of \$5\.00"):
        await budget.reserve(
            lowered,
            tenant.tenant_id,
            estimate=Decimal("6.00"),
            purpose="analysis",
            subject_id=None,
            provider="probe",
            model="probe-model",
        )


async def test_a_spend_spike_is_recorded_once_logged_counted_and_shown(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tenant = await make_tenant(tier=Tier.growth)
    before = REGISTRY.get_sample_value("valdrix_llm_spend_spikes_total") or 0.0

    with structlog.testing.capture_logs() as logs:
        await give_tenant_llm_spend(runtime, tenant.tenant_id)  # $1.20, over the $1 floor
        with pytest.raises(BudgetExceeded):
            await give_tenant_llm_spend(runtime, tenant.tenant_id)  # over the $2.00 daily cap

    spikes = [entry for entry in logs if entry["event"] == "llm.spend.spike"]
    assert len(spikes) == 1 and spikes[0]["today_usd"] == "1.20000000"
    rejected = [entry for entry in logs if entry["event"] == "llm.budget.rejected"]
    assert len(rejected) == 1 and rejected[0]["window"] == "daily"
    assert REGISTRY.get_sample_value("valdrix_llm_spend_spikes_total") == before + 1
    shown = (await client.get("/api/v1/llm/budget", headers=tenant.auth)).json()
    assert shown["today"]["spent_usd"] == "1.20000000"
    assert Decimal(shown["today"]["remaining_usd"]) == Decimal("0.80")
    [alert] = shown["alerts"]
    assert alert["kind"] == "spend_spike"
    assert alert["details"]["trailing_7_day_average_usd"] == "0.0000"

    # Per-tenant gauges are re-read at most once a minute: read them now.
    exposition._tenant_gauges_read_at = -exposition.TENANT_GAUGES_TTL_SECONDS
    scraped = (await client.get("/metrics", headers=metrics_auth(client))).text
    series = f'valdrix_llm_spend_per_tenant_usd{{tenant_id="{tenant.tenant_id}",window="day"}} 1.2'
    assert series in scraped


async def test_every_amount_in_the_budget_answer_is_a_plain_decimal(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """A reservation settled back to nothing is ``0.00000000``, never ``0E-8``."""
    tenant = await make_tenant()
    await give_tenant_llm_spend(runtime, tenant.tenant_id)

    shown = (await client.get("/api/v1/llm/budget", headers=tenant.auth)).json()

    amounts = [
        shown[window][name]
        for window in ("today", "this_month")
        for name in ("spent_usd", "reserved_usd", "remaining_usd")
    ]
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", amount) for amount in amounts), amounts
    assert Decimal(shown["today"]["spent_usd"]) > 0
