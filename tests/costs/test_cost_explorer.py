"""Cost Explorer imports end to end: real PostgreSQL, AWS as a moto server on loopback with
Cost Explorer answers injected (each injected result answers one new request, in order).

What a customer relies on: estimated days are marked preliminary until AWS finalises them, a
restated day is kept as a new reading (and alerted on when it moved more than 2 %), a day AWS no
longer reports disappears, every page AWS bills is stored and counted once, a payer account's
costs are split by linked account, and a role that cannot be used records why instead of
retrying forever.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import structlog
from botocore.exceptions import ClientError
from prometheus_client import REGISTRY
from sqlalchemy import select, text, update

from tests.costs.focus_files import focus_rows, write
from tests.costs.helpers import import_file
from tests.fixtures.aws import (
    ACCOUNT_ID,
    HEALTHY_REGION,
    aws_client,
    aws_runtime,
    register_connection,
)
from tests.fixtures.jobs import superuser_rows
from tests.jobs.helpers import retire_tenant_jobs
from valdrix.connections.models import CloudConnection
from valdrix.costs.models import (
    CostAdjustment,
    CostReading,
    CostRun,
    cost_daily,
    cost_monthly,
    cost_records,
)
from valdrix.costs.reading import parse_query, read_costs
from valdrix.costs.scheduling import queue_daily_ingests
from valdrix.costs.sources import cost_explorer_pull
from valdrix.costs.sources.cost_explorer_pull import ingest_cost_explorer
from valdrix.costs.tasks import DAY_SECONDS, schedule_daily
from valdrix.jobs.app import PERIODIC_TASKS, open_job_app
from valdrix.jobs.retry import RetryableError
from valdrix.kit.db import unit_of_work
from valdrix.kit.orm import utcnow
from valdrix.runtime import Runtime
from valdrix.simulator.proxy import FaultProxy
from valdrix.tenancy.service import system_principal

if TYPE_CHECKING:  # imported by name, pytest would try to collect it as a test class
    from tests.conftest import TestDatabase


TODAY = dt.date(2026, 3, 10)
EC2 = "Amazon Elastic Compute Cloud - Compute"
S3 = "Amazon Simple Storage Service"
LAMBDA = "AWS Lambda"
TAX = "Tax"
LINKED_ACCOUNT = "111122223333"
CE_CALLS = {"service": "ce", "operation": "GetCostAndUsage"}
ORGANIZATION_CALLS = {"service": "organizations", "operation": "DescribeOrganization"}


# --- helpers ----------------------------------------------------------------------------------


def days_ago(days: int, today: dt.date = TODAY) -> dt.date:
    return today - dt.timedelta(days=days)


def ce_day(
    day: dt.date, groups: dict[tuple[str, str], str | tuple[str, str]], *, estimated: bool
) -> dict[str, Any]:
    """One day of a grouped answer; each group's amount is its unblended cost, or a pair
    (unblended, amortized)."""
    answer = []
    for keys, amounts in groups.items():
        billed, effective = amounts if isinstance(amounts, tuple) else (amounts, amounts)
        answer.append(
            {
                "Keys": list(keys),
                "Metrics": {
                    "UnblendedCost": {"Amount": billed, "Unit": "USD"},
                    "AmortizedCost": {"Amount": effective, "Unit": "USD"},
                },
            }
        )
    end = day + dt.timedelta(days=1)
    return {
        "TimePeriod": {"Start": day.isoformat(), "End": end.isoformat()},
        "Total": {},
        "Groups": answer,
        "Estimated": estimated,
    }


def ce_page(*days: dict[str, Any], next_page_token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"ResultsByTime": list(days), "DimensionValueAttributes": []}
    if next_page_token:
        page["NextPageToken"] = next_page_token
    return page


def inject(endpoint: str, *pages: dict[str, Any], account_id: str = ACCOUNT_ID) -> None:
    """Queue Cost Explorer answers to requests made as ``account_id``: each answers the next
    request with new parameters."""
    response = httpx.post(
        f"{endpoint}/moto-api/static/ce/cost-and-usage-results",
        json={"results": list(pages), "account_id": account_id},
    )
    response.raise_for_status()


@pytest.fixture
def ce_requests(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The parameters of every GetCostAndUsage request the imports send."""
    seen: list[dict[str, Any]] = []
    fetch = cost_explorer_pull.fetch_cost_explorer

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(copy.deepcopy(params))

    def spying_fetch(ce_client: Any, organizations_client: Any, **kwargs: Any) -> Any:
        ce_client.meta.events.register("provide-client-params.ce.GetCostAndUsage", record)
        return fetch(ce_client, organizations_client, **kwargs)

    monkeypatch.setattr(cost_explorer_pull, "fetch_cost_explorer", spying_fetch)
    return seen


def api_calls(labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value("valdrix_aws_api_calls_total", labels) or 0.0


def group_by(request: dict[str, Any]) -> list[str]:
    return [group["Key"] for group in request["GroupBy"]]


async def new_connection(runtime: Runtime, make_tenant: Any) -> tuple[uuid.UUID, uuid.UUID]:
    tenant = await make_tenant()
    connection = await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])
    return tenant.tenant_id, connection.id


async def daily_costs(runtime: Runtime, tenant_id: uuid.UUID) -> dict[tuple[dt.date, str], Any]:
    """The tenant's ``cost_daily`` rows by (day, service)."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        rows = (await session.execute(select(cost_daily))).mappings().all()
    return {(row["day"], row["service"]): row for row in rows}


async def record_keys(runtime: Runtime, tenant_id: uuid.UUID) -> set[tuple[dt.date, str]]:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        rows = (await session.execute(select(cost_records.c.day, cost_records.c.service))).all()
    return {(day, service) for day, service in rows}


async def tenant_rows(runtime: Runtime, tenant_id: uuid.UUID, model: Any) -> list[Any]:
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return list(await session.scalars(select(model)))


def log_events(captured: Sequence[Mapping[str, Any]], event: str) -> list[Mapping[str, Any]]:
    return [entry for entry in captured if entry["event"] == event]


# --- imports ----------------------------------------------------------------------------------


async def test_estimated_days_stay_preliminary_until_cost_explorer_restates_them(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any, ce_requests: list[dict[str, Any]]
) -> None:
    importer = aws_runtime(runtime, aws_endpoint)
    tenant_id, connection_id = await new_connection(importer, make_tenant)
    ec2, lambda_, s3 = (EC2, "us-east-1"), (LAMBDA, "us-east-1"), (S3, "us-east-1")
    tax = (TAX, "NoRegion")
    inject(
        aws_endpoint,
        ce_page(
            ce_day(days_ago(3), {ec2: "40.00", lambda_: "0.50"}, estimated=False),
            ce_day(days_ago(2), {ec2: ("100.00", "90.00"), tax: "3.10"}, estimated=True),
            ce_day(days_ago(1), {s3: "200.00"}, estimated=True),
        ),
    )

    first = await ingest_cost_explorer(importer, tenant_id, connection_id, today=TODAY)

    assert first.status == "committed"
    assert (first.window_start, first.window_end) == (days_ago(35), TODAY)
    assert first.rows_read == 5
    assert first.details == {
        "pages": 1,
        "payer": False,
        "requests": 1,
        "group_by": ["SERVICE", "REGION"],
    }
    [request] = ce_requests
    assert request["TimePeriod"] == {"Start": days_ago(35).isoformat(), "End": TODAY.isoformat()}
    assert request["Granularity"] == "DAILY"
    assert request["Metrics"] == ["UnblendedCost", "AmortizedCost"]
    assert group_by(request) == ["SERVICE", "REGION"]
    daily = await daily_costs(importer, tenant_id)
    assert {key: row["preliminary"] for key, row in daily.items()} == {
        (days_ago(3), EC2): False,
        (days_ago(3), LAMBDA): False,
        (days_ago(2), EC2): True,
        (days_ago(2), TAX): True,
        (days_ago(1), S3): True,
    }
    compute = daily[(days_ago(2), EC2)]
    assert (compute["billed_cost"], compute["effective_cost"], compute["list_cost"]) == (
        Decimal("100.00"),
        Decimal("90.00"),
        None,
    )
    assert (compute["provider"], compute["billing_account_id"], compute["sub_account_id"]) == (
        "AWS",
        ACCOUNT_ID,
        ACCOUNT_ID,
    )
    assert (compute["region"], compute["currency"], compute["charge_category"]) == (
        "us-east-1",
        "USD",
        "Usage",
    )
    assert daily[(days_ago(2), TAX)]["region"] is None  # "NoRegion"

    # The next day: AWS has finalised the estimates. EC2 moved 5 % (an adjustment), S3 1 % (a
    # reading only), and the 50-cent Lambda day is gone (below the alert floor).
    tomorrow = TODAY + dt.timedelta(days=1)
    inject(
        aws_endpoint,
        ce_page(
            ce_day(days_ago(3), {ec2: "40.00"}, estimated=False),
            ce_day(days_ago(2), {ec2: ("105.00", "94.50"), tax: "3.10"}, estimated=False),
            ce_day(days_ago(1), {s3: "202.00"}, estimated=False),
            ce_day(TODAY, {ec2: "99.00"}, estimated=True),
        ),
    )
    with structlog.testing.capture_logs() as captured:
        second = await ingest_cost_explorer(importer, tenant_id, connection_id, today=tomorrow)

    assert second.status == "committed"
    assert second.adjustments == 1
    daily = await daily_costs(importer, tenant_id)
    assert {key: (row["billed_cost"], row["preliminary"]) for key, row in daily.items()} == {
        (days_ago(3), EC2): (Decimal("40.00"), False),
        (days_ago(2), EC2): (Decimal("105.00"), False),
        (days_ago(2), TAX): (Decimal("3.10"), False),
        (days_ago(1), S3): (Decimal("202.00"), False),
        (TODAY, EC2): (Decimal("99.00"), True),
    }
    assert (days_ago(3), LAMBDA) not in await record_keys(importer, tenant_id)
    [adjustment] = await tenant_rows(importer, tenant_id, CostAdjustment)
    assert (adjustment.day, adjustment.service, adjustment.account) == (
        days_ago(2),
        EC2,
        ACCOUNT_ID,
    )
    assert (adjustment.old_billed_cost, adjustment.new_billed_cost) == (
        Decimal("100.00"),
        Decimal("105.00"),
    )
    assert (adjustment.old_preliminary, adjustment.new_preliminary) == (True, False)
    assert (adjustment.run_id, adjustment.previous_run_id) == (second.id, first.id)
    [restatement] = log_events(captured, "costs.restatement")
    assert (restatement["service"], restatement["day"]) == (EC2, days_ago(2).isoformat())
    assert Decimal(restatement["old_billed_cost"]) == Decimal("100.00")
    assert Decimal(restatement["new_billed_cost"]) == Decimal("105.00")
    s3_readings = [
        reading.billed_cost
        for reading in await tenant_rows(importer, tenant_id, CostReading)
        if (reading.day, reading.service) == (days_ago(1), S3)
    ]
    assert sorted(s3_readings) == [Decimal("200.00"), Decimal("202.00")]


async def test_every_page_is_stored_and_counted_once(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any, ce_requests: list[dict[str, Any]]
) -> None:
    importer = aws_runtime(runtime, aws_endpoint)
    tenant_id, connection_id = await new_connection(importer, make_tenant)
    inject(
        aws_endpoint,
        ce_page(
            ce_day(days_ago(2), {(EC2, "eu-west-1"): "12.5"}, estimated=False),
            next_page_token="page-2",
        ),
        ce_page(ce_day(days_ago(1), {(S3, "eu-west-1"): "7.25"}, estimated=False)),
    )
    ce_before, organizations_before = api_calls(CE_CALLS), api_calls(ORGANIZATION_CALLS)

    run = await ingest_cost_explorer(importer, tenant_id, connection_id, today=TODAY)

    assert api_calls(CE_CALLS) - ce_before == 2
    assert api_calls(ORGANIZATION_CALLS) - organizations_before == 1
    assert (run.status, run.details["pages"], run.details["requests"]) == ("committed", 2, 2)
    first, second = ce_requests
    assert "NextPageToken" not in first
    assert second == {**first, "NextPageToken": "page-2"}
    daily = await daily_costs(importer, tenant_id)
    assert {key: row["billed_cost"] for key, row in daily.items()} == {
        (days_ago(2), EC2): Decimal("12.5"),
        (days_ago(1), S3): Decimal("7.25"),
    }


async def test_payer_account_costs_are_split_by_linked_account(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any, ce_requests: list[dict[str, Any]]
) -> None:
    importer = aws_runtime(runtime, aws_endpoint)
    tenant_id, connection_id = await new_connection(importer, make_tenant)
    # The role's account manages the organization.
    aws_client(aws_endpoint, "organizations", "us-east-1").create_organization(FeatureSet="ALL")
    inject(
        aws_endpoint,
        ce_page(
            ce_day(
                days_ago(1),
                {(LINKED_ACCOUNT, EC2): "30.00", (ACCOUNT_ID, "AWS Support (Business)"): "100.00"},
                estimated=False,
            )
        ),
    )

    run = await ingest_cost_explorer(importer, tenant_id, connection_id, today=TODAY)

    assert run.status == "committed"
    assert run.details["payer"] is True
    [request] = ce_requests
    assert group_by(request) == ["LINKED_ACCOUNT", "SERVICE"]
    daily = await daily_costs(importer, tenant_id)
    assert {
        (service, row["billing_account_id"], row["sub_account_id"], row["region"])
        for (_, service), row in daily.items()
    } == {
        (EC2, ACCOUNT_ID, LINKED_ACCOUNT, None),
        ("AWS Support (Business)", ACCOUNT_ID, ACCOUNT_ID, None),
    }


async def test_an_account_that_may_not_read_its_organization_is_imported_as_one_account(
    runtime: Runtime,
    aws_endpoint: str,
    fault_proxy: Callable[..., FaultProxy],
    make_tenant: Any,
    ce_requests: list[dict[str, Any]],
) -> None:
    aws_client(aws_endpoint, "organizations", "us-east-1").create_organization(FeatureSet="ALL")
    proxy = fault_proxy(deny_operations={"DescribeOrganization"})
    importer = aws_runtime(runtime, proxy.url)
    tenant_id, connection_id = await new_connection(importer, make_tenant)
    inject(aws_endpoint, ce_page(ce_day(days_ago(1), {(EC2, "us-east-1"): "1"}, estimated=True)))

    with structlog.testing.capture_logs() as captured:
        run = await ingest_cost_explorer(importer, tenant_id, connection_id, today=TODAY)

    assert (run.status, run.details["payer"]) == ("committed", False)
    [request] = ce_requests
    assert group_by(request) == ["SERVICE", "REGION"]
    [decision] = log_events(captured, "costs.ce.not_payer")
    assert decision["reason"] == "access_denied"


# --- failures ---------------------------------------------------------------------------------


async def test_denied_cost_explorer_records_a_failed_run_and_stores_nothing(
    runtime: Runtime,
    aws_endpoint: str,
    fault_proxy: Callable[..., FaultProxy],
    make_tenant: Any,
) -> None:
    proxy = fault_proxy(deny_operations={"GetCostAndUsage"})
    importer = aws_runtime(runtime, proxy.url)
    tenant_id, connection_id = await new_connection(importer, make_tenant)

    run = await ingest_cost_explorer(importer, tenant_id, connection_id, today=TODAY)

    assert run.status == "failed"
    assert run.source_key == f"aws-ce:{connection_id}"
    assert "access denied calling GetCostAndUsage" in run.errors[0]["reason"]
    assert await daily_costs(importer, tenant_id) == {}


async def test_unknown_and_disabled_connections_record_a_failed_run(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any
) -> None:
    importer = aws_runtime(runtime, aws_endpoint)
    tenant_id, connection_id = await new_connection(importer, make_tenant)
    async with unit_of_work(importer.sessions, tenant_id) as session:
        await session.execute(update(CloudConnection).values(disabled_at=utcnow()))

    disabled = await ingest_cost_explorer(importer, tenant_id, connection_id, today=TODAY)
    unknown = await ingest_cost_explorer(importer, tenant_id, uuid.uuid4(), today=TODAY)

    assert (disabled.status, disabled.errors) == (
        "failed",
        [{"reason": "the connection is disabled"}],
    )
    assert (unknown.status, unknown.errors) == (
        "failed",
        [{"reason": "the connection does not exist"}],
    )


async def test_throttling_is_retried_and_recorded_only_once_the_job_gives_up(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    importer = aws_runtime(runtime, aws_endpoint)
    tenant_id, connection_id = await new_connection(importer, make_tenant)

    def throttled(*_: Any, **__: Any) -> Any:
        error = {"Code": "LimitExceededException", "Message": "Rate exceeded"}
        answer = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        raise ClientError(answer, "GetCostAndUsage")

    monkeypatch.setattr(cost_explorer_pull, "fetch_cost_explorer", throttled)

    with pytest.raises(RetryableError):
        await ingest_cost_explorer(
            importer, tenant_id, connection_id, today=TODAY, final_attempt=False
        )
    assert await tenant_rows(importer, tenant_id, CostRun) == []
    with pytest.raises(RetryableError):
        await ingest_cost_explorer(importer, tenant_id, connection_id, today=TODAY)
    [run] = await tenant_rows(importer, tenant_id, CostRun)
    assert run.status == "failed"
    assert "LimitExceededException" in run.errors[0]["reason"]


# --- scheduling -------------------------------------------------------------------------------


async def test_daily_schedule_queues_one_import_per_active_aws_connection(
    runtime: Runtime, database: TestDatabase, make_tenant: Any
) -> None:
    await open_job_app(runtime.urls.app)
    tenant = await make_tenant()
    active = [
        (await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])).id
        for _ in range(2)
    ]
    retired = await register_connection(runtime, tenant.tenant_id, regions=[HEALTHY_REGION])
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        connection = await session.get(CloudConnection, retired.id)
        assert connection is not None
        connection.disabled_at = utcnow()

    try:
        queued = await queue_daily_ingests(runtime)
        queued_again = await queue_daily_ingests(runtime)
        jobs = await superuser_rows(
            database,
            "SELECT queueing_lock, queue_name, args FROM procrastinate_jobs"
            " WHERE task_name = 'costs.ingest' AND status = 'todo' AND args->>'tenant_id' = %s",
            str(tenant.tenant_id),
        )
    finally:
        # Every tenant with an AWS connection got a job: leave none for later worker tests.
        async with unit_of_work(runtime.sessions, None) as session:
            tenants = set(
                await session.scalars(
                    text("SELECT DISTINCT tenant_id FROM valdrix_cost_explorer_targets()")
                )
            )
        for tenant_id in tenants:
            await retire_tenant_jobs(runtime, tenant_id)

    assert queued >= len(active)
    assert queued_again == 0  # each connection's queueing lock holds its queued import
    assert sorted((lock, queue, args["target_id"]) for lock, queue, args in jobs) == sorted(
        (f"costs:{connection_id}", "costs", str(connection_id)) for connection_id in active
    )
    assert (schedule_daily, DAY_SECONDS) in [
        (task, interval(runtime.settings)) for task, interval in PERIODIC_TASKS
    ]


# --- precedence ---------------------------------------------------------------------------------


async def test_focus_data_wins_over_cost_explorer_for_the_same_account_and_month(
    runtime: Runtime,
    aws_endpoint: str,
    fault_proxy: Callable[..., FaultProxy],
    make_tenant: Any,
    client: httpx.AsyncClient,
    tmp_path: Any,
) -> None:
    proxy = fault_proxy(deny_operations={"DescribeOrganization"})  # one account, not a payer
    importer = aws_runtime(runtime, proxy.url)
    tenant = await make_tenant()
    connection = await register_connection(importer, tenant.tenant_id, regions=[HEALTHY_REGION])
    yesterday = days_ago(1)
    cost_explorer_day = ce_page(ce_day(yesterday, {(EC2, "us-east-1"): "30.00"}, estimated=True))
    inject(aws_endpoint, cost_explorer_day)
    await ingest_cost_explorer(importer, tenant.tenant_id, connection.id, today=TODAY)
    focus = focus_rows(yesterday.replace(day=1), {yesterday: Decimal("31.00")}, account=ACCOUNT_ID)

    run = await import_file(client, tenant, write(tmp_path / "march.csv", focus))
    inject(aws_endpoint, cost_explorer_day)
    again = await ingest_cost_explorer(importer, tenant.tenant_id, connection.id, today=TODAY)

    assert run["details"]["superseded"] == [
        {"source": f"aws-ce:{connection.id}", "account": ACCOUNT_ID, "periods": ["2026-03-01"]}
    ]
    assert again.records_written == 0
    assert again.totals == {}, "the run's totals are of what it stored"
    daily = await daily_costs(importer, tenant.tenant_id)
    assert sum(row["billed_cost"] for row in daily.values()) == Decimal("31.00")


async def test_a_window_replacing_part_of_a_month_leaves_the_month_summed_with_its_other_days(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any
) -> None:
    importer = aws_runtime(runtime, aws_endpoint)
    tenant_id, connection_id = await new_connection(importer, make_tenant)
    ec2, s3 = (EC2, "us-east-1"), (S3, "us-east-1")
    inject(
        aws_endpoint,
        ce_page(
            ce_day(dt.date(2026, 2, 10), {ec2: "10.00"}, estimated=False),
            ce_day(dt.date(2026, 3, 2), {ec2: "20.00"}, estimated=False),
            ce_day(dt.date(2026, 3, 8), {s3: "5.00"}, estimated=False),
        ),
    )
    await ingest_cost_explorer(importer, tenant_id, connection_id, today=TODAY)
    # A month later the window starts on 5 March: 2 March stays, 8 March is restated.
    inject(
        aws_endpoint,
        ce_page(
            ce_day(dt.date(2026, 3, 8), {s3: "7.00"}, estimated=False),
            ce_day(dt.date(2026, 3, 20), {ec2: "1.00"}, estimated=False),
        ),
    )
    later = await ingest_cost_explorer(
        importer, tenant_id, connection_id, today=dt.date(2026, 4, 9)
    )
    assert later.window_start == dt.date(2026, 3, 5)

    async def by_service_and_month(start: dt.date, end: dt.date) -> dict[tuple[str, str], str]:
        query = parse_query(start, end, "service,month", final_before=dt.date(2026, 4, 9))
        async with unit_of_work(importer.sessions, tenant_id) as session:
            answer = await read_costs(session, system_principal(tenant_id), query)
        return {(row["service"], str(row["month"])): row["billed_cost"] for row in answer.rows}

    # Whole months (read from the monthly sums) and the same months cut a day short at either
    # end (their partial months read from the days) give the same figures.
    expected = {
        (EC2, "2026-02-01"): "10",
        (EC2, "2026-03-01"): "21",
        (S3, "2026-03-01"): "7",
    }
    assert await by_service_and_month(dt.date(2026, 2, 1), dt.date(2026, 5, 1)) == expected
    assert await by_service_and_month(dt.date(2026, 2, 2), dt.date(2026, 4, 30)) == expected


@pytest.mark.parametrize("payer_first", [True, False], ids=["payer-first", "member-first"])
async def test_a_linked_accounts_own_cost_explorer_yields_to_its_payers(
    runtime: Runtime, aws_endpoint: str, make_tenant: Any, payer_first: bool
) -> None:
    """The management account and a member account are both connected (to scan both): the
    member's charges are in the payer's Cost Explorer and in its own. They count once, from
    the payer, whichever import runs first."""
    importer = aws_runtime(runtime, aws_endpoint)
    tenant = await make_tenant()
    aws_client(aws_endpoint, "organizations", "us-east-1").create_organization(FeatureSet="ALL")
    payer = await register_connection(importer, tenant.tenant_id, regions=[HEALTHY_REGION])
    member = await register_connection(
        importer,
        tenant.tenant_id,
        regions=[HEALTHY_REGION],
        role_arn=f"arn:aws:iam::{LINKED_ACCOUNT}:role/ValdrixScanRole",
    )
    # The simulator answers a request it has answered before as before: each order has its
    # own window. The payer's window holds one day; the member's an earlier one too.
    today = TODAY if payer_first else TODAY + dt.timedelta(days=60)
    yesterday, earlier = days_ago(1, today), days_ago(2, today)
    payer_page = ce_page(
        ce_day(
            yesterday, {(LINKED_ACCOUNT, EC2): "30.00", (ACCOUNT_ID, S3): "100.00"}, estimated=False
        )
    )
    member_page = ce_page(
        ce_day(earlier, {(EC2, "us-east-1"): "20.00"}, estimated=False),
        ce_day(yesterday, {(EC2, "us-east-1"): "30.00"}, estimated=False),
    )
    pulls = [(payer, ACCOUNT_ID, payer_page), (member, LINKED_ACCOUNT, member_page)]

    runs = []
    for connection, account, page in pulls if payer_first else reversed(pulls):
        inject(aws_endpoint, page, account_id=account)
        runs.append(
            await ingest_cost_explorer(importer, tenant.tenant_id, connection.id, today=today)
        )
    # The member's next daily run reads the same answer again.
    again = await ingest_cost_explorer(importer, tenant.tenant_id, member.id, today=today)

    assert [run.status for run in [*runs, again]] == ["committed"] * 3
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        daily = (await session.execute(select(cost_daily))).mappings().all()
    by_account = {
        (row["day"], row["billing_account_id"], row["sub_account_id"]): row["billed_cost"]
        for row in daily
    }
    # Yesterday from the payer; the day before, which the payer's window does not hold, from
    # the member itself.
    assert by_account == {
        (yesterday, ACCOUNT_ID, LINKED_ACCOUNT): Decimal("30.00"),
        (yesterday, ACCOUNT_ID, ACCOUNT_ID): Decimal("100.00"),
        (earlier, LINKED_ACCOUNT, LINKED_ACCOUNT): Decimal("20.00"),
    }
    assert sum(await monthly_costs(importer, tenant.tenant_id)) == Decimal("150.00")
    assert [run.details["payer"] for run in runs] == [payer_first, not payer_first]
    assert again.records_written == 1
    if not payer_first:
        assert runs[1].details["superseded"] == [
            {
                "source": f"aws-ce:{member.id}",
                "account": LINKED_ACCOUNT,
                "periods": [yesterday.replace(day=1).isoformat()],
            }
        ]
    # Yielding a day to the payer is not a restatement of it.
    async with unit_of_work(runtime.sessions, tenant.tenant_id) as session:
        assert (await session.scalars(select(CostAdjustment))).all() == []


async def monthly_costs(runtime: Runtime, tenant_id: uuid.UUID) -> list[Decimal]:
    """The billed cost of each of the tenant's ``cost_monthly`` rows."""
    async with unit_of_work(runtime.sessions, tenant_id) as session:
        return list(await session.scalars(select(cost_monthly.c.billed_cost)))
