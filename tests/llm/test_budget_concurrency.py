"""200 analyses of one tenant at once against a $1.00 daily cap: the cap holds at every moment."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests import conftest as shared
from tests.analysis.helpers import seed_scans
from tests.fixtures.llm import EXPENSIVE_MODEL
from tests.llm.helpers import budget_row
from valdrix.analysis.runs import run_analysis
from valdrix.runtime import Runtime
from valdrix.simulator.llm_server import SimulatedLLM
from valdrix.tenancy.models import Tier

pytestmark = pytest.mark.asyncio(loop_scope="session")

CAP = Decimal("1.00")
ANALYSES = 200


async def sample_ledger(
    url: str, tenant_id: str, samples: list[tuple[Decimal, Decimal, Decimal]]
) -> None:
    """Read the tenant's counters and its reservations, as the app role, until cancelled:
    (settled, settled + reserved from the counters, settled + reserved from the rows)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("SELECT set_config('valdrix.tenant_id', %s, false)", [tenant_id])
        while True:
            counters = await (
                await connection.execute(
                    "SELECT day_settled_usd, day_settled_usd + day_reserved_usd FROM llm_budgets"
                )
            ).fetchone()
            ledger = await (
                await connection.execute(
                    "SELECT coalesce(sum(CASE state WHEN 'settled' THEN cost_usd"
                    " WHEN 'reserved' THEN estimate_usd ELSE 0 END), 0) FROM llm_reservations"
                )
            ).fetchone()
            if counters is not None and ledger is not None:
                samples.append((counters[0], counters[1], ledger[0]))
            await asyncio.sleep(0.002)


async def test_settled_and_reserved_spend_never_pass_the_daily_cap(
    make_tenant: Callable[..., Any],
    llm_runtime: Callable[..., Runtime],
    llm_server: SimulatedLLM,
    database: shared.TestDatabase,
) -> None:
    tenant = await make_tenant(tier=Tier.growth)
    base = llm_runtime()
    runtime = llm_runtime(
        model=EXPENSIVE_MODEL,
        daily_cap_usd={**base.settings.llm.daily_cap_usd, "growth": CAP},
    )
    llm_server.delay_seconds = 0.05  # calls overlap: many reservations are open at once
    scans = await seed_scans(runtime, tenant.tenant_id, ANALYSES)
    samples: list[tuple[Decimal, Decimal, Decimal]] = []
    sampler = asyncio.create_task(sample_ledger(database.urls.app, str(tenant.tenant_id), samples))

    statuses = await asyncio.gather(
        *(run_analysis(runtime, tenant.tenant_id, scan.scan_id) for scan in scans)
    )

    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    outcomes = Counter(statuses)
    peak = max((committed for _, committed, _ in samples), default=Decimal(0))
    print(f"{dict(outcomes)}; {len(samples)} samples; peak settled+reserved ${peak}")
    assert set(outcomes) == {"ready", "skipped_budget"}, outcomes
    assert outcomes["skipped_budget"] > 0, "the cap was never reached"
    # Every provider call belongs to an analysis that got a reservation: rejected requests
    # reached the provider zero times.
    assert llm_server.calls == outcomes["ready"]
    budget = await budget_row(runtime, tenant.tenant_id)
    assert budget is not None
    assert budget.day_reserved_usd == 0
    assert budget.day_settled_usd <= CAP
    assert len(samples) > 20
    assert max(settled for settled, _, _ in samples) <= CAP
    assert max(committed for _, committed, _ in samples) <= CAP
    assert max(in_rows for _, _, in_rows in samples) <= CAP
    # Rejections came with the cap nearly taken (within one call's reservation, about $0.12),
    # not early: the check is exact, not conservative.
    assert max(committed for _, committed, _ in samples) > CAP - Decimal("0.13")
