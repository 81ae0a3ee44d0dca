"""The job queue without a cliff: procrastinate's fetch stays fast under tenant slot locks, and a
worker mirrors each step of a job into ``job_runs`` in one round trip.

- ``valdrix_procrastinate_jobs_lock_idx``: ``procrastinate_jobs (lock)`` over queued and running
  jobs. procrastinate's fetch rejects a job whose lock is held or has an earlier job; its only
  index with ``lock`` (``procrastinate_jobs_id_lock_idx_v1``) has it second, so each probe read
  the whole index. Ours, not procrastinate's: named ``valdrix_*`` so procrastinate's schema
  migrations never meet a name of theirs, and tests/jobs/test_procrastinate_schema.py tells the
  two apart.
- ``valdrix_refresh_job_queue_statistics()``: analyzes ``procrastinate_jobs`` when it holds far
  more queued jobs than its planner statistics expect (a fresh installation's first sweep). With
  statistics of an empty queue, the fetch's plan checks every queued job's lock and sorts them
  all, on every fetch, until autovacuum's next look. Owned by the owner, as only it may analyze.
- ``valdrix_mirror_job_run(...)``: one step of a job (running, retrying, succeeded, failed,
  cancelled) into its run, as the job's tenant, in one statement: SECURITY INVOKER, so
  row-level security applies to the caller exactly as before.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

from valdrix.kit.rls import APP_ROLE, TENANT_SETTING

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOCK_INDEX = "valdrix_procrastinate_jobs_lock_idx"
REFRESH_STATISTICS = "valdrix_refresh_job_queue_statistics()"
MIRROR_JOB_RUN = (
    "valdrix_mirror_job_run(p_tenant_id uuid, p_job_id bigint, p_status text,"
    " p_attempts integer, p_error_summary text, p_schedule_id uuid)"
)
MIRROR_JOB_RUN_ARGS = "valdrix_mirror_job_run(uuid, bigint, text, integer, text, uuid)"

# Queued jobs a stale estimate may leave out before the fetch's plan is worth a new ANALYZE:
# with the lock index, a fetch under the wrong plan costs about 3 us per queued job.
QUEUED_SLACK = 500

REFRESH_STATISTICS_BODY = f"""
DECLARE
    expected double precision;
    queued bigint;
BEGIN
    -- The queued jobs the planner believes in: its row count times the share of 'todo' it saw.
    SELECT greatest(c.reltuples, 0) * coalesce((
               SELECT s.most_common_freqs[
                          array_position(s.most_common_vals::text::text[], 'todo')]
               FROM pg_stats s
               WHERE s.schemaname = 'public' AND s.tablename = 'procrastinate_jobs'
                 AND s.attname = 'status'), 0)
      INTO expected
      FROM pg_class c WHERE c.oid = 'public.procrastinate_jobs'::regclass;
    SELECT count(*) INTO queued FROM (
        SELECT 1 FROM public.procrastinate_jobs WHERE status = 'todo'
        LIMIT {QUEUED_SLACK} + 4 * expected::bigint + 1
    ) q;
    -- Underestimates are what hurt (overestimates pick the ordered plan, which stops early).
    -- One caller analyzes at a time; the others carry on.
    IF queued <= {QUEUED_SLACK} + 4 * expected
       OR NOT pg_try_advisory_xact_lock(hashtext('valdrix_refresh_job_queue_statistics')) THEN
        RETURN false;
    END IF;
    ANALYZE public.procrastinate_jobs;
    RETURN true;
END
"""

# The tenant is set (transaction-local) and put back, so called in autocommit the statement is
# its own transaction, and called inside one it changes nothing for what follows.
MIRROR_JOB_RUN_BODY = f"""
DECLARE
    previous text := current_setting('{TENANT_SETTING}', true);
    mirrored boolean;
BEGIN
    PERFORM set_config('{TENANT_SETTING}', p_tenant_id::text, true);
    UPDATE job_runs SET
        status = p_status,
        attempts = coalesce(p_attempts, attempts),
        started_at = CASE WHEN p_status = 'running' THEN now() ELSE started_at END,
        finished_at = CASE WHEN p_status IN ('succeeded', 'failed', 'cancelled') THEN now() END,
        error_summary = CASE WHEN p_status = 'running' THEN error_summary ELSE p_error_summary END
    WHERE procrastinate_job_id = p_job_id;
    mirrored := FOUND;
    IF mirrored AND p_status = 'succeeded' AND p_schedule_id IS NOT NULL THEN
        UPDATE schedules SET last_completed_at = now() WHERE id = p_schedule_id;
    END IF;
    PERFORM set_config('{TENANT_SETTING}', coalesce(previous, ''), true);
    RETURN mirrored;
END
"""


def upgrade() -> None:
    op.execute(
        f"CREATE INDEX {LOCK_INDEX} ON procrastinate_jobs (lock) WHERE status IN ('todo', 'doing')"
    )
    for statement in (
        f"CREATE FUNCTION {REFRESH_STATISTICS} RETURNS boolean LANGUAGE plpgsql VOLATILE"
        " SECURITY DEFINER SET search_path = pg_catalog, public"
        f" AS $fn$ {REFRESH_STATISTICS_BODY} $fn$",
        f"REVOKE ALL ON FUNCTION {REFRESH_STATISTICS} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {REFRESH_STATISTICS} TO {APP_ROLE}",
        f"CREATE FUNCTION {MIRROR_JOB_RUN} RETURNS boolean LANGUAGE plpgsql VOLATILE"
        " SECURITY INVOKER SET search_path = pg_catalog, public"
        f" AS $fn$ {MIRROR_JOB_RUN_BODY} $fn$",
        f"REVOKE ALL ON FUNCTION {MIRROR_JOB_RUN_ARGS} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {MIRROR_JOB_RUN_ARGS} TO {APP_ROLE}",
    ):
        op.execute(statement)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {MIRROR_JOB_RUN_ARGS}")
    op.execute(f"DROP FUNCTION {REFRESH_STATISTICS}")
    op.execute(f"DROP INDEX {LOCK_INDEX}")
