"""Checks and parsers for single setting values: encryption keys, secrets that must not be
placeholders, listen addresses, and the demo's key file."""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from pathlib import Path

PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "placeholder", "secret", "xxx", "todo")
KEY_FILE_NAME = "encryption.keys"
# Service tiers, cheapest first (the Tier enum in tenancy.models mirrors these).
TIER_NAMES = ("free", "starter", "growth", "pro", "enterprise")


class SettingsError(ValueError):
    """A configuration problem explained in one line, for humans."""


def parse_encryption_keys(raw: str) -> list[tuple[str, bytes]]:
    """Parse ``kid:base64key,kid:base64key`` (first key is the active one)."""
    keys: list[tuple[str, bytes]] = []
    for index, item in enumerate(part.strip() for part in raw.split(",")):
        if not item:
            continue
        kid, sep, encoded = item.partition(":")
        if not sep or not kid or not encoded:
            raise SettingsError(
                f"VALDRIX_ENCRYPTION_KEYS entry {index + 1} must look like 'kid:base64key'"
            )
        try:
            key: bytes | None = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = None
        if _is_placeholder_key(encoded, key):
            raise SettingsError(f"VALDRIX_ENCRYPTION_KEYS key '{kid}' is a placeholder")
        if key is None:
            raise SettingsError(f"VALDRIX_ENCRYPTION_KEYS key '{kid}' is not base64")
        if len(key) != 32:
            raise SettingsError(
                f"VALDRIX_ENCRYPTION_KEYS key '{kid}' must be 32 bytes (AES-256), got {len(key)}"
            )
        if any(kid == existing for existing, _ in keys):
            raise SettingsError(f"VALDRIX_ENCRYPTION_KEYS key id '{kid}' appears twice")
        keys.append((kid, key))
    return keys


def _is_placeholder_key(encoded: str, key: bytes | None) -> bool:
    """A marker word in text that is no 32-byte key, or a 32-byte key with almost no entropy.

    Marker words are not searched in real keys: random base64 holds "xxx" or "todo" about once
    in 700 keys.
    """
    if key is not None and len(key) == 32:
        return len(set(key)) < 16  # 32 random bytes have ~30 distinct values
    return any(marker in encoded.lower() for marker in PLACEHOLDER_MARKERS)


_PLACEHOLDER_WORD = re.compile(
    r"(?:^|[^a-z0-9])(?:" + "|".join(map(re.escape, PLACEHOLDER_MARKERS)) + r")(?:[^a-z0-9]|$)"
)


def has_placeholder_word(value: str) -> bool:
    """A marker standing as its own word ("my-secret", "changeme"), not inside random text,
    or a value with almost no variety ("changemechangeme...", "xxxxxxxx...")."""
    return bool(_PLACEHOLDER_WORD.search(value.lower())) or len(set(value.lower())) < 10


def parse_listen_address(value: str) -> tuple[str, int]:
    """``host:port`` (an IPv6 host in brackets: ``[::1]:9100``) as (host, port)."""
    host, _, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address needs its brackets, or its last group reads as the port
    if (
        not host
        or any(char.isspace() for char in value)
        or not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535)
    ):
        raise SettingsError(
            f"VALDRIX_METRICS_LISTEN must look like host:port (10.0.0.5:9100, [::1]:9100),"
            f" got {value!r}"
        )
    return host, int(port)


def split_commas(value: object) -> object:
    """``"a, b,,c"`` as ``["a", "b", "c"]``, for list settings given as one variable."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def generate_key_entry() -> str:
    kid = "k" + secrets.token_hex(4)
    return f"{kid}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def ensure_demo_key_file(path: Path) -> str:
    """Read the demo key file, creating it with mode 0600 on first use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(generate_key_entry() + "\n")
    return path.read_text().strip()
