"""The dashboard's routers and static files, mounted on the app at ``/``."""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from valdrix.errors import http_error_headers, http_error_title
from valdrix.web import connections, costs, findings, jobs, overview, scans, settings, sign_in
from valdrix.web.routing import error_page
from valdrix.web.templating import STATIC_DIR

STATIC_PATH = "/static"
API_PATH = "/api/"


def _a_browser_asking_for_a_page(request: Request) -> bool:
    """A page address typed or followed in a browser (no API path, no static file, no htmx)."""
    path = request.url.path
    return (
        request.method in ("GET", "HEAD")
        and not path.startswith((API_PATH, STATIC_PATH + "/"))
        and "text/html" in request.headers.get("accept", "")
        and not request.headers.get("hx-request")
    )


PAGE_ROUTERS = (
    sign_in.router, overview.router, findings.router, scans.router, costs.router, jobs.router,
    connections.router, settings.router,
)  # fmt: skip


def _page_templates() -> list[tuple[str, set[str]]]:
    """Every page's path template and methods (pages are not in the API's document)."""
    return [
        (route.path_format, route.methods or set())
        for router in PAGE_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
    ]


def install_dashboard(app: FastAPI) -> None:
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
    answer_as_problem = app.exception_handlers[StarletteHTTPException]
    page_templates = _page_templates()

    async def no_such_page(request: Request, exc: Exception) -> Response:
        """A page address that names nothing (/nope): a page saying so, not problem+json."""
        if isinstance(exc, StarletteHTTPException) and _a_browser_asking_for_a_page(request):
            detail = "there is no such page" if exc.status_code == 404 else str(exc.detail)
            title = http_error_title(exc.status_code)
            headers = http_error_headers(request, exc, page_templates)
            return await error_page(request, exc.status_code, title, detail, headers)
        response = answer_as_problem(request, exc)
        return await response if inspect.isawaitable(response) else response

    app.add_exception_handler(StarletteHTTPException, no_such_page)
