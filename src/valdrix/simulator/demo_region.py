"""One region of the demo's simulated AWS account: waste beside resources to keep (the data
services, S3, DynamoDB, EFS and CloudWatch Logs, are seeded by ``demo_services``; the analytics
and machine-learning platforms by ``demo_platforms``).

Every resource carries the tag ``valdrix-demo:expect`` (see ``demo_seeding``): ``keep`` (no
detector may flag it) or ``waste:<detector key>[,<detector key>...]`` (exactly these detectors
flag it; a gp2 volume nobody attached is waste for two). Detectors never read this tag: it lets a
test, or a curious user, check a scan against the truth. CloudWatch gets a week of daily
datapoints for every running instance, NAT gateway, VPC endpoint, database, cache, provisioned
table, file system, warehouse and Magnetic volume, so idle detectors have evidence and busy
resources are plainly busy.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import boto3

from valdrix.simulator.aws_server import SIMULATED_AWS_ENV
from valdrix.simulator.demo_platforms import PlatformSeeding
from valdrix.simulator.demo_seeding import (
    IGNORE,
    SeededResource,
    Series,
    expect_tags,
    tag_spec,
)
from valdrix.simulator.demo_services import DataServiceSeeding

# moto's Amazon Linux AMI (its most used example AMI, ami-12c6146b, is Windows: priced unknown);
# without its public AMIs loaded, moto launches any image id as Linux.
LINUX_AMI = "ami-760aaa0f"
METRIC_DAYS = 7
PUT_METRIC_BATCH = 500
# The regions are seeded at once: their first client of a service would each read its model
# (megabytes of JSON for EC2) at the same time; one at a time, the first read serves the rest.
_CREATING_CLIENTS = threading.Lock()

UNATTACHED = "aws.ebs-unattached"
ON_STOPPED = "aws.ebs-on-stopped-instance"
SNAPSHOT_ORPHANED = "aws.ebs-snapshot-orphaned"
GP2 = "aws.ebs-gp2-to-gp3"
PREVIOUS_GENERATION = "aws.ebs-previous-generation"
EC2_STOPPED = "aws.ec2-stopped"
EC2_IDLE = "aws.ec2-idle"
EC2_PREVIOUS_GENERATION = "aws.ec2-previous-generation"
AMI_UNUSED = "aws.ami-unused"
EIP = "aws.eip-unassociated"
EIP_ON_STOPPED = "aws.public-ipv4-on-stopped-instance"
VPC_ENDPOINT_IDLE = "aws.vpc-endpoint-idle"
ELB_IDLE = "aws.elb-idle"
NAT_IDLE = "aws.nat-gateway-idle"
RDS_IDLE = "aws.rds-idle"
RDS_SNAPSHOT_ORPHANED = "aws.rds-snapshot-orphaned"
RDS_CLUSTER_SNAPSHOT_ORPHANED = "aws.rds-cluster-snapshot-orphaned"
CACHE_IDLE = "aws.elasticache-idle"


class RegionSeeder(DataServiceSeeding, PlatformSeeding):
    """Seeds one region; ``scale`` sets how many of each kind it holds."""

    def __init__(self, endpoint_url: str, region: str, scale: int, now: dt.datetime) -> None:
        self.endpoint_url, self.region, self.scale, self.now = endpoint_url, region, scale, now
        self.resources: list[SeededResource] = []
        self.series: list[Series] = []
        self._clients: dict[str, Any] = {}
        # Everything lives in the default VPC, in the region's first zone (ALBs span two).
        ec2 = self.client("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
        in_vpc = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
        subnets = {
            subnet["AvailabilityZone"]: subnet["SubnetId"]
            for subnet in ec2.describe_subnets(Filters=in_vpc)["Subnets"]
        }
        self.vpc_id, self.zone = vpc["VpcId"], f"{region}a"
        self.subnet = subnets[self.zone]
        # Not always "b": ap-northeast-1's zones are a, c and d.
        second_zone = min(zone for zone in subnets if zone != self.zone)
        self.alb_subnets = [self.subnet, subnets[second_zone]]

    def client(self, service: str) -> Any:
        if service not in self._clients:
            with _CREATING_CLIENTS:
                self._clients[service] = self._new_client(service)
        return self._clients[service]

    def _new_client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=SIMULATED_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=SIMULATED_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def note(self, resource_id: str, kind: str, detectors: Sequence[str] = ()) -> str:
        self.resources.append(SeededResource(resource_id, self.region, kind, tuple(detectors)))
        return resource_id

    def seed(self) -> list[SeededResource]:
        fleet = self.instances()
        self.volumes_and_snapshots()
        self.images(fleet["web"][0])
        self.addresses(fleet["web"][:2], stopped=fleet["stopped"][:1])
        self.nat_gateways()
        self.vpc_endpoints()
        self.load_balancers(web=fleet["web"][2:4], legacy=fleet["web"][4], stopped=fleet["stopped"])
        self.databases()
        self.caches()
        self.data_services()
        self.platforms()
        # Stopped last: a load balancer registers only running targets.
        self.client("ec2").stop_instances(InstanceIds=fleet["stopped"])
        self.put_metrics()
        return self.resources

    # --- EC2 and EBS ---------------------------------------------------------------------------

    def launch(
        self,
        count: int,
        *,
        name: str,
        instance_type: str,
        detectors: Sequence[str] = (),
        root_detectors: Sequence[str] = (),
        root_type: str = "gp3",
        image_id: str = LINUX_AMI,
        extra_tags: Iterable[dict[str, str]] = (),
        busy: bool | None = True,
    ) -> list[str]:
        """``count`` running instances (busy, idle or, with ``busy=None``, without metrics)."""
        ec2 = self.client("ec2")
        reservation = ec2.run_instances(
            ImageId=image_id,
            MinCount=count,
            MaxCount=count,
            InstanceType=instance_type,
            SubnetId=self.subnet,
            BlockDeviceMappings=[
                {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 30, "VolumeType": root_type}}
            ],
            TagSpecifications=[
                *tag_spec("instance", expect_tags(detectors, name, *extra_tags)),
                *tag_spec("volume", expect_tags(root_detectors, f"{name}-root")),
            ],
        )
        ids = [
            self.note(i["InstanceId"], "ec2-instance", detectors) for i in reservation["Instances"]
        ]
        attached = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": ids}])
        for volume in attached["Volumes"]:
            self.note(volume["VolumeId"], "ebs-volume", root_detectors)
        if busy is not None:
            for n, instance_id in enumerate(ids):
                self.instance_metrics(instance_id, busy=busy, n=n)
        return ids

    def instance_metrics(self, instance_id: str, *, busy: bool, n: int) -> None:
        dimension = ("InstanceId", instance_id)
        # Busy: 35-65 % CPU and hundreds of MB a day; idle: under 3 % and well under 5 MB a day.
        cpu, network = (35.0 + 10 * (n % 4), 400e6 + 50e6 * n) if busy else (0.8 + n % 3, 150e3)
        self.series += [
            Series("AWS/EC2", "CPUUtilization", dimension, cpu),
            Series("AWS/EC2", "NetworkIn", dimension, network),
            Series("AWS/EC2", "NetworkOut", dimension, network / 2),
        ]

    def instances(self) -> dict[str, list[str]]:
        s = self.scale
        fleet = {
            "web": self.launch(2 * s + 2, name="web", instance_type="m5.large"),
            "stopped": self.launch(
                s,
                name="old-build-agent",
                instance_type="c5.xlarge",
                detectors=[EC2_STOPPED],
                root_detectors=[ON_STOPPED],
                busy=None,
            ),
        }
        self.launch(s, name="api", instance_type="c5.large", root_type="gp2", root_detectors=[GP2])
        self.launch(
            s + 1, name="dev-box", instance_type="t3.large", detectors=[EC2_IDLE], busy=False
        )
        # Previous generations: an M4 that M5 runs for less, a CI box that is idle as well
        # (stopping it saves all it costs), and a G3 whose same-size G4dn costs more.
        self.launch(
            1, name="legacy-api", instance_type="m4.large", detectors=[EC2_PREVIOUS_GENERATION]
        )
        self.launch(
            1,
            name="old-jenkins",
            instance_type="t2.medium",
            detectors=[EC2_IDLE, EC2_PREVIOUS_GENERATION],
            busy=False,
        )
        self.launch(1, name="render-node", instance_type="g3.4xlarge")
        # Idle too, but its owner asked Valdrix to leave it alone.
        self.launch(
            1, name="load-test-rig", instance_type="m5.xlarge", extra_tags=[IGNORE], busy=False
        )
        ec2 = self.client("ec2")
        # A forgotten gp2 data disk on a stopped instance wastes twice: storage and its type.
        self.data_volume(fleet["stopped"][0], "gp2", [ON_STOPPED, GP2])
        for instance_id in self.launch(s, name="batch", instance_type="r5.large"):
            volume_id = self.data_volume(instance_id, "gp3", [])
            snapshot = ec2.create_snapshot(
                VolumeId=volume_id,
                TagSpecifications=tag_spec("snapshot", expect_tags([], "batch-data-nightly")),
            )
            self.note(snapshot["SnapshotId"], "ebs-snapshot")
        self.previous_generation_volumes(fleet["web"][:3])
        return fleet

    def previous_generation_volumes(self, instances: Sequence[str]) -> None:
        """A Magnetic disk busy enough that its I/O requests cost more than gp3 would, a quiet
        one cheaper as it is, and an io1 disk provisioned above io2's first IOPS tier."""
        busy, quiet, database = instances
        for instance_id, detectors, daily_ops in (
            (busy, [PREVIOUS_GENERATION], 30e6),
            (quiet, [], 1e6),
        ):
            volume_id = self.data_volume(instance_id, "standard", detectors)
            dimension = ("VolumeId", volume_id)
            self.series += [
                Series("AWS/EBS", "VolumeReadOps", dimension, daily_ops * 2 / 3),
                Series("AWS/EBS", "VolumeWriteOps", dimension, daily_ops / 3),
            ]
        self.data_volume(database, "io1", [PREVIOUS_GENERATION], Iops=40_000)

    def data_volume(
        self, instance_id: str, volume_type: str, detectors: Sequence[str], **extra: Any
    ) -> str:
        ec2 = self.client("ec2")
        volume = ec2.create_volume(
            AvailabilityZone=self.zone,
            Size=200,
            VolumeType=volume_type,
            TagSpecifications=tag_spec("volume", expect_tags(detectors, "data")),
            **extra,
        )
        ec2.attach_volume(VolumeId=volume["VolumeId"], InstanceId=instance_id, Device="/dev/sdf")
        return self.note(volume["VolumeId"], "ebs-volume", detectors)

    def volumes_and_snapshots(self) -> None:
        ec2 = self.client("ec2")
        wasted: list[tuple[str, int, dict[str, Any], list[str], list[Any]]] = [
            ("gp2", 100, {}, [UNATTACHED, GP2], []),
            ("gp3", 500, {}, [UNATTACHED], []),
            ("io1", 200, {"Iops": 4000}, [UNATTACHED], []),
            ("st1", 1000, {}, [UNATTACHED], []),
            ("sc1", 2000, {}, [UNATTACHED], []),
        ]
        # The last one is kept for a restore drill, on purpose.
        unattached = [*wasted[: self.scale + 1], ("gp3", 50, {}, [], [IGNORE])]
        for volume_type, size, extra, detectors, tags in unattached:
            volume = ec2.create_volume(
                AvailabilityZone=self.zone,
                Size=size,
                VolumeType=volume_type,
                TagSpecifications=tag_spec("volume", expect_tags(detectors, "scratch", *tags)),
                **extra,
            )
            self.note(volume["VolumeId"], "ebs-volume", detectors)
        # Snapshots whose volumes were deleted long ago.
        for n in range(self.scale + 1):
            volume_id = ec2.create_volume(AvailabilityZone=self.zone, Size=100 + 50 * n)["VolumeId"]
            snapshot = ec2.create_snapshot(
                VolumeId=volume_id,
                TagSpecifications=tag_spec(
                    "snapshot", expect_tags([SNAPSHOT_ORPHANED], "pre-migration")
                ),
            )
            ec2.delete_volume(VolumeId=volume_id)
            self.note(snapshot["SnapshotId"], "ebs-snapshot", [SNAPSHOT_ORPHANED])

    def images(self, source_instance: str) -> None:
        ec2 = self.client("ec2")
        # Only an Auto Scaling group's launch template or launch configuration names the two
        # "asg" images: nothing runs them now, but a scale-out would.
        for name, detectors in (
            ("golden", []),
            ("asg-base", []),
            ("asg-legacy", []),
            ("release-1", [AMI_UNUSED]),
            ("release-2", [AMI_UNUSED]),
        ):
            image_id = ec2.create_image(
                InstanceId=source_instance,
                Name=f"{name}-{self.region}",
                TagSpecifications=tag_spec("image", expect_tags(detectors, name)),
            )["ImageId"]
            self.note(image_id, "ami", detectors)
            # The snapshots behind an AMI are in use while the AMI exists.
            [image] = ec2.describe_images(ImageIds=[image_id])["Images"]
            snapshot_ids = [
                m["Ebs"]["SnapshotId"]
                for m in image.get("BlockDeviceMappings", [])
                if m.get("Ebs", {}).get("SnapshotId")
            ]
            ec2.create_tags(Resources=snapshot_ids, Tags=expect_tags([], f"{name}-ami"))
            for snapshot_id in snapshot_ids:
                self.note(snapshot_id, "ebs-snapshot")
            if name == "golden":
                self.launch(1, name="golden-app", instance_type="m5.large", image_id=image_id)
            elif name == "asg-base":
                ec2.create_launch_template(
                    LaunchTemplateName="workers",
                    LaunchTemplateData={"ImageId": image_id, "InstanceType": "m5.large"},
                )
                self.scaled_in_group("workers", LaunchTemplate={"LaunchTemplateName": "workers"})
            elif name == "asg-legacy":
                self.client("autoscaling").create_launch_configuration(
                    LaunchConfigurationName="legacy-workers",
                    ImageId=image_id,
                    InstanceType="m5.large",
                )
                self.scaled_in_group("legacy-workers", LaunchConfigurationName="legacy-workers")

    def scaled_in_group(self, name: str, **launch_with: Any) -> None:
        """An Auto Scaling group scaled in to nothing: no instance runs its image now."""
        self.client("autoscaling").create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=0,
            MaxSize=4,
            DesiredCapacity=0,
            VPCZoneIdentifier=self.subnet,
            **launch_with,
        )

    # --- network -------------------------------------------------------------------------------

    def address(self, detectors: Sequence[str], *extra: dict[str, str]) -> str:
        allocation = self.client("ec2").allocate_address(
            Domain="vpc",
            TagSpecifications=tag_spec("elastic-ip", expect_tags(detectors, None, *extra)),
        )
        return self.note(allocation["AllocationId"], "elastic-ip", detectors)

    def addresses(self, instances: Sequence[str], *, stopped: Sequence[str]) -> None:
        ec2 = self.client("ec2")
        for instance_id in instances:
            ec2.associate_address(AllocationId=self.address([]), InstanceId=instance_id)
        # Still held by a build agent stopped since (it stops at the end of the seeding).
        for instance_id in stopped:
            ec2.associate_address(
                AllocationId=self.address([EIP_ON_STOPPED]), InstanceId=instance_id
            )
        for _ in range(self.scale):
            self.address([EIP])
        self.address([], IGNORE)  # reserved for a partner's allow-list

    def nat_gateways(self) -> None:
        for n, idle in enumerate((True, True, False)):
            detectors = [NAT_IDLE] if idle else []
            gateway = self.client("ec2").create_nat_gateway(
                SubnetId=self.subnet,
                AllocationId=self.address([]),
                TagSpecifications=tag_spec("natgateway", expect_tags(detectors, f"nat-{n}")),
            )["NatGateway"]
            self.note(gateway["NatGatewayId"], "nat-gateway", detectors)
            daily = 0.0 if idle else 25e9
            dimension = ("NatGatewayId", gateway["NatGatewayId"])
            self.series.append(Series("AWS/NATGateway", "BytesOutToDestination", dimension, daily))

    def vpc_endpoints(self) -> None:
        ec2 = self.client("ec2")
        endpoints = [
            ("secretsmanager", "Interface", [], 3e9),
            ("kms", "Interface", [VPC_ENDPOINT_IDLE], 0.0),  # the app that used it moved away
            ("s3", "Gateway", [], 0.0),  # gateway endpoints are free
        ]
        for service, kind, detectors, daily in endpoints:
            service_name = f"com.amazonaws.{self.region}.{service}"
            placement = {"SubnetIds": self.alb_subnets} if kind == "Interface" else {}
            endpoint = ec2.create_vpc_endpoint(
                VpcId=self.vpc_id,
                ServiceName=service_name,
                VpcEndpointType=kind,
                TagSpecifications=tag_spec(
                    "vpc-endpoint", expect_tags(detectors, f"{service}-endpoint")
                ),
                **placement,
            )["VpcEndpoint"]
            self.note(endpoint["VpcEndpointId"], "vpc-endpoint", detectors)
            self.series.append(
                Series(
                    "AWS/PrivateLinkEndpoints",
                    "BytesProcessed",
                    ("Endpoint Type", kind),
                    daily,
                    more=(
                        ("Service Name", service_name),
                        ("VPC Endpoint Id", endpoint["VpcEndpointId"]),
                        ("VPC Id", self.vpc_id),
                    ),
                )
            )

    def load_balancers(self, *, web: list[str], legacy: str, stopped: list[str]) -> None:
        # Serving: an ALB with healthy targets, a classic ELB with an instance in service.
        self.elbv2("web", "application", targets=web, detectors=[])
        self.classic("legacy-web", instances=[legacy], detectors=[])
        # Idle: no listener at all; a target group nobody registered in; only a stopped target.
        self.elbv2("promo-2023", "application", targets=None, detectors=[ELB_IDLE])
        self.elbv2("internal-api", "network", targets=[], detectors=[ELB_IDLE])
        self.elbv2("staging", "application", targets=stopped[:1], detectors=[ELB_IDLE])
        self.classic("legacy-old", instances=[], detectors=[ELB_IDLE])

    def elbv2(
        self, name: str, kind: str, *, targets: list[str] | None, detectors: Sequence[str]
    ) -> None:
        elbv2 = self.client("elbv2")
        lb = elbv2.create_load_balancer(
            Name=name, Type=kind, Subnets=self.alb_subnets, Tags=expect_tags(detectors)
        )["LoadBalancers"][0]
        self.note(lb["LoadBalancerArn"], "load-balancer", detectors)
        if targets is None:
            return
        protocol = "HTTP" if kind == "application" else "TCP"
        group = elbv2.create_target_group(
            Name=f"{name}-targets",
            Protocol=protocol,
            Port=80,
            VpcId=self.vpc_id,
            Tags=expect_tags([]),
        )["TargetGroups"][0]
        self.note(group["TargetGroupArn"], "target-group")
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol=protocol,
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
        )
        if targets:
            elbv2.register_targets(
                TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": t} for t in targets]
            )

    def classic(self, name: str, *, instances: list[str], detectors: Sequence[str]) -> None:
        elb = self.client("elb")
        elb.create_load_balancer(
            LoadBalancerName=name,
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}],
            AvailabilityZones=[self.zone],
            Tags=expect_tags(detectors),
        )
        if instances:
            elb.register_instances_with_load_balancer(
                LoadBalancerName=name, Instances=[{"InstanceId": i} for i in instances]
            )
        self.note(name, "load-balancer", detectors)

    # --- RDS and ElastiCache -------------------------------------------------------------------

    def database(self, name: str, engine: str, tags: list[Any]) -> None:
        self.client("rds").create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.t3.medium",
            Engine=engine,
            AllocatedStorage=100,
            MasterUsername="demo",
            MasterUserPassword="not-a-real-password",
            Tags=tags,
        )

    def databases(self) -> None:
        rds = self.client("rds")
        databases = [("orders", [], 40.0), ("reporting", [RDS_IDLE], 0.0)]
        databases += [("analytics-old", [RDS_IDLE], 0.0)] if self.scale > 2 else []
        for name, detectors, connections in databases:
            self.database(name, "postgres", expect_tags(detectors))
            self.note(name, "rds-instance", detectors)
            dimension = ("DBInstanceIdentifier", name)
            self.series.append(Series("AWS/RDS", "DatabaseConnections", dimension, connections))
        rds.create_db_snapshot(
            DBSnapshotIdentifier="orders-before-upgrade",
            DBInstanceIdentifier="orders",
            Tags=expect_tags([]),
        )
        self.note("orders-before-upgrade", "rds-snapshot")
        # Final snapshots of databases deleted since.
        for name in ("billing-v1", "crm-2022"):
            self.database(name, "mysql", [])
            rds.create_db_snapshot(
                DBSnapshotIdentifier=f"{name}-final",
                DBInstanceIdentifier=name,
                Tags=expect_tags([RDS_SNAPSHOT_ORPHANED]),
            )
            rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
            self.note(f"{name}-final", "rds-snapshot", [RDS_SNAPSHOT_ORPHANED])
        # Multi-AZ DB clusters: a snapshot of one still running, one of one deleted since.
        for name, detectors in (("ledger", []), ("ledger-2022", [RDS_CLUSTER_SNAPSHOT_ORPHANED])):
            rds.create_db_cluster(
                DBClusterIdentifier=name,
                Engine="mysql",
                AllocatedStorage=100,
                MasterUsername="demo",
                MasterUserPassword="not-a-real-password",
            )
            rds.create_db_cluster_snapshot(
                DBClusterSnapshotIdentifier=f"{name}-snapshot",
                DBClusterIdentifier=name,
                Tags=expect_tags(detectors),
            )
            self.note(f"{name}-snapshot", "rds-cluster-snapshot", detectors)
            if detectors:
                rds.delete_db_cluster(DBClusterIdentifier=name, SkipFinalSnapshot=True)

    def caches(self) -> None:
        caches = [
            ("sessions", "redis", 1, [], 250_000.0),
            ("feature-flags-old", "redis", 1, [CACHE_IDLE], 0.0),
            ("page-cache", "memcached", 2, [CACHE_IDLE], 0.0),
        ]
        for name, engine, nodes, detectors, commands in caches:
            self.client("elasticache").create_cache_cluster(
                CacheClusterId=name,
                CacheNodeType="cache.t3.medium",
                Engine=engine,
                NumCacheNodes=nodes,
                Tags=expect_tags(detectors),
            )
            self.note(name, "elasticache-cluster", detectors)
            reads, writes = (
                ("GetTypeCmds", "SetTypeCmds") if engine == "redis" else ("CmdGet", "CmdSet")
            )
            dimension = ("CacheClusterId", name)
            self.series += [
                Series("AWS/ElastiCache", reads, dimension, commands),
                Series("AWS/ElastiCache", writes, dimension, commands / 5),
            ]

    # --- CloudWatch ----------------------------------------------------------------------------

    def put_metrics(self) -> None:
        """A datapoint a day for the last week, the latest an hour ago, for every series."""
        latest = self.now - dt.timedelta(hours=1)
        data = [
            (
                series.namespace,
                {
                    "MetricName": series.metric,
                    "Dimensions": [
                        {"Name": name, "Value": value}
                        for name, value in (series.dimension, *series.more)
                    ],
                    "Timestamp": latest - dt.timedelta(days=day),
                    "Value": series.daily,
                },
            )
            for series in self.series
            for day in range(METRIC_DAYS)
        ]
        cloudwatch = self.client("cloudwatch")
        for namespace in sorted({namespace for namespace, _ in data}):
            points = [point for ns, point in data if ns == namespace]
            for offset in range(0, len(points), PUT_METRIC_BATCH):
                cloudwatch.put_metric_data(
                    Namespace=namespace, MetricData=points[offset : offset + PUT_METRIC_BATCH]
                )
