"""Database errors never carry what users sent: the engine hides bound parameters, so an error
that is logged (with its traceback) or shown names the statement but not the values."""

from __future__ import annotations

import secrets
import traceback

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from tests.fixtures.jobs import SuperuserDb
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime


async def test_a_failed_statement_error_names_no_bound_parameter(runtime: Runtime) -> None:
    sent_by_a_user = f"hunter2-{secrets.token_hex(8)}"

    with pytest.raises(DBAPIError) as raised:
        async with unit_of_work(runtime.sessions, None) as session:
            # Fails after binding, with a message of its own that does not quote the value.
            await session.execute(
                text("SELECT length(CAST(:password AS text)) / 0"), {"password": sent_by_a_user}
            )

    logged = "".join(traceback.format_exception(raised.value))
    assert "division by zero" in logged
    assert "SELECT length(CAST(" in logged  # the statement still helps whoever reads the log
    assert sent_by_a_user not in logged
    assert sent_by_a_user not in repr(raised.value)


async def test_a_connection_cut_mid_transaction_fails_as_a_lost_connection(
    runtime: Runtime, superuser_db: SuperuserDb
) -> None:
    """What callers retry on (a job's retry policy, a client told 503) is a lost connection:
    rolling the dead transaction back must not turn it into another error."""
    with pytest.raises(OperationalError) as raised:
        async with unit_of_work(runtime.sessions, None) as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await superuser_db.value("SELECT pg_terminate_backend(%s)", pid)
            await session.execute(text("SELECT 1"))
    assert raised.value.connection_invalidated
    async with unit_of_work(runtime.sessions, None) as session:  # the pool carries on
        assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
