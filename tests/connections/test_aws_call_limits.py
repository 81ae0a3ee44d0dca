"""A call to AWS made within a budget gives up with the budget when AWS stops answering: the
thread making it is free again, not blocked for five attempts of 5 s + 20 s."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ReadTimeoutError

from valdrix.connections.providers.aws import AwsAccess, Credentials


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """Accepts connections and reads requests, and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


CREDENTIALS = Credentials("AKIDEXAMPLE", "secret", "token", dt.datetime(2100, 1, 1, tzinfo=dt.UTC))


@pytest.mark.parametrize("within", [3.0, 6.0])
def test_a_call_to_a_silent_endpoint_gives_up_with_its_budget(
    silent_endpoint: str, within: float
) -> None:
    access = AwsAccess(endpoint_url=silent_endpoint)
    ec2 = access.client("ec2", "us-east-1", CREDENTIALS, within=within)

    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        ec2.describe_volumes()
    elapsed = time.monotonic() - started

    # Every attempt was made (two), sharing the budget; backoff between them adds a little.
    assert within * 0.9 <= elapsed <= within + 2.0, f"gave up after {elapsed:.1f} s"


def test_a_long_budget_keeps_the_usual_timeouts_and_attempts() -> None:
    limits = AwsAccess().limits_within(300)
    assert (limits.connect_timeout, limits.read_timeout) == (5.0, 20.0)
    assert limits.retries == {"mode": "standard", "total_max_attempts": 5}
