"""The process's argon2 password hasher, with the costs the settings name."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher

# argon2's (passes, memory in KiB) for new hashes; None: argon2-cffi's defaults, RFC 9106's
# second recommendation (3 passes over 64 MiB), which the settings' defaults equal.
HashCost = tuple[int, int] | None
_cost: HashCost = None


@functools.cache
def _hasher(cost: HashCost) -> PasswordHasher:
    return PasswordHasher() if cost is None else PasswordHasher(*cost)


@functools.cache
def _dummy_hash(cost: HashCost) -> str:
    """Verified against when the email is unknown, so both paths take the same time (made
    when first needed: a hash takes a quarter second, which every process start would pay)."""
    return _hasher(cost).hash("valdrix-timing-equaliser")


def use_hash_cost(time_cost: int, memory_kib: int) -> None:
    """Hash new passwords with these argon2 costs from now on, in this process (set from the
    settings when a runtime opens). Stored hashes keep the costs they were made with."""
    global _cost
    _cost = (time_cost, memory_kib)


def password_hasher() -> PasswordHasher:
    return _hasher(_cost)


def dummy_hash() -> str:
    return _dummy_hash(_cost)
