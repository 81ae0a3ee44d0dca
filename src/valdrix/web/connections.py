"""Connections: the tenant's cloud accounts with their status and last scan, adding an AWS
account step by step (admins), verifying it, editing its regions, thresholds and tag exclusions,
and disabling it. Each figure and each change goes through the service behind the
/api/v1/connections endpoint named beside it in the template; the forms' values are checked by
the API's own request bodies, so a refusal reads as the API's problem detail."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from pydantic import ValidationError

from valdrix.connections import service as connections
from valdrix.connections.models import CloudConnection
from valdrix.connections.schemas import ConnectionCreate, ConnectionPatch
from valdrix.scanning import service as scanning
from valdrix.scanning.models import Scan
from valdrix.tenancy.auth import AdminScope, TenantScope, ViewerScope
from valdrix.web.chrome import page_context
from valdrix.web.forms import attempt, invalid_input
from valdrix.web.routing import PageRoute
from valdrix.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
STACK_NAME = "ValdrixScanRole"
CLOUDFORMATION_CONSOLE = (
    "https://console.aws.amazon.com/cloudformation/home#/stacks/create/template"
)


def regions_of(text: str) -> list[str] | None:
    """ "us-east-1, eu-west-1" (commas or spaces); nothing means every enabled region (null)."""
    regions = text.replace(",", " ").split()
    return regions or None


def tag_rules_of(text: str) -> list[dict[str, str | None]]:
    """One rule a line: ``key=value``, or ``key`` alone for any value."""
    rules: list[dict[str, str | None]] = []
    for line in text.splitlines():
        if line.strip():
            key, has_value, value = line.partition("=")
            rules.append({"key": key.strip(), "value": value.strip() if has_value else None})
    return rules


def tag_rules_text(rules: Sequence[Mapping[str, str | None]]) -> str:
    return "\n".join(
        str(rule["key"]) if rule.get("value") is None else f"{rule['key']}={rule['value']}"
        for rule in rules
    )


async def _last_scans(
    scope: TenantScope, connected: list[CloudConnection]
) -> dict[uuid.UUID, Scan]:
    """Each connection's newest scan, as ``GET /api/v1/scans?connection_id=…&limit=1``."""
    last: dict[uuid.UUID, Scan] = {}
    for connection in connected:
        scans = await scanning.list_scans(
            scope.session, scope.principal, limit=1, connection_id=connection.id
        )
        if scans:
            last[connection.id] = scans[0]
    return last


@router.get("/connections")
async def connections_page(request: Request, scope: ViewerScope) -> Response:
    connected = await connections.list_connections(scope.session, scope.principal)
    context = await page_context(
        scope,
        connections=connected,
        last_scans=await _last_scans(scope, connected),
        disabled=await connections.list_connections(scope.session, scope.principal, disabled=True),
    )
    if context["can_administer"]:
        setup = connections.aws_setup(
            scope.principal, scope.runtime.keyring, scope.runtime.settings
        )
        context |= {
            "setup": setup,
            "policy_json": json.dumps(setup["iam_policy"], indent=2),
            "trust_json": json.dumps(setup["trust_policy"], indent=2)
            if setup["trust_policy"]
            else None,
            "stack_name": STACK_NAME,
            "cloudformation_console": CLOUDFORMATION_CONSOLE,
        }
    return render(request, "connections.html", context)


@router.post("/connections")
async def add_connection(
    request: Request,
    scope: AdminScope,
    name: Annotated[str, Form(max_length=1000)],
    role_arn: Annotated[str, Form(max_length=4000)],
    external_id: Annotated[str, Form(max_length=1000)],
    regions: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """``POST /api/v1/connections``'s body and service; on success, on to the connection."""
    try:
        body = ConnectionCreate.model_validate(
            {
                "name": name,
                "role_arn": role_arn.strip(),
                "external_id": external_id,
                "regions": regions_of(regions),
            }
        )
    except ValidationError as invalid:
        return render(request, "connection_outcome.html", {"error": invalid_input(invalid)})
    connection, error = await attempt(
        scope,
        connections.create_connection(
            scope.session,
            scope.principal,
            scope.runtime.keyring,
            name=body.name,
            role_arn=body.role_arn,
            external_id=body.external_id,
            regions=body.regions,
            thresholds=body.thresholds,
            tag_exclusions=[rule.model_dump() for rule in body.tag_exclusions],
        ),
    )
    if connection is None:
        return render(request, "connection_outcome.html", {"error": error})
    return Response(status_code=204, headers={"HX-Redirect": f"/connections/{connection.id}"})


@router.get("/connections/{connection_id}")
async def connection_page(
    request: Request, connection_id: uuid.UUID, scope: ViewerScope
) -> Response:
    connection = await connections.get_connection(scope.session, scope.principal, connection_id)
    last = await _last_scans(scope, [connection])
    context = await page_context(
        scope,
        connection=connection,
        last_scan=last.get(connection.id),
        regions_text=", ".join(connection.regions or []),
        thresholds_json=json.dumps(connection.thresholds, indent=2),
        tag_rules=tag_rules_text(connection.tag_exclusions),
    )
    return render(request, "connection.html", context)


@router.post("/connections/{connection_id}/verify")
async def verify_connection(
    request: Request, connection_id: uuid.UUID, scope: AdminScope
) -> Response:
    """``POST /api/v1/connections/{id}/verify``'s service: the account id, or the reason."""
    connection = await connections.verify_connection(
        scope.session, scope.principal, scope.runtime.settings, connection_id
    )
    return render(request, "connection_verified.html", {"connection": connection})


@router.patch("/connections/{connection_id}")
async def edit_connection(
    request: Request,
    connection_id: uuid.UUID,
    scope: AdminScope,
    regions: Annotated[str, Form(max_length=4000)] = "",
    thresholds: Annotated[str, Form(max_length=20000)] = "",
    tag_exclusions: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    """``PATCH /api/v1/connections/{id}``'s body and service, all or nothing."""
    try:
        parsed: Any = json.loads(thresholds) if thresholds.strip() else {}
    except (ValueError, RecursionError) as exc:  # also a number of thousands of digits
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return render(
            request, "connection_outcome.html", {"error": f"thresholds: not JSON ({reason})"}
        )
    try:
        body = ConnectionPatch.model_validate(
            {
                "regions": regions_of(regions),
                "thresholds": parsed,
                "tag_exclusions": tag_rules_of(tag_exclusions),
            }
        )
    except ValidationError as invalid:
        return render(request, "connection_outcome.html", {"error": invalid_input(invalid)})
    changes = body.model_dump(exclude_unset=True)
    _, error = await attempt(
        scope,
        connections.update_connection(scope.session, scope.principal, connection_id, changes),
    )
    outcome = {"error": error} if error else {"message": "Saved."}
    return render(request, "connection_outcome.html", outcome)


@router.post("/connections/{connection_id}/enable")
async def enable_connection(
    request: Request, connection_id: uuid.UUID, scope: AdminScope
) -> Response:
    """``POST /api/v1/connections/{id}/enable``'s service; on success, on to the connection."""
    _, error = await attempt(
        scope, connections.enable_connection(scope.session, scope.principal, connection_id)
    )
    if error:
        return render(request, "connection_outcome.html", {"error": error})
    return Response(status_code=204, headers={"HX-Redirect": f"/connections/{connection_id}"})


@router.delete("/connections/{connection_id}")
async def disable_connection(connection_id: uuid.UUID, scope: AdminScope) -> Response:
    """``DELETE /api/v1/connections/{id}``'s service: no more scans; back to the list."""
    await connections.disable_connection(scope.session, scope.principal, connection_id)
    return Response(status_code=204, headers={"HX-Redirect": "/connections"})
