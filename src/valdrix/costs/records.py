"""The shape every source hands to the reconciler: daily-grain cost records as an Arrow table.

A source (a FOCUS file, Cost Explorer) aggregates what it read to one record per day and key
(account, service, region, resource, charge category, tags ...), with costs summed exactly
(decimal), and says which records are preliminary.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

DECIMAL = pa.decimal128(38, 18)

KEY_FIELDS = [
    pa.field("day", pa.date32(), nullable=False),
    pa.field("currency", pa.string(), nullable=False),
    pa.field("provider", pa.string(), nullable=False),
    pa.field("billing_account_id", pa.string(), nullable=False),
    pa.field("sub_account_id", pa.string()),
    pa.field("service", pa.string(), nullable=False),
    pa.field("service_category", pa.string()),
    pa.field("region", pa.string()),
    pa.field("resource_id", pa.string()),
    pa.field("resource_type", pa.string()),
    pa.field("charge_category", pa.string(), nullable=False),
    pa.field("charge_class", pa.string()),
    pa.field("pricing_unit", pa.string()),
    pa.field("tags", pa.string()),  # JSON object text, or null
    pa.field("billing_period_start", pa.date32(), nullable=False),
    pa.field("billing_period_end", pa.date32()),  # FOCUS: when preliminary data turns final
    pa.field("preliminary", pa.bool_(), nullable=False),
]
SUM_FIELDS = [
    pa.field("billed_cost", DECIMAL, nullable=False),
    pa.field("effective_cost", DECIMAL, nullable=False),
    pa.field("list_cost", DECIMAL),
    pa.field("contracted_cost", DECIMAL),
    pa.field("pricing_quantity", DECIMAL),
    pa.field("consumed_quantity", DECIMAL),
]
RECORD_SCHEMA = pa.schema([*KEY_FIELDS, *SUM_FIELDS, pa.field("source_rows", pa.int64())])
KEY_NAMES = [f.name for f in KEY_FIELDS]
SUM_NAMES = [f.name for f in SUM_FIELDS]


@dataclass
class SourceBatch:
    """Everything a source read, ready to reconcile: records and what they replace.

    A delivery of billing data (FOCUS) replaces the ``billing_periods`` it is for, whatever
    days its rows fall on; a source of day totals (Cost Explorer) replaces its days. The window
    covers every day of the records either way.
    """

    source_kind: str
    source_key: str
    window_start: dt.date
    window_end: dt.date  # exclusive
    records: pa.Table  # RECORD_SCHEMA
    rows_read: int
    details: dict[str, Any] = field(default_factory=dict)
    billing_periods: list[dt.date] | None = None


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def resource_key(resource_id: str | None) -> str | None:
    """The resource's own id inside a provider path: ``vol-1`` from
    ``arn:aws:ec2:us-east-1:1:volume/vol-1``, ``queue`` from ``arn:aws:sqs:...:queue``, the last
    segment of an Azure resource id."""
    if not resource_id:
        return None
    tail = resource_id.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return tail[:256] or None
