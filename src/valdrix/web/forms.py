"""What the pages' forms share: reading a refusal as the API would word it, and making a change
all or nothing."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from pydantic import ValidationError

from valdrix.errors import ProblemError
from valdrix.tenancy.auth import TenantScope

T = TypeVar("T")


def invalid_input(invalid: ValidationError) -> str:
    """The API's 422 detail for the same body: the first field and its message."""
    first = invalid.errors()[0]
    return f"body.{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"


async def attempt(scope: TenantScope, change: Awaitable[T]) -> tuple[T | None, str | None]:
    """Run a change in a savepoint: its result, or the API's problem detail with nothing of the
    change kept (the request's transaction still commits what the page reads)."""
    try:
        async with scope.session.begin_nested():
            return await change, None
    except ProblemError as problem:
        return None, problem.detail
