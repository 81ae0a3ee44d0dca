"""A scan's events as they are written, read once per API process for all who watch it.

Each process has one ``ScanFeed`` per watched scan. The process's LISTEN connection hears
``valdrix_scan_events`` (a trigger sends the scan id when its events are written or its status
changes, migration 0019) and wakes the feed, which reads what is new in one short transaction
and hands it to every watcher: 500 watchers of a scan cost the database what one does.

No event is lost or sent twice when a notification is missed: a feed also reads every
``FALLBACK_POLL_SECONDS``, every ``POLL_WHILE_DEAF_SECONDS`` while the LISTEN connection is
down, and at once when it is back. Each read asks for the events after the last id it holds,
and ids follow commit order (``ScanEventRepository.add_many`` locks the scan), so a read can
never pass an event that commits later. A feed holds the scan's events from the first, so a
watcher arriving late (or resuming with ``Last-Event-ID``) is replayed from memory.
"""

from __future__ import annotations

import asyncio
import bisect
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import structlog

from valdrix.errors import NotFound
from valdrix.kit import metrics
from valdrix.kit.db import unit_of_work
from valdrix.kit.listener import Listener, Subscriber
from valdrix.runtime import Runtime
from valdrix.scanning import service
from valdrix.scanning.models import ScanEvent
from valdrix.tenancy.auth import Principal

log = structlog.get_logger(__name__)

CHANNEL = "valdrix_scan_events"
FALLBACK_POLL_SECONDS = 3.0
POLL_WHILE_DEAF_SECONDS = 0.25
READ_RETRY_SECONDS = 1.0


class ScanFeed:
    """The events of one scan read so far, and whether the scan has ended and all are read."""

    def __init__(self, runtime: Runtime, principal: Principal, scan_id: uuid.UUID) -> None:
        self._runtime, self._principal, self.scan_id = runtime, principal, scan_id
        self.events: list[ScanEvent] = []
        self._ids: list[int] = []
        self.finished = False
        self.version = 0  # moves with each read that found something new
        self._published = asyncio.Event()
        self._wake = asyncio.Event()
        self.watchers = 0
        self._reader = asyncio.get_running_loop().create_task(self._read_until_finished())

    def after(self, last_id: int) -> list[ScanEvent]:
        """The events read so far with an id above ``last_id``."""
        return self.events[bisect.bisect_right(self._ids, last_id) :]

    async def changed_since(self, version: int) -> None:
        """Return once the feed has moved past ``version``."""
        if self.version == version:
            await self._published.wait()

    def wake(self) -> None:
        """Something may have been written: read now."""
        self._wake.set()

    def stop(self) -> None:
        self._reader.cancel()

    async def _read_until_finished(self) -> None:
        listener = self._runtime.notifications
        while not self.finished:
            self._wake.clear()
            try:
                await self._read()
            except Exception:  # the database may be restarting: keep the watchers, try again
                log.warning("scan.events.read_failed", scan_id=str(self.scan_id), exc_info=True)
                await asyncio.sleep(READ_RETRY_SECONDS)
                continue
            if self.finished:
                return
            poll = FALLBACK_POLL_SECONDS if listener.connected else POLL_WHILE_DEAF_SECONDS
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)

    async def _read(self) -> None:
        last_id = self._ids[-1] if self._ids else 0
        new: list[ScanEvent] = []
        async with unit_of_work(self._runtime.sessions, self._principal.tenant_id) as session:
            try:
                while True:
                    batch, finished = await service.events_after(
                        session, self._principal, self.scan_id, last_id
                    )
                    new += batch
                    if not batch or len(batch) < service.EVENTS_PER_READ:
                        break
                    last_id = batch[-1].id
            except NotFound:  # the scan is gone (its tenant or connection deleted)
                finished = True
        self.events += new
        self._ids += [event.id for event in new]
        # Finished once the scan has ended and the read after that found everything: the
        # status is read before the events, and a scan's last events commit with its end.
        self.finished = finished
        if new or finished:
            self.version += 1
            published, self._published = self._published, asyncio.Event()
            published.set()


class ScanFeeds:
    """The process's feeds, woken by its LISTEN connection."""

    def __init__(self, listener: Listener) -> None:
        self._feeds: dict[tuple[uuid.UUID, uuid.UUID], ScanFeed] = {}
        listener.subscribe(Subscriber(CHANNEL, self._on_notify, self._on_connection))

    @contextmanager
    def watch(
        self, runtime: Runtime, principal: Principal, scan_id: uuid.UUID
    ) -> Iterator[ScanFeed]:
        """The scan's feed for one watcher (the caller has checked it may see the scan)."""
        key = (principal.tenant_id, scan_id)
        feed = self._feeds.get(key)
        if feed is None:
            feed = self._feeds[key] = ScanFeed(runtime, principal, scan_id)
        feed.watchers += 1
        metrics.SSE_WATCHERS.inc()
        try:
            yield feed
        finally:
            metrics.SSE_WATCHERS.dec()
            feed.watchers -= 1
            if feed.watchers == 0:
                feed.stop()
                del self._feeds[key]

    def _on_notify(self, payload: str) -> None:
        for (_, scan_id), feed in self._feeds.items():
            if str(scan_id) == payload:
                feed.wake()

    def _on_connection(self, connected: bool) -> None:
        if connected:  # notifications may have been missed while it was down
            for feed in self._feeds.values():
                feed.wake()


_feeds: weakref.WeakKeyDictionary[Listener, ScanFeeds] = weakref.WeakKeyDictionary()


def scan_feeds(listener: Listener) -> ScanFeeds:
    """The process's feeds over ``listener`` (made, and the listener started, on first use)."""
    feeds = _feeds.get(listener)
    if feeds is None:
        feeds = _feeds[listener] = ScanFeeds(listener)
    listener.start()
    return feeds
