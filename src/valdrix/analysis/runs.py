"""Running a scan's LLM analysis: the ``analysis.run`` job's work.

The job asks the model (through the budgeted gateway) about the scan's costliest open findings,
validates the answer with at most one repair turn, and stores it. When every provider is down it
records ``provider_unavailable`` and queues itself again with backoff, so analyses complete once
the provider is back, without a rescan, until ``VALDRIX_LLM_RETRY_WINDOW_HOURS`` have passed.
Each step is its own short transaction: none stays open while the model answers.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from valdrix.analysis.models import AnalysisStatus, ScanAnalysis
from valdrix.analysis.output import AnalysisAnswer, InvalidAnswer, parse_answer
from valdrix.analysis.prompt import Prompt, build_prompt
from valdrix.analysis.repository import AnalysisRepository
from valdrix.analysis.service import WORKING, defer_analysis
from valdrix.connections.models import CloudConnection
from valdrix.jobs.retry import RetryableError
from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.llm import gateway
from valdrix.llm.budget import BudgetExceeded, BudgetUnavailable
from valdrix.llm.client import ProviderRejected, ProviderUnavailable
from valdrix.llm.prices import UnpricedModel
from valdrix.runtime import Runtime
from valdrix.scanning.models import Scan
from valdrix.scanning.summary import overlap_usd_among

log = structlog.get_logger(__name__)


@dataclass
class Spend:
    """What an analysis attempt has cost so far (a repair turn is a second paid call)."""

    cost: Decimal = Decimal(0)
    provider: str | None = None
    model: str | None = None


async def run_analysis(runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID) -> str:
    """The ``analysis.run`` job's work; returns the analysis's status."""
    settings = runtime.settings
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        analyses = AnalysisRepository(session)
        analysis = await analyses.for_scan(scan_id, lock=True)
        if analysis is None:
            return "missing"
        # ``running`` here means an earlier attempt died with its worker: run it again.
        if analysis.status not in (*WORKING, AnalysisStatus.provider_unavailable):
            return analysis.status
        analysis.status, analysis.started_at = AnalysisStatus.running.value, utcnow()
        analysis.attempts += 1
        analysis.updated_at = utcnow()
        findings = await analyses.costliest_open_findings(scan_id, settings.llm.max_prompt_findings)
        total_count, gross_monthly = await analyses.open_findings_total(scan_id)
        # The prompt quotes the total the scan shows: each dollar counted once.
        overlap = await overlap_usd_among(session, analyses.open_finding_ids(scan_id))
        total_monthly = gross_monthly - overlap
        scan = await session.get(Scan, scan_id)
        connection = await session.get(CloudConnection, scan.connection_id) if scan else None
        # Until the connection is verified its account id is unknown; its name still says which.
        account = (connection.account_id or connection.name) if connection else "unknown"
    if not findings:
        empty = {"summary": "The scan found no open waste to analyse.", "findings": []}
        return await _finish(runtime, tenant_id, scan_id, AnalysisStatus.ready, result=empty)
    prompt = build_prompt(
        findings,
        account=account,
        total_findings=total_count,
        total_monthly_usd=total_monthly,
        max_bytes=settings.llm.max_prompt_bytes,
    )
    spend = Spend()
    try:
        answer, repaired = await _ask(runtime, tenant_id, scan_id, prompt, spend)
    except BudgetExceeded as exc:
        return await _finish(
            runtime, tenant_id, scan_id, AnalysisStatus.skipped_budget, reason=str(exc), spend=spend
        )
    except ProviderUnavailable as exc:
        return await _retry_later(runtime, tenant_id, scan_id, exc.reason, spend)
    except (ProviderRejected, UnpricedModel) as exc:
        reason = exc.reason if isinstance(exc, ProviderRejected) else str(exc)
        return await _finish(
            runtime, tenant_id, scan_id, AnalysisStatus.failed, reason=reason, spend=spend
        )
    except InvalidAnswer as exc:
        reason = f"the model's answer was invalid after one repair: {exc}"[:1000]
        return await _finish(
            runtime, tenant_id, scan_id, AnalysisStatus.failed, reason=reason, spend=spend
        )
    except BudgetUnavailable as exc:
        # No call was made. The job is retried with backoff (the database is probably back by
        # then); the analysis stays ``running`` until it is.
        raise RetryableError(str(exc)) from exc
    result = _result(answer, prompt, total_count, repaired)
    return await _finish(
        runtime, tenant_id, scan_id, AnalysisStatus.ready, result=result, spend=spend
    )


async def _ask(
    runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID, prompt: Prompt, spend: Spend
) -> tuple[AnalysisAnswer, bool]:
    """The answer and whether it needed the repair turn."""
    messages = list(prompt.messages)
    labels = set(prompt.labels)
    for turn in range(2):
        paid = await gateway.complete(
            runtime, tenant_id, messages, purpose="analysis", subject_id=scan_id
        )
        spend.cost += paid.cost_usd
        spend.provider, spend.model = paid.completion.provider, paid.completion.model
        try:
            return parse_answer(paid.completion.text, labels), turn > 0
        except InvalidAnswer as exc:
            if turn:
                raise
            log.info("analysis.repair", scan_id=str(scan_id), problems=exc.problems[:5])
            messages += [
                {"role": "assistant", "content": paid.completion.text[:8000]},
                {
                    "role": "user",
                    "content": "Your answer was not valid: "
                    + "; ".join(exc.problems[:8])
                    + ". Answer again with only the corrected JSON object.",
                },
            ]
    raise AssertionError("unreachable")


def _result(
    answer: AnalysisAnswer, prompt: Prompt, total_findings: int, repaired: bool
) -> dict[str, Any]:
    advice = {item.finding: item for item in answer.findings}
    ranked = list(dict.fromkeys(answer.priority))
    ranked += [label for label in prompt.labels if label not in ranked]  # the rest by cost
    return {
        "summary": answer.summary,
        "findings": [
            {
                "finding_id": str(finding.id),
                "resource_id": finding.resource_id,
                "detector": finding.detector,
                "region": finding.region,
                "monthly_cost_usd": None
                if finding.monthly_cost_usd is None
                else str(finding.monthly_cost_usd),
                "risk": advice[label].risk,
                "action": advice[label].action,
                "rationale": advice[label].rationale,
            }
            for label, finding in prompt.labels.items()
        ],
        "priority": [str(prompt.labels[label].id) for label in ranked],
        "findings_analysed": len(prompt.labels),
        "findings_total": total_findings,
        "repaired": repaired,
    }


async def _retry_later(
    runtime: Runtime, tenant_id: uuid.UUID, scan_id: uuid.UUID, reason: str, spend: Spend
) -> str:
    settings = runtime.settings
    now = utcnow()
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        analysis = await AnalysisRepository(session).for_scan(scan_id, lock=True)
        assert analysis is not None
        window = dt.timedelta(hours=settings.llm.retry_window_hours)
        if now - analysis.queued_at >= window:
            reason += (
                f" (gave up after {settings.llm.retry_window_hours:g} h of retries;"
                " POST /api/v1/scans/{id}/analysis to try again)"
            )
            analysis.next_attempt_at = None
        else:
            delay = min(
                settings.llm.retry_cap_seconds,
                settings.llm.retry_base_seconds * 2 ** (analysis.attempts - 1),
            )
            analysis.next_attempt_at = now + dt.timedelta(seconds=delay * random.uniform(0.5, 1))  # noqa: S311
            await defer_analysis(session, settings, tenant_id, scan_id, at=analysis.next_attempt_at)
        _record(analysis, AnalysisStatus.provider_unavailable, reason[:1000], None, spend)
        analysis.finished_at = None
    _observe(tenant_id, scan_id, AnalysisStatus.provider_unavailable, reason)
    return AnalysisStatus.provider_unavailable.value


async def _finish(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    scan_id: uuid.UUID,
    status: AnalysisStatus,
    *,
    reason: str | None = None,
    result: dict[str, Any] | None = None,
    spend: Spend | None = None,
) -> str:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        analysis = await AnalysisRepository(session).for_scan(scan_id, lock=True)
        assert analysis is not None
        _record(analysis, status, reason, result, spend or Spend())
        analysis.finished_at, analysis.next_attempt_at = utcnow(), None
    _observe(tenant_id, scan_id, status, reason)
    return status.value


def _record(
    analysis: ScanAnalysis,
    status: AnalysisStatus,
    reason: str | None,
    result: dict[str, Any] | None,
    spend: Spend,
) -> None:
    analysis.status, analysis.reason, analysis.updated_at = status.value, reason, utcnow()
    if result is not None:
        analysis.result, analysis.result_at = result, utcnow()
    analysis.cost_usd += spend.cost
    analysis.provider = spend.provider or analysis.provider
    analysis.model = spend.model or analysis.model


def _observe(
    tenant_id: uuid.UUID, scan_id: uuid.UUID, status: AnalysisStatus, reason: str | None
) -> None:
    metrics.ANALYSES_TOTAL.labels(outcome=status.value).inc()
    log.info(
        "analysis.finished",
        tenant_id=str(tenant_id),
        scan_id=str(scan_id),
        status=status.value,
        reason=reason,
    )
