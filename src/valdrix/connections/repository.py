"""SQL for cloud connections (tenant table, RLS)."""

from __future__ import annotations

from sqlalchemy import select

from valdrix.connections.models import CloudConnection
from valdrix.kit.repository import Repository


class ConnectionRepository(Repository[CloudConnection]):
    model = CloudConnection

    async def by_name(self, name: str) -> CloudConnection | None:
        result: CloudConnection | None = await self.session.scalar(
            select(CloudConnection).where(
                CloudConnection.name == name, CloudConnection.disabled_at.is_(None)
            )
        )
        return result

    async def active(self) -> list[CloudConnection]:
        rows = await self.session.scalars(
            select(CloudConnection)
            .where(CloudConnection.disabled_at.is_(None))
            .order_by(CloudConnection.created_at, CloudConnection.id)
        )
        return list(rows)

    async def disabled(self) -> list[CloudConnection]:
        rows = await self.session.scalars(
            select(CloudConnection)
            .where(CloudConnection.disabled_at.is_not(None))
            .order_by(CloudConnection.disabled_at.desc(), CloudConnection.id)
        )
        return list(rows)
