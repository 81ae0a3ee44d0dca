"""Typed repository base: the only layer that builds SQL. Repositories flush, never commit."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from valdrix.kit.orm import Base

ModelT = TypeVar("ModelT", bound=Base)


class Repository(Generic[ModelT]):
    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, id: uuid.UUID) -> ModelT | None:
        """Fetch by primary key; row-level security hides other tenants' rows."""
        result: ModelT | None = await self.session.get(self.model, id)
        return result

    async def add(self, instance: ModelT) -> ModelT:
        self.session.add(instance)
        await self.session.flush()
        return instance

    async def delete(self, instance: ModelT) -> None:
        await self.session.delete(instance)
        await self.session.flush()

    async def list_all(self, *order_by: Any) -> list[ModelT]:
        rows = await self.session.scalars(select(self.model).order_by(*order_by))
        return list(rows)
