"""Errors users can cause, rendered as ``application/problem+json`` with the request id, and
documented as such on every operation of the OpenAPI schema."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
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


class ProblemDetails(BaseModel):
    """An error (RFC 9457 problem details). Validation errors list every field in ``errors``; a
    rejected cost import lists its first problems there too, with ``run_id``."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    request_id: str | None = Field(None, description="Also in the X-Request-Id header")
    errors: list[dict[str, Any]] | None = None


# What any operation may answer besides its own results: a malformed or unauthenticated request,
# one it may not make, an object that is not there or not in that state, a body past the size
# limit, invalid input, or a throttle.
DOCUMENTED_PROBLEMS = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    422: "Invalid input",
    429: "Too many requests",
}
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
PATH_PARAMETER = re.compile(r"\{[^}/]+\}")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        headers |= retry_after(exc)
        return problem_response(exc.status, exc.title, exc.detail, headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = http_error_title(exc.status_code)
        headers = http_error_headers(request, exc)
        return problem_response(exc.status_code, title, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(err["loc"][:1] == ("path",) for err in exc.errors()):
            template, methods = _methods_of_path(request)
            if "{" not in template and methods and request.method not in methods:
                # PATCH /findings/summary reached PATCH /findings/{finding_id}: the path names
                # a resource of its own, which does not take this method.
                allow = {"Allow": ", ".join(sorted(methods))}
                return problem_response(405, "Method not allowed", "Method Not Allowed", allow)
        errors = invalid_fields(exc)
        return problem_response(422, "Invalid input", first_invalid_field(errors), errors=errors)

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


def http_error_title(status: int) -> str:
    """The title of a problem Starlette raised (no route, method or size)."""
    return {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}.get(
        status, "Error"
    )


def invalid_fields(exc: RequestValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
        for err in exc.errors()
    ]


def first_invalid_field(errors: list[dict[str, str]]) -> str:
    """A validation failure in one line: the first field and what is wrong with it."""
    first = errors[0] if errors else {"field": "", "message": "invalid request"}
    return f"{first['field']}: {first['message']}"


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


def retry_after(problem: ProblemError) -> dict[str, str]:
    """``Retry-After`` for a refusal that says when to come back (a rate limit's 429)."""
    seconds = problem.extra.get("retry_after_seconds")
    return {} if seconds is None else {"Retry-After": str(seconds)}


def http_error_headers(
    request: Request,
    exc: StarletteHTTPException,
    templates: Iterable[tuple[str, Iterable[str]]] | None = None,
) -> dict[str, str]:
    """The headers of Starlette's error, with a 405's ``Allow`` naming every method of the
    most specific path template matching the request (the API's documented ones unless
    ``templates`` are given): Starlette names only those of the first route it tried."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        found = _methods_of_path(request, templates)[1]
        if found:
            headers["Allow"] = ", ".join(sorted(found))
    return headers


def _methods_of_path(
    request: Request, templates: Iterable[tuple[str, Iterable[str]]] | None = None
) -> tuple[str, set[str]]:
    """The most specific path template matching the request's path (of ``templates``, else
    the API's documented ones), and the methods it takes."""
    if templates is None:
        templates = request.app.openapi().get("paths", {}).items()
    path = request.url.path
    matching: dict[str, set[str]] = {}
    for template, methods in templates:
        if re.fullmatch(_template_pattern(template), path):
            matching.setdefault(template, set()).update(
                method.upper() for method in methods if method.lower() in HTTP_METHODS
            )
    if not matching:
        return "", set()
    return min(matching.items(), key=lambda found: found[0].count("{"))


def _template_pattern(template: str) -> str:
    """``/findings/{finding_id}`` as a regular expression (a parameter is one path segment)."""
    return "[^/]+".join(re.escape(part) for part in PATH_PARAMETER.split(template))


def document_problems(document: dict[str, Any]) -> None:
    """OpenAPI edit: every operation documents the problems it may answer as
    ``application/problem+json``, in place of FastAPI's ``HTTPValidationError`` (which nothing
    answers)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["ProblemDetails"] = ProblemDetails.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, title in DOCUMENTED_PROBLEMS.items():
                responses[str(status)] = {"description": title, "content": content}
