"""structlog set-up: JSON lines in production, a readable console in development and the demo."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from valdrix.kit.request_context import request_id_var

SECRET_KEYS = frozenset(
    {
        "password",
        "api_key",
        "key",
        "token",
        "secret",
        "authorization",
        "cookie",
        "encryption_keys",
        "external_id",
        "credentials",
        "secret_access_key",
        "session_token",
        "llm_api_key",
    }
)

# Libraries that log whole requests and responses at DEBUG: botocore (STS answers with secret
# keys, signed headers with session tokens, request bodies with external ids) and urllib3 (URLs,
# presigned query strings included). Their DEBUG output is never let through, whatever level
# the rest of the standard library's logging is set to.
WIRE_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")

# Events also logged under a second name, for searches written against the names the
# reliability review uses; the alias line carries ``alias_of`` and the same fields.
EVENT_ALIASES = {"scan.complete": "scan_complete", "scan.timeout": "scan_timeout"}


def log_with_alias(logger: Any, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` at ``level``, then its alias (``EVENT_ALIASES``) if it has one."""
    logger.log(level, event, **fields)
    alias = EVENT_ALIASES.get(event)
    if alias is not None:
        logger.log(level, alias, alias_of=event, **fields)


def _bind_request_id(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    request_id = request_id_var.get()
    if request_id and "request_id" not in event:
        event["request_id"] = request_id
    return event


def _redact_secrets(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    for key in event.keys() & SECRET_KEYS:
        event[key] = "[redacted]"
    return event


def configure_logging(*, json_output: bool, level: str = "INFO") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _bind_request_id,
            _redact_secrets,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
