"""ASGI middleware: request ids, security and caching headers, body-size limit, last-resort
errors.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so context variables set here are visible to
the endpoint and every response, including errors, gets the headers.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from valdrix.kit.request_context import client_ip_var, request_id_var

_ASCII_DIGITS = re.compile(r"[0-9]+")

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

STRICT_CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# Swagger UI (/docs) is one inline script plus assets from jsDelivr; nothing else gets this.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "cross-origin-opener-policy": "same-origin",
}
HSTS = "max-age=63072000; includeSubDomains"
# API answers carry new keys, invitation and CSRF tokens and tenant data: no cache may keep
# them unless an endpoint says otherwise (one that revalidates with an ETag, say).
API_PREFIX = "/api/"
API_CACHE_CONTROL = "no-store"


class BodyTooLarge(HTTPException):
    """Raised while reading a body (chunked, or longer than declared) that passes the limit;
    the app's HTTP error handler turns it into a 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


class RequestContextMiddleware:
    """Assigns a request id, records the client IP, adds security headers (and ``no-store`` to
    API answers), limits body size."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        trusted_proxies: frozenset[str] = frozenset(),
        upload_limits: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.trusted_proxies = trusted_proxies
        # Paths that take file uploads, with their own (larger) limits.
        self.upload_limits = upload_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        offered = headers.get(REQUEST_ID_HEADER, "")
        request_id = offered if _VALID_REQUEST_ID.match(offered) else secrets.token_hex(8)
        request_id_var.set(request_id)
        client_ip_var.set(self._client_ip(scope, headers))
        https = self._is_https(scope, headers)
        if https and scope.get("scheme") != "https":
            # Behind a trusted TLS proxy: let the app see https too (Secure cookies, URLs). In
            # place, so what the router adds to the scope stays visible to outer middleware.
            scope["scheme"] = "https"
        csp = DOCS_CSP if scope.get("path") in DOCS_PATHS else STRICT_CSP
        is_api = str(scope.get("path", "")).startswith(API_PREFIX)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                out = MutableHeaders(scope=message)
                out[REQUEST_ID_HEADER] = request_id
                for name, value in SECURITY_HEADERS.items():
                    out.setdefault(name, value)
                out.setdefault("content-security-policy", csp)
                if is_api:
                    out.setdefault("cache-control", API_CACHE_CONTROL)
                if https:
                    out["strict-transport-security"] = HSTS
            await send(message)

        limit = self.upload_limits.get(scope.get("path", ""), self.max_body_bytes)
        declared = headers.get("content-length", "")
        # ASCII digits only ("²" is a digit to str.isdigit, not to int); a length too long to
        # read is too large.
        if _ASCII_DIGITS.fullmatch(declared) and (len(declared) > 18 or int(declared) > limit):
            await _send_problem(send_with_headers, 413, "Payload too large", request_id)
            return
        received = 0

        async def receive_within_limit() -> Message:
            # A chunked body declares no length, so count what actually arrives.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, receive_within_limit, send_with_headers)
        except Exception:
            log.exception("http.unhandled_error", path=scope.get("path"))
            if not started:
                await _send_problem(send_with_headers, 500, "Internal server error", request_id)

    def _client_ip(self, scope: Scope, headers: Headers) -> str | None:
        client = scope.get("client")
        peer: str | None = client[0] if client else None
        if peer not in self.trusted_proxies:
            return peer
        # Each proxy appends the address it saw, so only entries added by our own proxies,
        # read from the right, are believable; anything further left the client may have forged.
        hops = [hop.strip() for hop in ",".join(headers.getlist("x-forwarded-for")).split(",")]
        for hop in reversed(hops):
            if hop and hop not in self.trusted_proxies:
                return hop if _is_ip_address(hop) else peer
        return peer

    def _is_https(self, scope: Scope, headers: Headers) -> bool:
        if scope.get("scheme") == "https":
            return True
        client = scope.get("client")
        return bool(
            client
            and client[0] in self.trusted_proxies
            and headers.get("x-forwarded-proto") == "https"
        )


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


async def _send_problem(send: Send, status: int, title: str, request_id: str) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "request_id": request_id}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
