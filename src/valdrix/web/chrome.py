"""What every signed-in page shows around its content: who you are, in which tenant, where
else you may go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from valdrix.tenancy import service, sessions
from valdrix.tenancy.auth import TenantScope
from valdrix.tenancy.models import Role


@dataclass(frozen=True)
class NavLink:
    path: str
    label: str


# Pages are added here as they are built.
NAV = (
    NavLink("/", "Overview"),
    NavLink("/findings", "Findings"),
    NavLink("/scans", "Scans"),
    NavLink("/costs", "Costs"),
    NavLink("/jobs", "Jobs"),
    NavLink("/connections", "Connections"),
    NavLink("/settings", "Settings"),
)


async def page_context(scope: TenantScope, **page: Any) -> dict[str, Any]:
    """The page's own values plus the signed-in chrome: tenant name, role, tenant switcher."""
    principal = scope.principal
    tenant = await service.get_tenant(scope.session, principal)
    tenants = (
        await sessions.tenant_choices(scope.runtime, principal.user_id)
        if principal.kind == "session" and principal.user_id is not None
        else []
    )
    return {
        "principal": principal,
        "tenant_name": tenant.name,
        "tenants": tenants,
        "nav": NAV,
        "can_change": principal.role.at_least(Role.member),
        "can_administer": principal.role.at_least(Role.admin),
        **page,
    }
