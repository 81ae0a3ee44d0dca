"""Passwords are hashed at the cost the settings name, argon2's recommended one by default."""

from __future__ import annotations

import secrets

from valdrix.config import Settings
from valdrix.kit.password_hashing import use_hash_cost
from valdrix.runtime import Runtime
from valdrix.tenancy.passwords import hash_password, verify_password


def test_new_hashes_take_the_configured_cost_and_old_ones_still_verify(runtime: Runtime) -> None:
    settings = runtime.settings  # opening the runtime set its cost for the process
    password = secrets.token_urlsafe(16)
    cheap = hash_password(password)  # the suite's: the least cost
    assert cheap.startswith("$argon2id$v=19$m=64,t=1,")

    defaults = Settings(home=settings.home).auth
    use_hash_cost(defaults.password_hash_time_cost, defaults.password_hash_memory_kib)
    try:
        strong = hash_password(password)
        assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # RFC 9106, second choice
        # A hash keeps the cost it was made with: raising the cost locks nobody out.
        assert verify_password(cheap, password)
        assert verify_password(strong, password)
        assert not verify_password(strong, password + "x")
        assert not verify_password(None, password)
    finally:
        use_hash_cost(settings.auth.password_hash_time_cost, settings.auth.password_hash_memory_kib)
