"""Outgoing mail over SMTP, for secrets that must reach a person's own mailbox (invitations,
password resets)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

import structlog

from valdrix.config import Settings
from valdrix.errors import ProblemError

log = structlog.get_logger(__name__)


class MailNotSent(ProblemError):
    status, title = 503, "Mail not sent"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


def link_base(settings: Settings) -> str:
    """Where links in mail point: the public URL users reach Valdrix at, else where it listens."""
    api = settings.api
    return (api.public_url or f"http://{api.host}:{api.port}").rstrip("/")


async def send_mail(settings: Settings, mail: Mail, *, purpose: str) -> None:
    """Hand ``mail`` to the configured SMTP server, or raise ``MailNotSent``."""
    try:
        await asyncio.to_thread(_send, settings, mail)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("mail.failed", purpose=purpose, error=type(exc).__name__)
        raise MailNotSent(
            "the mail server did not take the message; nothing was saved, try again later"
        ) from exc
    log.info("mail.sent", purpose=purpose)


def _send(settings: Settings, mail: Mail) -> None:
    assert settings.mail.host is not None
    message = EmailMessage()
    message["From"] = settings.mail.sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message.set_content(mail.body)
    with smtplib.SMTP(
        settings.mail.host, settings.mail.port, timeout=settings.mail.timeout_seconds
    ) as smtp:
        if settings.mail.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.mail.username and settings.mail.password:
            smtp.login(settings.mail.username, settings.mail.password.get_secret_value())
        smtp.send_message(message)
