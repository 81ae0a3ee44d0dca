"""FOCUS files for tests: the real sample, variants of it, and small synthetic exports."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

# The FinOps Foundation's public sample (CC BY 4.0; see tests/data/focus/README.md).
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "focus" / "focus_sample_1000.csv"
HEADER = [
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingAccountId",
    "BillingAccountName", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
    "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "PricingQuantity", "PricingUnit", "ServiceName", "ServiceCategory", "ProviderName",
    "PublisherName", "InvoiceIssuerName", "SubAccountId", "RegionId", "ResourceId", "Tags",
]  # fmt: skip


def sample_path() -> Path:
    return SAMPLE


def sample_sums(column: str) -> dict[str, Decimal]:
    """The file's own sums of ``column`` by ProviderName."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    with sample_path().open(newline="") as handle:
        for row in csv.DictReader(handle):
            sums[row["ProviderName"]] += Decimal(row[column])
    return dict(sums)


def sample_rows() -> tuple[list[str], list[list[str]]]:
    with sample_path().open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def gzip_copy(source: Path, target: Path) -> Path:
    target.write_bytes(gzip.compress(source.read_bytes()))
    return target


def parquet_copy(source: Path, target: Path) -> Path:
    table = pacsv.read_csv(
        source,
        convert_options=pacsv.ConvertOptions(null_values=["NULL"], strings_can_be_null=True),
    )
    pq.write_table(table, target)
    return target


def synthetic(
    path: Path,
    costs: dict[tuple[dt.date, str], Decimal],
    *,
    invoice_id: str | None = None,
    period_end: dt.date | None = None,
    account: str = "111122223333",
    resources: dict[str, str] | None = None,
) -> Path:
    """A FOCUS export with one usage row per (day, service) and its billed cost; with an
    ``invoice_id`` (FOCUS 1.2's InvoiceId column) every row is final. ``resources`` names the
    resource of a service's rows."""
    days = sorted({day for day, _ in costs})
    start = days[0].replace(day=1)
    end = period_end or (start + dt.timedelta(days=32)).replace(day=1)
    header = [*HEADER, *(["InvoiceId"] if invoice_id else [])]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for (day, service), billed in sorted(costs.items()):
        writer.writerow(
            [
                str(billed), str(billed), str(billed), str(billed), account, "Acme", "USD",
                f"{start} 00:00:00", f"{end} 00:00:00",
                f"{day}T00:00:00Z", f"{day + dt.timedelta(days=1)}T00:00:00Z",
                "Usage", "NULL", f"{service} usage", "1", "Hours", service, "Compute", "AWS",
                "Amazon Web Services", "Amazon Web Services, Inc.", account, "us-east-1",
                (resources or {}).get(service)
                or f"arn:aws:ec2:us-east-1:{account}:instance/i-{service.lower()[:6]}",
                '{"team": "platform"}',
                *([invoice_id] if invoice_id else []),
            ]
        )  # fmt: skip
    path.write_text(buffer.getvalue())
    return path
