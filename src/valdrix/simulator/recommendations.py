"""AWS Compute Optimizer and Cost Optimization Hub, which moto does not serve, faked over HTTP
on the simulator's port.

Each answers as AWS does: Compute Optimizer in Smithy RPC v2 CBOR (``/service/
ComputeOptimizerService/operation/<Name>``, what botocore sends) or JSON 1.0 (``X-Amz-Target:
ComputeOptimizerService.<Name>``, what older SDKs send); Cost Optimization Hub in JSON 1.0
(``X-Amz-Target: CostOptimizationHubService.<Name>``). Per account (the one the caller's key
belongs to, as moto decides): an enrollment status for each service, Compute Optimizer's
recommendations per region, the hub's account-wide list, pages of ``PAGE_SIZE`` with
``nextToken``. An account nobody seeded has enrolled in neither, as AWS accounts start.

Seeded with ``POST /valdrix-simulator/recommendations`` (``seed_recommendations``), or in-process
under ``moto.mock_aws`` with ``RECOMMENDATIONS.seed``; cleared whenever moto resets.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from valdrix.simulator import cbor

COMPUTE_OPTIMIZER = "ComputeOptimizerService"
COST_OPTIMIZATION_HUB = "CostOptimizationHubService"
SEED_PATH = "/valdrix-simulator/recommendations"
PAGE_SIZE = 5
RPC_V2_PATH = re.compile(r"/service/(?P<service>\w+)/operation/(?P<operation>\w+)")
CREDENTIAL = re.compile(r"Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[a-z0-9-]+)/")
# Each Compute Optimizer listing and the member its answer lists the recommendations under.
COMPUTE_LISTINGS = {
    "GetEC2InstanceRecommendations": "instanceRecommendations",
    "GetEBSVolumeRecommendations": "volumeRecommendations",
    "GetLambdaFunctionRecommendations": "lambdaFunctionRecommendations",
    "GetAutoScalingGroupRecommendations": "autoScalingGroupRecommendations",
    "GetECSServiceRecommendations": "ecsServiceRecommendations",
}

Answer = tuple[int, dict[str, str], bytes]


class Refused(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class AccountRecommendations:
    """What one account has turned on and what AWS recommends to it."""

    compute_optimizer_status: str = "Inactive"
    hub_status: str = "Inactive"
    savings_estimation_mode: str = "BeforeDiscounts"
    # region -> listing member (``instanceRecommendations`` ...) -> recommendations
    compute_optimizer: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    hub: list[dict[str, Any]] = field(default_factory=list)


class RecommendationStore:
    def __init__(self) -> None:
        self._accounts: dict[str, AccountRecommendations] = {}
        self._lock = threading.Lock()

    def seed(self, account_id: str, seeded: AccountRecommendations) -> None:
        """Replace everything the account had."""
        with self._lock:
            self._accounts[account_id] = seeded

    def of(self, account_id: str) -> AccountRecommendations:
        with self._lock:
            return self._accounts.get(account_id) or AccountRecommendations()

    def clear(self) -> None:
        with self._lock:
            self._accounts.clear()


RECOMMENDATIONS = RecommendationStore()


def seed_recommendations(
    endpoint_url: str, account_id: str, seeded: AccountRecommendations
) -> None:
    """Seed the simulator at ``endpoint_url`` over HTTP."""
    body = {"account_id": account_id, **seeded.__dict__}
    httpx.post(f"{endpoint_url}{SEED_PATH}", json=body, timeout=30).raise_for_status()


def claims(path: str, target: str) -> bool:
    """Whether a request is for these services (or seeds them), before its body is read."""
    rpc = RPC_V2_PATH.search(path)
    service = rpc["service"] if rpc else target.split(".", 1)[0]
    return path.split("?")[0] == SEED_PATH or service in (COMPUTE_OPTIMIZER, COST_OPTIMIZATION_HUB)


def answer(method: str, path: str, headers: Any, body: bytes) -> Answer | None:
    """The simulator's answer to a request for these services; None for any other request."""
    if path.split("?")[0] == SEED_PATH and method == "POST":
        seeded = json.loads(body)
        RECOMMENDATIONS.seed(seeded.pop("account_id"), AccountRecommendations(**seeded))
        return 200, {"Content-Type": "application/json"}, b"{}"
    target = headers.get("X-Amz-Target") or ""
    rpc = RPC_V2_PATH.search(path)
    if rpc is not None:
        service, operation, binary = rpc["service"], rpc["operation"], True
    elif "." in target:
        (service, operation), binary = target.split(".", 1), False
    else:
        return None
    handler = _HANDLERS.get((service, operation))
    if handler is None:
        return None
    credential = CREDENTIAL.search(headers.get("Authorization") or "")
    key, region = (credential["key"], credential["region"]) if credential else ("", "us-east-1")
    account_id = _account_of(key)
    try:
        params = (cbor.decode(body) if binary else json.loads(body or b"{}")) or {}
        params.setdefault("accountId", account_id)
        result, status = handler(RECOMMENDATIONS.of(account_id), region, params), 200
    except Refused as refused:
        result, status = {"__type": refused.code, "message": refused.message}, refused.status
    if binary:
        return (
            status,
            {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"},
            (cbor.encode(result)),
        )
    return status, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(result).encode()


def _account_of(access_key: str) -> str:
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key)


def _page(items: list[dict[str, Any]], params: dict[str, Any], member: str) -> dict[str, Any]:
    start = int(params.get("nextToken") or 0)
    size = min(int(params.get("maxResults") or PAGE_SIZE), PAGE_SIZE)
    page: dict[str, Any] = {member: items[start : start + size]}
    if start + size < len(items):
        page["nextToken"] = str(start + size)
    return page


# --- Compute Optimizer -------------------------------------------------------------------------


def _enrollment(account: AccountRecommendations, region: str, params: dict[str, Any]) -> Any:
    return {
        "status": account.compute_optimizer_status,
        "memberAccountsEnrolled": False,
        "numberOfMemberAccountsOptedIn": 0,
    }


def _compute_listing(member: str) -> Callable[[AccountRecommendations, str, dict[str, Any]], Any]:
    def listing(account: AccountRecommendations, region: str, params: dict[str, Any]) -> Any:
        if account.compute_optimizer_status != "Active":
            raise Refused(
                "OptInRequiredException",
                "The account is not opted in to AWS Compute Optimizer.",
                403,
            )
        items = account.compute_optimizer.get(region, {}).get(member, [])
        return _page(items, params, member) | {"errors": []}

    return listing


# --- Cost Optimization Hub ---------------------------------------------------------------------


def _hub_enrollment(account: AccountRecommendations, region: str, params: dict[str, Any]) -> Any:
    items = [{"accountId": params["accountId"], "status": account.hub_status}]
    return {"items": items, "includeMemberAccounts": False}


def _hub_preferences(account: AccountRecommendations, region: str, params: dict[str, Any]) -> Any:
    return {"savingsEstimationMode": account.savings_estimation_mode}


def _hub_recommendations(
    account: AccountRecommendations, region: str, params: dict[str, Any]
) -> Any:
    if account.hub_status != "Active":
        raise Refused(
            "AccessDeniedException", "The account is not enrolled in Cost Optimization Hub.", 403
        )
    return _page(account.hub, params, "items")


_HANDLERS: dict[tuple[str, str], Callable[[AccountRecommendations, str, dict[str, Any]], Any]] = {
    (COMPUTE_OPTIMIZER, "GetEnrollmentStatus"): _enrollment,
    **{(COMPUTE_OPTIMIZER, op): _compute_listing(m) for op, m in COMPUTE_LISTINGS.items()},
    (COST_OPTIMIZATION_HUB, "ListEnrollmentStatuses"): _hub_enrollment,
    (COST_OPTIMIZATION_HUB, "GetPreferences"): _hub_preferences,
    (COST_OPTIMIZATION_HUB, "ListRecommendations"): _hub_recommendations,
}


# --- serving it beside moto --------------------------------------------------------------------


def serve_beside_moto() -> None:
    """Answer these services from moto's server and from ``mock_aws`` alike, and forget every
    account's recommendations whenever moto resets. Idempotent."""
    from moto.core.base_backend import BackendDict
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(BotocoreStubber, "_valdrix_recommendations", False):
        return
    original_process = BotocoreStubber.process_request
    original_call = DomainDispatcherApplication.__call__
    original_reset = BackendDict.reset

    def process_request(self: Any, request: Any) -> Any:
        path = httpx.URL(request.url).raw_path.decode()
        headers = {
            key: value.decode() if isinstance(value, bytes) else value
            for key, value in request.headers.items()
        }
        if not claims(path, headers.get("X-Amz-Target") or ""):
            return original_process(self, request)
        body = request.body or b""
        answered = answer(
            request.method,
            path,
            headers,
            body.encode() if isinstance(body, str) else body,
        )
        return answered if answered is not None else original_process(self, request)

    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        path, target = environ.get("PATH_INFO", ""), environ.get("HTTP_X_AMZ_TARGET", "")
        if not claims(path, target):
            return original_call(self, environ, start_response)
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        headers["X-Amz-Target"] = target
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        answered = answer(environ["REQUEST_METHOD"], path, headers, body)
        if answered is None:  # an operation of theirs the simulator does not serve
            answered = 501, {"Content-Type": "application/json"}, b'{"message": "not simulated"}'

        status, response_headers, payload = answered
        start_response(
            f"{status} {'OK' if status == 200 else 'Error'}",
            [*response_headers.items(), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    def reset(cls: Any) -> None:
        original_reset.__func__(cls)  # type: ignore[attr-defined]
        RECOMMENDATIONS.clear()

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    DomainDispatcherApplication.__call__ = call  # type: ignore[method-assign]
    BackendDict.reset = classmethod(reset)  # type: ignore[method-assign,assignment]
    BotocoreStubber._valdrix_recommendations = True  # type: ignore[attr-defined]
