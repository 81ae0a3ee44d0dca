"""Pages answer in HTML: a caller without a session is sent to sign in, and any other problem
is shown as a page (the API's problem+json handlers stay as they are)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import structlog
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from valdrix.errors import (
    ProblemError,
    TooManyRequests,
    Unauthorized,
    first_invalid_field,
    invalid_fields,
    retry_after,
)
from valdrix.kit.db import unit_of_work
from valdrix.kit.request_context import request_id_var
from valdrix.tenancy.auth import TenantScope, admit_once, authenticate, get_runtime
from valdrix.web.chrome import page_context
from valdrix.web.templating import render

SIGN_IN_PATH = "/sign-in"
log = structlog.get_logger(__name__)


def _page_to_return_to(request: Request) -> str | None:
    """The page the person was on: for an htmx request (a fragment, a form's target, a poll)
    the page around it, which htmx names; else the page asked for, if it was a GET."""
    if request.headers.get("hx-request"):
        shown = urlsplit(request.headers.get("hx-current-url", ""))
        path, query = shown.path, shown.query
    elif request.method == "GET":
        path, query = request.url.path, request.url.query
    else:
        return None
    return f"{path}?{query}" if query else path


def sign_in_redirect(request: Request) -> Response:
    """To the sign-in page, back to the page afterwards. htmx follows ``HX-Redirect`` with a
    full page load, where a 303 would land the sign-in form inside the fragment it was
    swapping."""
    target = _page_to_return_to(request)
    location = SIGN_IN_PATH
    if target and target not in ("/", SIGN_IN_PATH):
        location += f"?next={quote(target, safe='/')}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


async def signed_in_chrome(request: Request, status: int) -> dict[str, Any]:
    """The navigation and tenant chrome around an error page, for a caller still signed in.
    The failed request's transaction is gone, so the chrome is read in one of its own, counted
    against the caller's rate limits unless the request already was (a 404 would otherwise be
    a free read of the database); a 429 is answered without it. An htmx request wants only
    the problem (static/request-problems.js reads it), not the chrome."""
    if request.headers.get("hx-request") or status == TooManyRequests.status:
        return {}
    runtime = get_runtime(request)
    try:
        principal = await authenticate(request, runtime)
        await admit_once(request, runtime, principal)
        async with unit_of_work(runtime.sessions, principal.tenant_id) as session:
            return await page_context(TenantScope(principal, session, runtime))
    except ProblemError:
        return {}  # signed out, or the chrome itself refused: the page without it
    except Exception:
        # The error page must still answer (with its request id) if the navigation cannot
        # be read, the database gone: without it, said in the log.
        log.exception("web.error_page_chrome_failed", path=request.url.path)
        return {}


async def error_page(
    request: Request,
    status: int,
    title: str,
    detail: str | None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A problem as a page, with the navigation for a caller still signed in."""
    response = render(
        request,
        "error.html",
        await signed_in_chrome(request, status)
        | {"title": title, "detail": detail, "request_id": request_id_var.get()},
        status_code=status,
    )
    response.headers.update(headers or {})
    return response


class PageRoute(APIRoute):
    """A dashboard page: the API's guards and services, answered as HTML."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthorized:
                return sign_in_redirect(request)
            except ProblemError as problem:
                return await error_page(
                    request, problem.status, problem.title, problem.detail, retry_after(problem)
                )
            except RequestValidationError as invalid:
                # A page's address edited by hand (?offset=abc): the field, on a page.
                detail = first_invalid_field(invalid_fields(invalid))
                return await error_page(request, 422, "Invalid input", detail)

        return page
