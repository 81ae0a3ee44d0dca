"""The process-wide AWS access object (credential cache, client settings)."""

from __future__ import annotations

from functools import lru_cache

from valdrix.config import Settings
from valdrix.connections.providers.aws import AwsAccess


@lru_cache(maxsize=4)
def _access(endpoint_url: str | None, read_timeout: float) -> AwsAccess:
    return AwsAccess(endpoint_url=endpoint_url, read_timeout=read_timeout)


def aws_access(settings: Settings) -> AwsAccess:
    # A call must not outlive the region budget: botocore's read timeout ends a hung request.
    return _access(settings.aws.endpoint_url, settings.scans.region_budget_seconds)
