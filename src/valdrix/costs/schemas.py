"""What the costs API reads (its dates) and answers."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

from valdrix.kit.money import PlainDecimal

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _written_as_date(value: object) -> object:
    """Pydantic would read a number as seconds since 1970; a date here is written as one."""
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("date_format", "must be a date written as YYYY-MM-DD")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_written_as_date)]


class CostRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source_kind: str
    source_key: str | None
    status: str
    window_start: dt.date | None
    window_end: dt.date | None
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    records_written: int
    adjustments: int
    totals: dict[str, Any]
    errors: list[dict[str, Any]]
    details: dict[str, Any]
    actor: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


class CostAdjustmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source_id: uuid.UUID
    run_id: uuid.UUID
    previous_run_id: uuid.UUID | None
    day: dt.date
    service: str
    account: str
    currency: str
    old_billed_cost: PlainDecimal
    new_billed_cost: PlainDecimal
    change_percent: PlainDecimal | None
    old_preliminary: bool
    new_preliminary: bool
    created_at: dt.datetime


class CostReadingOut(BaseModel):
    """One run's total of a key (billing period, day, service, account, currency of a source),
    and how it moved from the key's previous reading."""

    source_key: str
    run_id: uuid.UUID
    billing_period_start: dt.date
    day: dt.date
    service: str
    account: str
    currency: str
    billed_cost: PlainDecimal
    effective_cost: PlainDecimal
    preliminary: bool
    recorded_at: dt.datetime
    previous_billed_cost: PlainDecimal | None
    change_percent: PlainDecimal | None


class CostsOut(BaseModel):
    start: dt.date
    end: dt.date
    group_by: list[str]
    data_version: int
    rows: list[dict[str, Any]]
    totals: list[dict[str, Any]]
    next_cursor: str | None
    truncated: bool  # more rows follow (``next_cursor`` names them)
