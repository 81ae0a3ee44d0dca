"""Password hashing with argon2id."""

from __future__ import annotations

import asyncio
import weakref

from argon2.exceptions import InvalidHashError, VerificationError

from valdrix.errors import InvalidInput
from valdrix.kit.password_hashing import dummy_hash, password_hasher

MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    return password_hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return (
            password_hasher().verify(password_hash or dummy_hash(), password)
            and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


# argon2 takes tens to hundreds of milliseconds of CPU: it runs in worker threads (argon2-cffi
# releases the GIL), never on the event loop, and at most N at once per process so a burst of
# logins queues instead of starving everything else.
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _slot(concurrency: int) -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots[loop] = asyncio.Semaphore(concurrency)
    return _slots[loop]


async def hash_password_off_loop(password: str, *, concurrency: int) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:  # fail before queueing for a slot
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    async with _slot(concurrency):
        return await asyncio.to_thread(hash_password, password)


async def verify_password_off_loop(
    password_hash: str | None, password: str, *, concurrency: int
) -> bool:
    async with _slot(concurrency):
        return await asyncio.to_thread(verify_password, password_hash, password)
