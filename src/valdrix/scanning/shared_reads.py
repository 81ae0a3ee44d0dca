"""Reads that several detectors of one partition need, made once per scan and partition.

Six AWS detectors judge a region's volumes and seven its instances; each listing them again
cost the cloud the same describe six or seven times (and the scan as many responses to parse).
A detector asks ``scope.shared.read(name, read)`` instead: the first to ask makes the read, the
others asking meanwhile wait for its answer, and later ones take it as it is. The answer is
shared between threads, so it is an immutable value (a tuple of the listed resources), which
detectors filter themselves.

A read that fails is not kept: the next detector to ask makes it again and gets its own answer
or its own error (a refused describe still denies each unit that needs it). A detector waiting
for another's read is bounded like any unit, by its partition's budget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class SharedReads:
    """One scan's reads in one partition, by name (``"ec2:DescribeVolumes"``)."""

    def __init__(self) -> None:
        self._reads: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()

    def read(self, name: str, read: Callable[[], T]) -> T:
        """``read()``'s answer, made once for everyone who asks for ``name``."""
        while True:
            with self._lock:
                answer = self._reads.get(name)
                reading = answer is None
                if answer is None:
                    answer = self._reads[name] = Future()
            if reading:
                return self._make(name, answer, read)
            try:
                shared: T = answer.result()
            except Exception:  # noqa: S112 (its reader's error: read again, for our own)
                continue
            return shared

    def _make(self, name: str, answer: Future[Any], read: Callable[[], T]) -> T:
        try:
            value = read()
        except BaseException as exc:
            with self._lock:
                del self._reads[name]
            answer.set_exception(exc)
            raise
        answer.set_result(value)
        return value
