"""Pulling a connection's FOCUS exports from S3 as a job (``costs.pull_focus``).

The pull assumes the connection's role (as a scan does), lists the export's prefix and imports
every new or changed delivery (see ``s3_exports``). Failures the customer must fix (a bucket that
does not exist, a role that may not read it, a connection that is gone or names no export) are
recorded as a failed run and not retried. Throttling, AWS's own errors, the network, and a file
rewritten while it was read raise ``RetryableError``: the job backs off and tries again, and the
deliveries already imported are then skipped by their fingerprints.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from valdrix.connections.access import aws_access
from valdrix.connections.exports import ExportLocation, parse_export_uri
from valdrix.connections.providers.aws import AwsAccessError, error_code
from valdrix.costs.ingest.reconcile import record_failed_run
from valdrix.costs.models import CostRun, RunStatus, SourceKind
from valdrix.costs.sources.cost_explorer import denied
from valdrix.costs.sources.pull_failures import (
    active_aws_connection,
    explain_aws_error,
    fail_or_retry,
    transient_aws_error,
)
from valdrix.costs.sources.s3_exports import (
    ACTOR,
    Delivery,
    import_new_deliveries,
    list_deliveries,
    source_key_for,
)
from valdrix.runtime import Runtime

log = structlog.get_logger(__name__)

# A file replaced or removed between the listing and its download (HEAD answers carry only the
# status): another attempt lists and reads the new delivery.
CHANGED_CODES = frozenset({"NoSuchKey", "404", "PreconditionFailed", "412"})
# S3's throttling and timeout codes.
RETRY_CODES = CHANGED_CODES | {"SlowDown", "RequestTimeout"}
# S3 buckets live in one region; a request sent elsewhere is redirected by botocore.
S3_REGION = "us-east-1"


@dataclass(frozen=True)
class _Export:
    role_arn: str
    external_id: str
    location: ExportLocation


async def pull_focus_exports(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    *,
    final_attempt: bool = True,
) -> list[CostRun]:
    """The ``costs.pull_focus`` job's work: a run per new or changed delivery (committed or
    rejected), plus a failed run if the pull could not go on. Raises ``RetryableError`` for
    trouble worth another attempt (after recording a failed run on the ``final_attempt``)."""
    source_key = source_key_for(connection_id)
    export = await _load_export(runtime, tenant_id, connection_id)
    if isinstance(export, str):
        return [await _record_failure(runtime, tenant_id, source_key, export)]
    access = aws_access(runtime.settings)

    def s3() -> Any:
        # Credentials come from the access object's cache, renewed shortly before they expire.
        credentials = access.assume(export.role_arn, export.external_id)
        return access.client("s3", S3_REGION, credentials)

    def listing() -> list[Delivery]:
        return list_deliveries(s3(), export.location)

    runs: list[CostRun] = []
    try:
        deliveries = await asyncio.to_thread(listing)
        async for run in import_new_deliveries(runtime, tenant_id, connection_id, deliveries, s3):
            runs.append(run)
    except (AwsAccessError, ClientError, BotoCoreError) as exc:
        failed = await fail_or_retry(
            partial(_record_failure, runtime, tenant_id, source_key),
            _explain(exc, export.location),
            transient=_transient(exc),
            final_attempt=final_attempt,
        )
        return [*runs, failed]
    log.info(
        "costs.focus_pull.done",
        tenant_id=str(tenant_id),
        connection_id=str(connection_id),
        export=export.location.uri,
        deliveries=len(deliveries),
        unchanged=len(deliveries) - len(runs),
        committed=sum(run.status == RunStatus.committed.value for run in runs),
        rejected=sum(run.status == RunStatus.rejected.value for run in runs),
    )
    return runs


async def _load_export(
    runtime: Runtime, tenant_id: uuid.UUID, connection_id: uuid.UUID
) -> _Export | str:
    """The connection's role and export, or why it cannot be pulled."""
    connection = await active_aws_connection(
        runtime, tenant_id, connection_id, "pulling FOCUS exports from S3"
    )
    if isinstance(connection, str):
        return connection
    if not connection.focus_export_uri:
        return "the connection names no FOCUS export (focus_export_uri)"
    location = parse_export_uri(connection.focus_export_uri)
    return _Export(connection.role_arn, connection.external_id, location)


def _transient(exc: BaseException) -> bool:
    return error_code(exc) in RETRY_CODES or transient_aws_error(exc)


def _explain(exc: BaseException, location: ExportLocation) -> str:
    if error_code(exc) == "NoSuchBucket":
        return f"the bucket {location.bucket} does not exist: correct the connection's export"
    if isinstance(exc, ClientError) and error_code(exc) in CHANGED_CODES:
        code = error_code(exc)
        return f"a file changed while the delivery was read ({exc.operation_name}: {code})"
    if isinstance(exc, ClientError) and denied(exc):
        return (
            f"access denied calling {exc.operation_name} on {location.uri}: the role needs"
            " s3:ListBucket on the bucket and s3:GetObject on the objects under the prefix (the"
            " policy from the connection set-up has both), and the bucket's policy (and its KMS"
            " key, if it has one) must let the role read them"
        )
    return explain_aws_error(exc)


async def _record_failure(
    runtime: Runtime, tenant_id: uuid.UUID, source_key: str, reason: str
) -> CostRun:
    return await record_failed_run(
        runtime,
        tenant_id,
        source_kind=SourceKind.focus_file.value,
        source_key=source_key,
        reason=reason,
        actor=ACTOR,
    )
