"""Reading costs past one page, every reading of a key, and the CLI's show and export.

- Rows come a page at a time, largest first; the pages of one listing add up to its totals,
  and a page asked for after an import changed the data is refused rather than mixed in.
- Every reading of a day's key is readable, the small restatements (under 2 %) too.
"""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TenantFixture
from tests.costs.focus_files import MAY, focus_rows, write
from tests.costs.helpers import import_file

pytestmark = pytest.mark.asyncio(loop_scope="session")

RESOURCE_ID = 23  # column of ResourceId in ``focus_rows``
MAY_RANGE = {"start": "2026-05-01", "end": "2026-06-01"}


def resources_file(path: Path, count: int, *, cost: str = "1.00") -> Path:
    """May 1 charges of ``count`` resources, resource n costing n x ``cost``."""
    rows = []
    for n in range(1, count + 1):
        [row] = focus_rows(MAY, {MAY: Decimal(cost) * n})
        row[RESOURCE_ID] = f"i-{n:04d}"
        rows.append(row)
    return write(path, rows)


async def page(client: httpx.AsyncClient, tenant: TenantFixture, **params: Any) -> httpx.Response:
    return await client.get(
        "/api/v1/costs",
        params={**MAY_RANGE, "group_by": "resource", **params},
        headers=tenant.auth,
    )


async def test_pages_of_a_listing_follow_each_other_and_add_up_to_its_total(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    await import_file(client, tenant, resources_file(tmp_path / "may.csv", 12))

    seen: list[str] = []
    response = await page(client, tenant, limit=5)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(row["resource"] for row in body["rows"])
        if body["next_cursor"] is None:
            assert not body["truncated"] and "Link" not in response.headers
            break
        assert body["truncated"] and len(body["rows"]) == 5
        # The Link header names the same next page, ready to follow.
        assert response.headers["Link"].endswith('>; rel="next"')
        assert f"cursor={body['next_cursor']}" in response.headers["Link"]
        response = await page(client, tenant, limit=5, cursor=body["next_cursor"])

    assert seen == [f"i-{n:04d}" for n in range(12, 0, -1)], "largest first, none twice"
    assert Decimal(body["totals"][0]["billed_cost"]) == sum(Decimal(n) for n in range(1, 13))


async def test_a_page_after_an_import_changed_the_data_is_refused_not_mixed_in(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    await import_file(client, tenant, resources_file(tmp_path / "may.csv", 8))
    first = (await page(client, tenant, limit=3)).json()
    await import_file(client, tenant, resources_file(tmp_path / "may-restated.csv", 8, cost="2.00"))

    later = await page(client, tenant, limit=3, cursor=first["next_cursor"])

    assert later.status_code == 409, later.text
    assert "read the listing again from its first page" in later.json()["detail"]


@pytest.mark.parametrize(
    ("changed", "reason"),
    [({"limit": 4}, "another query"), ({"group_by": "service"}, "another query"),
     ({"cursor": "bm90IG91cnM"}, "not one this API gave")],
)  # fmt: skip
async def test_a_cursor_only_continues_the_query_it_came_from(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    tmp_path: Path,
    changed: dict[str, Any],
    reason: str,
) -> None:
    tenant = await make_tenant()
    await import_file(client, tenant, resources_file(tmp_path / "may.csv", 8))
    first = (await page(client, tenant, limit=3)).json()

    response = await page(client, tenant, **{"limit": 3, "cursor": first["next_cursor"], **changed})

    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]


async def test_every_reading_of_a_key_is_listed_with_its_change_small_ones_too(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    await import_file(
        client, tenant, write(tmp_path / "a.csv", focus_rows(MAY, {MAY: Decimal(100)}))
    )
    restated = await import_file(
        client, tenant, write(tmp_path / "b.csv", focus_rows(MAY, {MAY: Decimal("101.50")}))
    )

    response = await client.get(
        "/api/v1/costs/readings", params={"day": "2026-05-01"}, headers=tenant.auth
    )

    assert response.status_code == 200, response.text
    first, second = response.json()
    assert (Decimal(first["billed_cost"]), first["previous_billed_cost"]) == (100, None)
    assert Decimal(second["billed_cost"]) == Decimal("101.5")
    assert Decimal(second["previous_billed_cost"]) == 100
    assert (Decimal(second["change_percent"]), second["run_id"]) == (Decimal("1.5"), restated["id"])
    assert restated["adjustments"] == 0, "1.5 % is under the threshold of an adjustment"
    other_day = await client.get(
        "/api/v1/costs/readings",
        params={"day": "2026-05-02", "service": "EC2"},
        headers=tenant.auth,
    )
    assert other_day.json() == []


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "valdrix", "costs", *args],
        env=env,
        capture_output=True,
        text=True,
    )


async def test_the_cli_shows_costs_and_exports_every_row_as_csv(
    make_tenant: Callable[..., Any],
    client: httpx.AsyncClient,
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    tenant = await make_tenant()
    await import_file(client, tenant, resources_file(tmp_path / "may.csv", 12))
    asked = ["--tenant", str(tenant.tenant_id), "--start", "2026-05-01", "--end", "2026-06-01"]
    target = tmp_path / "costs.csv"

    shown, exported, bad = await asyncio.gather(
        asyncio.to_thread(
            cli, worker_env, "show", *asked, "--group-by", "resource", "--limit", "3"
        ),
        asyncio.to_thread(
            cli, worker_env, "export", *asked, "--group-by", "resource", "-o", str(target)
        ),
        asyncio.to_thread(cli, worker_env, "show", *asked, "--group-by", "colour"),
    )

    assert shown.returncode == 0, shown.stderr
    assert "i-0012" in shown.stdout and "i-0009" not in shown.stdout
    assert "78" in shown.stdout, "the total of all 12 resources"
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [r["resource"] for r in rows] == [f"i-{n:04d}" for n in range(12, 0, -1)]
    assert not (tmp_path / "costs.csv.partial").exists()
    assert bad.returncode == 1 and "group_by 'colour' is not one of" in bad.stderr
