"""Fixtures for detector tests: AWS through moto (in-process), one RegionScope per region."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from valdrix.kit.orm import utcnow
from valdrix.scanning.base import RegionScope
from valdrix.scanning.providers.aws_pricing import aws_catalog

ACCOUNT_ID = "123456789012"  # moto's default account


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty simulated AWS (every service), with dummy credentials."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def client(service: str, region: str = "us-east-1") -> Any:
    return boto3.client(service, region_name=region)


@pytest.fixture
def make_scope(aws: None) -> Callable[..., RegionScope]:
    """``make_scope(region="us-east-1", now=None)``: what a detector sees for one region."""

    def make(region: str = "us-east-1", now: dt.datetime | None = None) -> RegionScope:
        return RegionScope(
            account_id=ACCOUNT_ID,
            region=region,
            client=lambda service: client(service, region),
            prices=aws_catalog(),
            now=now or utcnow(),
        )

    return make
