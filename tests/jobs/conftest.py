"""Real worker processes for the job-platform tests, and a superuser view of the database.

Workers are ``python -m valdrix worker`` subprocesses on the session's PostgreSQL, with the probe
tasks loaded and reliability timings shortened so crashes are noticed in seconds. Each writes
JSON logs to its own file (shown when a test fails), and every process a test starts is stopped
at teardown: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.conftest import TestDatabase
from tests.jobs.helpers import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_SECONDS = 15.0

# Seconds, not the production minutes: a dead worker is recovered ~3 s after its last heartbeat.
FAST_RELIABILITY = {
    "VALDRIX_WORKER_HEARTBEAT_SECONDS": "0.5",
    "VALDRIX_JOB_STALL_TIMEOUT_SECONDS": "3",
    "VALDRIX_JOB_RECOVERY_INTERVAL_SECONDS": "1",
    "VALDRIX_WORKER_SHUTDOWN_GRACE_SECONDS": "5",
}


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember whether the test failed, so its workers' logs can be shown."""
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


class SuperuserDb:
    """Cross-tenant reads (and test-only set-up) as the database superuser."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self.connection = connection

    async def rows(self, sql: str, *params: Any, **named: Any) -> list[tuple[Any, ...]]:
        cursor = await self.connection.execute(sql, named or params or None)
        return await cursor.fetchall() if cursor.description else []

    async def value(self, sql: str, *params: Any, **named: Any) -> Any:
        rows = await self.rows(sql, *params, **named)
        return rows[0][0] if rows else None


@pytest.fixture(scope="session")
def superuser_url(database: TestDatabase) -> str:
    """The superuser on the test database (``database.superuser`` may name another one when
    ``VALDRIX_TEST_DATABASE_URL`` is used)."""
    return make_conninfo(database.superuser, dbname=conninfo_to_dict(database.urls.app)["dbname"])


@pytest.fixture
async def superuser_db(superuser_url: str) -> AsyncIterator[SuperuserDb]:
    async with await psycopg.AsyncConnection.connect(superuser_url, autocommit=True) as conn:
        yield SuperuserDb(conn)


@pytest.fixture(scope="session")
def worker_env(
    database: TestDatabase, encryption_keys: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return {
        **os.environ,
        "VALDRIX_HOME": str(tmp_path_factory.mktemp("worker-home")),
        "VALDRIX_DATABASE_URL": database.urls.app,
        "VALDRIX_MIGRATION_DATABASE_URL": database.urls.owner,
        "VALDRIX_ENCRYPTION_KEYS": encryption_keys,
        "VALDRIX_WORKER_IMPORTS": "tests.jobs.probe_tasks",
        "VALDRIX_LOG_FORMAT": "json",
        **FAST_RELIABILITY,
    }


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    sigterm_at: float | None = field(default=None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_events(self) -> list[dict[str, Any]]:
        """The worker's structured log lines (anything else it printed is skipped)."""
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def send_sigterm(self) -> None:
        """Ask for a graceful stop, once (a second SIGTERM would cut the grace period short)."""
        if self.sigterm_at is None and self.process.poll() is None:
            self.sigterm_at = time.monotonic()
            self.process.send_signal(signal.SIGTERM)

    def terminate(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, wait for a graceful exit, SIGKILL if it does not come. Returns the status."""
        self.send_sigterm()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.process.returncode


class WorkerPool:
    """Starts ``valdrix worker`` processes for one test and stops them all afterwards."""

    def __init__(self, env: dict[str, str], log_dir: Path, db: SuperuserDb) -> None:
        self.env = env
        self.log_dir = log_dir
        self.db = db
        self.started: list[WorkerProcess] = []

    async def start(
        self,
        count: int = 1,
        *,
        concurrency: int = 2,
        periodic: bool = False,
        queues: str = "probe,system",
        env: dict[str, str] | None = None,
    ) -> list[WorkerProcess]:
        """Start ``count`` workers and wait until each has registered with the database."""
        before = await self.db.value("SELECT coalesce(max(id), 0) FROM procrastinate_workers")
        workers = [self._spawn(concurrency, periodic, queues, env) for _ in range(count)]

        async def registered() -> bool:
            for worker in workers:
                if worker.process.poll() is not None:
                    raise AssertionError(
                        f"{worker.name} exited with {worker.process.returncode}:\n"
                        + worker.log_tail()
                    )
            new = await self.db.value(
                "SELECT count(*) FROM procrastinate_workers WHERE id > %s", before
            )
            return bool(new >= count)

        await wait_until(registered, within=30, message="workers to register")
        return workers

    def _spawn(
        self, concurrency: int, periodic: bool, queues: str, env: dict[str, str] | None
    ) -> WorkerProcess:
        name = f"worker{len(self.started) + 1}"
        log_path = self.log_dir / f"{name}.log"
        command = [sys.executable, "-m", "valdrix", "worker", "--name", name]
        command += ["--concurrency", str(concurrency), "--queues", queues]
        command += ["--periodic" if periodic else "--no-periodic"]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        worker = WorkerProcess(name, process, log_path)
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.send_sigterm()
        for worker in self.started:
            worker.terminate()


@pytest.fixture
async def workers(
    request: pytest.FixtureRequest,
    worker_env: dict[str, str],
    superuser_db: SuperuserDb,
    tmp_path: Path,
) -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(worker_env, tmp_path, superuser_db)
    try:
        yield pool
    finally:
        pool.stop_all()
        if request.node.stash.get(_FAILED, False):
            for worker in pool.started:
                print(f"--- {worker.name} (pid {worker.pid}) log tail ---\n{worker.log_tail()}")


@pytest.fixture
def probe_effects_table(superuser_url: str) -> Iterator[str]:
    """The table the probe task writes its idempotent effect to (test-only, dropped after so
    the schema stays exactly what the migrations make)."""
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS probe_effects (key text PRIMARY KEY)")
        conn.execute("GRANT SELECT, INSERT ON probe_effects TO valdrix_app")
    yield "probe_effects"
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS probe_effects")
