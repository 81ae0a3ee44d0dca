"""The audit log: who did what to which object, when, from where, in which request."""

from __future__ import annotations

import base64
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.errors import InvalidInput
from valdrix.kit.crypto import DecryptionError, KeyRing
from valdrix.kit.request_context import client_ip_var, request_id_var
from valdrix.tenancy.auth import Principal
from valdrix.tenancy.models import AuditEvent
from valdrix.tenancy.repository import AuditRepository

log = structlog.get_logger(__name__)


async def record_audit(
    session: AsyncSession,
    actor: Principal,
    action: str,
    *,
    target_type: str | None = None,
    target_id: object = None,
    details: dict[str, Any] | None = None,
    flush: bool = True,
) -> None:
    """Write the audit row in the caller's transaction, so it commits with the action itself
    (``flush=False``: with the caller's next flush, when it records many at once)."""
    session.add(
        AuditEvent(
            tenant_id=actor.tenant_id,
            actor_type=actor.kind,
            actor_id=actor.actor_id,
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            request_id=request_id_var.get(),
            ip=client_ip_var.get(),
            details=details or {},
        )
    )
    if flush:
        await session.flush()
    log.info(
        "audit." + action,
        tenant_id=str(actor.tenant_id),
        actor_type=actor.kind,
        actor_id=actor.actor_id,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
    )


CURSOR_CONTEXT = b"audit-log cursor"


async def audit_page(
    session: AsyncSession, actor: Principal, keyring: KeyRing, *, cursor: str | None, limit: int
) -> tuple[list[AuditEvent], str | None]:
    """Newest first; returns the events and the cursor of the next page (None on the last).

    Cursors are sealed (encrypted and authenticated) so they reveal nothing, such as how many
    events the whole platform has recorded, and cannot be forged.
    """
    before = _open_cursor(keyring, cursor) if cursor else None
    events = await AuditRepository(session).page(before_id=before, limit=limit + 1)
    has_more = len(events) > limit
    events = events[:limit]
    if not (has_more and events):
        return events, None
    sealed = keyring.encrypt(str(events[-1].id), context=CURSOR_CONTEXT)
    return events, base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def _open_cursor(keyring: KeyRing, cursor: str) -> int:
    try:
        sealed = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return int(keyring.decrypt(sealed, context=CURSOR_CONTEXT))
    except (ValueError, DecryptionError) as exc:  # binascii.Error is a ValueError
        message = "not a cursor this API gave out; start from the first page"
        raise InvalidInput(
            f"query.cursor: {message}", errors=[{"field": "query.cursor", "message": message}]
        ) from exc
