"""The metrics catalogue: every Prometheus metric Valdrix exports is defined here.

Label values are bounded: job types are task names, tiers are the five tiers, outcomes a fixed
set. Gauges describing shared state (queue depth, stuck jobs, schedule lag) are refreshed from
the database when scraped, so whichever process serves /metrics reports the truth.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

BACKGROUND_JOBS_QUEUED = Gauge(
    "valdrix_background_jobs_queued",
    "Jobs waiting in the queue (procrastinate status todo), by task.",
    ["job_type"],
)
BACKGROUND_JOBS_TOTAL = Counter(
    "valdrix_background_jobs_total",
    "Finished job attempts by task and outcome (succeeded, failed, retried, cancelled).",
    ["job_type", "outcome"],
)
JOB_DURATION = Histogram(
    "valdrix_job_duration_seconds",
    "Wall time of one job attempt.",
    ["job_type"],
    buckets=DURATION_BUCKETS,
)
JOBS_STUCK = Gauge(
    "valdrix_jobs_stuck",
    "Jobs still queued more than the stuck threshold (1 h) past their scheduled time.",
)
JOBS_STALLED_RECOVERED = Counter(
    "valdrix_jobs_stalled_recovered_total",
    "Jobs re-queued because the worker running them stopped sending heartbeats.",
    ["job_type"],
)
SCHEDULE_LAG = Gauge(
    "valdrix_schedule_lag_seconds",
    "How late due scheduled work is in starting, by tier (0 when nothing is late).",
    ["tier"],
)
SCHEDULE_CLAIM_LAG = Histogram(
    "valdrix_schedule_claim_lag_seconds",
    "Delay between a schedule falling due and the scheduler queueing its job.",
    ["tier"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 3600, 14400),
)

AWS_API_CALLS = Counter(
    "valdrix_aws_api_calls_total",
    "AWS API requests Valdrix made (each Cost Explorer page costs the customer $0.01).",
    ["service", "operation"],
)
AWS_API_ERRORS = Counter(
    "valdrix_aws_api_errors_total",
    "AWS API error responses by service, region and error code (throttling included).",
    ["service", "region", "code"],
)
ZOMBIE_SCAN_LATENCY = Histogram(
    "valdrix_zombie_scan_latency_seconds",
    "Wall time of whole scans, by account size (resources seen: small <100, medium <1000,"
    " large <5000, xlarge).",
    ["account_size"],
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
SCANS_TOTAL = Counter(
    "valdrix_scans_total",
    "Finished scans by outcome (completed, partial, timed_out, failed).",
    ["outcome"],
)
SCAN_UNITS_TOTAL = Counter(
    "valdrix_scan_units_total",
    "Finished scan units (region x detector) by outcome (ok, timed_out, denied, failed).",
    ["detector", "outcome"],
)
FINDINGS_RECORDED_TOTAL = Counter(
    "valdrix_findings_recorded_total",
    "Findings written by scans (new or seen again), by detector.",
    ["detector"],
)
