"""Engines, sessions and the per-transaction tenant context.

The tenant lives in a ``ContextVar``; every transaction begins with
``set_config('valdrix.tenant_id', :tid, true)`` (transaction-local), so a pooled connection
never carries one request's tenant into the next. No tenant means an empty setting, and the
row-level-security policies then match nothing: fail closed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction

current_tenant_id: ContextVar[uuid.UUID | None] = ContextVar("valdrix_tenant_id", default=None)

SET_TENANT_SQL = text("SELECT set_config('valdrix.tenant_id', :tenant_id, true)")


@event.listens_for(Session, "after_begin")
def _apply_tenant_context(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    tenant_id = current_tenant_id.get()
    connection.execute(SET_TENANT_SQL, {"tenant_id": str(tenant_id) if tenant_id else ""})


@contextmanager
def tenant_context(tenant_id: uuid.UUID | None) -> Iterator[None]:
    """Run the block (and the transactions it begins) as ``tenant_id``."""
    token = current_tenant_id.set(tenant_id)
    try:
        yield
    finally:
        current_tenant_id.reset(token)


def async_url(url: str) -> str:
    """Use psycopg 3 whatever scheme the operator wrote."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError("database URLs must start with postgresql://")


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int | None = None, **kwargs: Any
) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        **kwargs,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID | None
) -> AsyncIterator[AsyncSession]:
    """One transaction as ``tenant_id``: commit on success, roll back on any error."""
    with tenant_context(tenant_id):
        async with sessions() as session, session.begin():
            yield session
