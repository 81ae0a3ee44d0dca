"""Create a probe schedule and queue its job in one transaction, then die by SIGKILL.

``python -m tests.jobs.crash_enqueue TENANT_ID TARGET_ID before-commit|after-commit`` (run by the
job-platform tests with a worker's environment): the process prints ``written`` once both the
record and the job are in its transaction, and kills itself either before or right after the
commit, as a crash or an OOM kill would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import tests.jobs.probe_tasks  # noqa: F401  (registers the probe kind)
from valdrix.config import load_settings
from valdrix.jobs import service
from valdrix.jobs.app import open_job_app
from valdrix.kit.db import unit_of_work
from valdrix.runtime import open_runtime
from valdrix.tenancy.service import system_principal


async def main(tenant_id: uuid.UUID, target_id: uuid.UUID, moment: str) -> None:
    runtime = open_runtime(load_settings())
    await open_job_app(runtime.urls.app)
    actor = system_principal(tenant_id)
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        await service.ensure_schedule(session, actor, kind="probe", target_id=target_id)
        await service.run_now(session, actor, runtime.settings, kind="probe", target_id=target_id)
        print("written", flush=True)
        if moment == "before-commit":
            os.kill(os.getpid(), signal.SIGKILL)
    if moment == "after-commit":
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    asyncio.run(main(uuid.UUID(sys.argv[1]), uuid.UUID(sys.argv[2]), sys.argv[3]))
