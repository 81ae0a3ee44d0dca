"""First use, as a newcomer goes: ``valdrix demo --once --json`` on a fresh ``VALDRIX_HOME``,
then the commands that come next on the same home, and workers beside the demo.

One ``demo --once`` run serves the module (the newcomer's run comes first, on the fresh home);
the tests of a worker started by hand share one serving demo on the same home afterwards.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.helpers import (
    DEMO_READY_TIMEOUT,
    VALDRIX,
    Background,
    DemoRun,
    embedded_home,
    env_with_home,
    free_ports,
    in_background,
    valdrix,
    valdrix_json,
    valdrix_output,
)
from tests.costs.focus_files import sample_path
from tests.fixtures.http import bearer

if TYPE_CHECKING:  # importing it at run time would make pytest try to collect TestDatabase
    from tests.conftest import TestDatabase

DEMO_TIMEOUT_SECONDS = 180.0
SCAN_TIMEOUT_SECONDS = 120.0
JOB_STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted")


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    with embedded_home(tmp_path_factory.mktemp("first-use") / "home") as home:
        demo = subprocess.run(
            [*VALDRIX, "demo", "--once", "--json"],
            env=env_with_home(home),
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT_SECONDS,
            check=False,
        )
        assert demo.returncode == 0, demo.stderr
        yield DemoRun(home, demo)


def wait_for_output(background: Background, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in background.stderr.read_text():
            return
        if background.process.poll() is not None:
            pytest.fail(f"exited with {background.process.returncode}\n{background.output()}")
        time.sleep(0.2)
    pytest.fail(f"no {text!r} within {timeout} s\n{background.output()}")


# --- the newcomer's run ----------------------------------------------------------------------


def test_a_newcomer_runs_the_demo_creates_a_tenant_imports_costs_lists_jobs_adds_a_worker(
    newcomer: DemoRun, tmp_path: Path
) -> None:
    env = newcomer.env()
    created = valdrix_json(
        "tenants",
        "create",
        "DemoRun Inc",
        "--tier",
        "growth",
        "--admin-email",
        "ops@newcomer.example",
        env=env,
    )
    imported = valdrix_json(
        "costs", "import", str(sample_path()), "--tenant", created["tenant_id"], env=env
    )
    assert (imported["status"], imported["rows_read"]) == ("committed", 1000)

    jobs = valdrix_json("jobs", "list", env=env)["jobs"]
    demo_jobs = sorted(
        (job["task_name"], job["status"])
        for job in jobs
        if job["tenant_id"] == newcomer.summary["tenant_id"]
    )
    # One scan and one paid analysis: the manual scan stands in for the scheduled one.
    assert demo_jobs == [("analysis.run", "succeeded"), ("scans.run", "succeeded")]
    assert not [job for job in jobs if job["status"] == "failed"], jobs

    with in_background("worker", "--concurrency", "1", env=env, logs=tmp_path) as worker:
        wait_for_output(worker, "worker.start")
        assert worker.stop() == 0, f"a graceful stop\n{worker.output()}"
    assert '"level": "error"' not in worker.stderr.read_text(), worker.output()


# --- the key the demo made --------------------------------------------------------------------


def test_commands_on_the_demos_embedded_database_use_its_key_file_and_say_so(
    newcomer: DemoRun,
) -> None:
    result = valdrix("jobs", "list", "--json", env=newcomer.env())

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["jobs"]
    assert f"using the encryption key in {newcomer.key_file}" in result.stderr


# --- what --once and jobs list print ----------------------------------------------------------


def test_demo_once_names_no_api_url_for_the_server_it_never_starts(newcomer: DemoRun) -> None:
    summary, stderr = newcomer.summary, newcomer.result.stderr

    assert not {"api_url", "dashboard_url", "docs_url", "metrics_token"} & set(summary), summary
    assert "curl" not in stderr
    assert "/api/v1" not in stderr
    assert summary["scan_status"] == "completed", "the scan itself is still reported"


def test_jobs_list_into_a_pipe_prints_every_value_in_full(newcomer: DemoRun) -> None:
    listing = valdrix_output("jobs", "list", env=newcomer.serve_env())

    assert "…" not in listing
    [scan_line] = [line for line in listing.splitlines() if "scans.run" in line]
    assert newcomer.summary["tenant_id"] in scan_line
    assert "succeeded" in scan_line.split()


def test_jobs_list_with_an_unknown_status_fails_naming_the_statuses(newcomer: DemoRun) -> None:
    result = valdrix("jobs", "list", "--status", "bogus", env=newcomer.serve_env())

    assert result.returncode != 0
    assert result.stdout == ""
    assert "'bogus' is not one of" in result.stderr
    assert all(status in result.stderr for status in JOB_STATUSES), result.stderr


# --- workers beside the demo ------------------------------------------------------------------


@dataclass(frozen=True)
class ServingDemo:
    background: Background
    summary: dict[str, Any]

    def worker(self) -> psutil.Process:
        """The worker the demo started."""
        [worker] = [
            child
            for child in psutil.Process(self.background.process.pid).children()
            if "worker" in child.cmdline()
        ]
        return worker


@pytest.fixture(scope="module")
def serving_demo(
    newcomer: DemoRun, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServingDemo]:
    [port] = free_ports(1)
    with in_background(
        "demo",
        "--json",
        "--port",
        str(port),
        env=newcomer.env(),
        logs=tmp_path_factory.mktemp("serving-demo"),
    ) as demo:
        summary = json.loads(demo.first_line(timeout=DEMO_READY_TIMEOUT))
        demo.wait_until_ready(summary["api_url"])
        yield ServingDemo(demo, summary)


def scan_to_its_end(summary: dict[str, Any]) -> dict[str, Any]:
    """A scan of the demo's connection, started over the API, once it has finished."""
    api, auth = summary["api_url"], bearer(summary["api_key"])
    started = httpx.post(
        f"{api}/api/v1/scans", json={"connection_id": summary["connection_id"]}, headers=auth
    )
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + SCAN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        scan: dict[str, Any] = httpx.get(
            f"{api}/api/v1/scans/{started.json()['id']}", headers=auth
        ).json()
        if scan["status"] not in ("queued", "running"):
            return scan
        time.sleep(0.5)
    pytest.fail(f"scan {started.json()['id']} did not finish in {SCAN_TIMEOUT_SECONDS} s")


def test_a_worker_started_by_hand_beside_the_demo_scans_its_simulated_account(
    serving_demo: ServingDemo, newcomer: DemoRun, tmp_path: Path
) -> None:
    demos_worker = serving_demo.worker()
    demos_worker.suspend()  # so that the scan is the new worker's
    try:
        with in_background(
            "worker", "--concurrency", "1", env=newcomer.serve_env(), logs=tmp_path
        ) as worker:
            wait_for_output(worker, "worker.start")
            scan = scan_to_its_end(serving_demo.summary)
    finally:
        demos_worker.resume()

    assert scan["status"] == "completed", scan
    assert scan["findings_count"] > 0
    assert f"demo's simulated AWS account at {serving_demo.summary['aws_endpoint_url']}" in (
        worker.stderr.read_text()
    )


def test_the_demos_own_worker_serves_metrics_on_the_port_it_prints(
    serving_demo: ServingDemo,
) -> None:
    summary = serving_demo.summary
    url = summary["worker_metrics_url"]
    assert f"--metrics-port {url.rsplit(':', 1)[1].split('/')[0]}" in " ".join(
        serving_demo.worker().cmdline()
    )
    assert url in serving_demo.background.stderr.read_text(), "printed for people too"

    assert httpx.get(url, timeout=10).status_code == 401
    scraped = httpx.get(url, headers=bearer(summary["metrics_token"]), timeout=10)
    assert scraped.status_code == 200
    assert 'valdrix_scans_total{outcome="completed"}' in scraped.text, "the worker ran the scan"


def test_a_demo_run_reads_no_tenant_table_without_a_tenant(serving_demo: ServingDemo) -> None:
    """The demo migrated, scanned, analysed and served: neither its API process (which ran
    the migrations) nor its worker counted a statement without a tenant."""
    summary = serving_demo.summary
    auth = bearer(summary["metrics_token"])
    scan_to_its_end(summary)
    for url in (f"{summary['api_url']}/metrics", summary["worker_metrics_url"]):
        scraped = httpx.get(url, headers=auth, timeout=10)
        assert scraped.status_code == 200, url
        unscoped = {
            sample.labels["table"]: sample.value
            for family in text_string_to_metric_families(scraped.text)
            if family.name == "valdrix_rls_context_missing"
            for sample in family.samples
            if sample.name.endswith("_total")
        }
        assert not any(unscoped.values()), (url, unscoped)


def test_outside_the_embedded_database_a_missing_key_is_still_refused(
    newcomer: DemoRun, database: TestDatabase
) -> None:
    env = newcomer.env(
        VALDRIX_DATABASE_URL=database.urls.app,
        VALDRIX_MIGRATION_DATABASE_URL=database.urls.owner,
    )

    result = valdrix("jobs", "list", env=env)

    assert result.returncode != 0
    [line] = result.stderr.splitlines()
    assert line.startswith("valdrix: configuration error: VALDRIX_ENCRYPTION_KEYS is not set")
