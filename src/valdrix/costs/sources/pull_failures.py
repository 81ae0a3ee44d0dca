"""What the jobs that pull costs from a customer's AWS account do when they cannot go on.

Failures the customer must fix (a role Valdrix may not assume or use, a connection that is gone
or disabled) are recorded as a failed run and not retried; throttling and AWS or network trouble
raise ``RetryableError`` so the job backs off and tries again (recording a failed run first when
no attempt is left).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from botocore.exceptions import BotoCoreError, ClientError

from valdrix.connections.models import CloudConnection
from valdrix.connections.providers.aws import THROTTLE_CODES, AwsAccessError, error_code
from valdrix.costs.models import CostRun
from valdrix.costs.sources.cost_explorer import denied
from valdrix.jobs.retry import RetryableError
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime

# Cost Explorer says "LimitExceededException" when throttling; a request whose data changed
# between pages must simply be asked again.
RETRY_CODES = THROTTLE_CODES | {"LimitExceededException", "RequestChangedException"}


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
