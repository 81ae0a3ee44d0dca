"""Cloud Custodian as the scan benchmark's peer: a policy for every Valdrix AWS detector that
Custodian can express, run with ``custodian run --dryrun`` (filters only, no action) in a
subprocess against the same simulated account, and the resources each policy matched.

Each policy asks what its detector asks, in Custodian's own filters, on the account as the
simulator seeds it (``valdrix.simulator.demo_region``): the same ``valdrix:ignore`` opt-out, the
same lookbacks, with ages judged from 0 days as the benchmark's Valdrix connection does (moto
cannot backdate a resource). Custodian's metrics filter asks ``GetMetricStatistics`` once per
resource and metric, and every datapoint must pass, so a daily period means "every day".

Detectors left out, for want of a Custodian filter, are in ``NOT_EXPRESSIBLE`` with why.

Custodian 0.9.53 pins older boto3/botocore than Valdrix uses, so it lives in its own
virtualenv (``pip install 'valdrix[bench]'`` there, or ``pip install c7n==0.9.53``); pass its
``custodian`` executable with ``--custodian`` or put it on ``PATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NOT_IGNORED = {"tag:valdrix:ignore": "absent"}
DAY = 86400


def _metric(
    name: str, value: float, *, days: int, stat: str, op: str = "lte", **extra: Any
) -> dict[str, Any]:
    """Every daily datapoint of the lookback within ``value``; no datapoint at all counts as
    0, as Valdrix's idle detectors read an absent series (nothing was published)."""
    return {
        "type": "metrics",
        "name": name,
        "days": days,
        "period": DAY,
        "statistics": stat,
        "op": op,
        "value": value,
        "missing-value": 0,
        **extra,
    }


@dataclass(frozen=True)
class PeerPolicy:
    detector: str  # the Valdrix detector it stands beside
    resource: str
    filters: list[Any]
    resource_id: Callable[[dict[str, Any]], str]  # the id Valdrix's finding names

    def as_yaml(self) -> dict[str, Any]:
        return {
            "name": self.detector.removeprefix("aws.").replace(".", "-"),
            "resource": f"aws.{self.resource}",
            "filters": [NOT_IGNORED, *self.filters],
        }


def _key(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda resource: str(resource[name])


POLICIES = [
    PeerPolicy("aws.ebs-unattached", "ebs", [{"Attachments": "empty"}], _key("VolumeId")),
    PeerPolicy(
        "aws.ebs-on-stopped-instance",
        "ebs",
        [{"type": "instance", "key": "State.Name", "value": "stopped"}],
        _key("VolumeId"),
    ),
    PeerPolicy("aws.ebs-gp2-to-gp3", "ebs", [{"VolumeType": "gp2"}], _key("VolumeId")),
    PeerPolicy(
        "aws.ebs-snapshot-orphaned",
        "ebs-snapshot",
        [
            {"type": "skip-ami-snapshots", "value": True},
            {"type": "volume", "key": "VolumeId", "value": "absent"},
        ],
        _key("SnapshotId"),
    ),
    PeerPolicy("aws.ec2-stopped", "ec2", [{"State.Name": "stopped"}], _key("InstanceId")),
    PeerPolicy(
        "aws.ec2-idle",
        "ec2",
        [
            {"State.Name": "running"},
            _metric("CPUUtilization", 10, days=14, stat="Average", op="less-than"),
            _metric("NetworkIn", 5e6, days=14, stat="Sum", op="less-than"),
            _metric("NetworkOut", 5e6, days=14, stat="Sum", op="less-than"),
        ],
        _key("InstanceId"),
    ),
    PeerPolicy("aws.ami-unused", "ami", [{"type": "unused", "value": True}], _key("ImageId")),
    PeerPolicy(
        "aws.eip-unassociated",
        "network-addr",
        [{"AssociationId": "absent"}],
        _key("AllocationId"),
    ),
    PeerPolicy(
        "aws.nat-gateway-idle",
        "nat-gateway",
        [{"State": "available"}, _metric("BytesOutToDestination", 0, days=14, stat="Sum")],
        _key("NatGatewayId"),
    ),
    PeerPolicy(
        "aws.rds-idle",
        "rds",
        [
            {"DBInstanceStatus": "available"},
            _metric("DatabaseConnections", 0, days=7, stat="Maximum"),
        ],
        _key("DBInstanceIdentifier"),
    ),
    PeerPolicy(
        "aws.rds-snapshot-orphaned",
        "rds-snapshot",
        [
            {"SnapshotType": "manual"},
            {"type": "instance", "key": "DBInstanceIdentifier", "value": "absent"},
        ],
        _key("DBSnapshotIdentifier"),
    ),
    PeerPolicy(
        "aws.elasticache-idle",
        "cache-cluster",
        [
            {"CacheClusterStatus": "available"},
            _metric("GetTypeCmds", 0, days=7, stat="Sum"),
            _metric("SetTypeCmds", 0, days=7, stat="Sum"),
        ],
        _key("CacheClusterId"),
    ),
    PeerPolicy(
        "aws.redshift-idle",
        "redshift",
        [
            {"ClusterStatus": "available"},
            _metric("DatabaseConnections", 0, days=7, stat="Maximum"),
        ],
        _key("ClusterIdentifier"),
    ),
    PeerPolicy(
        "aws.dynamodb-idle",
        "dynamodb-table",
        [
            {"TableStatus": "ACTIVE"},
            {
                "type": "value",
                "key": "BillingModeSummary.BillingMode",
                "op": "ne",
                "value": "PAY_PER_REQUEST",
            },
            _metric("ConsumedReadCapacityUnits", 0, days=14, stat="Sum"),
            _metric("ConsumedWriteCapacityUnits", 0, days=14, stat="Sum"),
        ],
        _key("TableName"),
    ),
    PeerPolicy(
        "aws.efs-idle",
        "efs",
        [
            {"LifeCycleState": "available"},
            _metric("ClientConnections", 0, days=14, stat="Sum"),
            _metric("TotalIOBytes", 0, days=14, stat="Sum"),
        ],
        _key("FileSystemId"),
    ),
    PeerPolicy(
        "aws.log-group-no-retention",
        "log-group",
        [
            {"retentionInDays": "absent"},
            {"type": "value", "key": "storedBytes", "op": "gt", "value": 1024 * 1024 * 1024},
        ],
        _key("logGroupName"),
    ),
    PeerPolicy(
        "aws.vpc-endpoint-idle",
        "vpc-endpoint",
        [
            {"VpcEndpointType": "Interface"},
            {"State": "available"},
            _metric("BytesProcessed", 0, days=14, stat="Sum"),
        ],
        _key("VpcEndpointId"),
    ),
]

NOT_EXPRESSIBLE = {
    "aws.ebs-previous-generation": "needs the I/O cost of a Magnetic volume against gp3's price",
    "aws.public-ipv4-on-stopped-instance": "an address filter cannot read its instance's state",
    "aws.elb-idle": "no filter reads a target group's target health",
    "aws.rds-cluster-snapshot-orphaned": "no filter relates a cluster snapshot to its cluster",
    "aws.sagemaker-endpoint-idle": "the endpoint resource has no metrics filter",
    "aws.eks-cluster-idle": "no filter reads a cluster's node groups or Fargate profiles",
    "aws.s3-multipart-incomplete": "no filter lists a bucket's multipart uploads",
    "aws.ec2-previous-generation": "no filter prices an instance type against its successor",
    "aws.reservation-expiring": "the benchmark's account holds no commitments",
    "aws.savings-plan-expiring": "the benchmark's account holds no commitments",
    "aws.commitment-underused": "no policy reads Cost Explorer's utilization reports",
    "aws.compute-optimizer": "imports AWS's own recommendations: nothing for a peer to find",
    "aws.cost-optimization-hub": "imports AWS's own recommendations: nothing for a peer to find",
}


@dataclass
class PeerRun:
    seconds: float
    timed_out: bool
    # (region, detector, resource id) of every resource a policy matched.
    findings: set[tuple[str, str, str]]
    returncode: int | None
    log_tail: str


def find_custodian(given: str | None) -> str | None:
    return given or shutil.which("custodian")


def run_custodian(
    custodian: str, endpoint_url: str, regions: list[str], *, timeout_seconds: float
) -> PeerRun:
    """``custodian run --dryrun`` of every policy over ``regions``; a run cut at
    ``timeout_seconds`` reports that time (a lower bound) and what it wrote until then."""
    work = Path(tempfile.mkdtemp(prefix="valdrix-bench-custodian-"))
    policies = work / "policies.yml"
    policies.write_text(yaml.safe_dump({"policies": [p.as_yaml() for p in POLICIES]}))
    output = work / "output"
    command = [custodian, "run", "--dryrun", "--cache-period", "0", "-s", str(output)]
    command += [arg for region in regions for arg in ("-r", region)]
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "simulated",
        "AWS_SECRET_ACCESS_KEY": "simulated",
        "AWS_DEFAULT_REGION": regions[0],
        "HOME": str(work),  # Custodian's own cache and config stay in the run's directory
    }
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        env.pop(name, None)
    started = time.perf_counter()
    with open(work / "custodian.log", "w") as log:
        process = subprocess.Popen(  # noqa: S603 (the operator's custodian, fixed arguments)
            [*command, str(policies)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work
        )
        try:
            returncode: int | None = process.wait(timeout=timeout_seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            returncode, timed_out = None, True
    seconds = time.perf_counter() - started
    tail = (work / "custodian.log").read_text()[-3000:]
    return PeerRun(seconds, timed_out, _matched(output, regions), returncode, tail)


def _matched(output: Path, regions: list[str]) -> set[tuple[str, str, str]]:
    """What each policy matched: ``<output>/<region>/<policy>/resources.json`` when Custodian
    runs several regions (``<output>/<policy>/`` for one)."""
    found: set[tuple[str, str, str]] = set()
    for policy in POLICIES:
        name = policy.as_yaml()["name"]
        for region in regions:
            folder = output / region / name if len(regions) > 1 else output / name
            matched = folder / "resources.json"
            if matched.exists():
                for resource in json.loads(matched.read_text()):
                    found.add((region, policy.detector, policy.resource_id(resource)))
    return found
