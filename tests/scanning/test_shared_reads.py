"""A read several detectors of a partition need is made once per scan, and a failed one is not
passed on: each detector that needs it then reads for itself."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from valdrix.scanning.shared_reads import SharedReads


def test_detectors_asking_at_once_share_one_read() -> None:
    shared = SharedReads()
    calls: list[int] = []
    started, release = threading.Event(), threading.Event()

    def describe() -> tuple[str, ...]:
        calls.append(1)
        started.set()
        release.wait(5)
        return ("vol-1", "vol-2")

    with ThreadPoolExecutor(max_workers=6) as pool:
        first = pool.submit(shared.read, "ec2:DescribeVolumes", describe)
        started.wait(5)
        others = [pool.submit(shared.read, "ec2:DescribeVolumes", describe) for _ in range(5)]
        release.set()
        answers = [first.result(5)] + [other.result(5) for other in others]

    assert answers == [("vol-1", "vol-2")] * 6
    assert len(calls) == 1
    assert shared.read("ec2:DescribeVolumes", describe) == ("vol-1", "vol-2")
    assert len(calls) == 1


def test_reads_of_other_names_are_their_own() -> None:
    shared = SharedReads()

    assert shared.read("ec2:DescribeVolumes", lambda: ("vol-1",)) == ("vol-1",)
    assert shared.read("ec2:DescribeInstances", lambda: ("i-1",)) == ("i-1",)


def test_a_failed_read_is_made_again_by_the_next_detector_that_needs_it() -> None:
    shared = SharedReads()
    answers = iter([PermissionError("DescribeVolumes: UnauthorizedOperation"), ("vol-1",)])

    def describe() -> tuple[str, ...]:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(PermissionError):
        shared.read("ec2:DescribeVolumes", describe)
    assert shared.read("ec2:DescribeVolumes", describe) == ("vol-1",)
