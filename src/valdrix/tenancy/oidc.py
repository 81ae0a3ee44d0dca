"""Verification of externally issued OIDC/JWT access tokens (HS256 secret or a JWKS URL)."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

import jwt

from valdrix.config import Settings
from valdrix.errors import Unauthorized

ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    # PyJWKClient caches keys and refetches on an unknown key id.
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


async def verify(settings: Settings, token: str) -> dict[str, Any]:
    """Check signature, expiry, issuer and audience; return the claims."""
    try:
        if settings.auth.oidc_jwks_url:
            client = _jwks_client(settings.auth.oidc_jwks_url)
            signing_key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
            key: Any = signing_key.key
            algorithms = ASYMMETRIC_ALGORITHMS
        else:
            key, algorithms = settings.auth.oidc_hs256_secret, ["HS256"]
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.auth.oidc_audience,
            issuer=settings.auth.oidc_issuer,
            options={"require": ["exp", "iss", "aud"]},
            leeway=30,
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"token rejected: {exc}") from exc
    return claims
