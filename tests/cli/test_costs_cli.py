"""``valdrix costs import`` as a user runs it: a subprocess on the test database."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from tests.costs.focus_files import sample_path, sample_rows, sample_sums, write_csv

CENT = Decimal("0.01")


def test_the_cli_imports_the_sample_and_names_the_row_of_a_bad_cell(
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "valdrix", "tenants", "create", "CLI costs", "--tier", "growth",
         "--admin-email", "costs-cli@example.com", "--json"],
        env=worker_env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    tenant = json.loads(created.stdout.splitlines()[-1])["tenant_id"]
    imported = subprocess.run(
        [sys.executable, "-m", "valdrix", "costs", "import", str(sample_path()),
         "--tenant", tenant, "--json"],
        env=worker_env, capture_output=True, text=True,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    run = json.loads(imported.stdout.splitlines()[-1])
    assert run["status"] == "committed" and run["rows_read"] == 1000
    billed = Decimal(run["totals"]["USD"]["billed_cost"])
    assert billed.quantize(CENT) == sum(sample_sums("BilledCost").values()).quantize(CENT)

    header, rows = sample_rows()
    rows[6][header.index("BilledCost")] = "n/a"
    damaged = write_csv(tmp_path / "damaged.csv", header, rows)
    rejected = subprocess.run(
        [sys.executable, "-m", "valdrix", "costs", "import", str(damaged), "--tenant", tenant],
        env=worker_env, capture_output=True, text=True,
    )  # fmt: skip
    assert rejected.returncode == 1
    assert "row 7: BilledCost: not a number" in rejected.stderr
    assert "nothing was stored" in rejected.stderr


def test_the_cli_refuses_an_empty_file_with_the_reason_the_api_gives(
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "valdrix", "tenants", "create", "CLI empty", "--tier", "growth",
         "--admin-email", "costs-cli-empty@example.com", "--json"],
        env=worker_env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    tenant = json.loads(created.stdout.splitlines()[-1])["tenant_id"]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")

    rejected = subprocess.run(
        [sys.executable, "-m", "valdrix", "costs", "import", str(empty), "--tenant", tenant,
         "--json"],
        env=worker_env, capture_output=True, text=True,
    )  # fmt: skip

    assert rejected.returncode == 1
    assert "the file is empty" in rejected.stderr
    assert "nothing was stored" in rejected.stderr
    answer = json.loads(rejected.stdout.splitlines()[-1])
    assert answer["status"] == "rejected" and answer["errors"][0]["reason"] == "the file is empty"
