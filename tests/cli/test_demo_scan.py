"""``valdrix demo`` scans a simulated AWS account through a worker, run for real as a subprocess.

Its findings are checked against the simulator's own ``valdrix-demo:expect`` tags, read back
with boto3 from the endpoint the demo prints: every ``waste:`` resource is reported by exactly
the detectors its tag names, and no ``keep`` resource by any. One fresh ``VALDRIX_HOME`` serves
the module: ``demo --once --json`` first (timed), then ``demo --json`` serving on the same home,
which re-seeds a fresh simulator behind the same connection.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.helpers import (
    DEMO_READY_TIMEOUT,
    VALDRIX,
    embedded_home,
    env_with_home,
    free_ports,
    in_background,
)
from tests.fixtures.http import bearer
from tests.scanning.distinct_costs import distinct_monthly_usd, gross_monthly_usd
from tests.simulator.demo_truth import demo_truth, expected_findings
from valdrix.scanning.registry import load_all_detectors

DEMO_BUDGET_SECONDS = 60.0  # from a fresh home to the summary, on a 2-core machine
# Generous, so that a slow run fails on the budget assertion rather than a timeout.
DEMO_TIMEOUT_SECONDS = 180.0
PAGE = 500  # the API's largest page
AWS_DETECTORS = sorted(d.key for d in load_all_detectors().for_provider("aws"))
# With --once nothing is served: no API URL or metrics token.
SUMMARY_KEYS = {
    "api_key",
    "tenant_id",
    "aws_endpoint_url",
    "aws_regions",
    "connection_id",
    "scan_id",
    "scan_status",
    "scan",
    "summary",
    "analysis",
}


@dataclass(frozen=True)
class DemoOnce:
    home: Path
    result: subprocess.CompletedProcess[str]
    seconds: float

    @property
    def summary(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.result.stdout.splitlines()[0])
        return payload


@pytest.fixture(scope="module")
def demo_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoOnce]:
    """``valdrix demo --once --json`` from a fresh home (no ``VALDRIX_`` setting at all)."""
    with embedded_home(tmp_path_factory.mktemp("demo-scan") / "home") as home:
        started = time.monotonic()
        result = subprocess.run(
            [*VALDRIX, "demo", "--once", "--json"],
            env=env_with_home(home),
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT_SECONDS,
            check=False,
        )
        yield DemoOnce(home, result, time.monotonic() - started)


def test_demo_once_scans_a_simulated_account_through_a_worker_within_a_minute(
    demo_once: DemoOnce,
) -> None:
    result = demo_once.result
    assert result.returncode == 0, result.stderr
    assert demo_once.seconds < DEMO_BUDGET_SECONDS, f"took {demo_once.seconds:.1f} s"
    assert len(result.stdout.splitlines()) == 1, "with --json everything else goes to stderr"
    summary = demo_once.summary
    assert not SUMMARY_KEYS - set(summary), f"missing {SUMMARY_KEYS - set(summary)}"
    assert summary["aws_endpoint_url"].startswith("http://127.0.0.1:")
    assert len(summary["aws_regions"]) >= 3
    assert summary["scan_status"] == summary["scan"]["status"] == "completed"
    assert summary["scan"]["id"] == summary["scan_id"]
    assert summary["scan"]["findings_count"] == summary["summary"]["total"]["findings"] > 0
    assert "age thresholds are 0 days" in result.stderr, "the demo says why new things count"
    assert "Monthly waste by detector" in result.stderr, "the table goes to stderr with --json"
    assert "worker.start" in result.stderr, "a worker process ran the scan"


def test_demo_once_explains_the_scan_with_the_simulated_analyst_under_the_budget(
    demo_once: DemoOnce,
) -> None:
    assert demo_once.result.returncode == 0, demo_once.result.stderr
    analysis = demo_once.summary["analysis"]
    assert analysis["status"] == "ready", analysis
    assert analysis["provider"] == "simulated-analyst"
    assert Decimal(analysis["cost_usd"]) > 0
    result = analysis["result"]
    assert result["findings_analysed"] == len(result["findings"]) > 0
    assert "simulated analyst, no real model" in demo_once.result.stderr


def test_demo_once_finds_waste_with_monthly_dollars_for_every_aws_detector(
    demo_once: DemoOnce,
) -> None:
    assert demo_once.result.returncode == 0, demo_once.result.stderr
    summary = demo_once.summary["summary"]
    by_detector = summary["by_detector"]
    missing = [key for key in AWS_DETECTORS if by_detector.get(key, {}).get("findings", 0) < 1]
    assert not missing, f"no findings for {missing}"
    assert all(Decimal(by_detector[key]["monthly_usd"]) > 0 for key in AWS_DETECTORS)
    # The rows keep each finding's whole figure; the total counts each dollar once.
    total = summary["total"]
    gross = sum(Decimal(row["monthly_usd"]) for row in by_detector.values())
    counted_elsewhere = sum(Decimal(row["counted_elsewhere_usd"]) for row in by_detector.values())
    assert Decimal(total["gross_monthly_usd"]) == gross
    assert Decimal(total["overlap_monthly_usd"]) == counted_elsewhere > 0
    assert Decimal(total["monthly_usd"]) == gross - counted_elsewhere
    assert Decimal(demo_once.summary["scan"]["monthly_waste_usd"]) == Decimal(total["monthly_usd"])
    assert "more than one finding prices" in demo_once.result.stderr, "the table says so"


def findings(summary: dict[str, Any], status: str) -> list[dict[str, Any]]:
    """Every finding with ``status``, page after page, through the API with the demo's key."""
    rows: list[dict[str, Any]] = []
    while True:
        response = httpx.get(
            f"{summary['api_url']}/api/v1/findings",
            params={"status": status, "limit": PAGE, "offset": len(rows)},
            headers=bearer(summary["api_key"]),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        rows += response.json()
        if len(response.json()) < PAGE:
            return rows


def test_serving_demo_findings_cover_every_waste_resource_and_no_keep_resource(
    demo_once: DemoOnce, tmp_path: Path
) -> None:
    assert demo_once.result.returncode == 0, demo_once.result.stderr
    [port] = free_ports(1)
    with in_background(
        "demo", "--json", "--port", str(port), env=env_with_home(demo_once.home), logs=tmp_path
    ) as demo:
        summary = json.loads(demo.first_line(timeout=DEMO_READY_TIMEOUT))
        assert summary["tenant_id"] == demo_once.summary["tenant_id"]
        assert summary["connection_id"] == demo_once.summary["connection_id"], "reused"
        assert summary["scan_status"] == "completed"
        demo.wait_until_ready(summary["api_url"])

        truth = demo_truth(summary["aws_endpoint_url"], summary["aws_regions"])
        open_findings = findings(summary, "open")
        # An imported recommendation for a resource a Valdrix finding flags is listed in it.
        reported = {
            (f["region"], detector, f["resource_id"])
            for f in open_findings
            for detector in (f["detector"], *(a["detector"] for a in f["also_reported_by"]))
        }

        assert len(truth) >= 250, "the simulator holds the seeded account"
        waste = {key for key, detectors in truth.items() if detectors}
        keep = {key for key, detectors in truth.items() if not detectors}
        flagged = {(region, resource_id) for region, _, resource_id in reported}
        assert waste <= flagged, f"waste not reported: {sorted(waste - flagged)}"
        assert not keep & flagged, f"kept resources reported: {sorted(keep & flagged)}"
        # Exactly the detectors each tag names, and nothing outside the seeded account.
        assert reported == expected_findings(truth)
        assert {detector for _, detector, _ in reported} == set(AWS_DETECTORS)
        # The demo's total is the sum of distinct costs, worked out from the findings listed.
        once = distinct_monthly_usd(open_findings)
        assert Decimal(summary["summary"]["total"]["monthly_usd"]) == once
        assert Decimal(summary["scan"]["monthly_waste_usd"]) == once
        # The gross sums every open finding's figure, the recommendations shown inside
        # Valdrix's findings (not listed on their own) included.
        shown_inside = {
            a["finding_id"]: Decimal(a["monthly_cost_usd"] or 0)
            for f in open_findings
            for a in f["also_reported_by"]
        }
        assert Decimal(summary["summary"]["total"]["gross_monthly_usd"]) == gross_monthly_usd(
            open_findings
        ) + sum(shown_inside.values())
        # The first run's simulator is gone: what it held and this one does not is resolved.
        assert findings(summary, "resolved"), "the first run's vanished resources are resolved"
        # Metrics answer the token the demo printed, and nobody else.
        metrics = f"{summary['api_url']}/metrics"
        assert httpx.get(metrics, headers=bearer(summary["api_key"])).status_code == 401
        scraped = httpx.get(metrics, headers=bearer(summary["metrics_token"]), timeout=30)
        assert scraped.status_code == 200
        assert f'valdrix_open_findings{{tenant_id="{summary["tenant_id"]}"}}' in scraped.text
