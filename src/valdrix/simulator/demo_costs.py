"""The demo tenant's bill: 45 days of FOCUS data for the simulated account, imported twice as
a provider would deliver it, the second delivery restating one day by more than 2 %, so the
dashboard has preliminary days, final days and a restatement to show from the first run."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

from valdrix.costs.sources.focus_files import import_focus_file
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.simulator.demo_account import DEMO_ACCOUNT_ID

DEMO_COST_DAYS = 45
DEMO_COST_SOURCE = "demo-focus-export"
# The second delivery moves this many days ago's EC2 figure by this factor (> 2 %).
RESTATED_DAYS_AGO = 9
RESTATEMENT = Decimal("1.08")
# Daily list of what the account runs, in USD: a plausible small estate.
DAILY_SERVICES = {
    "Amazon Elastic Compute Cloud": ("Compute", "us-east-1", Decimal("182.40")),
    "Amazon Relational Database Service": ("Databases", "us-east-1", Decimal("96.15")),
    "Amazon Simple Storage Service": ("Storage", "us-east-1", Decimal("41.70")),
    "Amazon Elastic Kubernetes Service": ("Compute", "eu-west-1", Decimal("28.80")),
    "AWS Lambda": ("Compute", "eu-west-1", Decimal("6.35")),
}
HEADER = [
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingAccountId",
    "BillingAccountName", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
    "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "PricingQuantity", "PricingUnit", "ServiceName", "ServiceCategory", "ProviderName",
    "PublisherName", "InvoiceIssuerName", "SubAccountId", "RegionId", "Tags",
]  # fmt: skip


def demo_cost_days(today: dt.date) -> list[dt.date]:
    return [today - dt.timedelta(days=back) for back in range(DEMO_COST_DAYS, 0, -1)]


def _billed(service_base: Decimal, day: dt.date) -> Decimal:
    """Weekdays cost more than weekends; a slow upward drift over the period."""
    weekend = Decimal("0.82") if day.weekday() >= 5 else Decimal("1")
    drift = Decimal(1) + Decimal(day.toordinal() % 45) / Decimal(900)
    return (service_base * weekend * drift).quantize(Decimal("0.01"))


def write_demo_focus(path: Path, today: dt.date, *, restated: bool) -> Path:
    restated_day = today - dt.timedelta(days=RESTATED_DAYS_AGO)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for day in demo_cost_days(today):
            period_start = day.replace(day=1)
            period_end = (period_start + dt.timedelta(days=32)).replace(day=1)
            for service, (category, region, base) in DAILY_SERVICES.items():
                billed = _billed(base, day)
                if restated and day == restated_day and category == "Compute":
                    billed = (billed * RESTATEMENT).quantize(Decimal("0.01"))
                writer.writerow(
                    [
                        billed, billed, billed, billed, DEMO_ACCOUNT_ID, "Acme (demo)", "USD",
                        f"{period_start}T00:00:00Z", f"{period_end}T00:00:00Z",
                        f"{day}T00:00:00Z", f"{day + dt.timedelta(days=1)}T00:00:00Z",
                        "Usage", "", f"{service} usage", "24", "Hours", service, category,
                        "AWS", "Amazon Web Services", "Amazon Web Services, Inc.",
                        DEMO_ACCOUNT_ID, region, '{"team": "platform"}',
                    ]
                )  # fmt: skip
    return path


async def import_demo_costs(runtime: Runtime, tenant_id: uuid.UUID) -> None:
    """Both deliveries, in order: the first as estimated, the second restating one day."""
    today = utcnow().date()
    with tempfile.TemporaryDirectory(prefix="valdrix-demo-costs-") as directory:
        for name, restated in (("first.csv", False), ("restated.csv", True)):
            path = write_demo_focus(Path(directory) / name, today, restated=restated)
            await import_focus_file(runtime, tenant_id, path, actor="demo", source=DEMO_COST_SOURCE)
