"""Response bodies of the scan-analysis API."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from valdrix.analysis.models import AnalysisStatus, ScanAnalysis
from valdrix.kit.money import PlainDecimal
from valdrix.scanning.models import FINISHED_SCAN_STATUSES, Scan


class AnalysisOut(BaseModel):
    """The latest attempt's ``status`` and ``reason``, beside the last good ``result`` (from
    ``result_at``): asking again never hides what an earlier attempt found."""

    scan_id: uuid.UUID
    status: AnalysisStatus
    reason: str | None
    result: dict[str, Any] | None
    result_at: dt.datetime | None = None
    provider: str | None = None
    model: str | None = None
    cost_usd: PlainDecimal = Decimal(0)
    attempts: int = 0
    queued_at: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @classmethod
    def of(cls, analysis: ScanAnalysis) -> AnalysisOut:
        return cls(
            scan_id=analysis.scan_id,
            status=AnalysisStatus(analysis.status),
            reason=analysis.reason,
            result=analysis.result,
            result_at=analysis.result_at
            or (analysis.finished_at if analysis.status == AnalysisStatus.ready else None),
            provider=analysis.provider,
            model=analysis.model,
            cost_usd=analysis.cost_usd,
            attempts=analysis.attempts,
            queued_at=analysis.queued_at,
            next_attempt_at=analysis.next_attempt_at,
            finished_at=analysis.finished_at,
        )

    @classmethod
    def for_scan(cls, scan: Scan, analysis: ScanAnalysis | None) -> AnalysisOut:
        """The scan's analysis, or why there is none yet."""
        if analysis is not None:
            return cls.of(analysis)
        if scan.status not in FINISHED_SCAN_STATUSES:
            return cls(
                scan_id=scan.id,
                status=AnalysisStatus.pending,
                reason="queued when the scan finishes",
                result=None,
            )
        return cls(
            scan_id=scan.id,
            status=AnalysisStatus.disabled,
            reason="this scan finished before analysis was available; POST here to analyse it",
            result=None,
        )
