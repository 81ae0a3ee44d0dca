"""Fixtures for LLM analysis and budget tests.

The provider is a real local HTTP server speaking the chat-completions shape (``SimulatedLLM``),
answering as the rule-of-thumb analyst unless a test gives it another responder. Its model is
priced by a test price file, so a test can make calls cheap or expensive. Analyses run
in-process (``run_analysis``, the job's body) or through an in-process worker on the
``analysis`` queue; scans and findings are seeded as rows, as a scan would leave them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from valdrix.analysis.models import AnalysisStatus, ScanAnalysis
from valdrix.analysis.repository import AnalysisRepository
from valdrix.connections.models import CloudConnection
from valdrix.jobs.app import job_app, open_job_app
from valdrix.jobs.tracking import track_job
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.llm.circuit import reset_breakers
from valdrix.llm.models import LlmBudget
from valdrix.runtime import Runtime
from valdrix.scanning.models import Finding, Scan, ScanEvent, ScanStatus
from valdrix.simulator.llm_analyst import analyst_answer
from valdrix.simulator.llm_server import SimulatedLLM

MODEL = "sim-analyst"
# 20x the price: a call reserves about 12 cents and settles at about 3.
EXPENSIVE_MODEL = "sim-analyst-xl"
# $1 per million prompt tokens, $2 per million output tokens: a typical analysis call reserves
# about half a cent (prompt bytes + 1,500 output tokens).
PRICES = {
    "models": {
        MODEL: {"input_per_million": "1.00", "output_per_million": "2.00"},
        EXPENSIVE_MODEL: {"input_per_million": "20.00", "output_per_million": "40.00"},
    }
}


@pytest.fixture(scope="session")
def prices_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("llm") / "prices.json"
    path.write_text(json.dumps(PRICES))
    return path


@pytest.fixture
def llm_server() -> Iterator[SimulatedLLM]:
    with SimulatedLLM(responder=analyst_answer) as server:
        yield server


def with_llm(runtime: Runtime, base_url: str, prices_file: Path, **overrides: Any) -> Runtime:
    """The session runtime (same engine) with a provider at ``base_url`` and fast timings.

    Each runtime gets its own provider name, so circuit breakers never carry over between tests.
    """
    settings = runtime.settings.updated(
        llm={
            "base_url": base_url,
            "model": MODEL,
            "provider_name": f"sim-{uuid.uuid4().hex[:8]}",
            "prices_file": prices_file,
            "connect_timeout_seconds": 1.0,
            "read_timeout_seconds": 5.0,
            "max_retries": 1,
            "circuit_failure_threshold": 3,
            "circuit_cooldown_seconds": 0.5,
            "retry_base_seconds": 0.3,
            "retry_cap_seconds": 1.0,
            **overrides,
        }
    )
    return dataclasses.replace(runtime, settings=settings)


@pytest.fixture
def llm_runtime(
    runtime: Runtime, llm_server: SimulatedLLM, prices_file: Path
) -> Iterator[Callable[..., Runtime]]:
    """``llm_runtime(**llm_settings)``: the runtime with the simulated provider configured."""
    yield lambda **overrides: with_llm(runtime, llm_server.base_url, prices_file, **overrides)
    reset_breakers()


@dataclasses.dataclass(frozen=True)
class SeededScan:
    scan_id: uuid.UUID
    finding_ids: list[uuid.UUID]


async def seed_scans(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    count: int,
    *,
    findings_per_scan: int = 2,
    tags: dict[str, str] | None = None,
    analysis_status: AnalysisStatus | None = AnalysisStatus.pending,
) -> list[SeededScan]:
    """``count`` finished scans of one connection, each with its own open findings and their
    ``finding`` events (as a scan leaves them) and, unless ``analysis_status`` is None, its
    analysis row."""
    now = utcnow()
    seeded = []
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        connection = CloudConnection(
            tenant_id=tenant_id,
            provider="aws",
            name=f"seeded-{uuid.uuid4().hex[:6]}",
            role_arn="arn:aws:iam::123456789012:role/ValdrixScanRole",
            external_id="seeded",
            account_id="123456789012",
            status="verified",
        )
        session.add(connection)
        await session.flush()
        for index in range(count):
            scan = Scan(
                tenant_id=tenant_id,
                connection_id=connection.id,
                trigger="scheduled",
                status=ScanStatus.completed.value,
                started_at=now,
                finished_at=now,
                findings_count=findings_per_scan,
            )
            session.add(scan)
            await session.flush()
            ids = []
            for number in range(findings_per_scan):
                volume = f"vol-{index:04d}{number:02d}{uuid.uuid4().hex[:8]}"
                finding = Finding(
                    tenant_id=tenant_id,
                    fingerprint=uuid.uuid4().hex,
                    connection_id=connection.id,
                    provider="aws",
                    account_id="123456789012",
                    region="us-east-1",
                    detector="aws.ebs-unattached",
                    resource_id=volume,
                    resource_type="ebs-volume",
                    resource_name=f"data-{number}",
                    reason="Volume has been unattached for 21 days.",
                    monthly_cost_usd=Decimal(8 * (number + 1)),
                    cost_basis="list_price",
                    evidence={"unattached_days": 21, "size_gb": 100 * (number + 1)},
                    tags=tags or {"team": "data"},
                    first_seen_at=now,
                    last_seen_at=now,
                    last_scan_id=scan.id,
                )
                session.add(finding)
                await session.flush()
                session.add(
                    ScanEvent(
                        tenant_id=tenant_id,
                        scan_id=scan.id,
                        type="finding",
                        payload={"finding_id": str(finding.id)},
                        created_at=now,
                    )
                )
                ids.append(finding.id)
            if analysis_status is not None:
                session.add(
                    ScanAnalysis(
                        tenant_id=tenant_id,
                        scan_id=scan.id,
                        status=analysis_status.value,
                        queued_at=now,
                    )
                )
            seeded.append(SeededScan(scan.id, ids))
    return seeded


async def analysis_of(runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID) -> ScanAnalysis:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        analysis = await AnalysisRepository(session).for_scan(scan_id)
    assert analysis is not None
    return analysis


async def budget_row(runtime: Runtime, tenant_id: uuid.UUID) -> LlmBudget | None:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await session.get(LlmBudget, tenant_id)


@asynccontextmanager
async def analysis_worker(runtime: Runtime, *, concurrency: int = 4) -> AsyncIterator[None]:
    """A procrastinate worker in this process serving the ``analysis`` queue with ``runtime``."""
    await open_job_app(runtime.urls.app)
    worker = asyncio.create_task(
        job_app.run_worker_async(
            queues=["analysis"],
            concurrency=concurrency,
            name="analysis-test",
            additional_context={"runtime": runtime},
            worker_middleware=[track_job],
            install_signal_handlers=False,
            fetch_job_polling_interval=0.2,
        )
    )
    try:
        yield
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
