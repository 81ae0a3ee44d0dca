"""The OpenAPI schema promises what the API answers: every operation documents the problems it
may give as application/problem+json, and a method a resource does not take is a 405 that lists
the ones it does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.http import assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM_STATUSES = ["400", "401", "403", "404", "409", "413", "422", "429"]


async def test_every_operation_documents_its_problems_as_problem_json(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"title", "status"} <= set(schemas["ProblemDetails"]["required"])
    problem = {"$ref": "#/components/schemas/ProblemDetails"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for status in PROBLEM_STATUSES:
                content = responses[status]["content"]
                assert content == {"application/problem+json": {"schema": problem}}, (
                    f"{method.upper()} {path} {status}"
                )


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/tenant", "GET, PATCH"),
        ("PATCH", "/api/v1/findings/summary", "GET"),
        ("PUT", "/api/v1/findings/8f0e2a1c-1d47-4f9e-9a53-0f6f0c0b9a10", "GET, PATCH"),
    ],
)
async def test_a_method_the_resource_does_not_take_is_405_listing_the_ones_it_does(
    client: httpx.AsyncClient, make_tenant: Callable[..., Any], method: str, path: str, allow: str
) -> None:
    tenant = await make_tenant()

    response = await client.request(method, path, headers=tenant.auth)

    problem = assert_problem(response, 405)
    assert problem["title"] == "Method not allowed"
    assert response.headers["allow"] == allow


async def test_text_inputs_document_that_they_cannot_hold_nul(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    no_nul = r"^[^\x00]*$"

    def parameter(path: str, method: str, name: str) -> dict[str, Any]:
        [found] = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
        schema: dict[str, Any] = found["schema"]
        return schema

    assert schemas["TenantPatch"]["properties"]["name"]["anyOf"][0]["pattern"] == no_nul
    detector = parameter("/api/v1/findings", "get", "detector")["anyOf"]
    assert [text.get("pattern") for text in detector if text["type"] == "string"] == [no_nul]
    assert schemas["ConnectionPatch"]["properties"]["thresholds"]["anyOf"][0]["propertyNames"] == {
        "pattern": no_nul
    }
    # Dates, ids and the like keep their formats (which exclude NUL already).
    assert "pattern" not in parameter("/api/v1/costs", "get", "start")
