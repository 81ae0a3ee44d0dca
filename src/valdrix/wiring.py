"""The composition root: plugs each domain into the hooks of the domains below it.

Imports between domains go one way (connections < costs < scanning < analysis, all above
tenancy, jobs and llm; see docs/architecture.md). Where a lower domain must reach a higher one
("a scan finished: queue its analysis"; "which actions must a connection's role allow"), it
declares a hook and this module plugs the higher domain in. Every process calls ``wire()`` at
start-up: the API (``create_app``), the worker, the CLI; a hook used before that fails loudly.
"""

from __future__ import annotations

from valdrix.analysis import flows as analysis_flows
from valdrix.connections import needs as connection_needs
from valdrix.costs.sources import cost_explorer
from valdrix.observability import scan_recovery
from valdrix.scanning import connection_needs as scanning_needs
from valdrix.scanning import flows as scanning_flows


def wire() -> None:
    """Plug every domain in (idempotent)."""
    connection_needs.ROLE_PERMISSIONS.plug(scanning_needs.scan_permissions)
    connection_needs.ROLE_PERMISSIONS.plug(cost_explorer.role_permissions)
    connection_needs.THRESHOLD_CHECK.plug(scanning_needs.check_threshold_overrides)
    scanning_flows.SCAN_FINISHED.plug(analysis_flows.queue_analysis)
    scanning_flows.SCAN_FINISHED.plug(scan_recovery.record_scan_recovery)
