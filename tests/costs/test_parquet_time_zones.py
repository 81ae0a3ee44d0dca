"""Parquet exports whose timestamps carry a time zone: the day of a charge is its UTC day,
whatever zone the writer chose to display it in."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from tests.conftest import TenantFixture
from tests.costs.focus_files import sample_path
from tests.costs.helpers import upload

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Wide enough to hold a day shifted either way out of September 2024.
AROUND_SEPTEMBER = {"start": "2024-08-25", "end": "2024-10-08", "group_by": "day"}


def zoned_parquet(target: Path, zone: str) -> Path:
    """The sample as Parquet, every timestamp column the same instants shown in ``zone``."""
    table = pacsv.read_csv(
        sample_path(),
        convert_options=pacsv.ConvertOptions(null_values=["NULL"], strings_can_be_null=True),
    )
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            # The sample's timestamps are written without a zone: UTC, as FOCUS says.
            utc = pc.assume_timezone(table.column(index), "UTC")
            table = table.set_column(index, field.name, utc.cast(pa.timestamp("s", tz=zone)))
    pq.write_table(table, target)
    return target


async def daily_billed(client: httpx.AsyncClient, tenant: TenantFixture) -> dict[str, Decimal]:
    response = await client.get("/api/v1/costs", params=AROUND_SEPTEMBER, headers=tenant.auth)
    assert response.status_code == 200, response.text
    return {
        f"{row['day']} {row['currency']}": Decimal(row["billed_cost"])
        for row in response.json()["rows"]
    }


async def test_a_parquet_export_in_new_york_time_gives_the_same_days_as_in_utc(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    days: dict[str, dict[str, Decimal]] = {}
    for name, path in (
        ("csv", sample_path()),
        ("utc", zoned_parquet(tmp_path / "utc.parquet", "UTC")),
        ("new_york", zoned_parquet(tmp_path / "new_york.parquet", "America/New_York")),
    ):
        tenant = await make_tenant()
        response = await upload(client, tenant, path)
        assert response.status_code == 201, response.text
        days[name] = await daily_billed(client, tenant)

    assert len(days["csv"]) == 30  # every day of September, nothing outside it
    assert days["utc"] == days["csv"]
    assert days["new_york"] == days["utc"]
