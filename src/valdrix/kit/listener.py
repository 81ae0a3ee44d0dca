"""One LISTEN connection per process, fanning PostgreSQL notifications out to subscribers.

Subscribers (the credential cache, the scan event feeds) register a channel and callbacks; the
listener holds one connection of its own (autocommit, outside the pool), reconnects with
back-off when it is lost, and tells subscribers when it is lost and when it is back: what they
learnt while it was down may be stale, so a cache stops serving and feeds read again.

The connection counts as listening only once a notification it sends itself, on a channel
private to this process, has come back to it: at connect, and again after every
``HEALTH_CHECK_SECONDS`` of listening, each echo awaited at most
``HEALTH_CHECK_TIMEOUT_SECONDS``. So a connection that silently stops answering, or one through
a pooler that accepts ``LISTEN`` but never delivers (PgBouncer in transaction mode), is reported
lost, not listening. Listening that ends for any other reason (an unexpected error) is reported
lost too. (Notifications arriving while a statement runs are kept for ``notifies()`` from
psycopg 3.2.4 on: the echo, and anything heard meanwhile, is never dropped.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass

import psycopg
import structlog
from psycopg import sql

log = structlog.get_logger(__name__)

HEALTH_CHECK_SECONDS = 2.0
HEALTH_CHECK_TIMEOUT_SECONDS = 2.0
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0)
APPLICATION_NAME = "valdrix-listener"  # what pg_stat_activity shows for the connection


@dataclass(frozen=True)
class Subscriber:
    channel: str
    on_notify: Callable[[str], None]
    # Called with False when the connection is lost and True once it listens again.
    on_connection: Callable[[bool], None]


class Listener:
    def __init__(self, url: str) -> None:
        self._url = url
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = False

    @property
    def connected(self) -> bool:
        """True while notifications are being received (nothing can have been missed)."""
        return self._connected

    def subscribe(self, subscriber: Subscriber) -> None:
        """Add a subscriber. Channels are listened on at connect, so a new channel while
        listening reconnects (subscribers come at start-up; one reconnect then costs nothing)."""
        new_channel = all(s.channel != subscriber.channel for s in self._subscribers)
        self._subscribers.append(subscriber)
        if new_channel and self._task is not None and not self._task.done():
            self._task.cancel()
            self._set_connected(False)
            self._task = None
            self.start()

    def start(self) -> None:
        """Listen from the running event loop (again, if an earlier loop has ended)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._set_connected(False)

    async def _run(self) -> None:
        me = asyncio.current_task()

        def report(connected: bool) -> None:
            if self._task is me:  # a replaced task's end says nothing of its successor
                self._set_connected(connected)

        echo = f"valdrix_listener_{uuid.uuid4().hex}"  # this process's own channel
        failures = 0
        try:
            while True:
                try:
                    async with await psycopg.AsyncConnection.connect(
                        self._url, autocommit=True, application_name=APPLICATION_NAME
                    ) as conn:
                        for channel in sorted({s.channel for s in self._subscribers} | {echo}):
                            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                        await self._echo(conn, echo)  # notifications do arrive
                        failures = 0
                        report(True)
                        log.info("listener.connected")
                        await self._receive(conn, echo)
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    report(False)
                    delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                    failures += 1
                    log.warning("listener.lost", error=type(exc).__name__, retry_in_s=delay)
                    await asyncio.sleep(delay)
        except Exception:
            log.exception("listener.failed")
            raise
        finally:
            report(False)  # whatever ended it, nothing is listening now

    async def _receive(self, conn: psycopg.AsyncConnection[tuple[object, ...]], echo: str) -> None:
        while True:
            async for notify in conn.notifies(timeout=HEALTH_CHECK_SECONDS):
                if notify.channel != echo:  # a late echo of an earlier check: nothing to do
                    self._deliver(notify)
            await self._echo(conn, echo)

    async def _echo(self, conn: psycopg.AsyncConnection[tuple[object, ...]], echo: str) -> None:
        """Return once a notification sent on ``echo`` comes back to ``conn``; raise
        ``TimeoutError`` if it does not within ``HEALTH_CHECK_TIMEOUT_SECONDS``."""
        token = uuid.uuid4().hex
        async with asyncio.timeout(HEALTH_CHECK_TIMEOUT_SECONDS):
            await conn.execute("SELECT pg_notify(%s, %s)", (echo, token))
            # ``notifies()`` holds the connection until it is closed: close it on leaving.
            async with aclosing(conn.notifies()) as notifies:
                async for notify in notifies:
                    if notify.channel != echo:
                        self._deliver(notify)
                    elif notify.payload == token:
                        return

    def _deliver(self, notify: psycopg.Notify) -> None:
        for subscriber in self._subscribers:
            if subscriber.channel == notify.channel:
                subscriber.on_notify(notify.payload)

    def _set_connected(self, connected: bool) -> None:
        if connected == self._connected:
            return
        self._connected = connected
        for subscriber in self._subscribers:
            subscriber.on_connection(connected)
