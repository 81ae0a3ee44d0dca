"""Registry-wide checks over every registered detector, present and future.

Conformance: each detector declares what the issue asks (key, provider, resource type, IAM
actions, documented thresholds, a docstring saying what and why) and has a test module.
Permissions: run under moto against an account seeded with waste of every kind, each detector
issues only AWS operations covered by the IAM actions it declares (so the policy generated for
customers from those declarations is enough to scan), and uses every action it declares (so the
policy asks for nothing more).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.aws import empty_aws
from valdrix.kit.orm import utcnow
from valdrix.scanning.base import Detector, RegionScope, Thresholds
from valdrix.scanning.providers.aws_pricing import aws_catalog
from valdrix.scanning.registry import load_all_detectors
from valdrix.scanning.shared_reads import SharedReads
from valdrix.simulator.aws_server import SimulatedAws
from valdrix.simulator.commitments import SimulatedCommitment, seed_commitments
from valdrix.simulator.recommendations import (
    RECOMMENDATIONS,
    AccountRecommendations,
)

DETECTOR_TESTS = Path(__file__).parent / "detectors"
IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$")
KEY = re.compile(r"^(?P<provider>[a-z0-9]+)\.[a-z0-9]+(-[a-z0-9]+)*$")
# boto3 service names whose IAM prefix differs from the name.
IAM_PREFIX = {
    "elbv2": "elasticloadbalancing",
    "elb": "elasticloadbalancing",
    "efs": "elasticfilesystem",
}
# Operations whose IAM action is named otherwise.
IAM_ACTION_OF = {
    "s3:ListBuckets": "s3:ListAllMyBuckets",
    "s3:ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "s3:ListParts": "s3:ListMultipartUploadParts",
}


def _registered() -> tuple[list[type[Detector]], BaseException | None]:
    # Collected at import time so each detector gets its own test ids; an import failure is
    # reported by test_every_detector_module_imports instead of breaking collection.
    try:
        return list(load_all_detectors()), None
    except Exception as error:
        return [], error


DETECTORS, LOAD_ERROR = _registered()
by_key = pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.key)
by_aws_key = pytest.mark.parametrize(
    "detector", [d for d in DETECTORS if d.provider == "aws"], ids=lambda d: d.key
)


def test_every_detector_module_imports() -> None:
    assert LOAD_ERROR is None, f"importing the detectors failed: {LOAD_ERROR!r}"
    assert DETECTORS, "no detector is registered"


# --- conformance ----------------------------------------------------------------------------


@by_key
def test_key_is_provider_dot_name(detector: type[Detector]) -> None:
    match = KEY.match(detector.key)
    assert match, f"{detector.key!r} is not '<provider>.<kebab-name>'"
    assert match["provider"] == detector.provider


@by_key
def test_resource_type_is_declared(detector: type[Detector]) -> None:
    assert isinstance(detector.resource_type, str) and detector.resource_type.strip()


@by_key
def test_permissions_are_iam_actions(detector: type[Detector]) -> None:
    assert isinstance(detector.permissions, tuple) and detector.permissions
    malformed = [p for p in detector.permissions if not IAM_ACTION.match(p)]
    assert not malformed, f"not 'service:Action': {malformed}"


@by_key
def test_every_threshold_has_a_default_and_a_description(detector: type[Detector]) -> None:
    assert issubclass(detector.thresholds, Thresholds) and detector.thresholds is not Thresholds
    for name, field in detector.thresholds.model_fields.items():
        assert not field.is_required(), f"threshold {name!r} has no default"
        assert field.description and field.description.strip(), f"{name!r} is undocumented"
    detector.thresholds()  # the defaults validate


@by_key
def test_docstring_says_what_it_flags_and_why_it_costs(detector: type[Detector]) -> None:
    docstring = vars(detector).get("__doc__") or ""  # its own, not Detector's
    sentences = re.findall(r"[.!?](?=\s|$)", docstring.strip())
    assert len(sentences) >= 2, f"{detector.key} needs a docstring of at least two sentences"


@by_key
def test_shared_costs_are_named_components(detector: type[Detector]) -> None:
    assert isinstance(detector.shared_costs, tuple)
    assert all(isinstance(c, str) and c.strip() for c in detector.shared_costs)
    assert len(set(detector.shared_costs)) == len(detector.shared_costs)


@by_key
def test_detector_has_a_test_module(detector: type[Detector]) -> None:
    mention = re.compile(re.escape(detector.key) + r"(?![\w-])")
    modules = [
        path.name
        for path in sorted(DETECTOR_TESTS.glob("test_*.py"))
        if mention.search(path.read_text())
    ]
    assert modules, f"no module in {DETECTOR_TESTS} mentions {detector.key!r}"


# --- permissions coverage -------------------------------------------------------------------

REGION = "us-west-2"
ACCOUNT_ID = "123456789012"  # moto's default account
DAY = dt.timedelta(days=1)
# Thresholds the seeded account cannot meet at their defaults (moto keeps log events in memory).
SEED_THRESHOLDS: dict[str, dict[str, Any]] = {"aws.log-group-no-retention": {"min_stored_mb": 0}}


def at(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_account(now: dt.datetime, endpoint_url: str) -> None:
    """One resource of each kind a detector flags, with the CloudWatch data idle checks read.

    ``now`` lies far enough ahead of the creation times that every age threshold is met.
    """

    def client(service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    ec2, elbv2, elb, rds = client("ec2"), client("elbv2"), client("elb"), client("rds")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    idle, stopped = (
        instance["InstanceId"]
        for instance in ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=2,
            MaxCount=2,
            InstanceType="t3.micro",
            SubnetId=subnets[0],
        )["Instances"]
    )

    # EBS and EC2: an unattached gp2 volume, a snapshot whose volume is gone, an unused AMI.
    zone = f"{REGION}a"
    ec2.create_volume(AvailabilityZone=zone, Size=100, VolumeType="gp2")
    gone = ec2.create_volume(AvailabilityZone=zone, Size=8)["VolumeId"]
    ec2.create_snapshot(VolumeId=gone)
    ec2.delete_volume(VolumeId=gone)
    ec2.create_image(InstanceId=idle, Name="golden-2019")

    # Network: a spare Elastic IP, a NAT gateway with its own (and, below, an address the
    # stopped instance keeps).
    ec2.allocate_address(Domain="vpc")
    nat = ec2.create_nat_gateway(
        SubnetId=subnets[0], AllocationId=ec2.allocate_address(Domain="vpc")["AllocationId"]
    )["NatGateway"]["NatGatewayId"]

    # An interface endpoint nothing sends traffic through.
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName=f"com.amazonaws.{REGION}.kms",
        VpcEndpointType="Interface",
        SubnetIds=subnets,
    )["VpcEndpoint"]["VpcEndpointId"]

    # Load balancers whose only target (the soon-stopped instance) is unhealthy.
    alb = elbv2.create_load_balancer(Name="spare", Subnets=subnets)["LoadBalancers"][0]
    group = elbv2.create_target_group(Name="spare", Protocol="HTTP", Port=80, VpcId=vpc)
    group_arn = group["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )
    elbv2.register_targets(TargetGroupArn=group_arn, Targets=[{"Id": stopped}])
    elb.create_load_balancer(
        LoadBalancerName="legacy",
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
        AvailabilityZones=[zone],
    )
    elb.register_instances_with_load_balancer(
        LoadBalancerName="legacy", Instances=[{"InstanceId": stopped}]
    )
    held = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=held, InstanceId=stopped)
    ec2.stop_instances(InstanceIds=[stopped])

    # RDS: an idle database, and snapshots of a database and a cluster deleted since.
    for name in ("reports", "retired"):
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.t3.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="admin",
            MasterUserPassword="correct-horse-battery",
        )
    rds.create_db_snapshot(DBSnapshotIdentifier="retired-final", DBInstanceIdentifier="retired")
    rds.delete_db_instance(DBInstanceIdentifier="retired", SkipFinalSnapshot=True)
    rds.create_db_cluster(
        DBClusterIdentifier="ledger",
        Engine="mysql",
        AllocatedStorage=100,
        MasterUsername="admin",
        MasterUserPassword="correct-horse-battery",
    )
    rds.create_db_cluster_snapshot(
        DBClusterSnapshotIdentifier="ledger-final", DBClusterIdentifier="ledger"
    )
    rds.delete_db_cluster(DBClusterIdentifier="ledger", SkipFinalSnapshot=True)

    # A log group that keeps its logs forever (moto holds them in memory: a small one).
    logs = client("logs")
    logs.create_log_group(logGroupName="/app/legacy")
    logs.create_log_stream(logGroupName="/app/legacy", logStreamName="app")
    logs.put_log_events(
        logGroupName="/app/legacy",
        logStreamName="app",
        logEvents=[{"timestamp": int(utcnow().timestamp() * 1000), "message": "started"}],
    )

    # A multipart upload abandoned half-way (moto dates every upload years back).
    s3 = client("s3")
    s3.create_bucket(Bucket="ingest", CreateBucketConfiguration={"LocationConstraint": REGION})
    upload = s3.create_multipart_upload(Bucket="ingest", Key="raw.mov")["UploadId"]
    s3.upload_part(Bucket="ingest", Key="raw.mov", UploadId=upload, PartNumber=1, Body=b"x")

    # A table paying for provisioned capacity nobody uses.
    client("dynamodb").create_table(
        TableName="sessions",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )

    # A file system nobody mounts.
    shared = client("efs").create_file_system(CreationToken="shared")["FileSystemId"]

    # A cache nobody reads or writes.
    client("elasticache").create_cache_cluster(
        CacheClusterId="sessions", CacheNodeType="cache.t3.micro", Engine="redis", NumCacheNodes=1
    )

    # A provisioned warehouse nobody connects to.
    client("redshift").create_cluster(
        ClusterIdentifier="warehouse",
        NodeType="dc2.large",
        MasterUsername="admin",
        MasterUserPassword="Not-a-real-password1",
    )

    # A real-time inference endpoint nobody invokes (SageMaker publishes no datapoints then).
    sagemaker = client("sagemaker")
    sagemaker.create_model(
        ModelName="churn",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/SageMakerRole",
        PrimaryContainer={"Image": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/churn:1"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="churn",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": "churn",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="churn", EndpointConfigName="churn")

    # A Kubernetes control plane with nothing to run pods on.
    client("eks").create_cluster(
        name="sandbox",
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/EksRole",
        resourcesVpcConfig={"subnetIds": subnets},
    )

    # A Magnetic volume whose I/O requests cost more than gp3 storage would.
    magnetic = ec2.create_volume(AvailabilityZone=zone, Size=50, VolumeType="standard")

    # An M4 that M5 would run for less.
    ec2.run_instances(
        ImageId="ami-760aaa0f", MinCount=1, MaxCount=1, InstanceType="m4.large", SubnetId=subnets[0]
    )

    # Commitments about to end, and under-used (the simulator serves what moto lacks).
    ends = now + 5 * DAY
    bought = {"start": at(ends - 365 * DAY), "end": at(ends), "used_percent": 40.0}
    seed_commitments(
        endpoint_url,
        [
            SimulatedCommitment(
                "ec2-reserved-instance",
                "ri-1",
                REGION,
                offering="t3.micro",
                hourly_usd=0.006,
                **bought,
            ),
            SimulatedCommitment(
                "rds-reserved-instance",
                "rds-ri-1",
                REGION,
                offering="db.t3.micro",
                hourly_usd=0.011,
                product="postgresql",
                **bought,
            ),
            SimulatedCommitment(
                "savings-plan",
                "sp-1",
                "global",
                offering="Compute",
                hourly_usd=0.5,
                on_demand_hourly_usd=0.7,
                **bought,
            ),
        ],
    )

    # AWS's own recommendations: one of every kind Compute Optimizer makes, one of the hub's.
    seed_recommendations(idle, magnetic["VolumeId"])

    # Two weeks of quiet metrics.
    series = [
        ("AWS/EC2", "CPUUtilization", "InstanceId", idle, 0.5),
        ("AWS/EC2", "NetworkIn", "InstanceId", idle, 1000.0),
        ("AWS/EC2", "NetworkOut", "InstanceId", idle, 1000.0),
        ("AWS/NATGateway", "BytesOutToDestination", "NatGatewayId", nat, 0.0),
        ("AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", "reports", 0.0),
        ("AWS/ElastiCache", "GetTypeCmds", "CacheClusterId", "sessions", 0.0),
        ("AWS/ElastiCache", "SetTypeCmds", "CacheClusterId", "sessions", 0.0),
        ("AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", "sessions", 0.0),
        ("AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", "sessions", 0.0),
        ("AWS/EFS", "ClientConnections", "FileSystemId", shared, 0.0),
        ("AWS/EFS", "TotalIOBytes", "FileSystemId", shared, 0.0),
        ("AWS/Redshift", "DatabaseConnections", "ClusterIdentifier", "warehouse", 0.0),
        ("AWS/EBS", "VolumeReadOps", "VolumeId", magnetic["VolumeId"], 40e6),
    ]
    cloudwatch = client("cloudwatch")
    # PrivateLink publishes under four dimensions at once.
    endpoint_dimensions = {
        "Endpoint Type": "Interface",
        "Service Name": f"com.amazonaws.{REGION}.kms",
        "VPC Endpoint Id": endpoint,
        "VPC Id": vpc,
    }
    cloudwatch.put_metric_data(
        Namespace="AWS/PrivateLinkEndpoints",
        MetricData=[
            {
                "MetricName": "BytesProcessed",
                "Dimensions": [{"Name": n, "Value": v} for n, v in endpoint_dimensions.items()],
                "Timestamp": now - day * DAY - dt.timedelta(hours=1),
                "Value": 0.0,
            }
            for day in range(14)
        ],
    )
    for namespace, metric, dimension, resource, value in series:
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": dimension, "Value": resource}],
                    "Timestamp": now - day * DAY - dt.timedelta(hours=1),
                    "Value": value,
                }
                for day in range(14)
            ],
        )


def seed_recommendations(instance_id: str, volume_id: str) -> None:
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT_ID}:{{}}"
    saving = {"savingsOpportunity": {"estimatedMonthlySavings": {"currency": "USD", "value": 9.5}}}
    option = {"rank": 1, **saving}
    listings = {
        "instanceRecommendations": [
            {
                "instanceArn": arn.format("ec2", f"instance/{instance_id}"),
                "currentInstanceType": "t3.micro",
                "finding": "Overprovisioned",
                "recommendationOptions": [{"instanceType": "t3.nano", **option}],
            }
        ],
        "volumeRecommendations": [
            {
                "volumeArn": arn.format("ec2", f"volume/{volume_id}"),
                "currentConfiguration": {"volumeType": "standard", "volumeSize": 50},
                "finding": "NotOptimized",
                "volumeRecommendationOptions": [{"configuration": {"volumeType": "gp3"}, **option}],
            }
        ],
        "lambdaFunctionRecommendations": [
            {
                "functionArn": arn.format("lambda", "function:resize"),
                "currentMemorySize": 3008,
                "finding": "NotOptimized",
                "memorySizeRecommendationOptions": [{"memorySize": 1024, **option}],
            }
        ],
        "autoScalingGroupRecommendations": [
            {
                "autoScalingGroupArn": arn.format(
                    "autoscaling", "autoScalingGroup:1a2b:autoScalingGroupName/workers"
                ),
                "currentConfiguration": {"instanceType": "m5.xlarge", "desiredCapacity": 4},
                "finding": "NotOptimized",
                "recommendationOptions": [
                    {"configuration": {"instanceType": "m5.large"}, **option}
                ],
            }
        ],
        "ecsServiceRecommendations": [
            {
                "serviceArn": arn.format("ecs", "service/prod/api"),
                "currentServiceConfiguration": {"cpu": 2048, "memory": 4096},
                "finding": "Overprovisioned",
                "serviceRecommendationOptions": [{"cpu": 1024, "memory": 2048, **option}],
            }
        ],
    }
    hub = [
        {
            "accountId": ACCOUNT_ID,
            "region": REGION,
            "resourceId": resource_id,
            "resourceArn": arn.format(service, path),
            "currentResourceType": kind,
            "estimatedMonthlySavings": 12.0,
            "currencyCode": "USD",
            "actionType": "Rightsize",
        }
        for kind, service, path, resource_id in (
            ("Ec2Instance", "ec2", f"instance/{instance_id}", instance_id),
            ("EbsVolume", "ec2", f"volume/{volume_id}", volume_id),
            ("LambdaFunction", "lambda", "function:resize", "resize"),
            ("Ec2AutoScalingGroup", "autoscaling", "autoScalingGroup:1a2b:x/workers", "workers"),
            ("EcsService", "ecs", "service/prod/api", "prod/api"),
            ("RdsDbInstance", "rds", "db:reports", "reports"),
        )
    ]
    RECOMMENDATIONS.seed(
        ACCOUNT_ID,
        AccountRecommendations(
            compute_optimizer_status="Active",
            hub_status="Active",
            compute_optimizer={REGION: listings},
            hub=hub,
        ),
    )


@pytest.fixture(scope="module")
def seeded_account(simulated_aws: SimulatedAws) -> Iterator[RegionScope]:
    """Seeded once for the module on the simulator (over HTTP, which also serves what moto
    lacks): every detector reads the same account."""
    endpoint_url = empty_aws(simulated_aws)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_ENDPOINT_URL", endpoint_url)
        now = utcnow() + 200 * DAY
        seed_account(now, endpoint_url)
        yield RegionScope(
            account_id=ACCOUNT_ID,
            region=REGION,
            client=lambda service: boto3.client(service, region_name=REGION),
            prices=aws_catalog(),
            now=now,
        )


def recording(scope: RegionScope, actions: set[str]) -> RegionScope:
    """``scope`` whose clients note the IAM action behind every operation they send."""

    def client(service: str) -> Any:
        made = scope.client(service)
        prefix = IAM_PREFIX.get(service, service)

        def note(model: Any, **_: Any) -> None:
            action = f"{prefix}:{model.name}"
            actions.add(IAM_ACTION_OF.get(action, action))

        made.meta.events.register("before-call", note)
        return made

    # Reads of its own: a detector's calls are recorded only if it makes them itself, not when
    # a detector tested before it left the same describe in a shared read.
    return dataclasses.replace(scope, client=client, shared=SharedReads())


@by_aws_key
def test_detector_calls_exactly_the_aws_actions_it_declares(
    detector: type[Detector], seeded_account: RegionScope
) -> None:
    called: set[str] = set()

    thresholds = detector.thresholds(**SEED_THRESHOLDS.get(detector.key, {}))
    found = list(detector().detect(recording(seeded_account, called), thresholds))

    assert called, "no AWS operation was recorded"
    # Finding waste proves the code paths behind a finding (tags, health, metrics) ran too.
    assert found, f"{detector.key} found nothing: seed_account must give it waste to find"
    undeclared = sorted(called - set(detector.permissions))
    assert not undeclared, f"{detector.key} calls {undeclared} but does not declare them"
    # Least privilege: a declared action nothing calls widens every customer's policy for nothing.
    unused = sorted(set(detector.permissions) - called)
    assert not unused, f"{detector.key} declares {unused} but never called them here"


@by_aws_key
def test_findings_name_only_declared_shared_costs_never_more_than_their_figure(
    detector: type[Detector], seeded_account: RegionScope
) -> None:
    """Totals count a cost once only if every detector pricing it says so: a finding's shared
    parts are of the components its detector declares, and a detector that declares one
    names it in what it finds."""
    found = list(detector().detect(seeded_account, detector.thresholds()))

    for waste in found:
        components = {part.component for part in waste.cost_parts}
        assert components <= set(detector.shared_costs), f"{detector.key}: undeclared {components}"
        if waste.cost_parts:
            assert waste.price.monthly_usd is not None
            assert sum(part.monthly_usd for part in waste.cost_parts) <= waste.price.monthly_usd
    named = {part.component for waste in found for part in waste.cost_parts}
    assert named == set(detector.shared_costs), f"{detector.key} declares what it never names"
