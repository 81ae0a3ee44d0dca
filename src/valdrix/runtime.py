"""Process-wide resources (settings, database engine, key ring), opened once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from valdrix.config import Settings
from valdrix.kit.crypto import KeyRing
from valdrix.kit.db import create_engine, session_factory
from valdrix.kit.embedded import DatabaseUrls, ensure_embedded_database
from valdrix.kit.listener import Listener
from valdrix.kit.orm import install_keyring
from valdrix.kit.password_hashing import use_hash_cost
from valdrix.kit.statement_timing import time_statements


@dataclass
class Runtime:
    settings: Settings
    urls: DatabaseUrls
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keyring: KeyRing
    # The process's one LISTEN connection (started on first use; shared by copies of this
    # runtime made with dataclasses.replace).
    listener: Listener | None = None

    def __post_init__(self) -> None:
        if self.listener is None:
            self.listener = Listener(self.urls.app)

    @property
    def notifications(self) -> Listener:
        assert self.listener is not None  # set by __post_init__
        return self.listener

    async def close(self) -> None:
        await self.notifications.close()
        await self.engine.dispose()


def database_urls(settings: Settings, *, keep_embedded_running: bool = False) -> DatabaseUrls:
    """The configured URLs, or the embedded server's (started if needed).

    The embedded server stops when the last process using it exits, unless
    ``keep_embedded_running`` (for commands that hand its URL to other programs).
    """
    if settings.database_url and settings.migration_database_url:
        return DatabaseUrls(app=settings.database_url, owner=settings.migration_database_url)
    return ensure_embedded_database(
        settings.home, cleanup_mode=None if keep_embedded_running else "stop"
    )


def open_runtime(settings: Settings, urls: DatabaseUrls | None = None) -> Runtime:
    """Validate secrets, install the key ring and create the (lazy) engine."""
    settings.validate_for_startup()
    keyring = KeyRing(settings.keyring)
    install_keyring(keyring)
    use_hash_cost(settings.auth.password_hash_time_cost, settings.auth.password_hash_memory_kib)
    urls = urls or database_urls(settings)
    engine = create_engine(urls.app, pool_size=settings.db_pool_size)
    time_statements(engine, slow_ms=settings.db_slow_statement_ms)
    return Runtime(settings, urls, engine, session_factory(engine), keyring)
