"""A local moto server: every AWS service on one loopback port."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

from moto.server import ThreadedMotoServer


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class SimulatedAws:
    server: Any
    endpoint_url: str

    def stop(self) -> None:
        self.server.stop()


def start_simulated_aws(host: str = "127.0.0.1", port: int | None = None) -> SimulatedAws:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = port or free_port(host)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return SimulatedAws(server, f"http://{host}:{port}")
