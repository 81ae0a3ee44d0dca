"""FOCUS files for tests: the real sample, variants of it, and small synthetic exports."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import random
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
APRIL, MAY = dt.date(2026, 4, 1), dt.date(2026, 5, 1)


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


def focus_rows(
    period: dt.date,
    days: dict[dt.date, Decimal],
    *,
    account: str = "111122223333",
    charge_class: str = "NULL",
) -> list[list[str]]:
    period_end = (period + dt.timedelta(days=32)).replace(day=1)
    return [
        [
            str(cost), str(cost), str(cost), str(cost), account, "Acme", "USD",
            f"{period} 00:00:00", f"{period_end} 00:00:00",
            f"{day}T00:00:00Z", f"{day + dt.timedelta(days=1)}T00:00:00Z",
            "Usage", charge_class, "EC2 usage", "1", "Hours", "EC2", "Compute", "AWS",
            "Amazon Web Services", "Amazon Web Services, Inc.", account, "us-east-1",
            f"arn:aws:ec2:us-east-1:{account}:instance/i-1", '{"team": "platform"}',
        ]
        for day, cost in days.items()
    ]  # fmt: skip


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def random_bytes(size: int) -> bytes:
    return random.Random(7).randbytes(size)  # noqa: S311  (reproducible noise, not a secret)


def damaged(kind: str, directory: Path) -> Path:
    """A file that cannot be read as FOCUS data, of the ``kind`` a user might upload."""
    sample = sample_path().read_bytes()
    contents = {
        "empty": b"",
        "corrupt-gzip": b"\x1f\x8b\x08\x00" + random_bytes(4096),
        "truncated-gzip": gzip.compress(sample)[:20_000],
        "corrupt-parquet": b"PAR1" + random_bytes(4096) + b"PAR1",
        "truncated-parquet": parquet_copy(sample_path(), directory / "whole.parquet").read_bytes()[
            :-100
        ],
        "random-binary": random_bytes(65_536),
    }[kind]
    path = directory / f"{kind}.{'parquet' if 'parquet' in kind else 'csv'}"
    path.write_bytes(contents)
    return path
