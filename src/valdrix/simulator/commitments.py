"""Reserved Instances and Savings Plans on the simulated AWS, served over HTTP where moto has
none: EC2 ``DescribeReservedInstances``, RDS ``DescribeReservedDBInstances``, Savings Plans
``DescribeSavingsPlans`` and Cost Explorer's ``GetReservationUtilization`` and
``GetSavingsPlansUtilizationDetails``, in the wire formats botocore parses (EC2 and RDS query
XML, REST JSON, JSON 1.1).

AWS sells commitments only for a term starting now, so the simulator takes them as declared:
``POST /valdrix-simulator/commitments`` with ``{"commitments": [...]}`` (``SimulatedCommitment``
fields, times ISO 8601), each with the share of its hours used, from which the utilization
reports are worked out; ``.../untag`` with ``{"key"}`` removes a tag from all of them.
``/moto-api/reset`` forgets them with the rest. One simulated account.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import httpx

from valdrix.simulator.proxy import describe

CONTROL_PATH = "/valdrix-simulator/commitments"
Kind = Literal["ec2-reserved-instance", "rds-reserved-instance", "savings-plan"]
# Cost Explorer's SERVICE values for the reservations the simulator sells.
CE_SERVICE = {
    "ec2-reserved-instance": "Amazon Elastic Compute Cloud - Compute",
    "rds-reserved-instance": "Amazon Relational Database Service",
}
Answer = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class SimulatedCommitment:
    kind: Kind
    commitment_id: str
    region: str  # a Compute Savings Plan's is "global"
    start: str
    end: str
    # A reservation's instance type or DB class; a Savings Plan's type (Compute, EC2Instance).
    offering: str
    # A reservation's recurring hourly charge per instance; a Savings Plan's hourly commitment.
    hourly_usd: float
    count: int = 1
    upfront_usd: float = 0.0
    used_percent: float = 100.0
    # What the used hours would have cost on demand, per hour of use (per instance).
    on_demand_hourly_usd: float = 0.0
    product: str = "Linux/UNIX"
    tags: dict[str, str] = field(default_factory=dict)

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        return _time(self.start), _time(self.end)

    @property
    def term_hours(self) -> float:
        start, end = self.window()
        return (end - start).total_seconds() / 3600


class CommitmentStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commitments: list[SimulatedCommitment] = []

    def add(self, commitments: Iterable[SimulatedCommitment]) -> None:
        with self._lock:
            self._commitments += list(commitments)

    def untag(self, key: str) -> None:
        with self._lock:
            self._commitments = [
                dataclasses.replace(c, tags={k: v for k, v in c.tags.items() if k != key})
                for c in self._commitments
            ]

    def clear(self) -> None:
        with self._lock:
            self._commitments = []

    def of(self, kind: Kind, region: str | None = None) -> list[SimulatedCommitment]:
        with self._lock:
            return [c for c in self._commitments if c.kind == kind and region in (None, c.region)]


STORE = CommitmentStore()


def seed_commitments(endpoint_url: str, commitments: Iterable[SimulatedCommitment]) -> None:
    """Declare commitments on the simulator at ``endpoint_url``."""
    declared = {"commitments": [asdict(c) for c in commitments]}
    httpx.post(endpoint_url + CONTROL_PATH, json=declared, timeout=30).raise_for_status()


def untag_commitments(endpoint_url: str, key: str) -> None:
    """Remove tag ``key`` from every commitment on the simulator at ``endpoint_url``."""
    httpx.post(
        f"{endpoint_url}{CONTROL_PATH}/untag", json={"key": key}, timeout=30
    ).raise_for_status()


def answer(method: str, path: str, headers: Any, body: bytes, now: dt.datetime) -> Answer | None:
    """The simulator's answer to a request about commitments; None for anything else."""
    if path.startswith("/moto-api/reset"):
        STORE.clear()
        return None  # moto resets the rest
    if path.startswith(CONTROL_PATH + "/untag") and method == "POST":
        STORE.untag(json.loads(body)["key"])  # no AWS API untags a reservation's tags
        return 200, {"Content-Type": "application/json"}, b"{}"
    if path == CONTROL_PATH and method == "POST":
        declared = json.loads(body or b"{}").get("commitments", [])
        STORE.add(SimulatedCommitment(**item) for item in declared)
        return 200, {"Content-Type": "application/json"}, b"{}"
    facts = describe(headers, path, body)
    # Savings Plans speaks REST JSON: the operation is the path.
    operation = path.strip("/") if facts.service == "savingsplans" else facts.operation
    handler = _HANDLERS.get((facts.service, operation))
    if handler is None:
        return None
    return handler(facts.region, _params(facts.service, body), now)


def _params(service: str, body: bytes) -> dict[str, Any]:
    if service in ("ec2", "rds"):
        return {k: v[0] for k, v in parse_qs(body.decode()).items()}
    loaded: dict[str, Any] = json.loads(body or b"{}")
    return loaded


# --- EC2 and RDS reservations ---------------------------------------------------------------


def _reserved_instances(region: str, params: dict[str, Any], now: dt.datetime) -> Answer:
    wanted = {v for k, v in params.items() if k.startswith("Filter.1.Value.")}
    items = []
    for ri in STORE.of("ec2-reserved-instance", region):
        state = _state(ri, now)
        if wanted and state not in wanted:
            continue
        tags = "".join(
            f"<item><key>{escape(k)}</key><value>{escape(v)}</value></item>"
            for k, v in ri.tags.items()
        )
        items.append(
            f"<item><reservedInstancesId>{ri.commitment_id}</reservedInstancesId>"
            f"<instanceType>{ri.offering}</instanceType><start>{ri.start}</start>"
            f"<end>{ri.end}</end><duration>{int(ri.term_hours * 3600)}</duration>"
            f"<usagePrice>0.0</usagePrice><fixedPrice>{ri.upfront_usd}</fixedPrice>"
            f"<instanceCount>{ri.count}</instanceCount>"
            f"<productDescription>{escape(ri.product)}</productDescription>"
            f"<state>{state}</state><tagSet>{tags}</tagSet>"
            f"<instanceTenancy>default</instanceTenancy><currencyCode>USD</currencyCode>"
            f"<offeringType>{_offering_type(ri)}</offeringType>"
            f"<recurringCharges><item><frequency>Hourly</frequency>"
            f"<amount>{ri.hourly_usd}</amount></item></recurringCharges>"
            f"<offeringClass>standard</offeringClass><scope>Region</scope></item>"
        )
    xml = (
        '<DescribeReservedInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        "<requestId>simulated</requestId>"
        f"<reservedInstancesSet>{''.join(items)}</reservedInstancesSet>"
        "</DescribeReservedInstancesResponse>"
    )
    return 200, {"Content-Type": "text/xml"}, xml.encode()


def _reserved_db_instances(region: str, params: dict[str, Any], now: dt.datetime) -> Answer:
    items = "".join(
        f"<ReservedDBInstance><ReservedDBInstanceId>{ri.commitment_id}</ReservedDBInstanceId>"
        f"<LeaseId>{ri.commitment_id}</LeaseId>"
        f"<DBInstanceClass>{ri.offering}</DBInstanceClass><StartTime>{ri.start}</StartTime>"
        f"<Duration>{int(ri.term_hours * 3600)}</Duration>"
        f"<FixedPrice>{ri.upfront_usd}</FixedPrice><UsagePrice>0.0</UsagePrice>"
        f"<CurrencyCode>USD</CurrencyCode><DBInstanceCount>{ri.count}</DBInstanceCount>"
        f"<ProductDescription>{escape(ri.product)}</ProductDescription>"
        f"<OfferingType>{_offering_type(ri)}</OfferingType><MultiAZ>false</MultiAZ>"
        f"<State>{_state(ri, now)}</State><RecurringCharges><RecurringCharge>"
        f"<RecurringChargeAmount>{ri.hourly_usd}</RecurringChargeAmount>"
        f"<RecurringChargeFrequency>Hourly</RecurringChargeFrequency></RecurringCharge>"
        f"</RecurringCharges><ReservedDBInstanceArn>"
        f"arn:aws:rds:{region}:123456789012:ri:{ri.commitment_id}</ReservedDBInstanceArn>"
        f"</ReservedDBInstance>"
        for ri in STORE.of("rds-reserved-instance", region)
    )
    xml = (
        '<DescribeReservedDBInstancesResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">'
        f"<DescribeReservedDBInstancesResult><ReservedDBInstances>{items}</ReservedDBInstances>"
        "</DescribeReservedDBInstancesResult>"
        "<ResponseMetadata><RequestId>simulated</RequestId></ResponseMetadata>"
        "</DescribeReservedDBInstancesResponse>"
    )
    return 200, {"Content-Type": "text/xml"}, xml.encode()


# --- Savings Plans --------------------------------------------------------------------------


def _savings_plans(region: str, params: dict[str, Any], now: dt.datetime) -> Answer:
    states = set(params.get("states") or [])
    plans = [
        {
            "savingsPlanId": plan.commitment_id,
            "savingsPlanArn": _plan_arn(plan),
            "start": plan.start,
            "end": plan.end,
            "state": _state(plan, now),
            "region": "" if plan.region == "global" else plan.region,
            "savingsPlanType": plan.offering,
            "paymentOption": _offering_type(plan),
            "productTypes": ["EC2", "Fargate", "Lambda"],
            "currency": "USD",
            "commitment": f"{plan.hourly_usd}",
            "upfrontPaymentAmount": f"{plan.upfront_usd}",
            "recurringPaymentAmount": f"{plan.hourly_usd}",
            "termDurationInSeconds": int(plan.term_hours * 3600),
            "tags": plan.tags,
        }
        for plan in STORE.of("savings-plan")
        if not states or _state(plan, now) in states
    ]
    return _json({"savingsPlans": plans})


# --- Cost Explorer utilization ---------------------------------------------------------------


def _reservation_utilization(region: str, params: dict[str, Any], now: dt.datetime) -> Answer:
    period = params["TimePeriod"]
    services = set(params.get("Filter", {}).get("Dimensions", {}).get("Values", []))
    groups = []
    for kind, service in CE_SERVICE.items():
        if services and service not in services:
            continue
        for ri in STORE.of(kind):  # type: ignore[arg-type]
            hours = _hours_in(ri, period) * ri.count
            if not hours:
                continue
            used = hours * ri.used_percent / 100
            amortized = hours * (ri.hourly_usd + ri.upfront_usd / ri.term_hours)
            on_demand = used * ri.on_demand_hourly_usd
            groups.append(
                {
                    "Key": "SUBSCRIPTION_ID",
                    "Value": ri.commitment_id,
                    "Attributes": {
                        "leaseId": ri.commitment_id,
                        "region": ri.region,
                        "instanceType": ri.offering,
                        "numberOfInstances": str(ri.count),
                        "startDateTime": ri.start,
                        "endDateTime": ri.end,
                        "platform": ri.product,
                        "subscriptionStatus": "Active",
                    },
                    "Utilization": {
                        "UtilizationPercentage": _money(ri.used_percent),
                        "PurchasedHours": _money(hours),
                        "TotalActualHours": _money(used),
                        "UnusedHours": _money(hours - used),
                        "TotalAmortizedFee": _money(amortized),
                        "OnDemandCostOfRIHoursUsed": _money(on_demand),
                        "NetRISavings": _money(on_demand - amortized),
                    },
                }
            )
    return _json({"UtilizationsByTime": [{"TimePeriod": period, "Groups": groups}], "Total": {}})


def _savings_plans_utilization(region: str, params: dict[str, Any], now: dt.datetime) -> Answer:
    period = params["TimePeriod"]
    details = []
    for plan in STORE.of("savings-plan"):
        hours = _hours_in(plan, period)
        if not hours:
            continue
        total = hours * plan.hourly_usd
        used = total * plan.used_percent / 100
        # The usage the plan covered, at on-demand rates: its per-hour value times hours used.
        on_demand = hours * plan.used_percent / 100 * plan.on_demand_hourly_usd
        details.append(
            {
                "SavingsPlanArn": _plan_arn(plan),
                "Attributes": {
                    "SavingsPlansType": plan.offering,
                    "Region": plan.region,
                    "StartDateTime": plan.start,
                    "EndDateTime": plan.end,
                    "RecurringHourlyFee": f"{plan.hourly_usd}",
                },
                "Utilization": {
                    "TotalCommitment": _money(total),
                    "UsedCommitment": _money(used),
                    "UnusedCommitment": _money(total - used),
                    "UtilizationPercentage": _money(plan.used_percent),
                },
                "Savings": {
                    "NetSavings": _money(on_demand - total),
                    "OnDemandCostEquivalent": _money(on_demand),
                },
                "AmortizedCommitment": {"TotalAmortizedCommitment": _money(total)},
            }
        )
    return _json({"SavingsPlansUtilizationDetails": details, "TimePeriod": period})


_HANDLERS: dict[tuple[str, str], Callable[[str, dict[str, Any], dt.datetime], Answer]] = {
    ("ec2", "DescribeReservedInstances"): _reserved_instances,
    ("rds", "DescribeReservedDBInstances"): _reserved_db_instances,
    ("savingsplans", "DescribeSavingsPlans"): _savings_plans,
    ("ce", "GetReservationUtilization"): _reservation_utilization,
    ("ce", "GetSavingsPlansUtilizationDetails"): _savings_plans_utilization,
}


def _state(commitment: SimulatedCommitment, now: dt.datetime) -> str:
    start, end = commitment.window()
    if now >= end:
        return "retired"
    return "active" if now >= start else "payment-pending"


def _offering_type(commitment: SimulatedCommitment) -> str:
    if not commitment.upfront_usd:
        return "No Upfront"
    return "All Upfront" if not commitment.hourly_usd else "Partial Upfront"


def _plan_arn(plan: SimulatedCommitment) -> str:
    return f"arn:aws:savingsplans::123456789012:savingsplan/{plan.commitment_id}"


def _hours_in(commitment: SimulatedCommitment, period: dict[str, str]) -> float:
    """The commitment's hours inside Cost Explorer's period (end date exclusive)."""
    start, end = commitment.window()
    first = max(start, _time(period["Start"]))
    last = min(end, _time(period["End"]))
    return max(0.0, (last - first).total_seconds() / 3600)


def _time(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _money(value: float) -> str:
    return f"{value:.2f}"


def _json(payload: dict[str, Any]) -> Answer:
    return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(payload).encode()
