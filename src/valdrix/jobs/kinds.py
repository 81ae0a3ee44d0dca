"""Kinds of scheduled work: which task runs a target's schedule, on which queue.

Domains register their kinds when they gain scheduled work (``scan`` -> ``scans.run``); the
scheduler defers each due schedule's job with the queueing lock ``<kind>:<target_id>``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduledKind:
    name: str
    task_name: str
    queue: str


SCHEDULED_KINDS: dict[str, ScheduledKind] = {}


def register_kind(name: str, *, task_name: str, queue: str) -> ScheduledKind:
    kind = ScheduledKind(name, task_name, queue)
    existing = SCHEDULED_KINDS.setdefault(name, kind)
    if existing != kind:
        raise ValueError(f"scheduled kind {name!r} is already registered differently")
    return kind


def get_kind(name: str) -> ScheduledKind:
    if name not in SCHEDULED_KINDS:
        # Kinds register when their domain's tasks module is imported, which a process that only
        # defers jobs (the API, the CLI) has not necessarily done.
        from valdrix.jobs.app import TASK_MODULES

        for module in TASK_MODULES:
            importlib.import_module(module)
    try:
        return SCHEDULED_KINDS[name]
    except KeyError:
        raise LookupError(
            f"no scheduled kind {name!r}; is its domain's tasks module loaded?"
        ) from None
