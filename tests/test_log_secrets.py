"""Secrets never reach the logs: a tenant registers an AWS connection over the API, verifies it,
scans through the assumed role and reads its findings, with logging set up as in production
(JSON lines) and every standard-library logger (botocore, httpx, procrastinate...) recorded at
DEBUG. No secret the flow handled appears in any captured line, as is or base64-encoded."""

from __future__ import annotations

import base64
import io
import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from pydantic import SecretStr

from tests.fixtures.aws import HEALTHY_REGION, ROLE_ARN, aws_runtime, unattached_volume
from tests.fixtures.http import api_client
from tests.scanning.helpers import scan_once
from valdrix.config import parse_encryption_keys
from valdrix.connections.providers.aws import AwsAccess, Credentials
from valdrix.logging import WIRE_LOGGERS, configure_logging
from valdrix.runtime import Runtime

LLM_API_KEY = "gsk_" + uuid.uuid4().hex + uuid.uuid4().hex
# The simulated AWS runs in this process; what it logs stands for AWS's side, not Valdrix's.
SIMULATOR_LOGGERS = ("moto", "werkzeug", "responses")


@dataclass
class CapturedLogs:
    json_stream: io.StringIO = field(default_factory=io.StringIO)
    records: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return self.json_stream.getvalue().splitlines() + self.records


class RecordEverything(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(SIMULATOR_LOGGERS):
            self.sink.append(self.format(record))


@pytest.fixture
def captured_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[CapturedLogs]:
    """Production's structlog set-up (JSON to stderr, here a buffer), at DEBUG, plus a root
    handler taking every standard-library record at DEBUG; the test set-up is restored after."""
    captured = CapturedLogs()
    structlog_config = structlog.get_config()
    root = logging.getLogger()
    root_level, handler = root.level, RecordEverything(captured.records)
    wire_levels = {name: logging.getLogger(name).level for name in WIRE_LOGGERS}
    monkeypatch.setattr(sys, "stderr", captured.json_stream)
    configure_logging(json_output=True, level="DEBUG")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(root_level)
        for name, level in wire_levels.items():
            logging.getLogger(name).setLevel(level)
        structlog.configure(**structlog_config)


@pytest.fixture
def assumed_credentials(monkeypatch: pytest.MonkeyPatch) -> list[Credentials]:
    """Every set of credentials STS handed Valdrix (moto's look like real ones)."""
    handed: list[Credentials] = []
    assume = AwsAccess.assume

    def recording(self: AwsAccess, *args: Any, **kwargs: Any) -> Credentials:
        credentials = assume(self, *args, **kwargs)
        handed.append(credentials)
        return credentials

    monkeypatch.setattr(AwsAccess, "assume", recording)
    return handed


def encodings(secret: str | bytes) -> set[str]:
    """The secret and its base64 forms (standard and URL-safe, with and without padding)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    forms = {secret} if isinstance(secret, str) else set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(raw).decode()
        forms |= {encoded, encoded.rstrip("=")}
    return forms


async def test_a_scan_through_a_secret_bearing_connection_logs_none_of_its_secrets(
    runtime: Runtime,
    make_tenant: Any,
    aws_endpoint: str,
    captured_logs: CapturedLogs,
    assumed_credentials: list[Credentials],
) -> None:
    deployment = aws_runtime(runtime, aws_endpoint, llm={"api_key": SecretStr(LLM_API_KEY)})
    volume = unattached_volume(aws_endpoint, HEALTHY_REGION)
    captured_logs.records.clear()  # seeding the simulator is the test's doing, not Valdrix's

    tenant = await make_tenant()
    async with api_client(deployment) as api:
        setup = await api.get("/api/v1/connections/aws/setup", headers=tenant.auth)
        external_id = setup.json()["external_id"]
        registered = await api.post(
            "/api/v1/connections",
            json={
                "name": "production",
                "role_arn": ROLE_ARN,
                "external_id": external_id,
                "regions": [HEALTHY_REGION],
            },
            headers=tenant.auth,
        )
        assert registered.status_code == 201, registered.text
        connection_id = registered.json()["id"]
        verified = await api.post(
            f"/api/v1/connections/{connection_id}/verify", headers=tenant.auth
        )
        assert verified.status_code == 200 and verified.json()["ok"], verified.text
        _, status = await scan_once(deployment, tenant.tenant_id, uuid.UUID(connection_id))
        findings = await api.get("/api/v1/findings", headers=tenant.auth)

    assert status == "completed"
    assert volume in {finding["resource_id"] for finding in findings.json()}
    lines = captured_logs.lines()
    assert any('"event": "scan.complete"' in line for line in lines)  # the capture worked
    assert any(line.startswith("httpx ") for line in lines)
    assert assumed_credentials, "the scan did not assume the role"

    secrets: dict[str, set[str]] = {
        "API key": encodings(tenant.api_key),
        "owner password": encodings(tenant.admin_password),
        "external id": encodings(external_id),
        "LLM API key": encodings(LLM_API_KEY),
        "encryption key setting": encodings(str(deployment.settings.encryption_keys)),
    }
    for kid, key in parse_encryption_keys(str(deployment.settings.encryption_keys)):
        secrets[f"encryption key {kid}"] = encodings(key) | {key.hex()}
    for credentials in assumed_credentials:
        key_id = credentials.access_key_id  # not a secret: it names the pair
        secrets[f"secret access key of {key_id}"] = encodings(credentials.secret_access_key)
        secrets[f"session token of {key_id}"] = encodings(credentials.session_token)

    leaks = {
        name: line[:300]
        for name, forms in secrets.items()
        for line in lines
        if any(form in line for form in forms)
    }
    assert not leaks, f"secrets in the logs: {leaks}"
