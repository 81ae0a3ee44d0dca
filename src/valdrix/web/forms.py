"""What the pages' forms share: reading a refusal as the API would word it, and making a change
all or nothing."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pydantic import ValidationError

from valdrix.errors import ProblemError
from valdrix.tenancy.auth import TenantScope


def invalid_input(invalid: ValidationError) -> str:
    """The API's 422 detail for the same body: the first field and its message."""
    first = invalid.errors()[0]
    return f"body.{'.'.join(str(part) for part in first['loc'])}: {first['msg']}"


async def attempt(scope: TenantScope, change: Awaitable[Any]) -> str | None:
    """Run a change in a savepoint: None when it was made, else the API's problem detail (and
    nothing of it kept, though the request's transaction commits)."""
    try:
        async with scope.session.begin_nested():
            await change
    except ProblemError as problem:
        return problem.detail
    return None
