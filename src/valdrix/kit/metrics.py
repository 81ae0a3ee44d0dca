"""The metrics catalogue: every Prometheus metric Valdrix exports is defined here.

Label values are bounded: job types are task names, tiers are the five tiers, outcomes a fixed
set. Gauges describing shared state (queue depth, stuck jobs, schedule lag) are refreshed from
the database when scraped, so whichever process serves /metrics reports the truth; so are the
counters of shared history (``HistoryCounter``: cost imports, which the command line runs too).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class HistoryCounter(Collector):
    """A counter whose totals are read from the database at scrape time (``set_totals``), not
    counted by the process: every process reports the same value, whichever ran the event.
    It falls only if history is deleted (a tenant removed), so alerts compare values instead
    of trusting ``increase()`` across such a fall."""

    def __init__(self, name: str, documentation: str, labelnames: Iterable[str]) -> None:
        self.name, self.documentation = name, documentation
        self.labelnames = tuple(labelnames)
        self._totals: dict[tuple[str, ...], float] = {}
        REGISTRY.register(self)

    def set_totals(self, totals: Mapping[tuple[str, ...], float]) -> None:
        self._totals = dict(totals)

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for labels, total in sorted(self._totals.items()):
            family.add_metric(list(labels), total)
        yield family


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

API_RATE_LIMITED = Counter(
    "valdrix_api_rate_limited_total",
    "API requests refused (429) by a rate limit: credential (one API key, or one person's"
    " sessions) or tenant (all of a tenant's callers).",
    ["limit"],
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
SCAN_RECOVERY = Histogram(
    "valdrix_scan_recovery_seconds",
    "Per connection, from the first failed, timed-out or interrupted scan to the next completed"
    " one (observed by the process that ends the completed scan).",
    buckets=(60, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200),
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

LLM_REQUESTS = Counter(
    "valdrix_llm_requests_total",
    "LLM provider requests by provider and outcome (ok, rate_limited, server_error, timeout,"
    " unreachable, rejected, circuit_open: refused locally without a request).",
    ["provider", "outcome"],
)
LLM_BUDGET_REJECTIONS = Counter(
    "valdrix_llm_budget_rejections_total",
    "LLM calls refused before reaching a provider because the tenant's daily cap or monthly"
    " limit would be exceeded.",
    ["window"],
)
LLM_CIRCUIT_OPEN = Gauge(
    "valdrix_llm_circuit_open",
    "1 while this process's circuit breaker for the provider is open (calls refused).",
    ["provider"],
)
LLM_SPEND = Gauge(
    "valdrix_llm_spend_per_tenant_usd",
    "Settled LLM spend per tenant in the current day and month (UTC), read at scrape time.",
    ["tenant_id", "window"],
)
LLM_SPEND_SPIKES = Counter(
    "valdrix_llm_spend_spikes_total",
    "Tenant-days whose LLM spend went above 3x the trailing 7-day average and the floor.",
)
LLM_RESERVATIONS_EXPIRED = Counter(
    "valdrix_llm_reservations_expired_total",
    "Budget reservations released by the sweeper because their call never settled (crashed"
    " worker).",
)
LLM_COST = Counter(
    "valdrix_llm_cost_usd_total",
    "Settled LLM cost in USD by provider (provider-reported usage at catalog prices).",
    ["provider"],
)
ANALYSES_TOTAL = Counter(
    "valdrix_analyses_total",
    "Finished analysis attempts by outcome (ready, skipped_budget, provider_unavailable,"
    " failed, disabled).",
    ["outcome"],
)

# Cost imports run in workers, the API and the command line: counted from ``cost_runs``.
COST_RUNS_TOTAL = HistoryCounter(
    "valdrix_cost_runs",
    "Cost imports by source kind (focus_file, aws_cost_explorer) and outcome (committed,"
    " rejected, failed), counted from the database whichever process ran them.",
    ["source_kind", "outcome"],
)
COST_ROWS_INGESTED = HistoryCounter(
    "valdrix_cost_rows_ingested",
    "Source rows (FOCUS lines, Cost Explorer groups) stored by committed cost runs, counted"
    " from the database.",
    ["source_kind"],
)
COST_RESTATEMENTS = HistoryCounter(
    "valdrix_cost_restatements",
    "Readings of a (day, service, account) that moved more than 2 % and the floor since the"
    " previous reading (each is a costs.restatement log event), counted from the database.",
    ["source_kind"],
)

HTTP_REQUESTS = Counter(
    "valdrix_http_requests_total",
    "HTTP requests by method, route template (e.g. /api/v1/scans/{scan_id}; 'unmatched' for"
    " unknown paths) and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "valdrix_http_request_duration_seconds",
    "HTTP request latency by method and route template (SSE streams count until they end).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RLS_CONTEXT_MISSING = Counter(
    "valdrix_rls_context_missing_total",
    "Statements that named a tenant table with no tenant context set (they see and change"
    " nothing under row-level security; any increase is a bug to find), by table.",
    ["table"],
)
REMEDIATION_EXECUTION_TIME = Histogram(
    "valdrix_remediation_execution_time_seconds",
    "Wall time of one remediation action, by action type (fed once remediation ships).",
    ["action_type"],
    buckets=DURATION_BUCKETS,
)
OPEN_FINDINGS = Gauge(
    "valdrix_open_findings",
    "Open findings per tenant, read at scrape time (tenants with none are absent).",
    ["tenant_id"],
)
MONTHLY_WASTE = Gauge(
    "valdrix_monthly_waste_usd",
    "Monthly cost in USD of the open findings per tenant, each dollar counted once where findings"
    " overlap, read at scrape time.",
    ["tenant_id"],
)
LLM_BUDGET_LIMIT = Gauge(
    "valdrix_llm_budget_limit_usd",
    "Each tenant's LLM daily cap and monthly limit (tier default or admin-set), read at scrape"
    " time for tenants with spend this month.",
    ["tenant_id", "window"],
)
QUEUE_OLDEST_DUE = Gauge(
    "valdrix_queue_oldest_due_seconds",
    "How long the oldest due job of each queue has waited (0 when none is waiting).",
    ["queue"],
)
WORKERS_ALIVE = Gauge(
    "valdrix_workers_alive",
    "Worker processes whose heartbeat is fresher than the stall timeout.",
)
WORKERS_STALE = Gauge(
    "valdrix_workers_stale",
    "Registered worker processes whose heartbeat is older than the stall timeout (dead or"
    " hung; their jobs are recovered).",
)
SCHEDULE_SLA = Gauge(
    "valdrix_schedule_sla_seconds",
    "Each tier's scan cadence (its SLA), for comparing with valdrix_schedule_lag_seconds.",
    ["tier"],
)
CREDENTIAL_CACHE = Counter(
    "valdrix_credential_cache",
    "Credential look-ups of this API process by kind (api_key, session, jwt) and result: hit"
    " (resolved in the last 5 s, no database) or miss (read from the database; also every"
    " look-up while the process's LISTEN connection is down).",
    ["credential", "result"],
)
SSE_WATCHERS = Gauge(
    "valdrix_sse_watchers",
    "Scan event streams this API process is serving now.",
)
DB_STATEMENT_SECONDS = Histogram(
    "valdrix_db_statement_seconds",
    "Time the database took per statement, by the repository method that ran it (at most 100"
    " names; statements from elsewhere, and names past the 100th, are `other`; the tenant"
    " setting that begins each transaction is `tenant_context`).",
    ["statement"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TENANT_JOBS = Gauge(
    "valdrix_tenant_jobs",
    "Jobs of a tenant waiting (queued) or taken by a worker (running), for the tenants with the"
    " largest backlog (at most 20), read at scrape time.",
    ["tenant_id", "status"],
)
TENANT_JOBS_FAILED_RECENT = Gauge(
    "valdrix_tenant_jobs_failed_recent",
    "Jobs of a tenant that failed in the last 24 hours, for the same tenants.",
    ["tenant_id"],
)
TENANT_JOB_OLDEST_WAIT = Gauge(
    "valdrix_tenant_job_oldest_wait_seconds",
    "How long the tenant's oldest due job has waited (0 when none is due), for the same tenants.",
    ["tenant_id"],
)
