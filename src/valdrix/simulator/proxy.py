"""An HTTP proxy in front of the simulated AWS that injects real-world trouble: per-call latency,
regions that never answer, and operations the caller is not allowed to perform.

It reads what each request is from the request itself (SigV4 credential scope for the service
and region; ``Action=``, ``X-Amz-Target`` or ``/operation/<Name>`` for the operation), so the
clients under test need no cooperation beyond their endpoint URL.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from valdrix.simulator import cbor
from valdrix.simulator.aws_server import free_port

SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


@dataclass
class Faults:
    latency_seconds: float = 0.0
    hang_regions: set[str] = field(default_factory=set)
    # Operation names (e.g. "DescribeAddresses") answered with an access-denied error.
    deny_operations: set[str] = field(default_factory=set)


@dataclass
class RequestFacts:
    region: str
    service: str
    operation: str
    # How the request is encoded, and so its error: "query" (XML), "json" or "cbor".
    protocol: str = "query"


def describe(headers: Any, path: str, body: bytes) -> RequestFacts:
    scope = SCOPE.search(headers.get("Authorization", ""))
    region, service = (scope.group(1), scope.group(2)) if scope else ("", "")
    operation, protocol = "", "query"
    target = headers.get("X-Amz-Target")
    if target:
        operation, protocol = target.rsplit(".", 1)[-1], "json"
    elif "/operation/" in path:
        operation = path.rsplit("/operation/", 1)[1].split("?")[0]
        protocol = "cbor" if path.startswith("/service/") else "query"
    else:
        params = parse_qs(urlsplit(path).query)
        params.update(parse_qs(body.decode("utf-8", "replace")))
        operation = params.get("Action", [""])[0]
    return RequestFacts(region, service, operation, protocol)


def denial(
    service: str, operation: str, protocol: str = "query"
) -> tuple[int, dict[str, str], bytes]:
    message = f"You are not authorized to perform: {service}:{operation}"
    error = {"__type": "AccessDeniedException", "message": message}
    if protocol == "json":
        return 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(error).encode()
    if protocol == "cbor":
        headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
        return 400, headers, cbor.encode(error)
    if service == "ec2":
        body = (
            "<Response><Errors><Error><Code>UnauthorizedOperation</Code>"
            f"<Message>{message}</Message></Error></Errors><RequestID>sim</RequestID></Response>"
        )
        return 403, {"Content-Type": "text/xml"}, body.encode()
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
        f"<Message>{message}</Message></Error><RequestId>sim</RequestId></ErrorResponse>"
    )
    return 403, {"Content-Type": "text/xml"}, body.encode()


class _Server(ThreadingHTTPServer):
    # Many clients connect at once (a scan opens a connection per region and service): the
    # default backlog of 5 drops their handshakes, which each then wait a second or more.
    request_queue_size = 512


class FaultProxy:
    """``FaultProxy(upstream_url).start()``; point clients at ``proxy.url``."""

    def __init__(self, upstream_url: str, faults: Faults | None = None) -> None:
        self.upstream = urlsplit(upstream_url)
        self.faults = faults or Faults()
        self.calls: Counter[tuple[str, str]] = Counter()
        self._released = threading.Event()
        self._local = threading.local()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self, host: str = "127.0.0.1") -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                facts = describe(self.headers, self.path, body)
                proxy.calls[(facts.service, facts.operation)] += 1
                if facts.region in proxy.faults.hang_regions:
                    proxy._released.wait()  # never answers (until the proxy stops)
                    self.close_connection = True  # then hangs up instead of idling on keep-alive
                    return
                if proxy.faults.latency_seconds:
                    time.sleep(proxy.faults.latency_seconds)
                if facts.operation in proxy.faults.deny_operations:
                    status, headers, payload = denial(
                        facts.service, facts.operation, facts.protocol
                    )
                else:
                    status, headers, payload = proxy._forward(
                        self.command, self.path, self.headers, body
                    )
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in HOP_HEADERS:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        port = free_port(host)
        self._server = _Server((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://{host}:{port}"
        return self

    def _forward(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Each of the proxy's threads keeps its connection to the simulator open: a new one
        per request costs the simulator a thread and a handshake every call."""
        forwarded = {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}
        for attempt in (1, 2):
            connection = self._upstream_connection()
            try:
                connection.request(method, path, body=body, headers=forwarded)
                response = connection.getresponse()
                answer = response.status, dict(response.getheaders()), response.read()
            except (http.client.RemoteDisconnected, ConnectionError):
                # The simulator closed the kept connection first: once more on a new one.
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                connection.close()
                self._local.connection = None
            return answer
        raise AssertionError("unreachable")

    def _upstream_connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(
                self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=120
            )
            self._local.connection = connection
        return connection

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
