"""The cells of a FOCUS file as Valdrix stores them (exact decimals, tags as JSON object text),
and what a value must be for the database to hold it.

A file can carry values no real bill has: a cost of 10^15, a 300-character service name, a NUL
byte, the year 9999, a currency written out as "US Dollar". Each of them used to fail at commit,
as a 500 or a 422 that named no row and recorded no run. The reader refuses such a row instead,
and names its column. The limits are read from the table that holds the values, so they follow
its columns.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Numeric, String

from valdrix.costs.ingest.records import DECIMAL
from valdrix.costs.models import cost_records
from valdrix.input_guard import NUL, NUL_REASON, first_unstorable_text

DECIMAL_CONTEXT = Context(prec=DECIMAL.precision)
# FOCUS number columns and the record columns they are summed into.
NUMBER_COLUMNS = {
    "BilledCost": "billed_cost",
    "EffectiveCost": "effective_cost",
    "ListCost": "list_cost",
    "ContractedCost": "contracted_cost",
    "PricingQuantity": "pricing_quantity",
    "ConsumedQuantity": "consumed_quantity",
}
# FOCUS columns stored as text, and the record columns they land in.
TEXT_COLUMNS = {
    "ProviderName": "provider",
    "BillingAccountId": "billing_account_id",
    "SubAccountId": "sub_account_id",
    "ServiceName": "service",
    "ServiceCategory": "service_category",
    "RegionId": "region",
    "RegionName": "region",
    "ResourceId": "resource_id",
    "ResourceType": "resource_type",
    "ChargeClass": "charge_class",
    "PricingUnit": "pricing_unit",
}
# ISO 4217 codes (USD, EUR, JPY ...), as FOCUS requires of BillingCurrency.
CURRENCY = r"^[A-Z]{3}$"
CURRENCY_REASON = "is not an ISO 4217 currency code (such as USD or EUR)"
# A day before 2000 or after 2099 is a typo or a placeholder (9999-12-31), never a bill; and an
# import creates a monthly partition for every month its days span.
FIRST_DAY = dt.date(2000, 1, 1)
LAST_DAY = dt.date(2099, 12, 31)
DAY_REASON = "is not a day from 2000 to 2099"
# valdrix_ensure_cost_partitions refuses to create partitions for more than 3,700 days at once.
MAX_SPAN_DAYS = 3650


def to_decimal(text: pa.Array) -> pa.Array:
    """Number text (checked, and within the limits) as exact decimals."""
    try:
        return pc.cast(text, DECIMAL)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Arrow refuses the whole cast for one value with more places than are kept
        # ("1.5e-20"), rather than round it; go value by value.
        return pa.array(
            [None if v is None else _decimal_text(v) for v in text.to_pylist()], DECIMAL
        )


def _decimal_text(value: str) -> Decimal:
    # Up to 20 digits before the point and 18 after: more than the default context's 28.
    return Decimal(value).quantize(Decimal("1e-18"), context=DECIMAL_CONTEXT)


def tags_as_json(value: str) -> tuple[str | None, str | None]:
    """A Tags cell as JSON object text, or why it cannot be stored: ``(text, None)`` or
    ``(None, reason)``."""
    parsed = _parse_tags(value)
    if parsed is None:
        return None, "not a JSON object of tags"
    unstorable = first_unstorable_text(parsed, "tag")
    if unstorable:
        return None, " ".join(unstorable)
    return json.dumps(parsed, sort_keys=True), None


def _parse_tags(value: str) -> dict[str, Any] | None:
    text = value.strip()
    if not text or text in ("{}", "[]"):
        return {}
    for candidate in (text, "{" + text + "}"):  # Azure exports drop the braces
        try:
            parsed = json.loads(candidate)
        except (ValueError, RecursionError):  # RecursionError: nested thousands deep
            continue
        if isinstance(parsed, dict):
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in parsed.items()}
    return None


def digits_before_point(focus_column: str) -> int:
    """How many digits before the decimal point the column's record column holds."""
    column_type = cost_records.c[NUMBER_COLUMNS[focus_column]].type
    assert isinstance(column_type, Numeric)
    assert column_type.precision is not None and column_type.scale is not None
    return int(column_type.precision) - int(column_type.scale)


def too_large(numbers: pa.Array, digits: int) -> pa.Array | None:
    """Where a number (text) has more than ``digits`` digits before the point, i.e. is at
    least 10^digits in magnitude; None when no row is. Floats find the few candidates; decimals
    decide, since a value just below the limit can round up to it as a float."""
    limit = 10**digits
    magnitude = pc.abs(pc.cast(numbers, pa.float64()))
    if (pc.max(magnitude).as_py() or 0) < limit * (1 - 1e-9):
        return None  # nearly always: one pass, no mask
    near = pc.greater_equal(magnitude, limit * (1 - 1e-9)).to_pylist()
    return pa.array(
        [
            bool(candidate) and _at_least(value, limit)
            for value, candidate in zip(numbers.to_pylist(), near, strict=True)
        ],
        pa.bool_(),
    )


def _at_least(value: str, limit: int) -> bool:
    try:
        # copy_abs, unlike abs(), leaves an exponent past the context's range alone.
        return Decimal(value).copy_abs() >= limit
    except InvalidOperation:  # 10e999999999999999999: past what a decimal holds at all
        return True


def unstorable_text(focus_column: str, values: pa.Array) -> list[tuple[pa.Array, str]]:
    """Where the database cannot store the column's text, with why: NUL, or past the length
    of the column it lands in. A pass over the bytes rules both out for nearly every batch."""
    problems = []
    data = values.buffers()[2]  # every value's bytes, end to end
    if data is not None and NUL.encode() in data.to_pybytes():
        problems.append((pc.match_substring(values, NUL), NUL_REASON))
    column_type = cost_records.c[TEXT_COLUMNS[focus_column]].type
    length = column_type.length if isinstance(column_type, String) else None
    # A value has at least as many bytes as characters.
    if length and (pc.max(pc.binary_length(values)).as_py() or 0) > length:
        longer = pc.greater(pc.utf8_length(values), length)
        problems.append((longer, f"longer than {length} characters"))
    return problems


def implausible_days(days: pa.Array) -> pa.Array | None:
    """Where a day is before 2000 or after 2099; None when no row is."""
    bounds = pc.min_max(days)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None or (low >= FIRST_DAY and high <= LAST_DAY):
        return None
    return pc.or_(
        pc.less(days, pa.scalar(FIRST_DAY, pa.date32())),
        pc.greater(days, pa.scalar(LAST_DAY, pa.date32())),
    )


def day_magnitudes(records: pa.Table) -> pa.Table:
    """Per day, the sum of each amount's magnitude (floats): what ``overflowing_days`` checks,
    taken a block at a time."""
    magnitudes = {
        column: pc.abs(pc.cast(records[name], pa.float64()))
        for column, name in NUMBER_COLUMNS.items()
    }
    summed = (
        pa.table({"day": records["day"], **magnitudes})
        .group_by("day", use_threads=False)
        .aggregate([(column, "sum") for column in NUMBER_COLUMNS])
    )
    return summed.rename_columns([name.removesuffix("_sum") for name in summed.column_names])


def overflowing_days(day_sums: pa.Table) -> list[tuple[str, dt.date, int]]:
    """Where rows that each fit add up past what a column holds: (FOCUS column, day, digits),
    from ``day_magnitudes`` of every block.

    Every stored sum (a record, the day's roll-up, a reading) adds up rows of one day, so the
    day's sum of magnitudes bounds them all. Floats are exact enough to find a day near 10^14.
    """
    sums = day_sums.group_by("day", use_threads=False).aggregate(
        [(column, "sum") for column in NUMBER_COLUMNS]
    )
    found: list[tuple[str, dt.date, int]] = []
    for column in NUMBER_COLUMNS:
        digits = digits_before_point(column)
        past = pc.filter(sums["day"], pc.greater_equal(sums[f"{column}_sum"], float(10**digits)))
        found.extend((column, day, digits) for day in past.to_pylist()[:1])
    return found
