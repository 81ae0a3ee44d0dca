"""AWS access: STS AssumeRole with the connection's external id, cached short-lived
credentials, and boto3 clients with Valdrix's timeouts, retries and call accounting.

No customer keys are stored: Valdrix's own identity (the environment's default credential
chain, e.g. an instance role) assumes each customer's role for at most an hour at a time.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
import structlog
from botocore.client import ClientCreator
from botocore.config import Config
from botocore.endpoint_provider import EndpointProvider
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import parse_timestamp

from valdrix.kit import metrics

log = structlog.get_logger(__name__)

# Matched whole (``fullmatch``: a ``$`` would let a final line break through) and ASCII only
# (``\d`` and ``\w`` would take other scripts' digits and letters).
ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}", re.ASCII)
ROLE_ARN_SHAPE = "arn:aws:iam::<12-digit account>:role/<name>"
SESSION_NAME = "valdrix-scan"
ASSUME_DURATION_SECONDS = 3600
REFRESH_MARGIN = dt.timedelta(minutes=5)
DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthFailure"}
)
THROTTLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)


class AwsAccessError(Exception):
    """Valdrix could not act as the customer's role; ``reason`` is for the customer."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: dt.datetime


def account_of_role(role_arn: str) -> str | None:
    match = ROLE_ARN.fullmatch(role_arn)
    return match.group(2) if match else None


class AwsAccess:
    """One per process: assumes roles (cached until shortly before expiry) and builds clients."""

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        max_attempts: int = 5,
        max_pool_connections: int = 50,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.max_attempts = max_attempts
        self._config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # "standard" retries throttling and transient errors with jittered exponential backoff.
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            max_pool_connections=max_pool_connections,
        )
        self._cache: dict[tuple[str, str], Credentials] = {}
        self._lock = threading.Lock()
        # Every client comes from this one session, whose loader parses each service model once
        # per process (a session per client re-reads it: hundreds of ms per client, spent inside
        # the scan's budgets). Sessions are not thread-safe, hence the lock.
        _reuse_client_classes()
        _reuse_endpoint_rulesets()
        core = botocore.session.get_session()
        core.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=parse_aws_timestamp
        )
        self._base = boto3.session.Session(botocore_session=core)
        self._base_lock = threading.Lock()

    def assume(
        self, role_arn: str, external_id: str, *, now: dt.datetime | None = None
    ) -> Credentials:
        if account_of_role(role_arn) is None:
            raise AwsAccessError(
                f"'{role_arn}' is not an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)"
            )
        now = now or dt.datetime.now(dt.UTC)
        key = (role_arn, external_id)
        with self._lock:
            cached = self._cache.get(key)
        if cached and cached.expires_at - REFRESH_MARGIN > now:
            return cached
        sts = self._new_client("sts", None)
        self._instrument(sts, "global")
        try:
            answer = sts.assume_role(
                RoleArn=role_arn,
                RoleSessionName=SESSION_NAME,
                ExternalId=external_id,
                DurationSeconds=ASSUME_DURATION_SECONDS,
            )
        except ClientError as exc:
            raise _explain_assume_failure(exc, role_arn) from exc
        except BotoCoreError as exc:
            raise AwsAccessError(f"could not reach AWS STS: {exc}") from exc
        raw = answer["Credentials"]
        credentials = Credentials(
            raw["AccessKeyId"], raw["SecretAccessKey"], raw["SessionToken"], raw["Expiration"]
        )
        with self._lock:
            self._cache[key] = credentials
        return credentials

    def client(
        self, service: str, region: str, credentials: Credentials, *, within: float | None = None
    ) -> Any:
        """A client whose calls, retries included, give up within about ``within`` seconds
        (when given): a cloud that stops answering costs the caller its budget, no more."""
        client = self._new_client(
            service,
            region,
            config=None if within is None else self._config.merge(self.limits_within(within)),
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
        )
        self._instrument(client, region)
        return client

    def limits_within(self, seconds: float) -> Config:
        """Connect and read timeouts, and attempts, that together take ``seconds``.

        A call to a cloud that stopped answering is tried at least twice (more, up to the usual
        five, when each attempt can still have the usual 5 s to connect and 20 s to read), the
        attempts sharing the time; connecting may take half an attempt (a loaded network
        accepts late; at least 1 s), reading the whole of it.
        """
        seconds = max(seconds, 2.0)
        usual = self.connect_timeout + self.read_timeout
        attempts = max(2, min(self.max_attempts, int(seconds // usual)))
        per_attempt = seconds / attempts
        connect = min(self.connect_timeout, max(1.0, per_attempt / 2))
        read = min(self.read_timeout, per_attempt)
        return Config(
            connect_timeout=connect,
            read_timeout=read,
            retries={"mode": "standard", "total_max_attempts": attempts},
        )

    def _new_client(
        self, service: str, region: str | None, *, config: Config | None = None, **credentials: str
    ) -> Any:
        with self._base_lock:
            return self._base.client(
                service,
                region_name=region,
                endpoint_url=self.endpoint_url,
                config=config or self._config,
                **credentials,
            )

    def caller_account(self, credentials: Credentials) -> str:
        sts = self.client("sts", "us-east-1", credentials)
        return str(sts.get_caller_identity()["Account"])

    def enabled_regions(self, credentials: Credentials) -> list[str]:
        """Regions the account can use (opt-in regions only once opted in)."""
        ec2 = self.client("ec2", "us-east-1", credentials)
        regions = ec2.describe_regions(AllRegions=False)["Regions"]
        return sorted(
            r["RegionName"]
            for r in regions
            if r.get("OptInStatus", "opt-in-not-required") in ("opt-in-not-required", "opted-in")
        )

    @staticmethod
    def _instrument(client: Any, region: str) -> None:
        service = client.meta.service_model.service_name

        def count_call(model: Any, **_: Any) -> None:
            metrics.AWS_API_CALLS.labels(service=service, operation=model.name).inc()

        def count_error(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
            code = parsed.get("Error", {}).get("Code")
            if code:
                metrics.AWS_API_ERRORS.labels(service=service, region=region, code=code).inc()

        client.meta.events.register("before-call", count_call)
        client.meta.events.register("after-call", count_error)


def _reuse_client_classes() -> None:
    """botocore builds a new class for every client: a method and a docstring object per
    operation of the service (EC2 has over 600), a fifth of a large scan's CPU where a scan
    builds a client per service and region. The class depends only on the service's model
    and on the handlers registered on the session's events (boto3's, ours), never on the
    region or credentials, so one class per (session events, service, API version) serves
    every client."""
    if getattr(ClientCreator, "_valdrix_reuses_classes", False):
        return
    build = ClientCreator._create_client_class
    classes: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], type]] = (
        weakref.WeakKeyDictionary()
    )
    lock = threading.Lock()

    def create_client_class(self: ClientCreator, service_name: str, service_model: Any) -> type:
        key = (service_name, service_model.api_version)
        with lock:
            built = classes.setdefault(self._event_emitter, {}).get(key)
        if built is None:
            built = build(self, service_name, service_model)
            with lock:
                classes[self._event_emitter][key] = built
        return built

    ClientCreator._create_client_class = create_client_class
    ClientCreator._valdrix_reuses_classes = True


def _reuse_endpoint_rulesets() -> None:
    """botocore builds each client's endpoint rule set (a few hundred parameter and rule
    objects) from the service's ruleset data, the same for every client of the service: a
    tenth of the CPU of building a client, and a scan builds one per service and region. The
    rule set holds no state of a client or a call (evaluating it takes the parameters and
    returns an endpoint), so one per ruleset data serves them all; the data objects come from
    the session's loader, which keeps them, and are kept here too, so their ids stay theirs."""
    if getattr(EndpointProvider, "_valdrix_reuses_rulesets", False):
        return
    build = EndpointProvider.__init__
    built: dict[tuple[int, int], tuple[Any, Any, Any]] = {}
    lock = threading.Lock()

    def init(
        self: EndpointProvider,
        ruleset_data: Any,
        partition_data: Any,
        excluded_params: Any = None,
    ) -> None:
        key = (id(ruleset_data), id(partition_data))
        with lock:
            known = built.get(key)
        if known is None:
            build(self, ruleset_data, partition_data, excluded_params)
            with lock:
                built[key] = (ruleset_data, partition_data, self.ruleset)
            return
        self.ruleset = known[2]
        self._excluded_params = excluded_params or frozenset()

    EndpointProvider.__init__ = init
    EndpointProvider._valdrix_reuses_rulesets = True


def parse_aws_timestamp(value: Any) -> dt.datetime:
    """botocore's timestamp parser, with ISO 8601 read by ``datetime.fromisoformat``: botocore
    hands every timestamp to dateutil, which took half of the time spent reading a large
    account's describes (every volume, snapshot and instance carries one or more); epoch
    seconds (each CloudWatch datapoint's time in JSON answers) by ``datetime.fromtimestamp`` in
    UTC, where botocore builds a local time zone for each. Anything else (RFC 822 dates, no
    time zone) goes to botocore's own parser."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return parsed
    timestamp: dt.datetime = parse_timestamp(value)
    return timestamp


def error_code(exc: BaseException) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "") or None
    return None


def _explain_assume_failure(exc: ClientError, role_arn: str) -> AwsAccessError:
    code = error_code(exc) or "Unknown"
    if code in DENIED_CODES:
        return AwsAccessError(
            "access denied assuming the role: check that it exists, that its trust policy names"
            " Valdrix's principal, and that it requires exactly this connection's external id",
            code,
        )
    if code in ("NoSuchEntity", "ValidationError", "InvalidParameterValue"):
        return AwsAccessError(f"unknown or malformed role {role_arn}", code)
    return AwsAccessError(f"AWS refused to assume the role ({code})", code)
