"""The shape every source hands to the reconciler: daily-grain cost records in Arrow batches.

A source (a FOCUS file, Cost Explorer) sums what it read per day and key (account, service,
region, resource, charge category, tags ...), exactly (decimal), and says which records are
preliminary. It may hand over several partial sums of one key (one per block it read): the
spool adds them up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

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


class RecordSpool:
    """A source's records, written as they are summed and read back once, one record per key.

    A file's records can outnumber what memory should hold (one per resource, SKU and day), so
    the partial sums of each block go to anonymous temporary files in Arrow's stream format,
    one file per group of days. Records of different days never share a key, so reading a
    group back and summing it in memory gives that group's final records: memory holds a block
    while reading, and the records of about one day while storing.
    """

    DAY_GROUPS = 32

    def __init__(self) -> None:
        self._files: dict[int, tuple[IO[bytes], pa.ipc.RecordBatchStreamWriter]] = {}
        self._fingerprint: str | None = None
        self._finished = False

    @classmethod
    def of(cls, table: pa.Table) -> RecordSpool:
        spool = cls()
        spool.append(table)
        return spool

    def append(self, records: pa.Table) -> None:
        """Add partial sums (``RECORD_SCHEMA`` columns; a key may come again later)."""
        assert not self._finished, "the spool was read"
        records = records.select(RECORD_SCHEMA.names).cast(RECORD_SCHEMA)
        group = pc.bit_wise_and(pc.cast(records["day"], pa.int32()), self.DAY_GROUPS - 1)
        values = pc.unique(group).to_pylist()
        if len(values) == 1:  # a block of one day, or of days of one group
            self._writer(values[0]).write_table(records)
            return
        for value in values:
            self._writer(value).write_table(records.filter(pc.equal(group, value)))

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the partial sums as written: the same records read from the same input."""
        self._finish()
        assert self._fingerprint is not None
        return self._fingerprint

    def groups(self) -> Iterator[pa.Table]:
        """One record per key (the sums of its partial sums), a group of days at a time: no
        key is in two groups."""
        self._finish()
        for group in sorted(self._files):
            handle, _ = self._files[group]
            handle.seek(0)
            partials = pa.ipc.open_stream(handle).read_all()
            summed = partials.group_by(KEY_NAMES, use_threads=False).aggregate(
                [(name, "sum") for name in [*SUM_NAMES, "source_rows"]]
            )
            names = [name.removesuffix("_sum") for name in summed.column_names]
            yield summed.rename_columns(names).select(RECORD_SCHEMA.names)

    def close(self) -> None:
        for handle, _ in self._files.values():
            handle.close()

    def _writer(self, group: int) -> pa.ipc.RecordBatchStreamWriter:
        if group not in self._files:
            handle = tempfile.TemporaryFile()  # noqa: SIM115  (closed by ``close``)
            self._files[group] = (handle, pa.ipc.new_stream(handle, RECORD_SCHEMA))
        return self._files[group][1]

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        digest = hashlib.sha256()
        for group in sorted(self._files):
            handle, writer = self._files[group]
            writer.close()
            handle.seek(0)
            digest.update(group.to_bytes(1, "big"))
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        self._fingerprint = digest.hexdigest()


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
    records: RecordSpool
    rows_read: int
    details: dict[str, Any] = field(default_factory=dict)
    billing_periods: list[dt.date] | None = None
    # Other sources whose data of the batch's billing periods it replaces as well: an earlier
    # version of the same delivery, stored under another key (an S3 folder whose accounts
    # changed, or pulled before deliveries were keyed by their accounts).
    replaces_sources: list[str] = field(default_factory=list)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def resource_keys(resource_ids: pa.Array) -> pa.Array:
    """Each resource's own id inside its provider path, for matching findings to the bill:
    ``vol-1`` from ``arn:aws:ec2:us-east-1:1:volume/vol-1``, ``queue`` from
    ``arn:aws:sqs:...:queue``, the last segment of an Azure resource id (null when none)."""
    tail = pc.replace_substring_regex(
        pc.utf8_rtrim(resource_ids, characters="/"), r"(?s)^.*[/:]", ""
    )
    key = pc.utf8_slice_codeunits(tail, 0, 256)
    return pc.if_else(pc.equal(key, ""), pa.scalar(None, pa.string()), key)
