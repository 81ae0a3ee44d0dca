"""Importing a connection's Cost Explorer window as a job (``costs.ingest``).

A run assumes the connection's role (as a scan does), reads the lookback window and commits it
as one reconciliation run. Failures the customer must fix (a role Valdrix may not assume or use,
a connection that is gone) are recorded as a failed run and not retried; throttling and AWS or
network trouble raise ``RetryableError`` so the job backs off and tries again (see
``pull_failures``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from functools import partial

from botocore.exceptions import BotoCoreError, ClientError

from valdrix.connections.access import aws_access
from valdrix.connections.models import CloudConnection
from valdrix.connections.providers.aws import AwsAccessError
from valdrix.costs.ingest.reconcile import commit_batch, record_failed_run
from valdrix.costs.ingest.records import SourceBatch
from valdrix.costs.models import CostRun, SourceKind
from valdrix.costs.sources.cost_explorer import fetch_cost_explorer, source_key_for
from valdrix.costs.sources.pull_failures import (
    active_aws_connection,
    explain_aws_error,
    fail_or_retry,
    transient_aws_error,
)
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime

ACTOR = "costs.ingest"


async def ingest_cost_explorer(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    *,
    today: dt.date | None = None,
    final_attempt: bool = True,
) -> CostRun:
    """The ``costs.ingest`` job's work: import the connection's Cost Explorer window.

    Returns the committed run, or the failed run that records why nothing was imported.
    Raises ``RetryableError`` for trouble worth another attempt (after recording a failed run
    when this is the ``final_attempt``).
    """
    source_key = source_key_for(connection_id)
    connection = await active_aws_connection(runtime, tenant_id, connection_id, "Cost Explorer")
    if isinstance(connection, str):
        return await _record_failure(runtime, tenant_id, source_key, connection)
    day = today or utcnow().date()
    try:
        batch = await asyncio.to_thread(_fetch, runtime, connection, source_key, day)
    except (AwsAccessError, ClientError, BotoCoreError) as exc:
        return await fail_or_retry(
            partial(_record_failure, runtime, tenant_id, source_key),
            explain_aws_error(exc),
            transient=transient_aws_error(exc),
            final_attempt=final_attempt,
        )
    return await commit_batch(runtime, tenant_id, batch, actor=ACTOR, connection_id=connection_id)


def _fetch(
    runtime: Runtime, connection: CloudConnection, source_key: str, today: dt.date
) -> SourceBatch:
    """In a worker thread: boto3 is synchronous."""
    access = aws_access(runtime.settings)
    credentials = access.assume(connection.role_arn, connection.external_id)
    account_id = connection.account_id or access.caller_account(credentials)
    # Cost Explorer and Organizations are global services served from us-east-1.
    return fetch_cost_explorer(
        access.client("ce", "us-east-1", credentials),
        access.client("organizations", "us-east-1", credentials),
        account_id=account_id,
        source_key=source_key,
        today=today,
        lookback_days=runtime.settings.costs.ce_lookback_days,
    )


async def _record_failure(
    runtime: Runtime, tenant_id: uuid.UUID, source_key: str, reason: str
) -> CostRun:
    return await record_failed_run(
        runtime,
        tenant_id,
        source_kind=SourceKind.aws_cost_explorer.value,
        source_key=source_key,
        reason=reason,
        actor=ACTOR,
    )
