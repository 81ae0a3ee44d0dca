"""The mailbox of a real SMTP server on loopback (aiosmtpd, started by the ``smtp_server``
fixture): it keeps what it receives, for invitation and password reset mail."""

from __future__ import annotations

import dataclasses
import re
import time
from email import message_from_bytes
from email.message import Message
from typing import Any

from valdrix.runtime import Runtime

INVITE_TOKEN = re.compile(r"vdxinv_[A-Za-z0-9_-]+")
INVITE_LINK = re.compile(r"https?://\S+/accept-invite\?token=vdxinv_[A-Za-z0-9_-]+")
RESET_LINK = re.compile(r"https?://\S+/reset-password\?token=vdxpw_[A-Za-z0-9_-]+")


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
        return self._newest(address, INVITE_TOKEN, "invitation", timeout)

    def invite_link_for(self, address: str, timeout: float = 5.0) -> str:
        """The link to the invitation page in the newest mail to ``address``."""
        return self._newest(address, INVITE_LINK, "invitation", timeout)

    def reset_link_for(self, address: str, timeout: float = 5.0) -> str:
        """The password reset link in the newest mail to ``address``."""
        return self._newest(address, RESET_LINK, "password reset", timeout)

    def _newest(self, address: str, pattern: re.Pattern[str], what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.to(address)):
                found = pattern.search(_text_of(message))
                if found:
                    return found.group(0)
            time.sleep(0.05)
        raise AssertionError(f"no {what} mail reached {address}")


def _text_of(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        str(part.get_payload(decode=True).decode())  # type: ignore[union-attr]
        for part in parts
        if part.get_content_maintype() == "text"
    )


def mail_runtime(runtime: Runtime, port: int) -> Runtime:
    """The shared runtime (same database and keys) with outgoing mail switched on."""
    settings = runtime.settings.updated(mail={"host": "127.0.0.1", "port": port, "starttls": False})
    return dataclasses.replace(runtime, settings=settings)
