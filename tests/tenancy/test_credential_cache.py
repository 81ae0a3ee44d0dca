"""The credential cache's own coordination of shared reads: the browser streams of one session
re-check their credential together, and one read serves them all, unless the reader's client
leaves or a revocation is heard while it reads."""

from __future__ import annotations

import asyncio
import uuid

from valdrix.kit.listener import Listener, Subscriber
from valdrix.tenancy.credential_cache import CredentialCache

TENANT = uuid.uuid4()


class HeardListener(Listener):
    """A listener that is connected and hears what the test says it heard."""

    def __init__(self) -> None:
        super().__init__("postgresql://unused")
        self._connected = True

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def notify(self, payload: str) -> None:
        for subscriber in self._subscribers:
            subscriber.on_notify(payload)


class Database:
    """Reads that take until the test lets each one finish, answering what it is told."""

    def __init__(self) -> None:
        self.reads: list[asyncio.Future[str]] = []

    async def read(self) -> str:
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.reads.append(answer)
        return await answer


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def ask(cache: CredentialCache, database: Database) -> asyncio.Task[str]:
    return asyncio.create_task(
        cache.resolve("session", b"cookie", database.read, tenant_of=lambda _: TENANT)
    )


async def test_streams_of_a_session_all_answered_when_the_readers_client_leaves() -> None:
    cache, database = CredentialCache(HeardListener()), Database()
    reader = ask(cache, database)
    await settle()
    streams = [ask(cache, database) for _ in range(2)]
    await settle()
    reader.cancel()  # its client disconnected
    await settle()
    late = ask(cache, database)  # a stream re-checking meanwhile
    await settle()
    for read in database.reads:
        if not read.done():
            read.set_result("principal")
    answers = await asyncio.wait_for(
        asyncio.gather(*streams, late, return_exceptions=True), timeout=2
    )
    assert answers == ["principal"] * 3
    assert len(database.reads) == 2  # the reader's, then one for all who waited on it


async def test_a_request_after_a_revocation_never_gets_the_principal_read_before_it() -> None:
    listener = HeardListener()
    cache, database = CredentialCache(listener), Database()
    before = ask(cache, database)
    await settle()
    listener.notify(str(TENANT))  # the session was signed out meanwhile
    after = ask(cache, database)
    await settle()
    database.reads[0].set_result("signed-in principal")
    await settle()
    assert len(database.reads) == 2, "the request after the revocation must read again"
    database.reads[1].set_result("refused")
    assert await before == "signed-in principal"
    assert await after == "refused"
