"""Hooks fail loudly when nothing is plugged in, and start-up plugs every domain in once."""

from __future__ import annotations

import pytest

from valdrix.connections.needs import ROLE_PERMISSIONS, THRESHOLD_CHECK
from valdrix.kit.hooks import Hook, HookNotWired
from valdrix.scanning.flows import SCAN_FINISHED
from valdrix.wiring import wire


def test_a_hook_with_nothing_plugged_in_says_how_to_wire_it() -> None:
    hook: Hook[object] = Hook("something that follows")

    with pytest.raises(HookNotWired, match=r"'something that follows'.*wire\(\)"):
        _ = hook.plugged


def test_start_up_plugs_each_domain_in_once_however_often_it_runs() -> None:
    wire()
    wire()

    assert [h.__module__ for h in SCAN_FINISHED.plugged] == [
        "valdrix.analysis.flows",
        "valdrix.observability.scan_recovery",
    ]
    assert {h.__module__ for h in ROLE_PERMISSIONS.plugged} == {
        "valdrix.scanning.connection_needs",
        "valdrix.costs.sources.cost_explorer",
    }
    assert len(THRESHOLD_CHECK.plugged) == 1
