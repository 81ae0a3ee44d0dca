"""The demo's simulated services, for the other processes on its ``VALDRIX_HOME``.

``valdrix demo`` runs its simulated AWS account (and, without a configured LLM, its simulated
analyst) inside its own process and hands their addresses to the worker it starts through the
environment. A ``valdrix worker`` or ``serve`` started by hand on the same home needs the same
settings, or every scan of the demo account fails for want of credentials. So while it runs the
demo writes them to ``demo-services.json`` under the home, and removes the file when it stops;
commands on that home's embedded database take them from there (a file whose demo is gone is
ignored).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from valdrix.config import Settings
from valdrix.simulator.aws_server import REAL_AWS_ENV

SERVICES_FILE = "demo-services.json"
ENDPOINT_VARIABLE = "VALDRIX_AWS_ENDPOINT_URL"


def publish_demo_services(home: Path, environment: dict[str, str]) -> None:
    """Record the variables a process beside this demo needs (written whole, then renamed)."""
    path = home / SERVICES_FILE
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps({"pid": os.getpid(), "environment": environment}))
    staged.replace(path)


def withdraw_demo_services(home: Path) -> None:
    """Remove the record, if it is this process's (a newer demo on the home keeps its own)."""
    path = home / SERVICES_FILE
    if _demo_pid(path) == os.getpid():
        path.unlink(missing_ok=True)


def use_running_demo_services(settings: Settings) -> str | None:
    """Take the settings of a demo running on this home's embedded database into this process's
    environment; a note saying so, or None when there is no such demo. Settings given
    explicitly win, except AWS credentials: the simulator's replace the caller's, so that the
    demo's account is never reached as a real identity (and a real one never as the demo)."""
    if not settings.embedded or settings.demo or ENDPOINT_VARIABLE in os.environ:
        return None
    path = settings.home / SERVICES_FILE
    pid = _demo_pid(path)
    if pid is None or not _running(pid):
        return None
    environment: dict[str, str] = json.loads(path.read_text())["environment"]
    for name in REAL_AWS_ENV:
        os.environ.pop(name, None)
    for name, value in environment.items():
        if name.startswith("VALDRIX_"):
            os.environ.setdefault(name, value)
        else:
            os.environ[name] = value
    return (
        f"using the demo's simulated AWS account at {environment[ENDPOINT_VARIABLE]} "
        f"(valdrix demo, pid {pid}, is running on {settings.home}): this process's AWS "
        "credentials are not used"
    )


def _demo_pid(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True
