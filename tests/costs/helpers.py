"""Helpers for tests outside tests/costs that need a tenant with cost data."""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

from tests.costs.focus_files import synthetic
from valdrix.costs.sources.focus_files import import_focus_file
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime


async def give_tenant_cost_data(runtime: Runtime, tenant_id: uuid.UUID) -> None:
    """A preliminary and then a final import of one service-day, 10 % apart: fills sources,
    runs, records, their roll-up, readings, an adjustment and the data version."""
    day = utcnow().date() - dt.timedelta(days=1)
    with tempfile.TemporaryDirectory() as directory:
        for name, billed, invoice in (("a.csv", "100", None), ("b.csv", "110", "INV-1")):
            path = synthetic(
                Path(directory) / name, {(day, "EC2"): Decimal(billed)}, invoice_id=invoice
            )
            await import_focus_file(runtime, tenant_id, path, actor="test")
