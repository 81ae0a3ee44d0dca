"""Liveness (/healthz) and readiness (/readyz: database reachable, migrations at head)."""

from __future__ import annotations

import asyncio

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from valdrix.kit.migrator import database_is_at_head
from valdrix.tenancy.auth import RuntimeDep

log = structlog.get_logger(__name__)
router = APIRouter(tags=["health"])

READINESS_TIMEOUT_SECONDS = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready"}})
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready for traffic: the database answers and its schema is at the latest migration."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS), runtime.engine.connect() as conn:
            at_head = await database_is_at_head(conn)
    except Exception as exc:
        log.warning("health.database_unreachable", error=type(exc).__name__)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if not at_head:
        return JSONResponse(
            {
                "status": "unavailable",
                "database": "ok",
                "migrations": "behind; run valdrix migrate",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok", "migrations": "at head"})
