"""What other domains need of a connection, plugged in at start-up (``valdrix.wiring``): the
actions its cloud role must allow, and the check of its per-detector scan thresholds.

Connections sit below the domains that use them (scanning, costs), so they ask through these
hooks rather than importing those domains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from valdrix.kit.hooks import Hook

# provider ("aws") -> the actions a domain calls with the connection's role
ROLE_PERMISSIONS: Hook[Callable[[str], Iterable[str]]] = Hook("role permissions")
# {detector key: threshold overrides} -> the same, checked (raises InvalidInput naming the field)
THRESHOLD_CHECK: Hook[Callable[[dict[str, dict[str, Any]]], None]] = Hook("threshold check")


def role_permissions(provider: str) -> set[str]:
    return {action for needs in ROLE_PERMISSIONS.plugged for action in needs(provider)}


def check_thresholds(overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for check in THRESHOLD_CHECK.plugged:
        check(overrides)
    return overrides
