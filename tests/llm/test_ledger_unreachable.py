"""No ledger, no call: when the budget cannot be checked, the provider is never contacted."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from valdrix.kit.db import create_engine, session_factory
from valdrix.kit.embedded import DatabaseUrls
from valdrix.llm import gateway
from valdrix.llm.budget import BudgetUnavailable
from valdrix.runtime import Runtime
from valdrix.simulator.aws_server import free_port
from valdrix.simulator.llm_server import SimulatedLLM

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_with_the_database_unreachable_at_reservation_the_provider_gets_no_call(
    make_tenant: Callable[..., Any],
    llm_runtime: Callable[..., Runtime],
    llm_server: SimulatedLLM,
) -> None:
    tenant = await make_tenant()
    healthy = llm_runtime()
    # Nothing listens on this port: every connection attempt is refused.
    dead_url = f"postgresql://valdrix_app@127.0.0.1:{free_port()}/valdrix?connect_timeout=2"
    engine = create_engine(dead_url, pool_size=1)
    unreachable = Runtime(
        healthy.settings,
        DatabaseUrls(app=dead_url, owner=dead_url),
        engine,
        session_factory(engine),
        healthy.keyring,
    )
    messages = [{"role": "user", "content": 'analyse <findings>{"findings": []}</findings>'}]
    try:
        with pytest.raises(BudgetUnavailable, match="ledger is unreachable"):
            await gateway.complete(
                unreachable,
                tenant.tenant_id,
                messages,
                purpose="analysis",
                subject_id=uuid.uuid4(),
            )
    finally:
        await engine.dispose()
    assert llm_server.calls == 0

    # The same call with the ledger reachable does reach the provider.
    paid = await gateway.complete(
        healthy, tenant.tenant_id, messages, purpose="analysis", subject_id=uuid.uuid4()
    )
    assert llm_server.calls == 1 and paid.cost_usd > 0
