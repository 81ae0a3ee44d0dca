"""HTTP routes for cloud connections."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from valdrix.connections import service
from valdrix.connections.schemas import (
    AwsSetupOut,
    ConnectionCreate,
    ConnectionOut,
    ConnectionPatch,
    VerifyOut,
)
from valdrix.tenancy.auth import AdminScope, ViewerScope

router = APIRouter(prefix="/api/v1", tags=["connections"])


@router.get("/connections/aws/setup")
async def aws_setup(
    scope: AdminScope,
    focus_export_uri: Annotated[str | None, Query(max_length=1024)] = None,
) -> AwsSetupOut:
    """A new external id, the IAM policy the scans and cost imports need and a CloudFormation
    template. With `focus_export_uri` (`s3://bucket/prefix/`), the policy also grants reading
    that location, and only it."""
    return AwsSetupOut(
        **service.aws_setup(
            scope.principal, scope.runtime.keyring, scope.runtime.settings, focus_export_uri
        )
    )


CLOUDFORMATION_FILE = "valdrix-scan-role.json"


@router.get(
    "/connections/aws/cloudformation-template",
    responses={200: {"content": {"application/json": {}}}},
)
async def aws_cloudformation_template(
    scope: AdminScope,
    external_id: Annotated[str, Query(min_length=8, max_length=128)],
    focus_export_uri: Annotated[str | None, Query(max_length=1024)] = None,
) -> JSONResponse:
    """The setup's CloudFormation template for an external id the setup issued, as a file to
    upload in the CloudFormation console (Create stack, Upload a template file)."""
    template = service.aws_cloudformation_download(
        scope.principal,
        scope.runtime.keyring,
        scope.runtime.settings,
        external_id=external_id,
        focus_export_uri=focus_export_uri,
    )
    disposition = f'attachment; filename="{CLOUDFORMATION_FILE}"'
    return JSONResponse(template, headers={"Content-Disposition": disposition})


@router.get("/connections")
async def list_connections(
    scope: ViewerScope,
    disabled: Annotated[
        bool, Query(description="List the disabled connections instead, the latest first")
    ] = False,
) -> list[ConnectionOut]:
    connections = await service.list_connections(scope.session, scope.principal, disabled=disabled)
    return [ConnectionOut.model_validate(c) for c in connections]


@router.post("/connections", status_code=status.HTTP_201_CREATED)
async def create_connection(body: ConnectionCreate, scope: AdminScope) -> ConnectionOut:
    connection = await service.create_connection(
        scope.session,
        scope.principal,
        scope.runtime.keyring,
        name=body.name,
        role_arn=body.role_arn,
        external_id=body.external_id,
        regions=body.regions,
        thresholds=body.thresholds,
        tag_exclusions=[rule.model_dump() for rule in body.tag_exclusions],
        focus_export_uri=body.focus_export_uri,
    )
    return ConnectionOut.model_validate(connection)


@router.get("/connections/{connection_id}")
async def read_connection(connection_id: uuid.UUID, scope: ViewerScope) -> ConnectionOut:
    connection = await service.get_connection(scope.session, scope.principal, connection_id)
    return ConnectionOut.model_validate(connection)


@router.patch("/connections/{connection_id}")
async def update_connection(
    connection_id: uuid.UUID, body: ConnectionPatch, scope: AdminScope
) -> ConnectionOut:
    changes = body.model_dump(exclude_unset=True)
    connection = await service.update_connection(
        scope.session, scope.principal, connection_id, changes
    )
    return ConnectionOut.model_validate(connection)


@router.delete("/connections/{connection_id}", status_code=status.HTTP_204_NO_CONTENT)
async def disable_connection(connection_id: uuid.UUID, scope: AdminScope) -> None:
    await service.disable_connection(scope.session, scope.principal, connection_id)


@router.post("/connections/{connection_id}/verify")
async def verify_connection(connection_id: uuid.UUID, scope: AdminScope) -> VerifyOut:
    connection = await service.verify_connection(
        scope.session, scope.principal, scope.runtime.settings, connection_id
    )
    return VerifyOut(
        ok=connection.status == "verified",
        account_id=connection.account_id,
        reason=connection.status_reason,
    )


@router.post("/connections/{connection_id}/enable")
async def enable_connection(connection_id: uuid.UUID, scope: AdminScope) -> ConnectionOut:
    """Scan a disabled connection again (its schedule resumes); refused if an active connection
    has taken its name."""
    connection = await service.enable_connection(scope.session, scope.principal, connection_id)
    return ConnectionOut.model_validate(connection)
