"""Helpers every command shares: settings, readable failures, JSON output."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from valdrix.cli.demo_services import use_running_demo_services
from valdrix.config import Settings, SettingsError, load_settings
from valdrix.errors import ProblemError
from valdrix.logging import configure_logging
from valdrix.runtime import Runtime, open_runtime

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


def serve_api(settings: Settings, host: str, port: int) -> None:
    """Run the API in this process until SIGINT/SIGTERM (graceful shutdown)."""
    import uvicorn

    from valdrix.app import create_app

    sys.stdout.flush()
    uvicorn.run(
        create_app(open_runtime(settings)),
        host=host,
        port=port,
        log_config=None,
        # Forwarded headers are interpreted by our middleware, for VALDRIX_TRUSTED_PROXIES only.
        proxy_headers=False,
        server_header=False,
    )
