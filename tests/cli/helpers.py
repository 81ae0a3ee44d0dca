"""Running the ``valdrix`` command as a subprocess, in the foreground or as a background server,
for the command-line tests and the plain-install test."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import TestDatabase
from valdrix.config import KEY_FILE_NAME

VALDRIX = (sys.executable, "-m", "valdrix")
COMMAND_TIMEOUT = 60.0
READY_TIMEOUT = 30.0
# The demo prints its first line after seeding a simulated AWS account and scanning it.
DEMO_READY_TIMEOUT = 120.0
STOPPED_BY_SIGTERM = 128 + signal.SIGTERM  # an exit, with exit handlers, not a kill


# --- running the command ---------------------------------------------------------------------


def env_with_home(home: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any ``VALDRIX_`` setting, plus ``settings``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("VALDRIX_")}
    return env | {"VALDRIX_HOME": str(home)} | settings


def valdrix(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VALDRIX, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def valdrix_output(*args: str, env: dict[str, str]) -> str:
    result = valdrix(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def valdrix_json(*args: str, env: dict[str, str]) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(valdrix_output(*args, "--json", env=env))
    return payload


def one_line(text: str) -> str:
    """Rich boxes and wrapping flattened, to search a usage error for words."""
    return " ".join(text.replace("│", " ").split())


def env_for_session_database(
    database: TestDatabase, encryption_keys: str, home: Path
) -> dict[str, str]:
    """Commands work on the session's database, with the session's key."""
    return env_with_home(
        home,
        VALDRIX_DATABASE_URL=database.urls.app,
        VALDRIX_MIGRATION_DATABASE_URL=database.urls.owner,
        VALDRIX_ENCRYPTION_KEYS=encryption_keys,
    )


# --- servers in the background ---------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Ports free right now, all different (the sockets are held open together)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


@dataclass
class Background:
    """A ``valdrix`` process running in the background, its output in files."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return f"stdout:\n{self.stdout.read_text()}\nstderr:\n{self.stderr.read_text()}"

    def first_line(self, timeout: float = READY_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.stdout.read_text()
            if "\n" in text:
                return text.split("\n", 1)[0]
            if self.process.poll() is not None:
                pytest.fail(
                    f"exited with {self.process.returncode} before printing\n{self.output()}"
                )
            time.sleep(0.1)
        pytest.fail(f"printed nothing in {timeout} s\n{self.output()}")

    def wait_until_ready(self, api_url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"exited with {self.process.returncode}\n{self.output()}")
            try:
                if httpx.get(f"{api_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"{api_url}/readyz was not 200 within {READY_TIMEOUT} s\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM (a graceful shutdown), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout=15)


@contextmanager
def in_background(*args: str, env: dict[str, str], logs: Path) -> Iterator[Background]:
    logs.mkdir(parents=True, exist_ok=True)
    name = f"{args[0]}-{uuid.uuid4().hex[:6]}"
    stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen([*VALDRIX, *args], env=env, stdout=out, stderr=err)
    background = Background(process, stdout, stderr)
    try:
        yield background
    finally:
        background.stop()


def postmaster(home: Path) -> psutil.Process | None:
    """The embedded server running for ``home``, if any."""
    pid_file = home / "postgres" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        process = psutil.Process(pid)
        running = str(home / "postgres") in " ".join(process.cmdline())
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    return process if running else None


def stop_embedded_server(home: Path) -> None:
    """Stop a server the test left running (normally the last Valdrix process out stops it)."""
    process = postmaster(home)
    if process is None:
        return
    process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
    try:
        process.wait(timeout=15)
    except psutil.TimeoutExpired:
        process.kill()


@contextmanager
def embedded_home(home: Path) -> Iterator[Path]:
    try:
        yield home
    finally:
        stop_embedded_server(home)


@dataclass(frozen=True)
class DemoRun:
    home: Path
    result: subprocess.CompletedProcess[str]

    @property
    def summary(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.result.stdout.splitlines()[0])
        return payload

    @property
    def key_file(self) -> Path:
        return self.home / KEY_FILE_NAME

    def env(self, **settings: str) -> dict[str, str]:
        """What a newcomer has: ``VALDRIX_HOME`` and nothing else."""
        return env_with_home(self.home, **settings)

    def serve_env(self) -> dict[str, str]:
        """What an operator sets to serve the demo's data: the demo's key."""
        return self.env(VALDRIX_ENCRYPTION_KEYS=self.key_file.read_text().strip())
