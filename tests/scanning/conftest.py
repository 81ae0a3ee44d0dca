"""Fixtures for detector tests: AWS through moto (in-process), one RegionScope per region."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import moto.ec2
import pytest
from moto import mock_aws

from valdrix.kit.orm import utcnow
from valdrix.scanning.base import RegionScope
from valdrix.scanning.providers.aws_pricing import aws_catalog

ACCOUNT_ID = "123456789012"  # moto's default account
AMIS_OF_MOTO = Path(moto.ec2.__file__).parent / "resources" / "amis.json.gz"


@pytest.fixture(scope="session")
def public_amis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """moto's 44 example public AMIs (the tests launch instances of some), as a file: given as
    ``MOTO_AMIS_PATH``, moto loads only those into a region, not also its 1,300 regional ones
    (ECS-optimised ...) with a snapshot and a volume each: 4,000 objects per region and test,
    whose cycles piled up until a full garbage collection paused the process for seconds."""
    path = tmp_path_factory.mktemp("moto") / "amis.json"
    path.write_bytes(gzip.decompress(AMIS_OF_MOTO.read_bytes()))
    return path


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, public_amis: Path) -> Iterator[None]:
    """An empty simulated AWS (every service), with dummy credentials."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MOTO_AMIS_PATH": str(public_amis),
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
