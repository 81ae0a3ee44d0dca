"""Pages for getting in and out: sign in, switch tenant, sign out, accept an invitation, reset a
forgotten password."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from valdrix.errors import Forbidden, ProblemError
from valdrix.kit.request_context import client_ip_var
from valdrix.tenancy import password_reset, service, sessions
from valdrix.tenancy.auth import SESSION_COOKIE, RuntimeDep, ViewerScope
from valdrix.tenancy.cookies import clear_session_cookies, set_session_cookies
from valdrix.tenancy.schemas import AcceptInviteIn, PasswordResetConfirmIn, PasswordResetIn
from valdrix.web.routing import SIGN_IN_PATH, PageRoute
from valdrix.web.templating import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
ACCEPT_INVITE_PATH = service.ACCEPT_INVITE_PAGE_PATH
FORGOT_PASSWORD_PATH = "/forgot-password"  # noqa: S105 (a path, not a secret)
RESET_PASSWORD_PATH = password_reset.RESET_PAGE_PATH
# The sign-in, invitation and password reset forms are public; listed for the route tests.
PUBLIC_PAGES = frozenset(
    {
        ("GET", SIGN_IN_PATH),
        ("POST", SIGN_IN_PATH),
        ("GET", ACCEPT_INVITE_PATH),
        ("POST", ACCEPT_INVITE_PATH),
        ("GET", FORGOT_PASSWORD_PATH),
        ("POST", FORGOT_PASSWORD_PATH),
        ("GET", RESET_PASSWORD_PATH),
        ("POST", RESET_PASSWORD_PATH),
    }
)
Text = Annotated[str, Form(max_length=500)]
# A form shown again with what was wrong is a page like any other (200): the browser would log
# a 4xx document as an error, and the person reads the message on the form.


def _local_path(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never ``//elsewhere``, nor
    ``/\\elsewhere``, which browsers read as the same)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def _check_same_origin(request: Request) -> None:
    """Public forms refuse posts from other sites (no one signs a browser into their account)."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        raise Forbidden("this form can only be sent from this site")


def _hx_redirect(location: str) -> Response:
    return Response(status_code=204, headers={"HX-Redirect": location})


@router.get(SIGN_IN_PATH)
async def sign_in_page(
    request: Request,
    next_: Annotated[str | None, Query(alias="next", max_length=500)] = None,
    joined: bool = False,
    reset: bool = False,
) -> Response:
    context = {"next": _local_path(next_), "error": None, "email": "", "joined": joined}
    return render(request, "sign_in.html", {**context, "reset": reset})


@router.post(SIGN_IN_PATH)
async def sign_in(
    request: Request,
    runtime: RuntimeDep,
    email: Text,
    password: Text,
    next_: Annotated[str, Form(alias="next", max_length=500)] = "/",
) -> Response:
    _check_same_origin(request)
    try:
        result = await sessions.login(
            runtime,
            email=email,
            password=password,
            tenant_id=None,
            ip=client_ip_var.get(),
            user_agent=request.headers.get("user-agent"),
            previous_token=request.cookies.get(SESSION_COOKIE),
        )
    except ProblemError as problem:
        context = {
            "next": _local_path(next_),
            "error": problem.detail,
            "email": email,
            "joined": False,
            "reset": False,
        }
        return render(request, "sign_in.html", context)
    response = RedirectResponse(_local_path(next_), status_code=303)
    set_session_cookies(request, response, runtime, result)
    return response


@router.post("/sign-out")
async def sign_out(scope: ViewerScope) -> Response:
    await sessions.logout(scope.session, scope.principal)
    response = _hx_redirect(SIGN_IN_PATH)
    clear_session_cookies(response)
    return response


@router.post("/switch-tenant")
async def switch_tenant(
    request: Request, scope: ViewerScope, tenant_id: Annotated[uuid.UUID, Form()]
) -> Response:
    result = await sessions.switch_tenant(
        scope.runtime,
        scope.principal,
        tenant_id=tenant_id,
        ip=client_ip_var.get(),
        user_agent=request.headers.get("user-agent"),
    )
    response = _hx_redirect("/")
    set_session_cookies(request, response, scope.runtime, result)
    return response


@router.get(ACCEPT_INVITE_PATH)
async def accept_invite_page(
    request: Request, token: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    return render(request, "accept_invite.html", {"token": token, "error": None})


@router.post(ACCEPT_INVITE_PATH)
async def accept_invite(
    request: Request, runtime: RuntimeDep, token: Text, password: Text
) -> Response:
    _check_same_origin(request)
    try:
        # The API's own rules for the token and the password.
        accepted = AcceptInviteIn(token=token, password=password)
    except ValidationError as invalid:
        context = {"token": token, "error": _invalid(invalid)}
        return render(request, "accept_invite.html", context)
    try:
        await sessions.accept_invite(runtime, token=accepted.token, password=accepted.password)
    except ProblemError as problem:
        context = {"token": token, "error": problem.detail}
        return render(request, "accept_invite.html", context)
    return RedirectResponse(f"{SIGN_IN_PATH}?joined=true", status_code=303)


def _invalid(invalid: ValidationError) -> str:
    return "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in invalid.errors())


@router.get(FORGOT_PASSWORD_PATH)
async def forgot_password_page(request: Request) -> Response:
    return render(request, "forgot_password.html", {"email": "", "error": None, "sent": False})


@router.post(FORGOT_PASSWORD_PATH)
async def forgot_password(
    request: Request, runtime: RuntimeDep, background: BackgroundTasks, email: Text
) -> Response:
    _check_same_origin(request)
    context = {"email": email, "error": None, "sent": False}
    try:
        asked = PasswordResetIn(email=email)
        mail = await password_reset.request_reset(
            runtime, email=asked.email, ip=client_ip_var.get()
        )
    except ValidationError as invalid:
        return render(request, "forgot_password.html", {**context, "error": _invalid(invalid)})
    except ProblemError as problem:
        return render(request, "forgot_password.html", {**context, "error": problem.detail})
    if mail is not None:  # after the answer, as the API does: the page takes as long either way
        background.add_task(password_reset.deliver, runtime, mail)
    return render(request, "forgot_password.html", {**context, "sent": True})


@router.get(RESET_PASSWORD_PATH)
async def reset_password_page(
    request: Request, token: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    return render(request, "reset_password.html", {"token": token, "error": None})


@router.post(RESET_PASSWORD_PATH)
async def reset_password(
    request: Request, runtime: RuntimeDep, token: Text, password: Text
) -> Response:
    _check_same_origin(request)
    try:
        # The API's own rules for the token and the password.
        confirmed = PasswordResetConfirmIn(token=token, password=password)
        await password_reset.confirm_reset(
            runtime, token=confirmed.token, password=confirmed.password
        )
    except ValidationError as invalid:
        return render(request, "reset_password.html", {"token": token, "error": _invalid(invalid)})
    except ProblemError as problem:
        return render(request, "reset_password.html", {"token": token, "error": problem.detail})
    return RedirectResponse(f"{SIGN_IN_PATH}?reset=true", status_code=303)
