"""Declarative base, common column types and the encrypted column type."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import DateTime, LargeBinary, MetaData, func
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from valdrix.kit.crypto import KeyRing

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class CreatedAtMixin:
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class _ActiveKeyRing:
    """The process-wide key ring, installed once at start-up by ``install_keyring``."""

    ring: KeyRing | None = None


def install_keyring(ring: KeyRing) -> None:
    _ActiveKeyRing.ring = ring


def active_keyring() -> KeyRing:
    if _ActiveKeyRing.ring is None:
        raise RuntimeError("no encryption key ring installed; call install_keyring() at start-up")
    return _ActiveKeyRing.ring


class EncryptedString(TypeDecorator[str]):
    """A string stored as AES-256-GCM ciphertext (``bytea``) under the active key."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        return None if value is None else active_keyring().encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else active_keyring().decrypt(bytes(value))
