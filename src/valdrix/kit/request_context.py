"""Per-request facts (request id, client IP) that deep layers such as the audit log need."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("valdrix_request_id", default=None)
client_ip_var: ContextVar[str | None] = ContextVar("valdrix_client_ip", default=None)
