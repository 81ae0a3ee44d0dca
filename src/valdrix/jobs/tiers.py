"""What a tenant's tier buys: scan cadence and queue priority."""

from __future__ import annotations

import datetime as dt

from valdrix.config import TIER_NAMES, Settings

# Jobs of a better tier always outrank a worse tier; inside a tier a tenant's own backlog lowers
# the priority of its later jobs, so one busy tenant cannot keep the others waiting.
PRIORITY_STEP = 100
MAX_BACKLOG_PENALTY = PRIORITY_STEP - 1
# The platform's own jobs (scheduler tick, stalled-job recovery, stuck detection) outrank every
# tenant job: queued behind a busy tier they would wait for the whole backlog to drain.
SYSTEM_PRIORITY = len(TIER_NAMES) * PRIORITY_STEP


def cadence(settings: Settings, tier: str) -> dt.timedelta:
    return dt.timedelta(hours=settings.jobs.tier_cadence_hours[tier])


def cadence_seconds(settings: Settings) -> dict[str, float]:
    return {tier: hours * 3600 for tier, hours in settings.jobs.tier_cadence_hours.items()}


def job_priority(tier: str, tenant_backlog: int) -> int:
    """Higher runs first (procrastinate's convention)."""
    base = TIER_NAMES.index(tier) * PRIORITY_STEP
    return base - min(max(tenant_backlog, 0), MAX_BACKLOG_PENALTY)
