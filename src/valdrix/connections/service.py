"""Registering, verifying and configuring cloud connections."""

from __future__ import annotations

import asyncio
import hmac
import secrets
import uuid
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.config import Settings
from valdrix.connections.access import aws_access
from valdrix.connections.exports import parse_export_uri
from valdrix.connections.models import CloudConnection
from valdrix.connections.needs import check_thresholds
from valdrix.connections.policy import (
    aws_cloudformation_template,
    aws_iam_policy,
    aws_permissions,
    aws_quick_create_url,
    aws_trust_policy,
)
from valdrix.connections.providers.aws import ROLE_ARN_SHAPE, AwsAccessError, account_of_role
from valdrix.connections.repository import ConnectionRepository
from valdrix.errors import Conflict, InvalidInput, NotFound
from valdrix.jobs.repository import ScheduleRepository
from valdrix.jobs.service import ensure_schedule
from valdrix.kit.crypto import KeyRing
from valdrix.kit.orm import utcnow
from valdrix.tenancy.audit import record_audit
from valdrix.tenancy.auth import Principal

log = structlog.get_logger(__name__)

SCAN_KIND = "scan"
EXTERNAL_ID_PREFIX = "vdx-"


def new_external_id(keyring: KeyRing, tenant_id: uuid.UUID) -> str:
    """A fresh external id, signed so Valdrix can tell it issued it to this tenant."""
    nonce = secrets.token_hex(8)
    return f"{EXTERNAL_ID_PREFIX}{nonce}-{_signature(keyring.blind_index, tenant_id, nonce)}"


def _signature(index: Any, tenant_id: uuid.UUID, nonce: str) -> str:
    return bytes(index(f"external-id:{tenant_id}:{nonce}")).hex()[:24]


def external_id_is_ours(keyring: KeyRing, tenant_id: uuid.UUID, external_id: str) -> bool:
    body = external_id.removeprefix(EXTERNAL_ID_PREFIX)
    nonce, _, signature = body.partition("-")
    candidates = keyring.blind_indexes(f"external-id:{tenant_id}:{nonce}")
    # As bytes: compare_digest refuses str holding anything but ASCII (a 500, not a refusal).
    given = signature.encode()
    return any(hmac.compare_digest(c.hex()[:24].encode(), given) for c in candidates)


def aws_setup(
    actor: Principal, keyring: KeyRing, settings: Settings, focus_export_uri: str | None = None
) -> dict[str, Any]:
    """What the customer creates; with the FOCUS export location, the policy also lets the role
    read that bucket and prefix (and nothing else in S3)."""
    uri = _clean_export_uri(focus_export_uri)
    external_id = new_external_id(keyring, actor.tenant_id)
    aws = settings.aws
    principal = aws.principal_arn
    quick_create = (
        aws_quick_create_url(
            aws.cloudformation_template_url, aws.cloudformation_region, external_id, principal, uri
        )
        if aws.cloudformation_template_url and principal
        else None
    )
    return {
        "external_id": external_id,
        "valdrix_principal_arn": principal,
        "required_permissions": aws_permissions(uri),
        "iam_policy": aws_iam_policy(uri),
        "trust_policy": aws_trust_policy(principal, external_id) if principal else None,
        "cloudformation_template": aws_cloudformation_template(principal, external_id, uri),
        "cloudformation_quick_create_url": quick_create,
    }


def aws_cloudformation_download(
    actor: Principal,
    keyring: KeyRing,
    settings: Settings,
    *,
    external_id: str,
    focus_export_uri: str | None = None,
) -> dict[str, Any]:
    """The setup's CloudFormation template again, for an external id issued to this tenant: a
    file to upload in the CloudFormation console (a quick-create link needs the operator's
    template published on S3: ``aws_setup`` offers one when it is)."""
    if not external_id_is_ours(keyring, actor.tenant_id, external_id):
        raise InvalidInput(
            "external_id was not issued to this tenant: get one from /api/v1/connections/aws/setup"
        )
    uri = _clean_export_uri(focus_export_uri)
    return aws_cloudformation_template(settings.aws.principal_arn, external_id, uri)


async def create_connection(
    session: AsyncSession,
    actor: Principal,
    keyring: KeyRing,
    *,
    name: str,
    role_arn: str,
    external_id: str,
    regions: list[str] | None,
    thresholds: dict[str, dict[str, Any]],
    tag_exclusions: list[dict[str, str | None]],
    focus_export_uri: str | None = None,
) -> CloudConnection:
    if account_of_role(role_arn) is None:
        raise InvalidInput(f"role_arn must look like {ROLE_ARN_SHAPE}")
    if not external_id_is_ours(keyring, actor.tenant_id, external_id):
        raise InvalidInput(
            "external_id was not issued to this tenant: get one from /api/v1/connections/aws/setup"
        )
    repository = ConnectionRepository(session)
    if await repository.by_name(name.strip()):
        raise Conflict(f"a connection named '{name.strip()}' already exists")
    connection = await repository.add(
        CloudConnection(
            tenant_id=actor.tenant_id,
            provider="aws",
            name=name.strip(),
            role_arn=role_arn,
            external_id=external_id,
            regions=_clean_regions(regions),
            thresholds=check_thresholds(thresholds),
            tag_exclusions=tag_exclusions,
            focus_export_uri=_clean_export_uri(focus_export_uri),
        )
    )
    # Scanned at the tier's cadence from now on; the first scan is due at once.
    await ensure_schedule(session, actor, kind=SCAN_KIND, target_id=connection.id)
    await record_audit(
        session,
        actor,
        "connection.create",
        target_type="connection",
        target_id=connection.id,
        details={
            "role_arn": role_arn,
            "regions": connection.regions,
            "focus_export_uri": connection.focus_export_uri,
        },
    )
    return connection


def _clean_regions(regions: list[str] | None) -> list[str] | None:
    if regions is None:
        return None
    cleaned = sorted({r.strip() for r in regions if r.strip()})
    if not cleaned:
        raise InvalidInput("regions must name at least one region, or be null for all")
    return cleaned


def _clean_export_uri(uri: str | None) -> str | None:
    if uri is None or not uri.strip():
        return None
    try:
        return parse_export_uri(uri).uri
    except ValueError as exc:
        raise InvalidInput(f"focus_export_uri: {exc}") from None


async def get_connection(
    session: AsyncSession, actor: Principal, connection_id: uuid.UUID
) -> CloudConnection:
    connection = await ConnectionRepository(session).get(connection_id)
    if connection is None or connection.disabled_at is not None:
        raise NotFound("connection not found")
    return connection


async def list_connections(
    session: AsyncSession, actor: Principal, *, disabled: bool = False
) -> list[CloudConnection]:
    """The active connections, or (``disabled``) those disabled, the latest first."""
    repository = ConnectionRepository(session)
    return await (repository.disabled() if disabled else repository.active())


async def update_connection(
    session: AsyncSession, actor: Principal, connection_id: uuid.UUID, changes: dict[str, Any]
) -> CloudConnection:
    connection = await get_connection(session, actor, connection_id)
    if "name" in changes and changes["name"] is not None:
        connection.name = changes["name"].strip()
    if "regions" in changes:
        connection.regions = _clean_regions(changes["regions"])
    if changes.get("thresholds") is not None:
        connection.thresholds = check_thresholds(changes["thresholds"])
    if changes.get("tag_exclusions") is not None:
        connection.tag_exclusions = changes["tag_exclusions"]
    if "focus_export_uri" in changes:
        connection.focus_export_uri = _clean_export_uri(changes["focus_export_uri"])
    await session.flush()
    await record_audit(
        session,
        actor,
        "connection.update",
        target_type="connection",
        target_id=connection.id,
        details={"fields": sorted(changes)},
    )
    return connection


async def disable_connection(
    session: AsyncSession, actor: Principal, connection_id: uuid.UUID
) -> None:
    connection = await get_connection(session, actor, connection_id)
    connection.disabled_at = utcnow()
    schedule = await ScheduleRepository(session).for_target(SCAN_KIND, connection.id)
    if schedule is not None:
        schedule.enabled = False
    await session.flush()
    await record_audit(
        session, actor, "connection.disable", target_type="connection", target_id=connection.id
    )


async def enable_connection(
    session: AsyncSession, actor: Principal, connection_id: uuid.UUID
) -> CloudConnection:
    """Scan a disabled connection again, at the tier's cadence, unless an active connection
    has taken its name since."""
    repository = ConnectionRepository(session)
    connection = await repository.get(connection_id)
    if connection is None:
        raise NotFound("connection not found")
    if connection.disabled_at is None:
        return connection
    if await repository.by_name(connection.name):
        raise Conflict(
            f"an active connection is named '{connection.name}': rename it or disable it first"
        )
    connection.disabled_at = None
    schedule = await ensure_schedule(session, actor, kind=SCAN_KIND, target_id=connection.id)
    schedule.enabled = True
    await session.flush()
    await record_audit(
        session, actor, "connection.enable", target_type="connection", target_id=connection.id
    )
    return connection


async def verify_connection(
    session: AsyncSession, actor: Principal, settings: Settings, connection_id: uuid.UUID
) -> CloudConnection:
    """Assume the role now and record the account id, or the reason it failed."""
    connection = await get_connection(session, actor, connection_id)
    access = aws_access(settings)

    def check() -> str:
        credentials = access.assume(connection.role_arn, connection.external_id)
        return access.caller_account(credentials)

    try:
        account_id = await asyncio.to_thread(check)
    except AwsAccessError as exc:
        connection.status, connection.status_reason = "error", exc.reason
    except Exception as exc:  # network trouble etc.: say so, keep the previous account id
        connection.status, connection.status_reason = "error", f"could not verify: {exc}"[:500]
    else:
        expected = account_of_role(connection.role_arn)
        if expected and expected != account_id:
            connection.status = "error"
            connection.status_reason = (
                f"the role belongs to account {expected} but AWS answered as {account_id}"
            )
        else:
            connection.status, connection.status_reason = "verified", None
            connection.account_id = account_id
    connection.last_verified_at = utcnow()
    await session.flush()
    await record_audit(
        session,
        actor,
        "connection.verify",
        target_type="connection",
        target_id=connection.id,
        details={"status": connection.status, "reason": connection.status_reason},
    )
    return connection
