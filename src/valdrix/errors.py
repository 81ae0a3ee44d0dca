"""Errors users can cause, rendered as ``application/problem+json`` with the request id."""

from __future__ import annotations

from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from valdrix.kit.request_context import request_id_var

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """An error with an HTTP status and a human explanation."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(ProblemError):
    status, title = 404, "Not found"


class Forbidden(ProblemError):
    status, title = 403, "Forbidden"


class Unauthorized(ProblemError):
    status, title = 401, "Unauthorized"


class Conflict(ProblemError):
    status, title = 409, "Conflict"


class InvalidInput(ProblemError):
    status, title = 422, "Invalid input"


class TooManyRequests(ProblemError):
    status, title = 429, "Too many requests"


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["request_id"] = request_id_var.get()
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if "retry_after_seconds" in exc.extra:
            headers["Retry-After"] = str(exc.extra["retry_after_seconds"])
        return problem_response(exc.status, exc.title, exc.detail, headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}.get(
            exc.status_code, "Error"
        )
        return problem_response(exc.status_code, title, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return problem_response(
            422, "Invalid input", f"{first['field']}: {first['message']}", errors=errors
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc.orig, psycopg.DataError):
            return _invalid_data(request, exc.orig)
        return _server_error(request)

    @app.exception_handler(psycopg.DataError)
    async def _driver_data(request: Request, exc: psycopg.DataError) -> JSONResponse:
        return _invalid_data(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _server_error(request)


def _server_error(request: Request) -> JSONResponse:
    log.exception("http.unhandled_error", path=request.url.path)
    return problem_response(500, "Internal server error", "an unexpected error occurred")


def _invalid_data(request: Request, error: psycopg.DataError) -> JSONResponse:
    """A value the database refused (SQLSTATE class 22, or psycopg's own refusal of NUL): input
    no check caught, so a 422 for the caller and a warning for whoever should add the check."""
    log.warning(
        "http.invalid_data",
        path=request.url.path,
        sqlstate=error.sqlstate,
        error=type(error).__name__,
    )
    return problem_response(422, "Invalid input", _data_error_reason(error))


DATA_ERROR_REASONS: dict[type[psycopg.DataError], str] = {
    # jsonb's refusal of "\u0000" (psycopg refuses NUL in text itself, with no SQLSTATE)
    psycopg.errors.UntranslatableCharacter: "text must not contain NUL characters",
    psycopg.errors.NumericValueOutOfRange: "a number is out of range",
    psycopg.errors.StringDataRightTruncation: "a text value is too long",
    psycopg.errors.DatetimeFieldOverflow: "a date or time is out of range",
}


def _data_error_reason(error: psycopg.DataError) -> str:
    if error.sqlstate is None and "NUL" in str(error):
        return "text must not contain NUL characters"
    for kind, reason in DATA_ERROR_REASONS.items():
        if isinstance(error, kind):
            return reason
    return "a value is not valid"
