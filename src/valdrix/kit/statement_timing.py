"""Every statement timed, by the repository method that ran it; the slow ones logged.

The name comes from the call stack: the nearest method of an object whose class ends in
``Repository`` (the layer that builds SQL). SQLAlchemy's asyncio runs the driver call in a
greenlet, so the search goes on in the parent greenlet's frames, where the awaiting coroutines
are. Names are capped (a label per method, at most ``MAX_NAMES``) so the histogram stays small.
The statement is logged as sent, with placeholders: never the values bound to it.
"""

from __future__ import annotations

import sys
import time
from types import FrameType
from typing import Any

import greenlet
import structlog
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from valdrix.kit import metrics

log = structlog.get_logger(__name__)

# Names come from the code, never from data: every repository method, an inherited one under
# each class that inherits it (about 330 today; tests/kit/test_slow_statements.py counts them).
# The cap is only a guard against a bug flooding the histogram: one below the code's count
# sends the methods a process happens to use last to ``other``.
MAX_NAMES = 1000
MAX_LOGGED_CHARS = 1000
OTHER = "other"
TENANT_CONTEXT = "tenant_context"
_SET_TENANT = "SELECT set_config('valdrix.tenant_id'"
_names: set[str] = set()


def time_statements(engine: AsyncEngine, *, slow_ms: float) -> None:
    """Time every statement ``engine`` runs; log those slower than ``slow_ms``."""

    def started(
        conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        context._valdrix_started = time.perf_counter()

    def finished(
        conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        seconds = time.perf_counter() - context._valdrix_started
        # Every transaction begins by naming its tenant, inside whichever method ran first.
        name = TENANT_CONTEXT if statement.startswith(_SET_TENANT) else statement_name()
        metrics.DB_STATEMENT_SECONDS.labels(statement=name).observe(seconds)
        if seconds * 1000 >= slow_ms:
            log.warning(
                "db.slow_statement",
                statement_name=name,
                duration_ms=round(seconds * 1000, 1),
                statement=statement[:MAX_LOGGED_CHARS],
            )

    event.listen(engine.sync_engine, "before_cursor_execute", started)
    event.listen(engine.sync_engine, "after_cursor_execute", finished)


def statement_name() -> str:
    """``Class.method`` of the repository method running the current statement."""
    parent = greenlet.getcurrent().parent
    for frame in (sys._getframe(1), parent.gr_frame if parent is not None else None):
        name = _repository_method(frame)
        if name is not None:
            return _capped(name)
    return OTHER


def _repository_method(frame: FrameType | None) -> str | None:
    while frame is not None:
        code = frame.f_code
        if code.co_argcount and code.co_varnames[0] == "self":
            owner = type(frame.f_locals["self"]).__name__
            if owner.endswith("Repository"):
                return f"{owner}.{code.co_name}"
        frame = frame.f_back
    return None


def _capped(name: str) -> str:
    if name not in _names:
        if len(_names) >= MAX_NAMES:
            return OTHER
        _names.add(name)
    return name
