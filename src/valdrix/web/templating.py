"""Jinja2 templates for the dashboard, and the filters they format figures with."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from valdrix.tenancy.auth import CSRF_COOKIE

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
# Pages hold tenant data: no cache keeps them.
PAGE_CACHE_CONTROL = "no-store"


def usd(value: Decimal | float | int | str | None) -> str:
    """$1,234.56; a dash for an unknown figure (never $0.00, which would be a claim)."""
    if value is None:
        return "—"
    amount = Decimal(str(value))
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def money(value: Decimal | float | int | str | None, currency: str | None = "USD") -> str:
    """An amount in its own currency: $1,234.56 in US dollars, 1,234.56 EUR in any other (a
    "$" before another currency's figure would misstate it). static/charts.js writes the same."""
    if currency in (None, "USD") or value is None:
        return usd(value)
    amount = Decimal(str(value))
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount):,.2f} {currency}"


def when(value: dt.datetime | None) -> str:
    """A moment in UTC, to the minute (the tenant's zone is not known to every page yet)."""
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["usd"] = usd
    env.filters["money"] = money
    env.filters["when"] = when
    return env


ENVIRONMENT = _environment()


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """A page: the template with the request, the CSRF token htmx sends on unsafe requests,
    and whatever the page adds."""
    body = ENVIRONMENT.get_template(template).render(
        request=request,
        csrf_token=request.cookies.get(CSRF_COOKIE, ""),
        **{"principal": None, "tenants": [], "tenant_name": None} | context,
    )
    return HTMLResponse(
        body, status_code=status_code, headers={"Cache-Control": PAGE_CACHE_CONTROL}
    )
