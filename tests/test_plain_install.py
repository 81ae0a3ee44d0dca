"""A plain install (no extras) imports, answers ``--help`` and serves: the simulators' packages
are the ``demo`` extra, which production never installs.

Each command runs as a subprocess of this Python in which every module that only the ``demo``
extra brings (moto, and what only moto needs: Flask, Docker's client, cfn-lint, ...) fails to
import as it would on a plain install. The set is worked out from ``pyproject.toml`` and the
installed packages' own requirements, so it follows moto's dependencies as they change.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.cli.helpers import (
    COMMAND_TIMEOUT,
    STOPPED_BY_SIGTERM,
    env_for_session_database,
    env_with_home,
    free_ports,
    in_background,
    one_line,
    valdrix,
)

if TYPE_CHECKING:  # importing them at run time would make pytest try to collect TestDatabase
    from tests.conftest import TestDatabase

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# ``sitecustomize``: every Python started with its directory on PYTHONPATH runs it first.
NOT_INSTALLED_HOOK = '''
import sys


class NotInstalled:
    """Fails the import of any module of a distribution only the demo extra installs."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in DEMO_ONLY:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


DEMO_ONLY = frozenset(%r)
sys.meta_path.insert(0, NotInstalled())
'''

# Every module of the package (``__main__`` would run the CLI), then what got imported.
IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
import valdrix
for module in pkgutil.walk_packages(valdrix.__path__, "valdrix."):
    if not module.name.endswith(".__main__"):
        importlib.import_module(module.name)
from sitecustomize import DEMO_ONLY
print(sorted(DEMO_ONLY & {name.partition(".")[0] for name in sys.modules}))
"""


def installed_closure(requirements: Iterable[Requirement]) -> set[str]:
    """The distributions ``requirements`` install, following the installed ones' requirements."""
    found: set[tuple[str, frozenset[str]]] = set()
    pending = list(requirements)
    while pending:
        requirement = pending.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in found:
            continue
        found.add(key)
        extras = {"", *requirement.extras}
        for text in importlib.metadata.requires(requirement.name) or []:
            nested = Requirement(text)
            if nested.marker is None or any(nested.marker.evaluate({"extra": e}) for e in extras):
                pending.append(nested)
    return {name for name, _ in found}


def modules_only_the_demo_extra_installs() -> set[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    plain = [Requirement(text) for text in project["dependencies"]]
    demo = [Requirement(text) for text in project["optional-dependencies"]["demo"]]
    demo_only = installed_closure(plain + demo) - installed_closure(plain)
    return {
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if all(canonicalize_name(d) in demo_only for d in distributions)
    }


@pytest.fixture(scope="module")
def plain_install(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment variables that make a Python process look like a plain install."""
    demo_only = modules_only_the_demo_extra_installs()
    assert "moto" in demo_only, "pyproject.toml's demo extra should hold moto"
    hook_dir = tmp_path_factory.mktemp("plain-install")
    (hook_dir / "sitecustomize.py").write_text(NOT_INSTALLED_HOOK % sorted(demo_only))
    path = [str(hook_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(path)}


def test_every_valdrix_module_imports_without_the_demo_extra(
    plain_install: dict[str, str], tmp_path: Path
) -> None:
    env = env_with_home(tmp_path) | plain_install
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", "imported although a plain install lacks them"


def test_help_works_without_the_demo_extra(plain_install: dict[str, str], tmp_path: Path) -> None:
    result = valdrix("--help", env=env_with_home(tmp_path) | plain_install)
    assert result.returncode == 0, result.stderr
    assert {"serve", "worker", "migrate", "demo"} <= set(one_line(result.stdout).split())


def test_serve_answers_ready_without_the_demo_extra(
    plain_install: dict[str, str], database: TestDatabase, encryption_keys: str, tmp_path: Path
) -> None:
    env = env_for_session_database(database, encryption_keys, tmp_path / "home") | plain_install
    (port,) = free_ports(1)
    with in_background("serve", "--port", str(port), env=env, logs=tmp_path) as serve:
        serve.wait_until_ready(f"http://127.0.0.1:{port}")
        assert serve.stop() == STOPPED_BY_SIGTERM, serve.output()


def test_demo_without_the_demo_extra_says_what_to_install_and_leaves_no_trace(
    plain_install: dict[str, str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    result = valdrix("demo", "--once", env=env_with_home(home) | plain_install)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "valdrix: the demo's simulated AWS account is not installed (no module named 'moto'): "
        "install valdrix[demo] (from a clone: pip install -e '.[demo]')"
    ]
    assert not home.exists() or not any(home.iterdir())
