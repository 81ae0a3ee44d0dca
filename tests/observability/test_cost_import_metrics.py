"""Cost imports reach /metrics whichever process ran them: a `valdrix costs import` from the
command line (a process nobody scrapes) shows on the API's exposition, restatements included."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.costs.focus_files import synthetic
from tests.observability.helpers import fresh_scrape, value
from valdrix.kit.orm import utcnow

pytestmark = pytest.mark.asyncio(loop_scope="session")


def valdrix(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "valdrix", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_cli_import_and_its_restatement_show_on_the_api_metrics(
    client: httpx.AsyncClient,
    make_tenant: Callable[..., Any],
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    tenant = str((await make_tenant()).tenant_id)
    day = utcnow().date() - dt.timedelta(days=1)
    focus = {"source_kind": "focus_file"}
    committed = {**focus, "outcome": "committed"}
    before = await fresh_scrape(client)

    # A preliminary reading, then the invoice 10 % higher: one restatement over 2 %.
    for name, billed, invoice in (("prelim.csv", "100", None), ("final.csv", "110", "INV-9")):
        path = synthetic(tmp_path / name, {(day, "EC2"): Decimal(billed)}, invoice_id=invoice)
        valdrix(worker_env, "costs", "import", str(path), "--tenant", tenant, "--json")

    after = await fresh_scrape(client)
    moved = {
        name: value(after, name, **labels) - value(before, name, **labels)
        for name, labels in (
            ("valdrix_cost_runs_total", committed),
            ("valdrix_cost_rows_ingested_total", focus),
            ("valdrix_cost_restatements_total", focus),
        )
    }
    assert moved == {
        "valdrix_cost_runs_total": 2,
        "valdrix_cost_rows_ingested_total": 2,
        "valdrix_cost_restatements_total": 1,
    }
