"""What arrives by mail, followed in a browser: resetting a forgotten password ("Forgot your
password?" on the sign-in page, the link read from the SMTP server, a new password, signing in
with it), and invitations accepted through their link, one person in two tenants switching
between them.

The server here sends mail (the module's own, on the session's database and keys); the person is
a dedicated member of their own tenant, invited by mail, so no other test's password changes."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from playwright.async_api import Browser, Page, expect

from tests.conftest import TestDatabase
from tests.fixtures.http import served_url
from tests.tenancy.mailbox import Mailbox, mail_runtime
from tests.web.helpers import check_page, settle, sign_in, watch_for_problems
from valdrix.cli.tenants import create_tenant_with_owner_key
from valdrix.kit.db import unit_of_work
from valdrix.runtime import Runtime
from valdrix.simulator.aws_server import free_port
from valdrix.tenancy import service, sessions
from valdrix.tenancy.models import Role, Tier


@dataclasses.dataclass(frozen=True)
class MailingSite:
    base_url: str
    mailbox: Mailbox
    runtime: Runtime


@pytest.fixture(scope="module")
def mailbox_port() -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture(scope="module")
async def site(
    runtime: Runtime, database: TestDatabase, mailbox_port: tuple[Mailbox, int]
) -> AsyncIterator[MailingSite]:
    mailbox, smtp_port = mailbox_port
    # The per-IP limit counts every reset earlier tests asked for from this loopback address
    # (the API fuzz asks for dozens): the browser here starts with none behind it.
    with psycopg.connect(database.superuser, autocommit=True) as admin:
        admin.execute("DELETE FROM password_resets WHERE ip = '127.0.0.1'")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    mailing = mail_runtime(runtime, smtp_port)
    mailing = dataclasses.replace(
        mailing, settings=mailing.settings.updated(api={"public_url": public})
    )
    async with served_url(mailing, port=port) as url:
        yield MailingSite(url, mailbox, mailing)


@pytest.fixture
async def tab(browser: Browser, site: MailingSite) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=site.base_url, viewport={"width": 1280, "height": 900}
    )
    page = await context.new_page()
    problems = watch_for_problems(page)
    yield page
    await context.close()
    assert problems.messages == [], "the browser reported:\n" + "\n".join(problems.messages)


async def mailed_member(site: MailingSite) -> tuple[str, str]:
    """A member of a tenant of their own, invited by mail: (email, password)."""
    runtime = site.runtime
    created = await create_tenant_with_owner_key(
        runtime, name="Forgetful Ltd", tier=Tier.growth,
        admin_email=f"owner-{secrets.token_hex(3)}@forgetful.example",
        admin_password=secrets.token_urlsafe(16),
    )  # fmt: skip
    tenant_id = uuid.UUID(str(created["tenant_id"]))
    email, password = f"member-{secrets.token_hex(3)}@forgetful.example", secrets.token_urlsafe(16)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        actor = service.system_principal(tenant_id, "test")
        await service.invite_member(
            session, actor, runtime.settings, runtime.keyring, email=email, role=Role.member
        )
    await sessions.accept_invite(
        runtime, token=site.mailbox.invite_token_for(email), password=password
    )
    return email, password


async def test_a_forgotten_password_is_reset_through_the_mailed_link(
    tab: Page, site: MailingSite, screenshots: Path
) -> None:
    email, old_password = await mailed_member(site)

    await tab.goto("/sign-in")
    await tab.get_by_role("link", name="Forgot your password?").click()
    await tab.wait_for_url("**/forgot-password")
    await check_page(tab, screenshots, "forgot-password")
    await tab.get_by_label("Email").fill(email)
    await tab.get_by_role("button", name="Send the link").click()
    await tab.get_by_role("status").wait_for()
    assert (
        "a link to reset its password is on its way" in await tab.get_by_role("status").inner_text()
    )

    link = await asyncio.to_thread(site.mailbox.reset_link_for, email)
    assert link.startswith(f"{site.base_url}/reset-password?token=")
    await tab.goto(link)
    await check_page(tab, screenshots, "reset-password")
    new_password = secrets.token_urlsafe(16)
    await tab.get_by_label("New password").fill(new_password)
    await tab.get_by_role("button", name="Set the new password").click()
    await tab.wait_for_url("**/sign-in?reset=true")
    assert "Your password has been changed" in await tab.get_by_role("status").inner_text()

    await tab.get_by_label("Email").fill(email)
    await tab.get_by_label("Password").fill(old_password)
    await tab.get_by_role("button", name="Sign in").click()
    assert await tab.get_by_role("alert").inner_text() == "email or password is wrong"
    await sign_in(tab, email, new_password)
    await tab.get_by_role("heading", name="Overview").wait_for()
    await settle(tab)  # the overview's charts, loaded before leaving

    await tab.goto(link)  # the link worked once
    await tab.get_by_label("New password").fill(secrets.token_urlsafe(16))
    await tab.get_by_role("button", name="Set the new password").click()
    assert "already used" in await tab.get_by_role("alert").inner_text()


async def test_an_address_without_an_account_reads_the_same_answer(
    tab: Page, site: MailingSite
) -> None:
    nobody = f"nobody-{secrets.token_hex(3)}@forgetful.example"

    await tab.goto("/forgot-password")
    await tab.get_by_label("Email").fill(nobody)
    await tab.get_by_role("button", name="Send the link").click()

    assert (
        "a link to reset its password is on its way" in await tab.get_by_role("status").inner_text()
    )
    assert site.mailbox.to(nobody) == []


async def invite_by_mail(site: MailingSite, tenant_name: str, email: str, role: Role) -> str:
    """A new tenant of its own inviting ``email``: the link the mail gave them."""
    runtime = site.runtime
    created = await create_tenant_with_owner_key(
        runtime, name=tenant_name, tier=Tier.growth,
        admin_email=f"owner-{secrets.token_hex(3)}@{tenant_name.split()[0].lower()}.example",
        admin_password=secrets.token_urlsafe(16),
    )  # fmt: skip
    tenant_id = uuid.UUID(str(created["tenant_id"]))
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        actor = service.system_principal(tenant_id, "test")
        await service.invite_member(
            session, actor, runtime.settings, runtime.keyring, email=email, role=role
        )
    return await asyncio.to_thread(site.mailbox.invite_link_for, email)


async def accept_on_the_page(tab: Page, link: str, password: str) -> None:
    await tab.goto(link)
    await tab.get_by_label("Password").fill(password)
    await tab.get_by_role("button", name="Accept invitation").click()
    await tab.wait_for_url("**/sign-in?joined=true")
    assert "You have joined the tenant" in await tab.get_by_role("status").inner_text()


async def test_invitations_accepted_by_their_link_and_a_switch_between_the_two_tenants(
    tab: Page, site: MailingSite, screenshots: Path
) -> None:
    email, password = f"person-{secrets.token_hex(3)}@two.example", secrets.token_urlsafe(16)
    first = await invite_by_mail(site, "Northwind Traders", email, Role.member)
    assert first.startswith(f"{site.base_url}/accept-invite?token=vdxinv_")
    await tab.goto(first)
    await check_page(tab, screenshots, "accept-invite-mailed")
    assert await tab.get_by_label("Invitation code").input_value() == first.partition("=")[2]
    await accept_on_the_page(tab, first, password)

    # A second tenant invites the same address: its account joins with its own password.
    second = await invite_by_mail(site, "Contoso Analytics", email, Role.viewer)
    await tab.goto(second)
    await tab.get_by_label("Password").fill(secrets.token_urlsafe(16))
    await tab.get_by_role("button", name="Accept invitation").click()
    assert "accept with its existing password" in await tab.get_by_role("alert").inner_text()
    await accept_on_the_page(tab, second, password)

    await sign_in(tab, email, password)
    await settle(tab)
    switch = tab.get_by_label("Tenant")
    choices = await switch.locator("option").all_inner_texts()
    assert sorted(choices) == ["Contoso Analytics (viewer)", "Northwind Traders (member)"]
    selected = await switch.locator("option:checked").inner_text()
    other = next(choice for choice in choices if choice != selected)
    await switch.select_option(label=other)
    await tab.get_by_role("button", name="Switch").click()
    # The page comes back as the other tenant's, with the role held there.
    await expect(tab.locator(".role")).to_have_text(other.rpartition("(")[2].rstrip(")"))
    assert await tab.get_by_label("Tenant").locator("option:checked").inner_text() == other
    await tab.get_by_role("heading", name="Overview").wait_for()
    await settle(tab)
