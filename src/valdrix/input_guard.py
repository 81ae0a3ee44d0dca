"""Refusing request text that PostgreSQL cannot store, before any endpoint sees it.

PostgreSQL text (and JSON) cannot hold NUL (U+0000), and a lone UTF-16 surrogate (which JSON's
``\\ud800`` escapes can produce) cannot be encoded at all. Either one reaching a query used to
surface as a 500 from the driver. One app-wide dependency checks every path parameter, query
parameter, header, JSON body string (keys included) and form field, and answers 422 naming the
field, as validation errors do. The OpenAPI schema says so (``document_storable_text``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.params import Form
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

from valdrix.errors import InvalidInput

NUL = "\x00"
NUL_REASON = "must not contain NUL characters"
NO_NUL_PATTERN = r"^[^\x00]*$"
SURROGATE_REASON = "must be valid Unicode (no unpaired surrogates)"
# A string schema with one of these already says what the text may be.
FIXED_TEXT_KEYWORDS = frozenset({"format", "enum", "const", "pattern"})


def unstorable_text_reason(value: str) -> str | None:
    """Why the database cannot store ``value``, or None when it can."""
    if NUL in value:
        return NUL_REASON
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_REASON
    return None


def first_unstorable_text(value: Any, field: str) -> tuple[str, str] | None:
    """The first string in a JSON-shaped ``value`` the database cannot store: (field, reason)."""
    if isinstance(value, str):
        reason = unstorable_text_reason(value)
        return (field, reason) if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            reason = unstorable_text_reason(key)
            if reason:
                return (field, f"keys {reason}")
            found = first_unstorable_text(item, f"{field}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = first_unstorable_text(item, f"{field}.{index}")
            if found:
                return found
    return None


async def reject_unstorable_text(request: Request) -> None:
    """App-wide dependency: 422 for the first field holding text the database cannot store.

    It runs after FastAPI has read the body and before any other dependency, so the JSON and form
    it inspects are the ones FastAPI parsed (``Request`` caches both).
    """
    found = _plain_problem(request) or await _body_problem(request)
    if found is not None:
        field, reason = found
        raise InvalidInput(f"{field}: {reason}", errors=[{"field": field, "message": reason}])


def _plain_problem(request: Request) -> tuple[str, str] | None:
    for field, value in _plain_fields(request):
        reason = unstorable_text_reason(value)
        if reason:
            return (field, reason)
    return None


def _plain_fields(request: Request) -> Iterator[tuple[str, str]]:
    for name, value in request.path_params.items():
        if isinstance(value, str):
            yield f"path.{name}", value
    for name, value in request.query_params.multi_items():
        yield f"query.{name}", value
    for name, value in request.headers.items():
        yield f"header.{name}", value


async def _body_problem(request: Request) -> tuple[str, str] | None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            body = await request.json()
        except ValueError:
            return None  # FastAPI answers malformed JSON itself
        return first_unstorable_text(body, "body")
    if _takes_form(request):
        for name, value in (await request.form()).multi_items():
            if isinstance(value, UploadFile):
                reason = unstorable_text_reason(value.filename or "")
                if reason:
                    return (f"body.{name}.filename", reason)
            elif reason := unstorable_text_reason(value):
                return (f"body.{name}", reason)
    return None


def _takes_form(request: Request) -> bool:
    """Whether the matched route reads a form, which FastAPI has then parsed already (parsing
    one here for a route that does not would only cost memory)."""
    route = request.scope.get("route")
    body = route.body_field if isinstance(route, APIRoute) else None
    return body is not None and isinstance(body.field_info, Form)


def document_storable_text(document: dict[str, Any]) -> None:
    """OpenAPI edit: free text (a string schema with no format, enum or pattern of its own) and
    the keys of free-form objects match ``NO_NUL_PATTERN``, as the guard above requires."""
    _document_storable(document)


def _document_storable(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _document_storable(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not node.keys() & FIXED_TEXT_KEYWORDS:
        node["pattern"] = NO_NUL_PATTERN
    if node.get("type") == "object" and node.get("additionalProperties"):
        node.setdefault("propertyNames", {"pattern": NO_NUL_PATTERN})
    for value in node.values():
        _document_storable(value)
