"""How old a resource is, from the creation (or stop) time its cloud reports, for every provider's
age thresholds."""

from __future__ import annotations

import datetime as dt

SECONDS_PER_DAY = 86400


def age_days(created: dt.datetime, now: dt.datetime) -> float:
    """Whole and fractional days between ``created`` and ``now`` (both timezone-aware)."""
    return round((now - created).total_seconds() / SECONDS_PER_DAY, 2)


def is_at_least_days_old(created: dt.datetime, now: dt.datetime, days: int) -> bool:
    return created <= now - dt.timedelta(days=days)
