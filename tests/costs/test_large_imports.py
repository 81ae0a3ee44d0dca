"""An export read in many blocks: a key's charges spread over the file still make one record.

Real exports are not sorted by key (a daily export lists the day's resources, then the next
day's; hourly ones interleave), so the import sums each block, spools the partial sums to disk
and adds them up per key before storing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import aclosing
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.costs.focus_files import MAY, focus_rows, write
from tests.costs.helpers import import_file
from valdrix.costs.ingest.focus_streams import BATCH_BYTES
from valdrix.costs.ingest.reconcile import _summed_ahead

pytestmark = pytest.mark.asyncio(loop_scope="session")

RESOURCE_ID = 23  # column of ResourceId in ``focus_rows``
TAGS = 24


async def test_a_key_spread_over_many_blocks_is_one_record_with_the_exact_sum(
    make_tenant: Callable[..., Any], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    tenant = await make_tenant()
    day = {MAY: Decimal("0.0000000001")}
    first, last = focus_rows(MAY, day), focus_rows(MAY, {MAY: Decimal("1234.5678901234")})
    filler = []
    for n in range(4 * BATCH_BYTES // 450):
        [row] = focus_rows(MAY, {MAY + dt.timedelta(days=n % 31): Decimal("0.01")})
        row[RESOURCE_ID] = f"arn:aws:ec2:us-east-1:111122223333:instance/i-{n:08x}"
        row[TAGS] = f'{{"Name": "web-{n}", "team": "t{n % 7}", "cost-center": "{"x" * 200}"}}'
        filler.append(row)
    path = write(tmp_path / "blocks.csv", [*first, *filler, *last])
    assert path.stat().st_size > 3 * BATCH_BYTES, "the file must span several blocks"

    run = await import_file(client, tenant, path)

    assert run["records_written"] == len(filler) + 1
    response = await client.get(
        "/api/v1/costs",
        params={"start": str(MAY), "end": str(MAY + dt.timedelta(days=1)), "group_by": "resource"},
        headers=tenant.auth,
    )
    assert response.status_code == 200, response.text
    by_resource = {row["resource"]: row["billed_cost"] for row in response.json()["rows"]}
    assert by_resource["arn:aws:ec2:us-east-1:111122223333:instance/i-1"] == "1234.5678901235"


class _SlowSpool:
    """A spool whose second group takes a while to sum (in the import's thread)."""

    def __init__(self) -> None:
        self.reading = threading.Event()
        self.go_on = threading.Event()
        self.finished_reading = False

    def groups(self) -> Iterator[str]:
        yield "first"
        self.reading.set()
        self.go_on.wait(10)
        self.finished_reading = True
        yield "second"


async def test_a_cancelled_import_lets_the_thread_finish_with_the_spool_first() -> None:
    """Cancelled while the next group is summed, the import ends (and its spool is closed)
    only once the thread is done with the spool, and no error comes of it."""
    spool = _SlowSpool()

    async def store() -> None:
        async with aclosing(_summed_ahead(spool)) as groups:  # type: ignore[arg-type]
            async for _ in groups:
                await asyncio.sleep(0)

    task = asyncio.create_task(store())
    await asyncio.to_thread(spool.reading.wait, 10)
    task.cancel()
    asyncio.get_running_loop().call_later(0.2, spool.go_on.set)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert spool.finished_reading, "the import ended while its thread still read the spool"
