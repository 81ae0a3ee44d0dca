"""The FastAPI application: middleware, error handling, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from valdrix import __version__
from valdrix.analysis.endpoints import router as analysis_router
from valdrix.connections.endpoints import router as connections_router
from valdrix.costs.endpoints import IMPORTS_PATH
from valdrix.costs.endpoints import router as costs_router
from valdrix.errors import document_problems, install_error_handlers
from valdrix.input_guard import document_storable_text, reject_unstorable_text
from valdrix.jobs.app import close_job_app, open_job_app
from valdrix.jobs.endpoints import router as jobs_router
from valdrix.kit.middleware import RequestContextMiddleware
from valdrix.kit.openapi import extend_openapi
from valdrix.llm.endpoints import router as llm_router
from valdrix.observability.exposition import router as metrics_router
from valdrix.observability.exposition import serve_metrics
from valdrix.observability.health import router as health_router
from valdrix.observability.http import HttpMetricsMiddleware
from valdrix.runtime import Runtime
from valdrix.scanning.endpoints import router as scanning_router
from valdrix.scanning.live import scan_feeds
from valdrix.tenancy.credential_cache import credential_cache
from valdrix.tenancy.endpoints import router as tenancy_router
from valdrix.tenancy.rate_limits import RequestRateLimiter
from valdrix.web import costs as costs_page
from valdrix.web.pages import install_dashboard
from valdrix.wiring import wire

# Routes anyone may call without a credential; the route-walking test holds every other route
# to tenant protection, or to the operator's.
PUBLIC_ROUTES = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/openapi.json"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/accept-invite"),
        ("POST", "/api/v1/auth/password-reset"),
        ("POST", "/api/v1/auth/password-reset/confirm"),
    }
)
# Routes for the operator, behind the metrics token: no tenant credential opens them.
OPERATOR_ROUTES = frozenset({("GET", "/metrics")})


def create_app(runtime: Runtime) -> FastAPI:
    wire()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Metrics on an address of their own, when configured (an address already taken stops
        # start-up here, before anything is opened).
        address = runtime.settings.metrics.address
        metrics_server = await serve_metrics(runtime, *address) if address else None
        # The API defers jobs (inside request transactions) but never runs them.
        await open_job_app(runtime.urls.app, max_size=2)
        # Listening from the start, so the first requests already find the cache in service.
        scan_feeds(runtime.notifications)
        credential_cache(runtime.notifications)
        yield
        if metrics_server is not None:
            metrics_server.close()
        await close_job_app()
        await runtime.close()

    app = FastAPI(
        title="Valdrix",
        version=__version__,
        description="Multi-tenant FinOps: cloud waste with dollar figures, honest spend.",
        lifespan=lifespan,
        redoc_url=None,
        # Before any endpoint or other dependency: text the database cannot store is a 422.
        dependencies=[Depends(reject_unstorable_text)],
    )
    app.state.runtime = runtime
    # One per process: the tokens it took from the shared buckets (tenancy/rate_limits.py).
    app.state.rate_limiter = RequestRateLimiter(runtime.settings.rate_limits)
    install_error_handlers(app)
    extend_openapi(app, document_problems, document_storable_text)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(tenancy_router)
    app.include_router(jobs_router)
    app.include_router(connections_router)
    app.include_router(scanning_router)
    app.include_router(analysis_router)
    app.include_router(llm_router)
    app.include_router(costs_router)
    install_dashboard(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=runtime.settings.api.max_request_body_bytes,
        trusted_proxies=frozenset(runtime.settings.api.trusted_proxies),
        upload_limits=dict.fromkeys(
            (IMPORTS_PATH, costs_page.UPLOAD_PATH), runtime.settings.costs.max_upload_bytes
        ),
    )
    # Outermost, so every response counts (413s and 500s from the middleware above included).
    app.add_middleware(HttpMetricsMiddleware)
    return app
