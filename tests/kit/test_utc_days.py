"""SQL that turns an instant into a day counts UTC days, whatever zone the server or the
client would choose (a server set up in California, ``PGTZ``)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from valdrix.kit.db import create_engine


async def test_every_connection_counts_utc_days(database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGTZ", "America/Los_Angeles")  # libpq sends it at connect
    engine = create_engine(database.urls.app, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SHOW TimeZone")) == "UTC"
            # 03:00 UTC on the 25th is still the 24th in California.
            day = await connection.scalar(
                text("SELECT date_trunc('day', TIMESTAMPTZ '2026-11-25 03:00:00+00')::date")
            )
            assert str(day) == "2026-11-25"
    finally:
        await engine.dispose()
