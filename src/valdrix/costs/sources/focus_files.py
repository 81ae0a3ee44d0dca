"""Importing FOCUS files a user hands over (``valdrix costs import``, ``POST /costs/imports``):
one export, or the parts of one delivery, read together and committed as one run, or rejected
whole with the first problems and nothing stored."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from valdrix.costs.ingest.focus import FocusRejected, file_details, read_focus_files
from valdrix.costs.ingest.focus_streams import ImportLimits
from valdrix.costs.ingest.reconcile import commit_batch, record_rejected_run
from valdrix.costs.models import CostRun, SourceKind
from valdrix.errors import InvalidInput
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime

# A source the user names (--source, ?source=) is stored as the key "focus:<name>".
MAX_SOURCE_CHARS = 200


class ImportRejected(InvalidInput):
    """The files were refused; nothing was stored. Carries the run and its first errors."""

    def __init__(self, run: CostRun, rejected: FocusRejected, *, files: int) -> None:
        subject = "the file was" if files == 1 else f"the {files} files were"
        super().__init__(
            f"{subject} rejected and nothing was stored: {rejected}",
            run_id=str(run.id),
            errors=rejected.errors,
        )
        self.run = run


async def import_focus_files(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    files: Sequence[tuple[Path, str]],
    *,
    actor: str,
    source: str | None = None,
) -> CostRun:
    """Import FOCUS files, given as ``(path, name)``, as one run of their source (the billing
    accounts in them, unless ``source`` names another): one export, or the parts a provider
    split one delivery into. All of them are committed, or none (the first problems named,
    with the part they are in)."""
    if source is not None and len(source) > MAX_SOURCE_CHARS:
        raise InvalidInput(f"a source name may be at most {MAX_SOURCE_CHARS} characters")
    parts = [(path, name) for (path, _), name in zip(files, distinct_names(files), strict=True)]
    source_key = f"focus:{source}" if source else None
    try:
        batch = await asyncio.to_thread(
            read_focus_files,
            parts,
            now=utcnow(),
            close_days=runtime.settings.costs.focus_close_days,
            limits=ImportLimits.from_settings(runtime.settings),
            source_key=source_key,
        )
    except FocusRejected as rejected:
        run = await record_rejected_run(
            runtime,
            tenant_id,
            source_kind=SourceKind.focus_file.value,
            source_key=source_key,
            rows_read=rejected.rows_read,
            rows_rejected=rejected.rows_rejected,
            errors=rejected.errors,
            details=file_details(parts),
            actor=actor,
        )
        raise ImportRejected(run, rejected, files=len(parts)) from rejected
    return await commit_batch(runtime, tenant_id, batch, actor=actor)


async def import_uploaded_files(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    uploads: Sequence[tuple[BinaryIO, str]],
    *,
    actor: str,
    source: str | None = None,
) -> CostRun:
    """Import uploaded FOCUS files, given as ``(stream, name)``: each is written to a private
    temporary folder first (the readers seek, and an upload may be larger than memory)."""
    with tempfile.TemporaryDirectory(prefix="valdrix-import-") as directory:
        parts: list[tuple[Path, str]] = []
        for number, (stream, name) in enumerate(uploads):
            path = Path(directory) / f"part-{number:05d}"
            with path.open("wb") as target:
                shutil.copyfileobj(stream, target, length=1 << 20)
            parts.append((path, name))
        return await import_focus_files(runtime, tenant_id, parts, actor=actor, source=source)


async def import_focus_file(
    runtime: Runtime,
    tenant_id: uuid.UUID,
    path: Path,
    *,
    actor: str,
    source: str | None = None,
    display_name: str | None = None,
) -> CostRun:
    """Import one FOCUS file (see ``import_focus_files``)."""
    files = [(path, display_name or path.name)]
    return await import_focus_files(runtime, tenant_id, files, actor=actor, source=source)


def distinct_names(files: Sequence[tuple[Path, str]]) -> list[str]:
    """The files' names, each told apart from the others by its place when two are the same
    (errors name the part they are in)."""
    names = [name for _, name in files]
    return [
        f"{name} (part {number})" if names.count(name) > 1 else name
        for number, name in enumerate(names, start=1)
    ]
