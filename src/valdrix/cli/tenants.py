"""``valdrix tenants ...`` and ``valdrix api-keys ...``: operator commands."""

from __future__ import annotations

import uuid

import typer

from valdrix.cli.common import (
    JSON_OPTION,
    console,
    print_json,
    readable_errors,
    run_with_runtime,
    settings_for_command,
)
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.tenancy import api_keys, service
from valdrix.tenancy.models import Role, Tier

tenants_app = typer.Typer(no_args_is_help=True, help="Manage tenants.")
api_keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys.")


async def create_tenant_with_owner_key(
    runtime: Runtime,
    *,
    name: str,
    tier: Tier,
    admin_email: str,
    admin_password: str | None = None,
) -> dict[str, str | bool | None]:
    """One transaction: tenant, owner membership (invited or with a password), owner API key."""
    tenant_id = uuid.uuid4()
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        tenant, owner = await service.create_tenant(
            session,
            runtime.settings,
            runtime.keyring,
            tenant_id=tenant_id,
            name=name,
            tier=tier,
            owner_email=admin_email,
            owner_password=admin_password,
        )
        issued = await api_keys.create_api_key(
            session, service.system_principal(tenant_id), name="owner key", role=Role.owner
        )
    return {
        "tenant_id": str(tenant.id),
        "name": tenant.name,
        "tier": tenant.tier,
        "admin_email": owner.row.email,
        "admin_user_id": str(owner.row.user.id) if owner.row.user else None,
        "invite_token": owner.invite_token,
        "invitation_mailed": owner.row.user is None and owner.invite_token is None,
        "api_key_id": str(issued.api_key.id),
        "api_key": issued.secret,
    }


@tenants_app.command("create")
@readable_errors
def create(
    name: str = typer.Argument(..., help="The customer's name (stored encrypted)."),
    tier: Tier = typer.Option(..., help="Service tier; sets scan cadence and priority."),
    admin_email: str = typer.Option(
        ..., help="The first owner: invited (by mail when SMTP is configured, else a token here)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a tenant, its owner and an owner API key."""
    settings = settings_for_command()
    created = run_with_runtime(
        settings,
        lambda rt: create_tenant_with_owner_key(rt, name=name, tier=tier, admin_email=admin_email),
    )
    if as_json:
        print_json(created)
        return
    console.print(f"tenant [bold]{created['name']}[/bold] created: {created['tenant_id']}")
    console.print(f"owner API key (shown once): [bold]{created['api_key']}[/bold]")
    if created["invitation_mailed"]:
        console.print(f"the owner invitation was mailed to {created['admin_email']}")
    elif created["invite_token"]:
        console.print(
            f"give {created['admin_email']} this invitation token (shown once; POST"
            f" /api/v1/auth/accept-invite): {created['invite_token']}"
        )


@api_keys_app.command("create")
@readable_errors
def create_key(
    tenant: uuid.UUID = typer.Option(..., help="Tenant id."),
    role: Role = typer.Option(..., help="Role the key acts with."),
    name: str = typer.Option("cli key", help="A label to recognise the key by."),
    expires_in_days: int | None = typer.Option(None, help="Expire the key after this many days."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an API key for a tenant (printed once)."""
    settings = settings_for_command()

    async def work(runtime: Runtime) -> api_keys.IssuedApiKey:
        async with unit_of_work(runtime.sessions, tenant) as session:
            await service.get_tenant(session, service.system_principal(tenant))
            return await api_keys.create_api_key(
                session,
                service.system_principal(tenant),
                name=name,
                role=role,
                expires_in_days=expires_in_days,
            )

    issued = run_with_runtime(settings, work)
    if as_json:
        print_json(
            {
                "id": str(issued.api_key.id),
                "key": issued.secret,
                "tenant_id": str(tenant),
                "role": issued.api_key.role,
            }
        )
        return
    console.print(f"API key {issued.api_key.id} ({role.value}), shown once:")
    console.print(f"[bold]{issued.secret}[/bold]")
