"""Edits to the generated OpenAPI document (what every operation may answer, what text may
hold), applied once, when FastAPI first builds it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

OpenApiEdit = Callable[[dict[str, Any]], None]


def extend_openapi(app: FastAPI, *edits: OpenApiEdit) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()  # FastAPI's, which caches it in app.openapi_schema
        for edit in edits:
            edit(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
