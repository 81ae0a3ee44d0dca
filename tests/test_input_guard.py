"""No input reaches a 500: text PostgreSQL cannot store is refused with a 422 naming the field,
wherever it arrives (path, query, JSON body, form), and a value the database itself refuses is
the caller's 422, not a server error."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import TenantFixture
from tests.costs.focus_files import sample_path
from tests.fixtures.http import assert_problem
from tests.scanning.helpers import give_tenant_a_scanned_connection
from valdrix.errors import install_error_handlers
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime

pytestmark = pytest.mark.asyncio(loop_scope="session")

NUL_REASON = "must not contain NUL characters"
ROLE_ARN = "arn:aws:iam::123456789012:role/ValdrixScanRole"
BOUNDARY = "valdrix-test-boundary"


def assert_names_field(response: httpx.Response, field: str, reason: str = NUL_REASON) -> None:
    problem = assert_problem(response, 422)
    assert problem["title"] == "Invalid input"
    assert problem["detail"] == f"{field}: {reason}"
    assert problem["errors"] == [{"field": field, "message": reason}]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/findings", {"detector": "aws.ebs\x00"}, "query.detector"),
        ("/api/v1/jobs", {"type": "scans.run\x00"}, "query.type"),
        (
            "/api/v1/costs",
            {"start": "2024-09-01", "end": "2024-10-01", "group_by": "tag:team\x00"},
            "query.group_by",
        ),
    ],
    ids=["findings-detector", "jobs-type", "costs-group-by-tag"],
)
async def test_nul_in_a_query_parameter_is_refused_naming_it(
    client: httpx.AsyncClient,
    make_tenant: Callable[..., Any],
    path: str,
    params: dict[str, str],
    field: str,
) -> None:
    tenant = await make_tenant()

    response = await client.get(path, params=params, headers=tenant.auth)

    assert_names_field(response, field)


async def test_an_api_key_name_with_nul_is_refused_and_no_key_is_made(
    client: httpx.AsyncClient, make_tenant: Callable[..., Any]
) -> None:
    tenant = await make_tenant()

    response = await client.post(
        "/api/v1/api-keys", json={"name": "ci\x00key", "role": "viewer"}, headers=tenant.auth
    )

    assert_names_field(response, "body.name")
    keys = (await client.get("/api/v1/api-keys", headers=tenant.auth)).json()
    assert [key["name"] for key in keys] == ["owner key"]


async def test_a_tag_exclusion_with_nul_is_refused_naming_the_rule(
    client: httpx.AsyncClient, make_tenant: Callable[..., Any]
) -> None:
    tenant = await make_tenant()
    setup = await client.get("/api/v1/connections/aws/setup", headers=tenant.auth)
    body = {
        "name": "prod",
        "role_arn": ROLE_ARN,
        "external_id": setup.json()["external_id"],
        "tag_exclusions": [{"key": "team"}, {"key": "keep", "value": "y\x00es"}],
    }

    response = await client.post("/api/v1/connections", json=body, headers=tenant.auth)

    assert_names_field(response, "body.tag_exclusions.1.value")


async def test_a_finding_note_with_nul_is_refused_and_the_finding_is_unchanged(
    client: httpx.AsyncClient, make_tenant: Callable[..., Any], runtime: Runtime
) -> None:
    tenant: TenantFixture = await make_tenant()
    scanned = await give_tenant_a_scanned_connection(runtime, tenant.tenant_id)
    finding = f"/api/v1/findings/{scanned.finding_id}"

    response = await client.patch(
        finding, json={"status": "dismissed", "note": "not\x00ours"}, headers=tenant.auth
    )

    assert_names_field(response, "body.note")
    assert (await client.get(finding, headers=tenant.auth)).json()["status"] == "open"


@pytest.mark.parametrize(
    ("params", "file_name", "field"),
    [
        ({"source": "billing\x00export"}, "focus.csv", "query.source"),
        ({}, "focus\x00.csv", "body.file.filename"),
    ],
    ids=["source", "file-name"],
)
async def test_an_import_named_with_nul_is_refused_and_stores_nothing(
    client: httpx.AsyncClient,
    make_tenant: Callable[..., Any],
    params: dict[str, str],
    file_name: str,
    field: str,
) -> None:
    tenant = await make_tenant()
    # By hand: httpx would percent-encode the NUL in the file name.
    part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"'
        "\r\nContent-Type: text/csv\r\n\r\n"
    )
    body = part.encode() + sample_path().read_bytes() + f"\r\n--{BOUNDARY}--\r\n".encode()

    response = await client.post(
        "/api/v1/costs/imports",
        params=params,
        content=body,
        headers={**tenant.auth, "content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )

    assert_names_field(response, field)
    assert (await client.get("/api/v1/costs/runs", headers=tenant.auth)).json() == []


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("SELECT CAST(:value AS bigint)", "a number is out of range"),
        ("SELECT CAST(:value AS text)", "text must not contain NUL characters"),
    ],
    ids=["integer-out-of-range", "nul"],
)
async def test_a_value_the_database_refuses_is_the_callers_422(
    runtime: Runtime, statement: str, reason: str, tmp_path: Path
) -> None:
    """The last line, for input no check caught: the real database's refusal, translated."""
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/probe")
    async def probe(value: str) -> None:
        bound: Any = int(value) if value.isdigit() else value
        async with unit_of_work(runtime.sessions, uuid.uuid4()) as session:
            await session.execute(text(statement), {"value": bound})

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        value = "99999999999999999999" if "bigint" in statement else "a\x00b"
        response = await api.get("/probe", params={"value": value})

    problem = assert_problem(response, 422, with_request_id=False)  # a bare app: no middleware
    assert problem["detail"] == reason


async def test_an_unpaired_surrogate_anywhere_in_json_is_refused_naming_where(
    client: httpx.AsyncClient, make_tenant: Callable[..., Any]
) -> None:
    """JSON's \\ud800 escape makes text no database can encode, in a field of any type."""
    tenant = await make_tenant()

    response = await client.patch(
        "/api/v1/connections/8f0e2a1c-1d47-4f9e-9a53-0f6f0c0b9a10",
        content=b'{"thresholds": {"aws.ebs-unattached": {"min_age_days": "\\ud800"}}}',
        headers={**tenant.auth, "content-type": "application/json"},
    )

    assert_names_field(
        response,
        "body.thresholds.aws.ebs-unattached.min_age_days",
        "must be valid Unicode (no unpaired surrogates)",
    )
