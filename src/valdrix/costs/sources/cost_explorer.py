"""Reading a connection's daily costs from AWS Cost Explorer (``GetCostAndUsage``).

One query per run: ``lookback_days`` (35 by default) of DAILY UnblendedCost (billed) and
AmortizedCost (effective), following ``NextPageToken`` to the end. Every page is a request that
costs the customer $0.01, so nothing is asked twice and no other Cost Explorer call is made.

Cost Explorer allows two group-bys. A payer (management) account sees its whole organization, so
it groups by LINKED_ACCOUNT then SERVICE and records carry no region; any other account groups by
SERVICE then REGION. ``organizations:DescribeOrganization`` (free) says which one we have.

Preliminary rule: a day is preliminary while Cost Explorer marks its period ``Estimated=true``,
and final once ``Estimated=false``. Cost Explorer keeps restating recent days (estimates are
refreshed at least daily, and credits or refunds can land days later), so every run re-reads the
last 35 days, which spans the whole previous month until a few days into the next, and the run
replaces that window; changes between readings become adjustments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Context, Decimal
from typing import Any

import pyarrow as pa
import structlog
from botocore.exceptions import ClientError

from valdrix.connections.providers.aws import DENIED_CODES, error_code
from valdrix.costs.ingest.records import RECORD_SCHEMA, RecordSpool, SourceBatch, month_start
from valdrix.costs.models import SourceKind

log = structlog.get_logger(__name__)

# What the customer's role must allow for cost imports (shown in the IAM policy).
PERMISSIONS = ("ce:GetCostAndUsage", "organizations:DescribeOrganization")


def role_permissions(provider: str) -> tuple[str, ...]:
    """What Cost Explorer imports call with a connection's role (``connections.needs``)."""
    return PERMISSIONS if provider == "aws" else ()


BILLED_METRIC = "UnblendedCost"
EFFECTIVE_METRIC = "AmortizedCost"
PAYER_GROUPS = ("LINKED_ACCOUNT", "SERVICE")
ACCOUNT_GROUPS = ("SERVICE", "REGION")
# Cost Explorer's names for charges that belong to no region.
NO_REGION = frozenset({"", "NoRegion", "global"})
# RECORD_SCHEMA keeps 18 decimal places; a 38-digit context rounds anything finer, never more.
AMOUNT_SCALE = Decimal("1e-18")
AMOUNT_CONTEXT = Context(prec=38)


def source_key_for(connection_id: object) -> str:
    """One Cost Explorer source per connection (two tenants may connect the same account)."""
    return f"aws-ce:{connection_id}"


def fetch_cost_explorer(
    ce_client: Any,
    organizations_client: Any,
    *,
    account_id: str,
    source_key: str,
    today: dt.date,
    lookback_days: int,
) -> SourceBatch:
    """The account's daily costs in [today - lookback_days, today): a record per day and group."""
    start, end = today - dt.timedelta(days=lookback_days), today
    payer = is_payer(organizations_client, account_id)
    groups = PAYER_GROUPS if payer else ACCOUNT_GROUPS
    rows: list[dict[str, Any]] = []
    pages = 0
    for page in _pages(ce_client, start, end, groups):
        pages += 1
        for period in page.get("ResultsByTime", []):
            day = dt.date.fromisoformat(period["TimePeriod"]["Start"])
            preliminary = bool(period.get("Estimated", False))
            for group in period.get("Groups", []):
                rows.append(_record(day, preliminary, group, account_id=account_id, payer=payer))
    log.info(
        "costs.ce.fetched",
        account_id=account_id,
        payer=payer,
        pages=pages,
        groups=len(rows),
        window_start=start.isoformat(),
        window_end=end.isoformat(),
    )
    return SourceBatch(
        source_kind=SourceKind.aws_cost_explorer.value,
        source_key=source_key,
        window_start=start,
        window_end=end,
        records=RecordSpool.of(pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)),
        rows_read=len(rows),
        # Pages and requests are the same thing today; "requests" is what the customer pays for.
        details={"pages": pages, "payer": payer, "requests": pages, "group_by": list(groups)},
    )


def is_payer(organizations_client: Any, account_id: str) -> bool:
    """Whether ``account_id`` is its organization's management account."""
    try:
        organization: dict[str, Any] = organizations_client.describe_organization()["Organization"]
    except ClientError as exc:
        if error_code(exc) == "AWSOrganizationsNotInUseException":
            log.info("costs.ce.not_payer", account_id=account_id, reason="no_organization")
            return False
        if denied(exc):
            log.info("costs.ce.not_payer", account_id=account_id, reason="access_denied")
            return False
        raise
    payer = str(organization.get("MasterAccountId")) == account_id
    if not payer:
        log.info("costs.ce.not_payer", account_id=account_id, reason="member_account")
    return payer


def denied(exc: ClientError) -> bool:
    """An authorization refusal. Some refusals reach us with no parseable code, only a 403."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(exc) in DENIED_CODES or status == 403


def _pages(
    ce_client: Any, start: dt.date, end: dt.date, groups: tuple[str, str]
) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": [BILLED_METRIC, EFFECTIVE_METRIC],
        "GroupBy": [{"Type": "DIMENSION", "Key": key} for key in groups],
    }
    while True:
        page: dict[str, Any] = ce_client.get_cost_and_usage(**request)
        yield page
        token = page.get("NextPageToken")
        if not token:
            return
        request["NextPageToken"] = token


def _record(
    day: dt.date, preliminary: bool, group: dict[str, Any], *, account_id: str, payer: bool
) -> dict[str, Any]:
    first, second = group["Keys"]
    metrics = group["Metrics"]
    billed = metrics[BILLED_METRIC]
    if payer:
        sub_account, service, region = first, second, None
    else:
        sub_account, service, region = account_id, first, second
    return {
        "day": day,
        "currency": billed["Unit"],
        "provider": "AWS",
        "billing_account_id": account_id,
        "sub_account_id": sub_account,
        "service": service,
        "service_category": None,
        "region": None if region in NO_REGION else region,
        "resource_id": None,
        "resource_type": None,
        "charge_category": "Usage",
        "charge_class": None,
        "pricing_unit": None,
        "tags": None,
        "billing_period_start": month_start(day),  # AWS bills by calendar month
        "billing_period_end": None,  # Cost Explorer says itself when a day is final
        "preliminary": preliminary,
        "billed_cost": _amount(billed),
        "effective_cost": _amount(metrics[EFFECTIVE_METRIC]),
        "list_cost": None,
        "contracted_cost": None,
        "pricing_quantity": None,
        "consumed_quantity": None,
        "source_rows": 1,
    }


def _amount(metric: dict[str, str]) -> Decimal:
    amount = Decimal(metric["Amount"])
    if amount.as_tuple().exponent < -18:  # type: ignore[operator]  # finite amounts: an int
        amount = amount.quantize(AMOUNT_SCALE, context=AMOUNT_CONTEXT)
    return amount
