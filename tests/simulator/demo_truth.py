"""The demo account's truth, read back from the simulator itself: every resource's
``valdrix-demo:expect`` tag, by the id a finding would give it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import boto3

from valdrix.scanning.registry import load_all_detectors
from valdrix.simulator.commitments import untag_commitments
from valdrix.simulator.demo_account import DEMO_ACCOUNT_ID
from valdrix.simulator.demo_commitments import GLOBAL
from valdrix.simulator.demo_seeding import EXPECT_TAG, expected_detectors

TAGS_PER_CALL = 20  # DescribeTags (both load balancer APIs) takes at most 20 resources

# (region, resource id) -> the detectors that must flag it (empty: none may).
Truth = dict[tuple[str, str], tuple[str, ...]]


def simulator_client(endpoint_url: str, service: str, region: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def demo_truth(endpoint_url: str, regions: Iterable[str]) -> Truth:
    truth = {
        _where(region, value, resource_id): expected_detectors(value)
        for region in regions
        for resource_id, value in _expect_tags(endpoint_url, region)
    }
    # Savings Plans belong to the account: their findings' region is "global".
    plans = simulator_client(endpoint_url, "savingsplans", "us-east-1").describe_savings_plans()
    for plan in plans["savingsPlans"]:
        value = (plan.get("tags") or {}).get(EXPECT_TAG)
        if value is not None:
            truth[(GLOBAL, plan["savingsPlanId"])] = expected_detectors(value)
    return truth


def _where(region: str, value: str, resource_id: str) -> tuple[str, str]:
    """Where a finding about the resource is recorded: connection-wide detectors record theirs
    under "global" (a reservation under-used is judged from Cost Explorer, account-wide),
    except imported recommendations, which name their resource's own region."""
    registry = load_all_detectors()
    detectors = [registry.get(d) for d in expected_detectors(value)]
    wide = bool(detectors) and all(d.connection_wide and not d.imports_from for d in detectors)
    return (GLOBAL if wide else region), resource_id


def expected_findings(truth: Truth) -> set[tuple[str, str, str]]:
    """(region, detector, resource id) of every finding the truth calls for."""
    return {
        (region, detector, resource_id)
        for (region, resource_id), detectors in truth.items()
        for detector in detectors
    }


def _expect_tags(endpoint_url: str, region: str) -> Iterator[tuple[str, str]]:
    def client(service: str) -> Any:
        return simulator_client(endpoint_url, service, region)

    # EC2 and EBS: instances, volumes, snapshots, AMIs, Elastic IPs, NAT gateways.
    ec2_tags = client("ec2").describe_tags(Filters=[{"Name": "key", "Values": [EXPECT_TAG]}])
    yield from ((tag["ResourceId"], tag["Value"]) for tag in ec2_tags["Tags"])
    for reserved in client("ec2").describe_reserved_instances()["ReservedInstances"]:
        yield from _tagged(reserved["ReservedInstancesId"], reserved.get("Tags"))

    elbv2 = client("elbv2")
    arns = [lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]]
    arns += [group["TargetGroupArn"] for group in elbv2.describe_target_groups()["TargetGroups"]]
    for offset in range(0, len(arns), TAGS_PER_CALL):
        batch = arns[offset : offset + TAGS_PER_CALL]
        for item in elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]:
            yield from _tagged(item["ResourceArn"], item.get("Tags"))

    elb = client("elb")
    names = [
        lb["LoadBalancerName"] for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]
    ]
    for offset in range(0, len(names), TAGS_PER_CALL):
        batch = names[offset : offset + TAGS_PER_CALL]
        for item in elb.describe_tags(LoadBalancerNames=batch)["TagDescriptions"]:
            yield from _tagged(item["LoadBalancerName"], item.get("Tags"))

    rds = client("rds")
    for db in rds.describe_db_instances()["DBInstances"]:
        yield from _tagged(db["DBInstanceIdentifier"], db.get("TagList"))
    for snapshot in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]:
        yield from _tagged(snapshot["DBSnapshotIdentifier"], snapshot.get("TagList"))
    for snapshot in rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]:
        yield from _tagged(snapshot["DBClusterSnapshotIdentifier"], snapshot.get("TagList"))

    elasticache = client("elasticache")
    for cluster in elasticache.describe_cache_clusters()["CacheClusters"]:
        tags = elasticache.list_tags_for_resource(ResourceName=cluster["ARN"])["TagList"]
        yield from _tagged(cluster["CacheClusterId"], tags)

    for file_system in client("efs").describe_file_systems()["FileSystems"]:
        yield from _tagged(file_system["FileSystemId"], file_system.get("Tags"))

    dynamodb = client("dynamodb")
    for name in dynamodb.list_tables()["TableNames"]:
        arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
        yield from _tagged(name, dynamodb.list_tags_of_resource(ResourceArn=arn)["Tags"])

    for cluster in client("redshift").describe_clusters()["Clusters"]:
        yield from _tagged(cluster["ClusterIdentifier"], cluster.get("Tags"))

    sagemaker = client("sagemaker")
    for endpoint in sagemaker.list_endpoints()["Endpoints"]:
        tags = sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]
        yield from _tagged(endpoint["EndpointName"], tags)

    eks = client("eks")
    for name in eks.list_clusters()["clusters"]:
        tags = eks.describe_cluster(name=name)["cluster"].get("tags", {})
        yield from _tagged(name, [{"Key": k, "Value": v} for k, v in tags.items()])

    s3 = client("s3")
    for bucket in s3.list_buckets(BucketRegion=region)["Buckets"]:
        yield from _tagged(bucket["Name"], s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"])

    logs = client("logs")
    for group in logs.describe_log_groups()["logGroups"]:
        tags = logs.list_tags_for_resource(resourceArn=group["logGroupArn"])["tags"]
        yield from _tagged(group["logGroupName"], [{"Key": k, "Value": v} for k, v in tags.items()])


def _tagged(resource_id: str, tags: list[dict[str, str]] | None) -> Iterator[tuple[str, str]]:
    for tag in tags or []:
        if tag["Key"] == EXPECT_TAG:
            yield resource_id, tag["Value"]


def strip_expect_tags(endpoint_url: str, regions: Iterable[str]) -> None:
    """Remove the tag from every resource, as if the demo had never labelled anything."""
    untag_commitments(endpoint_url, EXPECT_TAG)
    for region in regions:

        def client(service: str, region: str = region) -> Any:
            return simulator_client(endpoint_url, service, region)

        ec2 = client("ec2")
        tagged = ec2.describe_tags(Filters=[{"Name": "key", "Values": [EXPECT_TAG]}])["Tags"]
        ids = [tag["ResourceId"] for tag in tagged]
        for offset in range(0, len(ids), 100):
            ec2.delete_tags(Resources=ids[offset : offset + 100], Tags=[{"Key": EXPECT_TAG}])
        elbv2 = client("elbv2")
        arns = [lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]]
        arns += [g["TargetGroupArn"] for g in elbv2.describe_target_groups()["TargetGroups"]]
        for offset in range(0, len(arns), TAGS_PER_CALL):
            elbv2.remove_tags(
                ResourceArns=arns[offset : offset + TAGS_PER_CALL], TagKeys=[EXPECT_TAG]
            )
        elb = client("elb")
        for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]:
            elb.remove_tags(LoadBalancerNames=[lb["LoadBalancerName"]], Tags=[{"Key": EXPECT_TAG}])
        rds = client("rds")
        arns = [db["DBInstanceArn"] for db in rds.describe_db_instances()["DBInstances"]]
        arns += [
            snapshot["DBSnapshotArn"]
            for snapshot in rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
        ]
        arns += [
            snapshot["DBClusterSnapshotArn"]
            for snapshot in rds.describe_db_cluster_snapshots(SnapshotType="manual")[
                "DBClusterSnapshots"
            ]
        ]
        for arn in arns:
            rds.remove_tags_from_resource(ResourceName=arn, TagKeys=[EXPECT_TAG])
        elasticache = client("elasticache")
        for cluster in elasticache.describe_cache_clusters()["CacheClusters"]:
            elasticache.remove_tags_from_resource(ResourceName=cluster["ARN"], TagKeys=[EXPECT_TAG])
        efs = client("efs")
        for file_system in efs.describe_file_systems()["FileSystems"]:
            efs.untag_resource(ResourceId=file_system["FileSystemId"], TagKeys=[EXPECT_TAG])
        dynamodb = client("dynamodb")
        for name in dynamodb.list_tables()["TableNames"]:
            arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
            dynamodb.untag_resource(ResourceArn=arn, TagKeys=[EXPECT_TAG])
        redshift = client("redshift")
        for cluster in redshift.describe_clusters()["Clusters"]:
            name = cluster["ClusterIdentifier"]
            arn = f"arn:aws:redshift:{region}:{DEMO_ACCOUNT_ID}:cluster:{name}"
            redshift.delete_tags(ResourceName=arn, TagKeys=[EXPECT_TAG])
        sagemaker = client("sagemaker")
        for endpoint in sagemaker.list_endpoints()["Endpoints"]:
            sagemaker.delete_tags(ResourceArn=endpoint["EndpointArn"], TagKeys=[EXPECT_TAG])
        eks = client("eks")
        for name in eks.list_clusters()["clusters"]:
            arn = eks.describe_cluster(name=name)["cluster"]["arn"]
            eks.untag_resource(resourceArn=arn, tagKeys=[EXPECT_TAG])
        s3 = client("s3")
        for bucket in s3.list_buckets(BucketRegion=region)["Buckets"]:
            tags = s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]
            kept = [tag for tag in tags if tag["Key"] != EXPECT_TAG]
            s3.put_bucket_tagging(Bucket=bucket["Name"], Tagging={"TagSet": kept})
        logs = client("logs")
        for group in logs.describe_log_groups()["logGroups"]:
            logs.untag_resource(resourceArn=group["logGroupArn"], tagKeys=[EXPECT_TAG])
