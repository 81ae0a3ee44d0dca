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


class ScheduleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str = Field(description="What runs, e.g. `scan` (of a connection)")
    target_id: uuid.UUID = Field(description="What it runs on, e.g. the connection's id")
    next_due_at: dt.datetime = Field(description="When it next falls due")
    last_enqueued_at: dt.datetime | None
    last_completed_at: dt.datetime | None
