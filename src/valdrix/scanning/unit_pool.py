"""The threads one scan's units run on.

Cloud SDKs are synchronous, so a unit runs in a thread, and a thread blocked on a cloud that
stopped answering cannot be taken back: only its call's own timeouts end it (the provider
derives them from the partition's budget). So each scan has its own threads, and a thread
counts as busy until its call really returns, not until its unit gave up waiting for it. A
hung region then delays only the scan it belongs to (whose next units get their thread, and
their full budget, when one is free again), never another tenant's scan on the same worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class UnitPool:
    def __init__(self, size: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="valdrix-scan")
        self._free = asyncio.Semaphore(size)
        self._loop = asyncio.get_running_loop()

    @contextlib.asynccontextmanager
    async def thread(self) -> AsyncIterator[Thread]:
        """Wait for a free thread, then hold it for one call (``Thread.start``); a thread left
        unused is free again when the block ends."""
        await self._free.acquire()
        thread = Thread(self)
        try:
            yield thread
        finally:
            if not thread.started:
                self._free.release()

    def _start(self, call: Callable[[], T]) -> asyncio.Future[T]:
        running = self._executor.submit(call)
        running.add_done_callback(self._freed)
        return asyncio.wrap_future(running, loop=self._loop)

    def _freed(self, _: Future[Any]) -> None:
        # Runs in the pool's thread; the semaphore belongs to the event loop (which may have
        # ended while a hung call went on: then nobody waits for the thread).
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._free.release)

    def close(self) -> None:
        """No new calls; threads still blocked end with their calls' timeouts."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Thread:
    """A thread of the pool, held for one call."""

    def __init__(self, pool: UnitPool) -> None:
        self._pool = pool
        self.started = False

    def start(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``call`` on the thread, which is free again when ``call`` returns (whether
        anyone still waits for its answer or not)."""
        assert not self.started, "one call per thread held"
        self.started = True
        return self._pool._start(call)
