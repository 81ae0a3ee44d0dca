"""Retry policy: exponential backoff with full jitter, only for errors worth retrying."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

import psycopg
import sqlalchemy.exc
from procrastinate import BaseRetryStrategy, RetryDecision
from procrastinate.jobs import Job


class RetryableError(Exception):
    """A transient failure (throttling, timeouts, a provider 5xx): worth another attempt."""


# Errors that are transient whoever raises them: network trouble and database failover (a lost
# or refused connection is an OperationalError, raw from psycopg or wrapped by SQLAlchemy).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    RetryableError,
    TimeoutError,
    ConnectionError,
    psycopg.OperationalError,
    sqlalchemy.exc.OperationalError,
)

# A job cancelled mid-run was cut off by its worker's shutdown (a deploy, a scale-in) once the
# grace period ran out: it must run again, whatever the task's own retry_on says. (A job whose
# abort was requested is cancelled too, but procrastinate fails it rather than retry it.)
INTERRUPTIONS: tuple[type[BaseException], ...] = (asyncio.CancelledError,)


class BackoffRetry(BaseRetryStrategy):
    """Wait ``uniform(0, min(cap, base * 2**attempt))`` seconds between attempts."""

    def __init__(
        self,
        *,
        max_attempts: int = 5,
        base_seconds: float = 5.0,
        cap_seconds: float = 900.0,
        retry_on: Iterable[type[BaseException]] = TRANSIENT_ERRORS,
    ) -> None:
        self.max_attempts = max_attempts
        self.base_seconds = base_seconds
        self.cap_seconds = cap_seconds
        self.retry_on = tuple(retry_on)

    def backoff_seconds(self, attempts: int) -> float:
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2**attempts))  # noqa: S311

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        retryable = isinstance(exception, (*self.retry_on, *INTERRUPTIONS))
        if job.attempts + 1 >= self.max_attempts or not retryable:
            return None
        return RetryDecision(
            retry_in={"seconds": max(1, round(self.backoff_seconds(job.attempts)))}
        )
