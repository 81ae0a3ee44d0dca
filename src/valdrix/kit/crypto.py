"""Encryption at rest (AES-256-GCM, versioned keys), blind indexes and token hashing.

Ciphertext layout: ``b"v1" | len(kid) | kid | nonce(12) | ciphertext+tag``. The key id travels
with every ciphertext so older keys keep decrypting after rotation until ``valdrix keys rotate``
re-encrypts everything with the active key. Nonces are random per encryption, never fixed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_VERSION = b"v1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """Ciphertext is corrupt, tampered with, or sealed with a key we no longer hold."""


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


class KeyRing:
    """The configured keys; the first one encrypts, all of them decrypt."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._keys = {kid: AESGCM(key) for kid, key in keys}
        self._index_keys = [_derive(key, b"valdrix blind index") for _, key in keys]
        self.active_kid = keys[0][0]
        self.kids = [kid for kid, _ in keys]

    def encrypt(self, plaintext: str, *, context: bytes = b"") -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        kid = self.active_kid.encode()
        sealed = self._keys[self.active_kid].encrypt(nonce, plaintext.encode(), context or None)
        return FORMAT_VERSION + bytes([len(kid)]) + kid + nonce + sealed

    def decrypt(self, blob: bytes, *, context: bytes = b"") -> str:
        kid = key_id_of(blob)
        cipher = self._keys.get(kid)
        if cipher is None:
            raise DecryptionError(f"ciphertext uses key '{kid}', which is not configured")
        start = 3 + len(kid.encode())
        nonce, sealed = blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :]
        try:
            return cipher.decrypt(nonce, sealed, context or None).decode()
        except Exception as exc:  # InvalidTag and friends: never reveal why
            raise DecryptionError("ciphertext failed authentication") from exc

    def blind_index(self, value: str) -> bytes:
        """Deterministic lookup token for ``value`` under the active key."""
        return self.blind_indexes(value)[0]

    def blind_indexes(self, value: str) -> list[bytes]:
        """Lookup tokens under every configured key, so lookups work mid-rotation."""
        normalized = value.strip().lower().encode()
        return [hmac.new(key, normalized, hashlib.sha256).digest() for key in self._index_keys]


def key_id_of(blob: bytes) -> str:
    if len(blob) < 3 or blob[:2] != FORMAT_VERSION:
        raise DecryptionError("not a Valdrix ciphertext")
    length = blob[2]
    return blob[3 : 3 + length].decode()


def hash_token(token: str) -> bytes:
    """Hash of a high-entropy secret (API key, session, invite); slow hashing is unneeded."""
    return hashlib.sha256(token.encode()).digest()


def new_token(prefix: str, nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)
