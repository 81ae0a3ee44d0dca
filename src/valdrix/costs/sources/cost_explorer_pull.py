"""Cost Explorer imports as jobs: queueing one per AWS connection daily (and a pull of its FOCUS
exports when it names where they land), and running one.

A run assumes the connection's role (as a scan does), reads the lookback window and commits it
as one reconciliation run. Failures the customer must fix (a role Valdrix may not assume or use,
a connection that is gone) are recorded as a failed run and not retried; throttling and AWS or
network trouble raise ``RetryableError`` so the job backs off and tries again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

import structlog
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.config import Settings
from valdrix.connections.access import aws_access
from valdrix.connections.models import CloudConnection
from valdrix.connections.providers.aws import THROTTLE_CODES, AwsAccessError, error_code
from valdrix.costs.ingest.reconcile import commit_batch, record_failed_run
from valdrix.costs.ingest.records import SourceBatch
from valdrix.costs.models import CostRun, SourceKind
from valdrix.costs.repositories.reading import CostReadRepository
from valdrix.costs.sources.cost_explorer import denied, fetch_cost_explorer, source_key_for
from valdrix.jobs.retry import RetryableError
from valdrix.jobs.service import defer_for_target
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime

log = structlog.get_logger(__name__)

TASK_NAME = "costs.ingest"
PULL_TASK_NAME = "costs.pull_focus"
QUEUE = "costs"
ACTOR = "costs.ingest"
# Cost Explorer says "LimitExceededException" when throttling; a request whose data changed
# between pages must simply be asked again.
RETRY_CODES = THROTTLE_CODES | {"LimitExceededException", "RequestChangedException"}


async def queue_ingest(
    session: AsyncSession, settings: Settings, tenant_id: uuid.UUID, connection_id: uuid.UUID
) -> bool:
    """Defer the connection's import in the session's transaction; False if one is queued."""
    return await _queue(session, settings, tenant_id, connection_id, TASK_NAME, "costs")


async def queue_focus_pull(
    session: AsyncSession, settings: Settings, tenant_id: uuid.UUID, connection_id: uuid.UUID
) -> bool:
    """Defer the pull of the connection's FOCUS exports; False if one is queued."""
    return await _queue(session, settings, tenant_id, connection_id, PULL_TASK_NAME, "focus")


async def _queue(
    session: AsyncSession,
    settings: Settings,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    task_name: str,
    lock_kind: str,
) -> bool:
    queued = await defer_for_target(
        session,
        settings,
        tenant_id=tenant_id,
        task_name=task_name,
        queue=QUEUE,
        target_id=connection_id,
        queueing_lock=f"{lock_kind}:{connection_id}",
    )
    return queued is not None


async def queue_daily_ingests(runtime: Runtime) -> int:
    """One import per active AWS connection, across tenants, and one pull per connection that
    names a FOCUS export; returns how many jobs were queued."""
    async with unit_of_work(runtime.sessions, None) as session:
        targets = await CostReadRepository(session).cost_explorer_targets()
    queued = pulls = 0
    for tenant_id, connection_id in targets:
        # Each tenant's jobs commit in their own transaction: one tenant's trouble skips only it.
        try:
            async with unit_of_work(runtime.sessions, tenant_id) as session:
                queued += await queue_ingest(session, runtime.settings, tenant_id, connection_id)
                connection = await session.get(CloudConnection, connection_id)
                if connection is not None and connection.focus_export_uri:
                    pulled = await queue_focus_pull(
                        session, runtime.settings, tenant_id, connection_id
                    )
                    queued, pulls = queued + pulled, pulls + pulled
        except Exception:
            log.exception(
                "costs.schedule.failed", tenant_id=str(tenant_id), connection_id=str(connection_id)
            )
    log.info("costs.schedule.queued", targets=len(targets), queued=queued, focus_pulls=pulls)
    return queued


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


async def active_aws_connection(
    runtime: Runtime, tenant_id: uuid.UUID, connection_id: uuid.UUID, purpose: str
) -> CloudConnection | str:
    """The connection, if it is an active AWS one; else why ``purpose`` cannot use it."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        connection = await session.get(CloudConnection, connection_id)
    if connection is None:
        return "the connection does not exist"
    if connection.disabled_at is not None:
        return "the connection is disabled"
    if connection.provider != "aws":
        return f"{purpose} needs AWS; this is a {connection.provider} connection"
    return connection


async def fail_or_retry(
    record_failure: Callable[[str], Awaitable[CostRun]],
    reason: str,
    *,
    transient: bool,
    final_attempt: bool,
) -> CostRun:
    """A failed run for trouble that will not pass; ``RetryableError`` for trouble that may
    (recording a failed run first when no attempt is left). Call it while handling the error."""
    if not transient:
        return await record_failure(reason)
    if final_attempt:
        await record_failure(f"gave up: {reason}")
    raise RetryableError(reason)


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
        lookback_days=runtime.settings.costs_ce_lookback_days,
    )


def transient_aws_error(exc: BaseException) -> bool:
    """Throttling, AWS's own errors and the network are worth another attempt."""
    if isinstance(exc, AwsAccessError):
        cause = exc.__cause__
        return isinstance(cause, (ClientError, BotoCoreError)) and transient_aws_error(cause)
    if isinstance(exc, BotoCoreError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error_code(exc) in RETRY_CODES or status >= 500
    return False


def explain_aws_error(exc: BaseException) -> str:
    """For the customer, on the failed run."""
    if isinstance(exc, AwsAccessError):
        return exc.reason
    if isinstance(exc, ClientError):
        operation = exc.operation_name
        if denied(exc):
            return (
                f"access denied calling {operation}: give the role the policy from the"
                " connection set-up (it includes the cost permissions)"
            )
        return f"{operation} failed: {error_code(exc) or 'unknown error'}"
    return f"could not reach AWS: {exc}"[:500]


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
