"""Helpers every command shares: settings, readable failures, JSON output."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from valdrix.cli.demo_services import use_running_demo_services
from valdrix.config import Settings, SettingsError, load_settings
from valdrix.errors import ProblemError
from valdrix.logging import configure_logging
from valdrix.runtime import Runtime, database_urls, open_runtime

if TYPE_CHECKING:
    from fastapi import FastAPI

console = Console(stderr=False)
P = ParamSpec("P")
R = TypeVar("R")

# Wide enough for any table to be measured at its natural width.
UNBOUNDED_WIDTH = 1_000_000
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object instead of text.")


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"valdrix: {message}", file=sys.stderr)
    raise typer.Exit(code)


def readable_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one line on stderr and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SettingsError as exc:
            fail(f"configuration error: {exc}", code=2)
        except ProblemError as exc:
            fail(exc.detail)

    return wrapper


def settings_for_command(*, demo: bool = False, needs_keys: bool = True) -> Settings:
    """Settings for a command; ``needs_keys=False`` for commands that never touch secrets.

    On the embedded database of a home the demo set up, a command uses the demo's key file
    when no keys are set, and the demo's simulated services while it runs, and says so on
    stderr (stdout may be a JSON answer)."""
    settings = load_settings()
    if demo:
        settings = settings.model_copy(update={"demo": True})
    elif (note := use_running_demo_services(settings)) is not None:
        settings = load_settings()
        print(f"valdrix: {note}", file=sys.stderr)
    configure_logging(
        json_output=(settings.log_format or ("console" if settings.demo else "json")) == "json",
        level=settings.log_level,
    )
    if needs_keys:
        settings.validate_for_startup()
        if settings.keys_from_key_file and not settings.demo:
            print(
                f"valdrix: using the encryption key in {settings.key_file}, made by `valdrix demo`"
                " (VALDRIX_ENCRYPTION_KEYS is not set)",
                file=sys.stderr,
            )
    return settings


def run_with_runtime(settings: Settings, work: Callable[[Runtime], Coroutine[Any, Any, R]]) -> R:
    async def main() -> R:
        runtime = open_runtime(settings)
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


def print_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, default=str), flush=True)


def print_table(table: Table) -> None:
    """A table on stdout. Into a pipe or a file, every value in full, one row a line and no box
    (on no terminal Rich assumes 80 columns and cuts values to fit: ``succee…``)."""
    if console.is_terminal:
        console.print(table)
        return
    table.box = None
    table.show_edge = False
    width = Console(width=UNBOUNDED_WIDTH).measure(table).maximum
    Console(file=sys.stdout, width=width).print(table)


def serve_api(settings: Settings, host: str, port: int, *, workers: int = 1) -> None:
    """Run the API until SIGINT/SIGTERM (graceful shutdown): in this process, or in ``workers``
    processes sharing the port (uvicorn's supervisor restarts any that dies)."""
    import uvicorn

    from valdrix.app import create_app

    sys.stdout.flush()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        # Forwarded headers are interpreted by our middleware, for VALDRIX_TRUSTED_PROXIES only.
        "proxy_headers": False,
        "server_header": False,
    }
    if workers == 1:
        uvicorn.run(create_app(open_runtime(settings)), **options)
        return
    if settings.metrics.address:
        raise SettingsError(
            "VALDRIX_METRICS_LISTEN serves one process's metrics on one address: with --workers,"
            " run one `valdrix serve` per port instead (docs/operations/deployment.md)"
        )
    # Each worker builds its app from the environment. It gets the database this process
    # resolved (an embedded one stays this process's to start and stop) and the keys it uses.
    urls = database_urls(settings)
    os.environ["VALDRIX_DATABASE_URL"], os.environ["VALDRIX_MIGRATION_DATABASE_URL"] = (
        urls.app,
        urls.owner,
    )
    if settings.keys_from_key_file:
        os.environ["VALDRIX_ENCRYPTION_KEYS"] = settings.key_file.read_text().strip()
    uvicorn.run(
        f"{__name__}:{api_from_environment.__name__}", factory=True, workers=workers, **options
    )


def api_from_environment() -> FastAPI:
    """The app of one of ``valdrix serve --workers N``'s processes."""
    from valdrix.app import create_app

    settings = load_settings()
    configure_logging(
        json_output=(settings.log_format or "json") == "json", level=settings.log_level
    )
    return create_app(open_runtime(settings))
