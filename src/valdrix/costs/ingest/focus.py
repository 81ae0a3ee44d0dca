"""Reading FOCUS exports (1.0 to 1.2; CSV, gzip CSV or Parquet), streamed in batches.

Tolerant of what real exports do: literal ``NULL`` for null, timestamps with or without ``T`` and
``Z``, tags as JSON text (Azure's without the braces), ``x_`` and other custom columns (their
names are noted on the run, their values not stored). Strict about what the numbers depend on:
the mandatory columns must be there, costs must be numbers, charge periods must be timestamps,
every row must name its billing currency (an ISO 4217 code), charge categories come from the
specification, and every value must fit where it is stored (``focus_values``).
Any invalid row rejects the whole file, with the first errors (row, column, reason); nothing is
stored. So does a file that cannot be read at all, or that holds more than one import may
(``focus_streams``).

A file may be billed in several currencies (consolidated billing): records are kept per
currency, and amounts are never summed across currencies.

Rows are summed exactly (decimal) per day and key a block at a time, and the sums go to a spool
on disk (``RecordSpool``), so memory holds a block: neither the file nor its daily records,
which can be as many as its rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from valdrix.costs.ingest.focus_streams import (
    DecompressedBudget,
    ImportLimits,
    NotImportable,
    open_focus_file,
)
from valdrix.costs.ingest.focus_values import (
    CURRENCY,
    CURRENCY_REASON,
    DAY_REASON,
    MAX_SPAN_DAYS,
    TEXT_COLUMNS,
    day_magnitudes,
    digits_before_point,
    implausible_days,
    overflowing_days,
    tags_as_json,
    to_decimal,
    too_large,
    unstorable_text,
)
from valdrix.costs.ingest.other_exports import not_focus_reason
from valdrix.costs.ingest.records import DECIMAL, KEY_NAMES, SUM_NAMES, RecordSpool, SourceBatch
from valdrix.costs.models import SOURCE_KEY_CHARS

MANDATORY = (
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingAccountId",
    "BillingAccountName", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
    "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "PricingQuantity", "PricingUnit", "ServiceName", "ServiceCategory", "ProviderName",
    "PublisherName", "InvoiceIssuerName",
)  # fmt: skip
OPTIONAL = (
    "SubAccountId", "RegionId", "RegionName", "ResourceId", "ResourceType", "Tags",
    "ConsumedQuantity", "InvoiceId",
)  # fmt: skip
KNOWN = (*MANDATORY, *OPTIONAL)
# Totals depend on these: a row without them is refused. Real exports leave the others null at
# times (Oracle's ContractedCost), which costs nothing but a null.
REQUIRED_NUMBERS = ("BilledCost", "EffectiveCost")
OPTIONAL_NUMBERS = ("ListCost", "ContractedCost", "PricingQuantity", "ConsumedQuantity")
TIMESTAMPS = ("ChargePeriodStart", "BillingPeriodStart", "BillingPeriodEnd")
CHARGE_CATEGORIES = {c.lower(): c for c in ("Usage", "Purchase", "Tax", "Credit", "Adjustment")}
# An exponent of at most 18 digits, the most a Python decimal holds: past that a value is not
# a number anything here can read (below, a large one is refused as too large to store).
NUMBER = r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d{1,18})?\s*$"
# ISO 8601 in UTC, with or without T, seconds, fraction or Z (offsets other than zero refused).
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]00:?00|UTC)?$"
MAX_ERRORS = 20
# Distinct tag values parsed once each; a file where every resource has its own tags would make
# the cache as large as the file's resources, so it starts over past this many.
MAX_CACHED_TAGS = 50_000
# A block is summed per key before it is spooled while that leaves fewer than this share of
# its rows (see ``_sum_by_key``).
SUMMING_PAYS_BELOW = 0.75
RESUM_EVERY = 16


class FocusRejected(Exception):
    """The file cannot be imported; ``errors`` holds the first problems found."""

    def __init__(self, errors: list[dict[str, Any]], rows_read: int, rows_rejected: int) -> None:
        first = errors[0] if errors else {}
        where = [f"{name} {first[name]}" for name in ("row", "column") if first.get(name)]
        prefix = (f"{first['file']}: " if first.get("file") else "") + (
            ", ".join(where) + ": " if where else ""
        )
        super().__init__(prefix + first.get("reason", "invalid file"))
        self.errors = errors
        self.rows_read = rows_read
        self.rows_rejected = rows_rejected


@dataclass
class _Reading:
    """What the stream has shown so far."""

    now: dt.datetime
    close_days: int
    rows: int = 0
    rejected_rows: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    currencies: set[str] = field(default_factory=set)
    spool: RecordSpool = field(default_factory=RecordSpool)
    day_sums: list[pa.Table] = field(default_factory=list)  # per block: see ``_check_sums``
    periods: set[dt.date] = field(default_factory=set)
    tags: dict[str, str | None] = field(default_factory=dict)
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    accounts: set[str] = field(default_factory=set)
    file: str | None = None  # named in errors when a delivery has several files
    blocks: int = 0
    summing: bool = True  # see ``_sum_by_key``

    def error(self, row: int | None, column: str | None, reason: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            where = {"file": self.file} if self.file else {}
            self.errors.append({**where, "row": row, "column": column, "reason": reason})


def read_focus_files(
    files: Sequence[tuple[Path, str]],
    *,
    now: dt.datetime,
    close_days: int,
    limits: ImportLimits,
    source_key: str | None = None,
    source_prefix: str = "focus",
) -> SourceBatch:
    """Read the parts of one export delivery (``(path, name)`` pairs) as one batch: a provider
    writes a billing period as several files, and only all of them together are the period.
    ``limits`` bound the whole delivery. Its source is ``source_key``, or else named by
    ``source_prefix`` and the billing accounts read (``accounts_source_key``)."""
    reading = _Reading(now=now, close_days=close_days)
    try:
        return _read_delivery(reading, files, limits, source_key, source_prefix)
    except BaseException:
        reading.spool.close()
        raise


def _read_delivery(
    reading: _Reading,
    files: Sequence[tuple[Path, str]],
    limits: ImportLimits,
    source_key: str | None,
    source_prefix: str,
) -> SourceBatch:
    budget = DecompressedBudget(limits.max_decompressed_bytes)
    formats: set[str] = set()
    columns: set[str] = set()
    for path, name in files:
        reading.file = name if len(files) > 1 else None
        try:
            with closing(open_focus_file(path, name, known=KNOWN, budget=budget)) as stream:
                formats.add(stream.format)
                _check_columns(stream.columns, reading.file, reading.rows)
                columns.update(stream.columns)
                offset = 0
                for batch in stream.batches:
                    limits.check_rows(reading.rows + batch.num_rows)
                    _read_batch(reading, batch, offset)
                    offset += batch.num_rows
                    reading.rows += batch.num_rows
        except NotImportable as refused:
            reading.error(refused.row, refused.column, refused.reason)
            rejected = reading.rejected_rows + (refused.row is not None)
            raise FocusRejected(reading.errors, reading.rows, rejected) from refused
    if reading.errors:
        raise FocusRejected(reading.errors, reading.rows, max(reading.rejected_rows, 1))
    if not reading.rows:
        raise FocusRejected([{"row": None, "column": None, "reason": "the file has no rows"}], 0, 0)
    _check_span(reading)
    _check_sums(reading)
    assert reading.first_day is not None and reading.last_day is not None
    periods = sorted(reading.periods)
    return SourceBatch(
        source_kind="focus_file",
        source_key=source_key or accounts_source_key(source_prefix, reading.accounts),
        window_start=reading.first_day,
        window_end=reading.last_day,
        records=reading.spool,
        rows_read=reading.rows,
        details={
            "format": ",".join(sorted(formats)),
            **file_details(files),
            "currencies": sorted(reading.currencies),
            # The one currency of a single-currency import, as runs have always said.
            "currency": next(iter(reading.currencies)) if len(reading.currencies) == 1 else None,
            "columns_kept_aside": sorted(c for c in columns if c not in KNOWN),
            "billing_periods": [period.isoformat() for period in periods],
        },
        billing_periods=periods,
    )


def accounts_source_key(prefix: str, accounts: Iterable[str]) -> str:
    """``<prefix>:<the billing accounts, sorted>``: deliveries of the same accounts replace
    each other's billing periods; others' are other sources (see ``reconcile`` for the same
    charges arriving through two). Past what a key holds, the accounts' SHA-256 stands in for
    them, so two sets never share a key by sharing a beginning."""
    listed = ",".join(sorted(accounts))
    if len(prefix) + 1 + len(listed) > SOURCE_KEY_CHARS:
        listed = "sha256-" + hashlib.sha256(listed.encode()).hexdigest()
    return f"{prefix}:{listed}"


def file_details(files: Sequence[tuple[Path, str]]) -> dict[str, Any]:
    """How a run names the files it read (``(path, name)`` pairs)."""
    names = [name for _, name in files]
    return {
        "file_name": names[0] if len(names) == 1 else f"{len(names)} files",
        "files": names[:100],
    }


def _check_columns(columns: list[str], file: str | None, rows_read: int) -> None:
    missing = [name for name in MANDATORY if name not in columns]
    if not missing:
        return
    where = {"file": file} if file else {}
    not_focus = not_focus_reason(columns, MANDATORY)
    if not_focus is None:
        errors = [
            {"row": None, "column": name, "reason": "mandatory FOCUS column is missing", **where}
            for name in missing
        ]
    else:  # what it is, then the columns in one line rather than one error for each
        errors = [
            {"row": None, "column": None, "reason": not_focus, **where},
            {"row": None, "column": None, "reason": "missing: " + ", ".join(missing), **where},
        ]
    raise FocusRejected(errors, rows_read, 0)


def _check_span(reading: _Reading) -> None:
    """One import's days fit the months the database creates for it at once."""
    assert reading.first_day is not None and reading.last_day is not None
    if (reading.last_day - reading.first_day).days > MAX_SPAN_DAYS:
        reason = (
            f"the charge and billing days run from {reading.first_day} to {reading.last_day}:"
            f" one import may span at most {MAX_SPAN_DAYS} days; split the export"
        )
        raise FocusRejected([{"row": None, "column": None, "reason": reason}], reading.rows, 0)


def _check_sums(reading: _Reading) -> None:
    """Rows that each fit can still add up past what a stored sum holds."""
    errors = [
        {
            "row": None,
            "column": column,
            "reason": f"the rows of {day} add up to more than the {digits} digits before the"
            " decimal point that are stored",
        }
        for column, day, digits in overflowing_days(pa.concat_tables(reading.day_sums))
    ]
    if errors:
        raise FocusRejected(errors, reading.rows, 0)


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    index = batch.schema.get_field_index(name)
    if index < 0:
        return pa.nulls(batch.num_rows, pa.string())
    return batch.column(index)


def _flag(
    reading: _Reading,
    bad: pa.Array,
    offset: int,
    column: str,
    reason: str,
    shown: pa.Array | None = None,
) -> None:
    """Record the rows where ``bad`` is true (data rows counted from 1 after the header), with
    the row's value in ``shown`` before the reason if given ("1e30 is too large ...")."""
    positions = pc.indices_nonzero(pc.fill_null(bad, False))
    if len(positions):
        reading.rejected_rows += len(positions)
        for position in positions.to_pylist()[: MAX_ERRORS - len(reading.errors)]:
            value = "" if shown is None else f"{shown[position].as_py()} "
            reading.error(offset + position + 1, column, value + reason)


def _read_batch(reading: _Reading, batch: pa.RecordBatch, offset: int) -> None:
    numbers = {
        name: _number(reading, _column(batch, name), offset, name)
        for name in (*REQUIRED_NUMBERS, *OPTIONAL_NUMBERS)
    }
    days = {name: _day(reading, _column(batch, name), offset, name) for name in TIMESTAMPS}
    currency = _column(batch, "BillingCurrency")
    _currencies(reading, currency, offset)
    for name in TEXT_COLUMNS:
        for bad, reason in unstorable_text(name, _column(batch, name)):
            _flag(reading, bad, offset, name, reason)
    category = pc.utf8_lower(pc.utf8_trim_whitespace(_column(batch, "ChargeCategory")))
    known = pc.is_in(category, value_set=pa.array(list(CHARGE_CATEGORIES)))
    _flag(
        reading,
        pc.invert(known),
        offset,
        "ChargeCategory",
        "not one of " + ", ".join(CHARGE_CATEGORIES.values()),
    )
    account = _column(batch, "BillingAccountId")
    _flag(reading, pc.is_null(account), offset, "BillingAccountId", "is empty")
    tags = _tags(reading, _column(batch, "Tags"), offset)
    if reading.errors:
        return  # the file is rejected: only keep finding errors
    _remember_window(reading, days, account)
    preliminary = _preliminary(reading, batch, days["BillingPeriodEnd"])
    canonical = pc.if_else(
        pc.is_null(category),
        pa.scalar(None, pa.string()),
        pc.utf8_capitalize(category),
    )
    region = pc.coalesce(_column(batch, "RegionId"), _column(batch, "RegionName"))
    table = pa.table(
        {
            "day": days["ChargePeriodStart"],
            "currency": currency,
            "provider": pc.coalesce(_column(batch, "ProviderName"), pa.scalar("")),
            "billing_account_id": account,
            "sub_account_id": _column(batch, "SubAccountId"),
            "service": pc.coalesce(_column(batch, "ServiceName"), pa.scalar("")),
            "service_category": _column(batch, "ServiceCategory"),
            "region": region,
            "resource_id": _column(batch, "ResourceId"),
            "resource_type": _column(batch, "ResourceType"),
            "charge_category": canonical,
            "charge_class": _column(batch, "ChargeClass"),
            "pricing_unit": _column(batch, "PricingUnit"),
            "tags": tags,
            "billing_period_start": days["BillingPeriodStart"],
            "billing_period_end": days["BillingPeriodEnd"],
            "preliminary": preliminary,
            "billed_cost": numbers["BilledCost"],
            "effective_cost": numbers["EffectiveCost"],
            "list_cost": numbers["ListCost"],
            "contracted_cost": numbers["ContractedCost"],
            "pricing_quantity": numbers["PricingQuantity"],
            "consumed_quantity": numbers["ConsumedQuantity"],
            "source_rows": pa.repeat(pa.scalar(1, pa.int64()), batch.num_rows),
        }
    )
    summed = _sum_by_key(reading, table)
    reading.spool.append(summed)
    reading.day_sums.append(day_magnitudes(summed))
    reading.periods.update(pc.unique(summed["billing_period_start"]).to_pylist())


def _number(reading: _Reading, raw: pa.Array, offset: int, name: str) -> pa.Array:
    """A number column as exact decimals; its bad rows flagged."""
    fast = _plain_numbers(raw, name)
    if fast is not None:
        return fast
    text = pc.utf8_trim_whitespace(raw)
    valid = pc.match_substring_regex(text, NUMBER)
    _flag(reading, pc.invert(valid), offset, name, "not a number")
    if name in REQUIRED_NUMBERS:
        _flag(reading, pc.is_null(text), offset, name, "is empty")
    number = pc.if_else(valid, text, pa.scalar(None, pa.string()))
    digits = digits_before_point(name)
    beyond = too_large(number, digits)
    if beyond is not None:
        reason = f"is too large to store: at most {digits} digits before the decimal point"
        _flag(reading, beyond, offset, name, reason, shown=number)
        number = pc.if_else(beyond, pa.scalar(None, pa.string()), number)
    # Exact decimals; digits past the 18th decimal place (a fraction of a nano-cent) are cut.
    cut = pc.replace_substring_regex(number, r"^([-+]?\d*\.\d{18})\d+", r"\1")
    return to_decimal(cut)


def _plain_numbers(raw: pa.Array, name: str) -> pa.Array | None:
    """The column as decimals when every value is a plain number that fits, as nearly every
    export's are, in one cast and without a regex per value; None when any value needs the
    checks above (which name its row).

    Arrow's decimal cast accepts no text the ``NUMBER`` pattern refuses (no spaces, hex, NaN
    or separators), refuses more than 18 decimal places, and wraps around past 10^20 instead of
    refusing: ``too_large``, taken from the text, rules that out before the decimals are used.
    """
    if name in REQUIRED_NUMBERS and raw.null_count:
        return None
    try:
        number = pc.cast(raw, DECIMAL)
        beyond = too_large(raw, digits_before_point(name))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return number if beyond is None else None


def _day(reading: _Reading, raw: pa.Array, offset: int, name: str) -> pa.Array:
    """A timestamp column as UTC days; its bad rows flagged."""
    fast = _plain_days(raw)
    if fast is not None:
        return fast
    text = pc.utf8_trim_whitespace(raw)
    valid = pc.match_substring_regex(text, TIMESTAMP)
    _flag(reading, pc.invert(valid), offset, name, "not a UTC timestamp (ISO 8601)")
    _flag(reading, pc.is_null(text), offset, name, "is empty")
    day = _to_date(reading, pc.if_else(valid, text, pa.scalar(None, pa.string())), offset, name)
    implausible = implausible_days(day)
    if implausible is not None:
        _flag(reading, implausible, offset, name, DAY_REASON, shown=day)
    return day


def _plain_days(raw: pa.Array) -> pa.Array | None:
    """The column's days when every value is a good timestamp, checked once per distinct
    value (a block holds a few hours or days, repeated on every row); None when any value
    needs the checks above (which name its row)."""
    if raw.null_count:
        return None
    encoded = pc.dictionary_encode(raw)
    text = pc.utf8_trim_whitespace(encoded.dictionary)
    if not pc.all(pc.match_substring_regex(text, TIMESTAMP)).as_py():
        return None
    try:
        days = pc.cast(pc.utf8_slice_codeunits(text, 0, 10), pa.date32())
    except pa.ArrowInvalid:
        return None
    if implausible_days(days) is not None:
        return None
    return pc.take(days, encoded.indices)


def _currencies(reading: _Reading, currency: pa.Array, offset: int) -> None:
    """Every row names an ISO 4217 currency (checked once per distinct code when all are)."""
    codes = pc.unique(currency)
    if not currency.null_count and pc.all(pc.match_substring_regex(codes, CURRENCY)).as_py():
        reading.currencies.update(codes.to_pylist())
        return
    _flag(reading, pc.is_null(currency), offset, "BillingCurrency", "is empty")
    coded = pc.match_substring_regex(currency, CURRENCY)
    _flag(reading, pc.invert(coded), offset, "BillingCurrency", CURRENCY_REASON, shown=currency)
    reading.currencies.update(pc.unique(pc.filter(currency, coded)).to_pylist())


def _to_date(reading: _Reading, text: pa.Array, offset: int, column: str) -> pa.Array:
    """The UTC day of each timestamp; a well-formed but impossible date (2024-02-30) is an
    error on its row."""
    day_text = pc.utf8_slice_codeunits(text, 0, 10)
    try:
        return pc.cast(day_text, pa.date32())
    except pa.ArrowInvalid:
        values = []
        for position, value in enumerate(day_text.to_pylist()):
            try:
                values.append(None if value is None else dt.date.fromisoformat(value))
            except ValueError:
                values.append(None)
                reading.rejected_rows += 1
                reading.error(offset + position + 1, column, f"{value} is not a calendar date")
        return pa.array(values, pa.date32())


def _tags(reading: _Reading, tags: pa.Array, offset: int) -> pa.Array:
    """Tags as JSON object text (``null`` when none), each distinct value parsed once."""
    if len(reading.tags) > MAX_CACHED_TAGS:
        reading.tags.clear()
    for value in pc.unique(pc.drop_null(tags)).to_pylist():
        if value in reading.tags:
            continue
        reading.tags[value], refused = tags_as_json(value)
        if refused:
            _flag(reading, pc.equal(tags, value), offset, "Tags", refused)
    mapping = pa.array(list(reading.tags.values()), pa.string())
    keys = pa.array(list(reading.tags.keys()), pa.string())
    return pc.take(mapping, pc.index_in(tags, value_set=keys))


def _remember_window(reading: _Reading, days: dict[str, pa.Array], account: pa.Array) -> None:
    """The window a re-import of this export replaces: its billing periods and every charge
    day in it (corrections may fall outside the period)."""
    starts = [pc.min(days["BillingPeriodStart"]), pc.min(days["ChargePeriodStart"])]
    ends = [pc.max(days["BillingPeriodEnd"]), pc.max(days["ChargePeriodStart"])]
    low = min(s.as_py() for s in starts if s.is_valid)
    high = max(e.as_py() for e in ends if e.is_valid)
    high = max(high, pc.max(days["ChargePeriodStart"]).as_py() + dt.timedelta(days=1))
    reading.first_day = low if reading.first_day is None else min(reading.first_day, low)
    reading.last_day = high if reading.last_day is None else max(reading.last_day, high)
    reading.accounts.update(pc.unique(account).to_pylist())


def _preliminary(reading: _Reading, batch: pa.RecordBatch, period_end: pa.Array) -> pa.Array:
    """Final once the row has an invoice id (FOCUS 1.2) or its billing period closed
    ``close_days`` ago; preliminary until then."""
    closed_before = (reading.now - dt.timedelta(days=reading.close_days)).date()
    closed = pc.less_equal(period_end, pa.scalar(closed_before, pa.date32()))
    invoiced = pc.is_valid(_column(batch, "InvoiceId"))
    return pc.invert(pc.or_(pc.fill_null(closed, False), invoiced))


def _sum_by_key(reading: _Reading, table: pa.Table) -> pa.Table:
    """The block's rows summed per key, when that makes them fewer: an hourly export has 24
    rows of a resource's day in a block, a daily one about one row per key. The spool sums
    every key's partial sums when it is read, so a block spooled as it is loses nothing; and
    whether summing pays is tried again every ``RESUM_EVERY`` blocks."""
    reading.blocks += 1
    if not reading.summing and reading.blocks % RESUM_EVERY:
        return table
    summed = table.group_by(KEY_NAMES, use_threads=False).aggregate(
        [(name, "sum") for name in [*SUM_NAMES, "source_rows"]]
    )
    reading.summing = summed.num_rows < table.num_rows * SUMMING_PAYS_BELOW
    return summed.rename_columns([name.removesuffix("_sum") for name in summed.column_names])
