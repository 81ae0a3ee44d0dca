"""The dashboard's routers and static files, mounted on the app at ``/``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from valdrix.web import connections, costs, findings, jobs, overview, scans, settings, sign_in
from valdrix.web.templating import STATIC_DIR

STATIC_PATH = "/static"


def install_dashboard(app: FastAPI) -> None:
    app.include_router(sign_in.router)
    app.include_router(overview.router)
    app.include_router(findings.router)
    app.include_router(scans.router)
    app.include_router(costs.router)
    app.include_router(jobs.router)
    app.include_router(connections.router)
    app.include_router(settings.router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
