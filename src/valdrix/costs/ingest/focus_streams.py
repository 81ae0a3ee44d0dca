"""Opening FOCUS files as streams of Arrow record batches (CSV, gzip CSV detected by content, or
Parquet), with a reason for every way a file can fail to be read, and a bound on how much data
one import may expand to.

An upload is whatever a user sends: empty, a damaged gzip or Parquet file, random bytes, or a
small gzip that decompresses to gigabytes. Each of those is ``NotImportable`` with a reason for
the user, never a library's exception. Decompressed bytes are counted as they stream (the
gzip output as pyarrow reads it; each Parquet batch as it is decoded), so a decompression bomb
stops at ``VALDRIX_COSTS_MAX_DECOMPRESSED_BYTES`` instead of after it has been read.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from valdrix.config import Settings

# Arrow's CSV reader holds several blocks in flight, and each block costs a fixed number of
# compute calls. On a 1,000,000-row export with its own tags per resource: 1 MB blocks read it
# in 8.6 s at a 351 MB peak, 2 MB in 6.7 s at 364 MB, 4 MB in 5.8 s at 430 MB.
BATCH_BYTES = 2 << 20
# Cell texts that mean no value, in CSV and Parquet alike.
NULL_TEXTS = pa.array(["NULL", "null", ""], pa.string())
PARQUET_BATCH_ROWS = 65_536
# A FOCUS header is a few kilobytes; a "header" longer than this is not one (and reading a
# line with no end would hold the whole file in memory).
MAX_HEADER_CHARS = 1 << 20
# What gzip raises for a damaged or truncated stream.
GZIP_ERRORS = (OSError, EOFError, zlib.error)


class NotImportable(Exception):
    """The file cannot be imported as it is: unreadable, or past a limit. Says why, and where
    when that is known (``row`` counted from 1 after the header)."""

    def __init__(self, reason: str, *, row: int | None = None, column: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.row = row
        self.column = column


@dataclass(frozen=True)
class ImportLimits:
    """How much one import (a file, or every file of a delivery) may hold once decompressed."""

    max_decompressed_bytes: int
    max_rows: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        return cls(settings.costs.max_decompressed_bytes, settings.costs.max_rows_per_import)

    def check_rows(self, rows: int) -> None:
        if rows > self.max_rows:
            raise NotImportable(
                f"more rows than VALDRIX_COSTS_MAX_ROWS_PER_IMPORT ({self.max_rows} rows) allows"
                " in one import: split the export, or raise the limit"
            )


class DecompressedBudget:
    """The bytes one import has decompressed so far, across its files."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise NotImportable(
                f"the data is larger than VALDRIX_COSTS_MAX_DECOMPRESSED_BYTES ({self.limit}"
                " bytes) once decompressed: split the export, or raise the limit"
            )


@dataclass
class FocusStream:
    """An open file: close it (``contextlib.closing``) whether or not its batches were read."""

    format: str  # "csv", "csv.gz" or "parquet"
    columns: list[str]
    batches: Iterator[pa.RecordBatch]  # raises NotImportable part way through a bad file
    close: Callable[[], None]


def detect_format(name: str, head: bytes) -> str:
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "csv.gz"
    if name.lower().endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


def open_focus_file(
    path: Path, name: str, *, known: Sequence[str], budget: DecompressedBudget
) -> FocusStream:
    """The file's columns and its batches of the ``known`` columns (as text), or NotImportable."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if not head:
        raise NotImportable("the file is empty")
    kind = detect_format(name, head)
    if kind == "parquet":
        return _parquet(path, known, budget)
    return _csv(path, kind, known, budget)


def _csv(path: Path, kind: str, known: Sequence[str], budget: DecompressedBudget) -> FocusStream:
    compressed = kind == "csv.gz"
    header_line = _header_line(path, compressed)
    header = next(csv.reader([header_line]), [])
    _check_delimiter(header, header_line)
    stream = _CountingStream(_open(path, compressed), budget, compressed)
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=BATCH_BYTES, encoding="utf8"),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                include_columns=[c for c in known if c in header],
                null_values=NULL_TEXTS.to_pylist(),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowException as exc:
        stream.close()
        raise _unreadable_csv(path, compressed, header, budget.limit, exc) from exc

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except pa.ArrowException as exc:
            raise _unreadable_csv(path, compressed, header, budget.limit, exc) from exc

    columns = [name.lstrip("\ufeff") for name in header]
    return FocusStream(kind, columns, batches(), stream.close)


def _check_delimiter(header: list[str], line: str) -> None:
    """A header of one column that holds another separator was written for a spreadsheet in a
    locale that uses it (Excel writes ';' where the decimal mark is a comma)."""
    if len(header) == 1:
        for delimiter in (";", "\t", "|"):
            if delimiter in line:
                raise NotImportable(
                    f"not a readable CSV file: its columns look separated by {delimiter!r};"
                    " FOCUS CSV separates them with ','"
                )


def _unreadable_csv(
    path: Path, compressed: bool, header: list[str], limit: int, exc: pa.ArrowException
) -> NotImportable:
    """Arrow says why a CSV file cannot be read, but not on which row: find it."""
    located = _first_unreadable_row(path, compressed, header, limit)
    return located or NotImportable(f"not a readable CSV file: {exc}")


def _first_unreadable_row(
    path: Path, compressed: bool, header: list[str], limit: int
) -> NotImportable | None:
    """The first row (counted as Arrow does: from 1 after the header, blank lines skipped) that
    is not UTF-8 or has another number of fields than the header, read again with Python's
    csv module. Only a file already refused is read this way, and at most ``limit`` bytes of it."""
    position = _Position()
    with _open(path, compressed) as raw:
        rows = csv.reader(_decoded_lines(raw, position, limit))
        try:
            next(rows, None)
            row = 0
            for fields in rows:
                if not fields:
                    continue
                row += 1
                if position.bad_byte is not None:
                    return NotImportable(
                        f"not UTF-8 text: byte 0x{position.bad_byte:02X} at byte offset"
                        f" {position.bad_offset} (FOCUS CSV is UTF-8; was the file saved as"
                        " Windows-1252 or Latin-1?)",
                        row=row,
                        column=_column_with_undecodable_byte(header, fields),
                    )
                if len(fields) != len(header):
                    return NotImportable(
                        f"has {len(fields)} fields where the header has {len(header)}", row=row
                    )
        except (csv.Error, *GZIP_ERRORS):
            return None
    return None


@dataclass
class _Position:
    offset: int = 0  # bytes read so far
    bad_offset: int | None = None  # of the first byte that is not UTF-8
    bad_byte: int | None = None


def _decoded_lines(
    raw: gzip.GzipFile | io.BufferedReader, position: _Position, limit: int
) -> Iterator[str]:
    """The file's lines as text, noting the first byte that is not UTF-8 (kept as a lone
    surrogate, so the row it is in can still be parsed)."""
    while position.offset <= limit:
        line = raw.readline(MAX_HEADER_CHARS)
        if not line:
            return
        if len(line) == MAX_HEADER_CHARS and not line.endswith(b"\n"):
            raise csv.Error("a line too long to look into")
        if position.bad_byte is None:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                position.bad_offset = position.offset + exc.start
                position.bad_byte = line[exc.start]
        position.offset += len(line)
        yield line.decode("utf-8", "surrogateescape")


def _column_with_undecodable_byte(header: list[str], fields: list[str]) -> str | None:
    for name, value in zip(header, fields, strict=False):
        if any("\udc80" <= char <= "\udcff" for char in value):
            return name.lstrip("\ufeff")
    return None


def _open(path: Path, compressed: bool) -> gzip.GzipFile | io.BufferedReader:
    return gzip.open(path, "rb") if compressed else path.open("rb")


def _header_line(path: Path, compressed: bool) -> str:
    with _open(path, compressed) as stream:
        try:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            line = text.readline(MAX_HEADER_CHARS)
        except UnicodeDecodeError as exc:
            raise NotImportable("not a readable CSV file: it is not UTF-8 text") from exc
        except GZIP_ERRORS as exc:
            if not compressed:
                raise
            raise NotImportable(f"not a readable gzip file: {exc}") from exc
    if not line:
        raise NotImportable("the file is empty")
    if len(line) >= MAX_HEADER_CHARS and not line.endswith(("\n", "\r")):
        raise NotImportable(
            f"not a readable CSV file: its first line is longer than {MAX_HEADER_CHARS}"
            " characters, so it is no FOCUS header"
        )
    return line


class _CountingStream(io.RawIOBase):
    """What pyarrow reads, counted against the import's budget; a damaged gzip stream is
    NotImportable (pyarrow passes on what a Python file object raises)."""

    def __init__(
        self, inner: gzip.GzipFile | io.BufferedReader, budget: DecompressedBudget, compressed: bool
    ) -> None:
        super().__init__()
        self.inner = inner
        self.budget = budget
        self.compressed = compressed

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            data = self.inner.read(size)
        except GZIP_ERRORS as exc:
            if not self.compressed:
                raise
            raise NotImportable(f"not a readable gzip file: {exc}") from exc
        self.budget.spend(len(data))
        return data

    def close(self) -> None:
        self.inner.close()
        super().close()


def _parquet(path: Path, known: Sequence[str], budget: DecompressedBudget) -> FocusStream:
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
    except (pa.ArrowException, OSError) as exc:
        raise NotImportable(f"not a readable Parquet file: {exc}") from exc
    wanted = [c for c in known if c in names]

    def as_text() -> Iterator[pa.RecordBatch]:
        offset = 0
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
                budget.spend(batch.nbytes)
                columns = [_as_text(batch.column(i)) for i in range(batch.num_columns)]
                for name, column in zip(batch.schema.names, columns, strict=True):
                    _check_utf8(column, name, offset)
                yield pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
                offset += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise NotImportable(f"not a readable Parquet file: {exc}") from exc

    return FocusStream("parquet", names, as_text(), parquet.close)


def _check_utf8(column: pa.Array, name: str, offset: int) -> None:
    """Arrow takes a Parquet file's text to be UTF-8 without checking it; the database would
    refuse it at commit."""
    try:
        column.validate(full=True)
    except pa.ArrowInvalid:
        for position, value in enumerate(column.cast(pa.binary()).to_pylist()):
            try:
                (value or b"").decode("utf-8")
            except UnicodeDecodeError:
                raise NotImportable(
                    "not UTF-8 text", row=offset + position + 1, column=name
                ) from None
        raise


def _as_text(column: pa.Array) -> pa.Array:
    """Parquet columns arrive typed; the checks read text, as from CSV."""
    if pa.types.is_timestamp(column.type):
        # A charge's day is its UTC day. A zoned column (America/New_York, say) would be
        # rendered in its zone's local time, so it is turned to UTC first; a naive timestamp
        # is UTC already, as FOCUS says.
        if column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S")
    if pa.types.is_map(column.type) or pa.types.is_struct(column.type):
        # default=str: a tag's value may be a timestamp or bytes, which JSON has no form for.
        return pa.array(
            [None if v is None else json.dumps(dict(v), default=str) for v in column.to_pylist()]
        )
    # What CSV reads as empty reads so here too (plain or dictionary-encoded text): an empty
    # or "NULL" account id is no account, not an account named "" that another file's empty
    # id would match.
    text = column.cast(pa.string())
    return pc.if_else(pc.is_in(text, value_set=NULL_TEXTS), pa.scalar(None, pa.string()), text)
