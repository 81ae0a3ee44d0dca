"""LLM budget overhead: reserve + settle per call, beside a plain single-row UPDATE in the same run.

    python benchmarks/llm_budget.py [--quick] [--calls N]

Every LLM call pays for two short transactions before and after the provider answers: the
atomic reservation (tier lookup + one conditional UPDATE-and-INSERT statement) and the
settlement (one close-and-count statement, plus the spike check). This measures their latency
per call at 1 and at 50 concurrent calls of one tenant (all serialising on that tenant's budget
row, the worst case), and the latency of one single-row UPDATE of the same row in its own
transaction through the same engine, at the same concurrency, as the baseline.

A private embedded PostgreSQL is started in a temporary directory and stopped at the end.
Figures are printed for humans, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from valdrix.cli.tenants import create_tenant_with_owner_key  # noqa: E402
from valdrix.config import Settings, generate_key_entry  # noqa: E402
from valdrix.kit.db import unit_of_work  # noqa: E402
from valdrix.kit.embedded import ensure_embedded_database, stop_embedded_database  # noqa: E402
from valdrix.kit.migrator import upgrade_to_head  # noqa: E402
from valdrix.kit.orm import utcnow  # noqa: E402
from valdrix.llm import budget  # noqa: E402
from valdrix.llm.repository import LedgerRepository  # noqa: E402
from valdrix.logging import configure_logging  # noqa: E402
from valdrix.runtime import Runtime, open_runtime  # noqa: E402
from valdrix.tenancy.models import Tier  # noqa: E402

CONCURRENCY = (1, 50)
SIZES = {"default": 2_000, "quick": 400}
ESTIMATE = Decimal("0.004")
COST = Decimal("0.001")


async def reserve_and_settle(runtime: Runtime, tenant_id: uuid.UUID) -> None:
    reservation = await budget.reserve(
        runtime,
        tenant_id,
        estimate=ESTIMATE,
        purpose="benchmark",
        subject_id=None,
        provider="bench",
        model="bench-model",
    )
    await budget.settle(runtime, reservation, cost=COST, prompt_tokens=1_000, completion_tokens=250)


async def single_row_update(runtime: Runtime, tenant_id: uuid.UUID) -> None:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        await session.execute(
            text("UPDATE llm_budgets SET updated_at = now() WHERE tenant_id = :tenant_id"),
            {"tenant_id": tenant_id},
        )


async def latencies(
    operation: Callable[[], Awaitable[None]], calls: int, concurrency: int
) -> list[float]:
    """Milliseconds per call, ``concurrency`` callers each making its share in a row."""
    measured: list[float] = []

    async def caller(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            await operation()
            measured.append((time.perf_counter() - started) * 1000)

    share = calls // concurrency
    await asyncio.gather(*(caller(share) for _ in range(concurrency)))
    return measured


def percentile(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100)[q - 1], 2)


async def measure(runtime: Runtime, tenant_id: uuid.UUID, calls: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    for concurrency in CONCURRENCY:
        for name, operation in (
            ("baseline_", lambda: single_row_update(runtime, tenant_id)),
            ("", lambda: reserve_and_settle(runtime, tenant_id)),
        ):
            await latencies(operation, min(calls, 100), concurrency)  # warm the pool and caches
            values = await latencies(operation, calls, concurrency)
            figures[f"{name}p50_ms_c{concurrency}"] = percentile(values, 50)
            figures[f"{name}p99_ms_c{concurrency}"] = percentile(values, 99)
    return figures


async def run(home: Path, calls: int) -> dict[str, object]:
    urls = ensure_embedded_database(home, cleanup_mode="stop")
    upgrade_to_head(urls.owner)
    settings = Settings(
        home=home,
        database_url=urls.app,
        migration_database_url=urls.owner,
        encryption_keys=generate_key_entry(),
        log_format="console",
        log_level="WARNING",
        db_pool_size=30,  # 50 callers wait on the budget row's lock, not on the pool
    )
    runtime = open_runtime(settings, urls)
    try:
        created = await create_tenant_with_owner_key(
            runtime, name="Benchmark", tier=Tier.enterprise, admin_email="bench@example.com"
        )
        tenant_id = uuid.UUID(str(created["tenant_id"]))
        async with unit_of_work(runtime.sessions, tenant_id) as session:
            ledger = LedgerRepository(session)
            await ledger.ensure_budget(tenant_id, utcnow().date())
            row = await ledger.budget(tenant_id)
            assert row is not None
            row.daily_cap_usd = row.monthly_limit_usd = Decimal("100000")
        figures = await measure(runtime, tenant_id, calls)
    finally:
        await runtime.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--calls", type=int, help="calls per measurement (default 2,000)")
    args = parser.parse_args()
    calls = args.calls or SIZES["quick" if args.quick else "default"]
    configure_logging(json_output=False, level="WARNING")
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="valdrix-bench-") as tmp:
        home = Path(tmp)
        try:
            figures = asyncio.run(run(home, calls))
        finally:
            stop_embedded_database(home)
    print(f"{calls} calls per measurement, one tenant")
    for concurrency in CONCURRENCY:
        ours = (figures[f"p50_ms_c{concurrency}"], figures[f"p99_ms_c{concurrency}"])
        base = (
            figures[f"baseline_p50_ms_c{concurrency}"],
            figures[f"baseline_p99_ms_c{concurrency}"],
        )
        print(
            f"  {concurrency:>2} concurrent: reserve+settle p50 {ours[0]} ms, p99 {ours[1]} ms;"
            f" single-row UPDATE p50 {base[0]} ms, p99 {base[1]} ms"
        )
    result = {
        "benchmark": "llm_budget",
        "calls": calls,
        **figures,
        "ratio": round(figures["p50_ms_c1"] / figures["baseline_p50_ms_c1"], 2),
        "ratio_c50": round(figures["p50_ms_c50"] / figures["baseline_p50_ms_c50"], 2),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
