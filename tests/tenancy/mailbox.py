"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for invitation mail."""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from valdrix.runtime import Runtime

INVITE_TOKEN = re.compile(r"vdxinv_[A-Za-z0-9_-]+")


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address.lower() in m["X-Envelope-To"].lower()]

    def invite_token_for(self, address: str, timeout: float = 5.0) -> str:
        """The invitation token in the newest mail to ``address``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.to(address)):
                found = INVITE_TOKEN.search(_text_of(message))
                if found:
                    return found.group(0)
            time.sleep(0.05)
        raise AssertionError(f"no invitation mail reached {address}")


def _text_of(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        str(part.get_payload(decode=True).decode())  # type: ignore[union-attr]
        for part in parts
        if part.get_content_maintype() == "text"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def mail_runtime(runtime: Runtime, port: int) -> Runtime:
    """The shared runtime (same database and keys) with outgoing mail switched on."""
    settings = runtime.settings.updated(mail={"host": "127.0.0.1", "port": port, "starttls": False})
    return dataclasses.replace(runtime, settings=settings)
