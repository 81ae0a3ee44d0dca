"""Who may read /metrics: it lists every tenant's id with its waste, findings and LLM limits, so
the API port answers it only to the operator's bearer token (``VALDRIX_METRICS_TOKEN``) and not
at all without one; ``VALDRIX_METRICS_LISTEN`` serves it on an address of its own instead, for
``valdrix serve`` and ``valdrix worker`` alike, the database-backed gauges read at each scrape."""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.http import api_client, assert_problem
from tests.fixtures.jobs import IDLE_QUEUE
from tests.observability.helpers import metrics_auth, sample
from valdrix.config import Settings, SettingsError, load_settings
from valdrix.runtime import Runtime
from valdrix.simulator.aws_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_the_api_port_answers_metrics_only_to_the_operators_token(
    client: httpx.AsyncClient, make_tenant: Any
) -> None:
    tenant = await make_tenant()
    token = metrics_auth(client)["Authorization"].removeprefix("Bearer ")

    for refused_with in (
        {},
        tenant.auth,  # a tenant's owner key is no operator credential
        {"Authorization": f"Bearer {token[:-1]}"},
        {"Authorization": f"Bearer {token}x"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": "Bearer ünïcode".encode()},
    ):
        refused = await client.get("/metrics", headers=refused_with)
        assert_problem(refused, 401)
        assert refused.headers["www-authenticate"] == "Bearer"
        assert str(tenant.tenant_id) not in refused.text

    scraped = await client.get("/metrics", headers={"Authorization": f"bearer {token}"})
    assert scraped.status_code == 200, scraped.text
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "valdrix_jobs_stuck" in scraped.text


async def test_without_a_token_the_api_port_does_not_serve_metrics(
    runtime: Runtime, make_tenant: Any
) -> None:
    tenant = await make_tenant()
    closed = dataclasses.replace(
        runtime, settings=runtime.settings.updated(metrics={"token": None})
    )

    async with api_client(closed) as client:
        for headers in ({}, tenant.auth, {"Authorization": "Bearer anything-at-all"}):
            assert_problem(await client.get("/metrics", headers=headers), 404)
        assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "short-token",
        "changeme-changeme-changeme-changeme",
        "x" * 40,
        "my-metrics-secret-" + "a1b2c3d4" * 3,
    ],
    ids=["short", "changeme", "no-variety", "says-secret"],
)
def test_a_short_or_placeholder_metrics_token_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("VALDRIX_METRICS_TOKEN", token)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == (
        "VALDRIX_METRICS_TOKEN must be at least 32 characters and not a placeholder"
    )


@pytest.mark.parametrize(
    "listen", ["9100", ":9100", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:0", "127.0.0.1:70000",
               "::1:9100", "127.0.0.1:9100\n", "127.0.0.1 :9100"],
)  # fmt: skip
def test_a_metrics_listen_address_that_is_not_host_and_port_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, listen: str
) -> None:
    monkeypatch.setenv("VALDRIX_METRICS_LISTEN", listen)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith("VALDRIX_METRICS_LISTEN must look like host:port"), message
    assert "\n" not in message


def test_a_strong_token_and_listen_addresses_are_accepted(home: Path) -> None:
    token = secrets.token_hex(32)
    configured = Settings(metrics={"token": token}).metrics.token
    assert configured is not None and configured.get_secret_value() == token
    for listen, address in [
        ("10.0.0.5:9100", ("10.0.0.5", 9100)),
        ("[::1]:9100", ("::1", 9100)),
        ("metrics.internal:9100", ("metrics.internal", 9100)),
    ]:
        assert Settings(metrics={"listen": listen}).metrics.address == address


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment with no ``VALDRIX_`` setting."""
    for name in list(os.environ):
        if name.startswith("VALDRIX_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VALDRIX_HOME", str(tmp_path))
    return tmp_path


# --- their own address, in real processes ----------------------------------------------------


@pytest.fixture
def start_process(database: Any, encryption_keys: str, tmp_path: Path) -> Iterator[Any]:
    """Starts ``valdrix <args>`` against the test database with extra environment; stops it."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(*args: str, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"process-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "valdrix", *args],
                cwd=REPO_ROOT,
                env={
                    **os.environ,
                    "VALDRIX_HOME": str(tmp_path),
                    "VALDRIX_DATABASE_URL": database.urls.app,
                    "VALDRIX_MIGRATION_DATABASE_URL": database.urls.owner,
                    "VALDRIX_ENCRYPTION_KEYS": encryption_keys,
                    **env,
                },
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append((process, log))
        return process, log

    yield start
    for process, log in started:
        assert process.poll() is None, log.read_text()  # still up after all it was asked
        process.terminate()
        process.wait(timeout=30)


def get_when_up(
    process: subprocess.Popen[bytes], log: Path, url: str, **headers: str
) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(url, headers=headers, timeout=5)
        except httpx.TransportError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)


def test_serve_with_a_listen_address_serves_metrics_there_and_not_on_the_api_port(
    start_process: Any,
) -> None:
    api_port, metrics_port = free_port(), free_port()
    server, log = start_process(
        "serve", "--port", str(api_port), VALDRIX_METRICS_LISTEN=f"127.0.0.1:{metrics_port}"
    )

    scraped = get_when_up(server, log, f"http://127.0.0.1:{metrics_port}/metrics")
    assert scraped.status_code == 200, scraped.text
    families = {f.name: f for f in text_string_to_metric_families(scraped.text)}
    # Read from the database at the scrape, as on the API port.
    sample(families, "valdrix_jobs_stuck")
    sample(families, "valdrix_schedule_lag_seconds", tier="enterprise")
    assert get_when_up(server, log, f"http://127.0.0.1:{api_port}/healthz").status_code == 200
    on_api_port = httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=5)
    assert on_api_port.status_code == 404


def test_a_workers_metrics_address_also_asks_for_the_token_when_one_is_set(
    start_process: Any,
) -> None:
    port, token = free_port(), secrets.token_hex(32)
    worker, log = start_process(
        *("worker", "--no-periodic", "--queues", IDLE_QUEUE),
        VALDRIX_METRICS_LISTEN=f"127.0.0.1:{port}",
        VALDRIX_METRICS_TOKEN=token,
    )
    url = f"http://127.0.0.1:{port}/metrics"

    refused = get_when_up(worker, log, url)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert get_when_up(worker, log, url, Authorization=f"Bearer {token[::-1]}").status_code == 401
    scraped = get_when_up(worker, log, url, Authorization=f"Bearer {token}")
    assert scraped.status_code == 200
    assert "valdrix_workers_alive" in scraped.text
