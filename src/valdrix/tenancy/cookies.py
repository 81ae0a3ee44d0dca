"""The browser session's two cookies, set and cleared the same way by the API and the
dashboard: the session token (HttpOnly) and the double-submit CSRF token (readable)."""

from __future__ import annotations

from fastapi import Request, Response

from valdrix.runtime import Runtime
from valdrix.tenancy.auth import CSRF_COOKIE, SESSION_COOKIE
from valdrix.tenancy.sessions import LoginResult


def set_session_cookies(
    request: Request, response: Response, runtime: Runtime, result: LoginResult
) -> None:
    secure = request.url.scheme == "https"
    max_age = runtime.settings.auth.session_ttl_hours * 3600
    for name, value, http_only in (
        (SESSION_COOKIE, result.token, True),
        (CSRF_COOKIE, result.csrf_token, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=http_only,
            secure=secure,
            samesite="lax",
            path="/",
        )


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
