"""FOCUS data exports on S3: finding the deliveries under an export's prefix and importing the new
or changed ones, each as one reconciliation run.

AWS Data Exports write a billing period as one or more part files in one folder
(``.../data/BILLING_PERIOD=2024-09/part-00001.snappy.parquet``) and overwrite that folder when
they deliver the period again; other providers' exports copied to S3 keep the same shape. So a
*delivery* is the FOCUS files of one folder (CSV, gzip CSV, Parquet; manifests and anything else
are ignored), read together as one batch.

A delivery's fingerprint is a hash of its files' keys, ETags and sizes. A delivery whose
fingerprint is the one recorded on the last committed run for its folder has not changed and is
not downloaded again. A delivery's source is its connection and billing accounts,
``focus-s3:<connection id>:<accounts>``: a period the same accounts deliver again replaces that
period, while two exports under one prefix (an AWS and an Azure one, say) are two sources and
never replace each other's periods.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import tempfile
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from valdrix.connections.exports import ExportLocation
from valdrix.costs.ingest.focus import FocusRejected, read_focus_files
from valdrix.costs.ingest.focus_streams import ImportLimits
from valdrix.costs.ingest.reconcile import commit_batch, record_rejected_run
from valdrix.costs.ingest.records import SourceBatch
from valdrix.costs.models import CostRun, SourceKind
from valdrix.costs.repositories.reading import CostReadRepository
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime

log = structlog.get_logger(__name__)

ACTOR = "costs.pull_focus"
FOCUS_SUFFIXES = (".csv", ".csv.gz", ".gz", ".parquet")
LIST_PAGE_SIZE = 1000  # S3's largest page


def source_key_for(connection_id: uuid.UUID) -> str:
    """What names the connection's deliveries' sources (``focus-s3:<connection id>``, then
    each delivery's billing accounts), and its runs that read no accounts (failures)."""
    return f"focus-s3:{connection_id}"


@dataclass(frozen=True)
class ExportFile:
    key: str
    etag: str
    size: int
    modified: dt.datetime


@dataclass(frozen=True)
class Delivery:
    """The FOCUS files of one folder, sorted by key."""

    bucket: str
    folder: str  # the files' key up to their last "/"
    files: tuple[ExportFile, ...]

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.folder}/" if self.folder else f"s3://{self.bucket}/"

    @property
    def fingerprint(self) -> str:
        parts = [[file.key, file.etag, file.size] for file in self.files]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    @property
    def details(self) -> dict[str, Any]:
        """What a run of this delivery records (and the next pull compares with)."""
        return {
            "delivery": self.uri,
            "fingerprint": self.fingerprint,
            "files": [file.key for file in self.files],
        }


def is_focus_file(key: str) -> bool:
    return key.lower().endswith(FOCUS_SUFFIXES)


def list_deliveries(
    s3: Any, location: ExportLocation, *, page_size: int = LIST_PAGE_SIZE
) -> list[Delivery]:
    """Every delivery under the prefix (all pages), the least recently written first: when one
    pull finds several deliveries of the same period, the newest is committed last and wins."""
    folders: dict[str, list[ExportFile]] = defaultdict(list)
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=location.bucket,
        Prefix=location.prefix,
        PaginationConfig={"PageSize": page_size},
    )
    for page in pages:
        for item in page.get("Contents", []):
            key = str(item["Key"])
            if is_focus_file(key):
                folders[key.rpartition("/")[0]].append(
                    ExportFile(key, str(item["ETag"]), int(item["Size"]), item["LastModified"])
                )
    deliveries = [
        Delivery(location.bucket, folder, tuple(sorted(files, key=lambda file: file.key)))
        for folder, files in folders.items()
    ]
    return sorted(deliveries, key=lambda d: (max(f.modified for f in d.files), d.folder))


def read_delivery(
    s3: Any,
    delivery: Delivery,
    *,
    source_prefix: str,
    now: dt.datetime,
    close_days: int,
    limits: ImportLimits,
) -> SourceBatch:
    """Download the delivery's files (streamed to a temporary folder, removed whatever happens)
    and read them as one batch, with the delivery's details; raises FocusRejected."""
    listed = {file.key: file.etag for file in delivery.files}

    def pin_version(params: dict[str, Any], **_: Any) -> None:
        # Exactly the version listed (and fingerprinted): a file rewritten since answers 412 and
        # the pull is tried again, rather than mixing two deliveries in one run.
        if params.get("Bucket") == delivery.bucket and params.get("Key") in listed:
            params.setdefault("IfMatch", listed[params["Key"]])

    events = [f"before-parameter-build.s3.{name}" for name in ("HeadObject", "GetObject")]
    for event in events:
        s3.meta.events.register(event, pin_version)
    try:
        with tempfile.TemporaryDirectory(prefix="valdrix-focus-s3-") as folder:
            parts: list[tuple[Path, str]] = []
            for number, file in enumerate(delivery.files):
                path = Path(folder) / f"part-{number:05d}"
                with path.open("wb") as handle:
                    s3.download_fileobj(delivery.bucket, file.key, handle)
                parts.append((path, file.key))
            batch = read_focus_files(
                parts, now=now, close_days=close_days, limits=limits, source_prefix=source_prefix
            )
    finally:
        for event in events:
            s3.meta.events.unregister(event, pin_version)
    batch.details.update(delivery.details)
    return batch


async def import_new_deliveries(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    deliveries: list[Delivery],
    s3: Callable[[], Any],
) -> AsyncIterator[CostRun]:
    """Import each delivery that is new or changed since its last committed run, yielding its
    run: committed, or rejected (with its errors) while the others go on. ``s3()`` gives a client
    with current credentials (a long pull outlives one set)."""
    # A delivery's source is this key and its accounts; a rejected one read none: this key.
    connection_key = source_key_for(connection_id)

    def read(delivery: Delivery) -> SourceBatch:
        return read_delivery(
            s3(),
            delivery,
            source_prefix=connection_key,
            now=utcnow(),
            close_days=runtime.settings.costs.focus_close_days,
            limits=ImportLimits.from_settings(runtime.settings),
        )

    recorded = await recorded_fingerprints(runtime, tenant_id, connection_key)
    for delivery in deliveries:
        if recorded.get(delivery.uri) == delivery.fingerprint:
            continue
        try:
            batch = await asyncio.to_thread(read, delivery)
        except FocusRejected as rejected:
            yield await record_rejected_run(
                runtime,
                tenant_id,
                source_kind=SourceKind.focus_file.value,
                source_key=connection_key,
                rows_read=rejected.rows_read,
                rows_rejected=rejected.rows_rejected,
                errors=rejected.errors,
                details=delivery.details,
                actor=ACTOR,
            )
            continue
        # An earlier version of the folder kept under another key (its accounts changed, or
        # it was pulled when the connection had one source) is replaced whole, as a folder
        # delivered again always was: not only the accounts this version still holds.
        earlier = await sources_of_delivery(runtime, tenant_id, connection_key, delivery.uri)
        batch.replaces_sources = [key for key in earlier if key != batch.source_key]
        yield await commit_batch(
            runtime, tenant_id, batch, actor=ACTOR, connection_id=connection_id
        )


async def recorded_fingerprints(
    runtime: Runtime, tenant_id: uuid.UUID, connection_key: str
) -> dict[str, str]:
    """Each of the connection's deliveries' fingerprint on its last committed run."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await CostReadRepository(session).delivery_fingerprints(connection_key)


async def sources_of_delivery(
    runtime: Runtime, tenant_id: uuid.UUID, connection_key: str, uri: str
) -> list[str]:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return await CostReadRepository(session).sources_of_delivery(connection_key, uri)
