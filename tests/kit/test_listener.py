"""The LISTEN connection's state as subscribers see it: ``connected`` only while notifications
are really being received."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import psycopg

from valdrix.kit.listener import Listener, Subscriber

if TYPE_CHECKING:  # importing it at run time would make pytest try to collect it
    from tests.conftest import TestDatabase


async def test_listening_that_ends_on_an_unexpected_error_is_reported_lost(
    database: TestDatabase,
) -> None:
    listener = Listener(database.urls.app)
    states: list[bool] = []
    changed = asyncio.Event()

    def broken(payload: str) -> None:
        raise ValueError(payload)

    def on_connection(connected: bool) -> None:
        states.append(connected)
        changed.set()

    listener.subscribe(Subscriber("valdrix_test_broken", broken, on_connection))
    listener.start()
    try:
        await asyncio.wait_for(changed.wait(), timeout=5)
        assert listener.connected
        changed.clear()
        with psycopg.connect(database.urls.app, autocommit=True) as conn:
            conn.execute("NOTIFY valdrix_test_broken, 'boom'")
        await asyncio.wait_for(changed.wait(), timeout=5)
        assert not listener.connected
        assert states == [True, False]
    finally:
        await listener.close()
