"""Response bodies of the jobs API."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from valdrix.jobs.models import JobStatus


class JobRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    type: str = Field(validation_alias="task_name", description="Task, e.g. `scans.run`")
    status: JobStatus
    attempts: int
    target_id: uuid.UUID | None
    queued_at: dt.datetime = Field(validation_alias="created_at")
    due_at: dt.datetime | None = Field(description="When scheduled work fell due")
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error_summary: str | None
