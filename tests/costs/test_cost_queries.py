"""What a question about costs may ask: dates are written as dates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.http import assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/costs", {"start": "0", "end": "2024-10-01"}),
        ("/api/v1/costs/adjustments", {"start": "0"}),
        ("/api/v1/costs/adjustments", {"start": "2024-09-01", "end": "1727740800"}),
    ],
    ids=["costs", "adjustments-start", "adjustments-end"],
)
async def test_a_date_that_is_not_written_as_a_date_is_refused_naming_it(
    client: httpx.AsyncClient,
    make_tenant: Callable[..., Any],
    path: str,
    params: dict[str, str],
) -> None:
    tenant = await make_tenant()

    response = await client.get(path, params=params, headers=tenant.auth)

    problem = assert_problem(response, 422)
    field = next(name for name, value in params.items() if value.isdigit())
    assert problem["detail"] == f"query.{field}: must be a date written as YYYY-MM-DD"
