"""Every form a FOCUS number takes is read as the same exact amount or refused with its row, in
a block read by one decimal cast as in a block checked value by value: a pyarrow upgrade that
changed what its cast accepts must not change what an import stores or refuses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from tests.costs.focus_files import APRIL, focus_rows, write
from valdrix.costs.ingest.focus import FocusRejected, read_focus_files
from valdrix.costs.ingest.focus_streams import ImportLimits

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
LIMITS = ImportLimits(max_decompressed_bytes=1 << 30, max_rows=1000)


def _read_cost(tmp_path: Path, cost: str) -> Decimal:
    (row,) = focus_rows(APRIL, {APRIL: Decimal(0)})
    rows = [row, [cost, *row[1:]]]  # BilledCost of data row 2, beside a plain one
    path = write(tmp_path / "export.csv", rows)
    batch = read_focus_files([(path, "export.csv")], now=NOW, close_days=5, limits=LIMITS)
    try:
        (group,) = batch.records.groups()
        return Decimal(group["billed_cost"][0].as_py())
    finally:
        batch.records.close()


@pytest.mark.parametrize(
    ("cost", "amount"),
    [
        ("+1.5", "1.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("-.5", "-0.5"),
        ("1.5e3", "1500"),
        ("1E-18", "1E-18"),
        ("1e-19", "0"),  # past the 18th decimal place: cut
        (" 2.25 ", "2.25"),
        ("0.1234567890123456789", "0.123456789012345678"),
    ],
)
def test_a_number_in_any_accepted_form_is_read_exactly(
    tmp_path: Path, cost: str, amount: str
) -> None:
    assert _read_cost(tmp_path, cost) == Decimal(amount)


@pytest.mark.parametrize(
    ("cost", "reason"),
    [
        ("12345678901234567890123", "is too large to store"),  # wraps around in a bare cast
        ("1e30", "is too large to store"),
        ("1e15", "is too large to store"),
        ("0x10", "not a number"),
        ("1,5", "not a number"),
        ("NaN", "not a number"),
        ("1e", "not a number"),
    ],
)
def test_a_number_that_cannot_be_stored_is_refused_with_its_row(
    tmp_path: Path, cost: str, reason: str
) -> None:
    with pytest.raises(FocusRejected) as refused:
        _read_cost(tmp_path, cost)
    (error,) = refused.value.errors
    assert (error["row"], error["column"]) == (2, "BilledCost")
    assert reason in error["reason"]
