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

from valdrix.config import Settings, SettingsError, load_settings
from valdrix.errors import ProblemError
from valdrix.logging import configure_logging
from valdrix.runtime import Runtime, open_runtime

console = Console(stderr=False)
P = ParamSpec("P")
R = TypeVar("R")

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
    """Settings for a command; ``needs_keys=False`` for commands that never touch secrets."""
    settings = load_settings()
    if demo:
        settings = settings.model_copy(update={"demo": True})
    configure_logging(
        json_output=(settings.log_format or ("console" if settings.demo else "json")) == "json",
        level=settings.log_level,
    )
    if needs_keys:
        settings.validate_for_startup()
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
