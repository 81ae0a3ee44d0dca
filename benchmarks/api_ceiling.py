"""The stack's own ceiling for ``api_load.py``: a minimal FastAPI app on the same database that
runs, for each request of the benchmark's mix, the SQL Valdrix ran for it, with the same driver
(psycopg 3, async, pooled), and answers the rows as JSON.

Served by uvicorn as Valdrix is (``--factory api_ceiling:create_app``), with
``API_CEILING_DATABASE_URL`` (the app role's URL: row-level security applies as for Valdrix)
and ``API_CEILING_STATEMENTS`` (a pickle of {request name: [(statement, parameters), ...]},
recorded by ``api_load.py`` from Valdrix's own requests). Each request runs its statements in
one transaction on a pooled connection: what is left of a request once routing, validation,
the ORM, authentication and serialisation are taken away.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from psycopg_pool import AsyncConnectionPool

# Valdrix's own pool: VALDRIX_DB_POOL_SIZE (10) and as many overflow connections.
POOL_SIZE = 10


def create_app() -> FastAPI:
    statements: dict[str, list[tuple[str, Any]]] = pickle.loads(  # noqa: S301 (our own file)
        Path(os.environ["API_CEILING_STATEMENTS"]).read_bytes()
    )
    pool = AsyncConnectionPool(
        os.environ["API_CEILING_DATABASE_URL"],
        min_size=POOL_SIZE,
        max_size=2 * POOL_SIZE,
        open=False,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open()
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/replay/{name}")
    async def replay(name: str) -> Response:
        results = []
        async with pool.connection() as conn:  # one transaction, committed on the way out
            for statement, parameters in statements[name]:
                cursor = await conn.execute(statement, parameters)
                if cursor.description is not None:
                    results.append(await cursor.fetchall())
        return Response(json.dumps(results, default=str), media_type="application/json")

    return app
