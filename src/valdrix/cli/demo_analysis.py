"""The demo's LLM analysis: the configured provider if there is one, else a simulated analyst.

The simulated analyst is a local chat-completions server answering with rule-of-thumb advice per
detector (``valdrix.simulator.llm_analyst``), priced like Groq's Llama 3.3 70B, so the demo shows
the whole path (background job, budget reservation and settlement, validated advice) without an
API key. The demo says which one it uses.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

from rich.console import Console

from valdrix.analysis.models import AnalysisStatus
from valdrix.analysis.repository import AnalysisRepository
from valdrix.analysis.schemas import AnalysisOut
from valdrix.config import Settings
from valdrix.kit.db import unit_of_work
from valdrix.runtime import open_runtime
from valdrix.simulator.llm_analyst import analyst_answer
from valdrix.simulator.llm_server import SimulatedLLM

DEMO_MODEL = "valdrix-demo-analyst"
DEMO_PRICE = {"input_per_million": "0.59", "output_per_million": "0.79"}
ANALYSIS_WAIT_SECONDS = 60.0
FINAL = {status.value for status in AnalysisStatus} - {"pending", "running"}


def start_demo_analyst(settings: Settings) -> tuple[Settings, SimulatedLLM | None]:
    """Settings with a provider for this process and the worker it starts (through the
    environment), and the simulated server if one was started."""
    if settings.llm.enabled:
        return settings, None
    server = SimulatedLLM(responder=analyst_answer).start()
    prices = Path(settings.home) / "demo-llm-prices.json"
    prices.write_text(json.dumps({"models": {DEMO_MODEL: DEMO_PRICE}}))
    environment = {
        "VALDRIX_LLM_BASE_URL": server.base_url,
        "VALDRIX_LLM_MODEL": DEMO_MODEL,
        "VALDRIX_LLM_PROVIDER_NAME": "simulated-analyst",
        "VALDRIX_LLM_PRICES_FILE": str(prices),
    }
    os.environ.update(environment)
    return settings.updated(
        llm={
            "base_url": server.base_url,
            "model": DEMO_MODEL,
            "provider_name": "simulated-analyst",
            "prices_file": prices,
        }
    ), server


async def finished_analysis(
    settings: Settings, tenant_id: uuid.UUID, scan_id: uuid.UUID
) -> AnalysisOut | None:
    """The scan's analysis once it has ended (None if it is still going after a minute)."""
    runtime = open_runtime(settings)
    deadline = time.monotonic() + ANALYSIS_WAIT_SECONDS
    try:
        while time.monotonic() < deadline:
            async with unit_of_work(runtime.sessions, tenant_id) as session:
                analysis = await AnalysisRepository(session).for_scan(scan_id)
            if analysis is not None and analysis.status in FINAL:
                return AnalysisOut.of(analysis)
            await asyncio.sleep(0.5)
        return None
    finally:
        await runtime.close()


def print_analysis(out: Console, analysis: AnalysisOut | None, simulated: bool) -> None:
    source = "simulated analyst, no real model" if simulated else "configured LLM provider"
    if analysis is None:
        out.print(f"  analysis    still running ({source}); see /api/v1/scans/{{id}}/analysis")
        return
    if analysis.status != AnalysisStatus.ready or analysis.result is None:
        out.print(f"  analysis    {analysis.status.value} ({source}): {analysis.reason}")
        return
    out.print(
        f"  analysis    ready ({source}, ${analysis.cost_usd:.4f} of the LLM budget): "
        f"{analysis.result['summary']}"
    )
    advice = {item["finding_id"]: item for item in analysis.result["findings"]}
    for finding_id in analysis.result["priority"][:3]:
        item = advice[finding_id]
        out.print(
            f"              {item['action']:<20} {item['resource_id']} "
            f"({item['detector']}, risk {item['risk']})"
        )
