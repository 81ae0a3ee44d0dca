"""The demo account's analytics, machine-learning and container platforms: Redshift clusters,
SageMaker endpoints and EKS clusters, waste beside resources to keep (mixed into
``demo_region.RegionSeeder``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from valdrix.simulator.demo_seeding import Series, expect_tags

REDSHIFT_IDLE = "aws.redshift-idle"
SAGEMAKER_ENDPOINT_IDLE = "aws.sagemaker-endpoint-idle"
EKS_CLUSTER_IDLE = "aws.eks-cluster-idle"
# Roles the simulated services are given (moto checks none of them).
SERVICE_ROLE = "arn:aws:iam::123456789012:role/{}"


class PlatformSeeding:
    """Seeds one region's platforms; the seeder it is mixed into provides the region, its
    clients, the record of seeded resources and the metric series."""

    region: str
    series: list[Series]
    alb_subnets: list[str]

    def client(self, service: str) -> Any:
        raise NotImplementedError

    def note(self, resource_id: str, kind: str, detectors: Sequence[str] = ()) -> str:
        raise NotImplementedError

    def platforms(self) -> None:
        self.warehouses()
        self.inference_endpoints()
        self.kubernetes_clusters()

    # --- Redshift -------------------------------------------------------------------------------

    def warehouses(self) -> None:
        """A warehouse the dashboards query all day, and one left running after a migration."""
        clusters: list[tuple[str, str, int, list[str], float]] = [
            ("bi-warehouse", "ra3.xlplus", 2, [], 25.0),
            ("marketing-dw-2022", "dc2.large", 2, [REDSHIFT_IDLE], 0.0),
        ]
        for name, node_type, nodes, detectors, connections in clusters:
            self.client("redshift").create_cluster(
                ClusterIdentifier=name,
                ClusterType="multi-node",
                NodeType=node_type,
                NumberOfNodes=nodes,
                MasterUsername="demo",
                MasterUserPassword="Not-a-real-password1",
                Tags=expect_tags(detectors),
            )
            self.note(name, "redshift-cluster", detectors)
            dimension = ("ClusterIdentifier", name)
            self.series.append(
                Series("AWS/Redshift", "DatabaseConnections", dimension, connections)
            )

    # --- SageMaker ------------------------------------------------------------------------------

    def inference_endpoints(self) -> None:
        """A model serving the shop all day, one nobody has called since its A/B test ended, and
        a serverless one (billed per request, never idle waste)."""
        sagemaker = self.client("sagemaker")
        endpoints: list[tuple[str, dict[str, Any], list[str], float]] = [
            (
                "recommendations",
                {"InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 2},
                [],
                50_000.0,
            ),
            (
                "fraud-score-v1",
                {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1},
                [SAGEMAKER_ENDPOINT_IDLE],
                0.0,
            ),
            (
                "label-suggest",
                {"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}},
                [],
                0.0,
            ),
        ]
        for name, capacity, detectors, daily in endpoints:
            sagemaker.create_model(
                ModelName=name,
                ExecutionRoleArn=SERVICE_ROLE.format(name),
                PrimaryContainer={
                    "Image": f"123456789012.dkr.ecr.{self.region}.amazonaws.com/{name}"
                },
            )
            sagemaker.create_endpoint_config(
                EndpointConfigName=name,
                ProductionVariants=[{"VariantName": "primary", "ModelName": name, **capacity}],
            )
            sagemaker.create_endpoint(
                EndpointName=name, EndpointConfigName=name, Tags=expect_tags(detectors)
            )
            self.note(name, "sagemaker-endpoint", detectors)
            if daily:  # SageMaker publishes Invocations only for periods with requests
                self.series.append(
                    Series(
                        "AWS/SageMaker",
                        "Invocations",
                        ("EndpointName", name),
                        daily,
                        more=(("VariantName", "primary"),),
                    )
                )

    # --- EKS ------------------------------------------------------------------------------------

    def kubernetes_clusters(self) -> None:
        """A cluster on managed nodes, one running its batch jobs on Fargate, and one whose last
        node group was deleted after a proof of concept."""
        eks = self.client("eks")
        for name, compute in (("shop", "nodegroup"), ("batch", "fargate"), ("poc-2023", None)):
            detectors = [] if compute else [EKS_CLUSTER_IDLE]
            tags = {tag["Key"]: tag["Value"] for tag in expect_tags(detectors)}
            eks.create_cluster(
                name=name,
                roleArn=SERVICE_ROLE.format("eks-cluster"),
                resourcesVpcConfig={"subnetIds": self.alb_subnets},
                tags=tags,
            )
            if compute == "nodegroup":
                eks.create_nodegroup(
                    clusterName=name,
                    nodegroupName="general",
                    nodeRole=SERVICE_ROLE.format("eks-node"),
                    subnets=self.alb_subnets,
                )
            elif compute == "fargate":
                eks.create_fargate_profile(
                    clusterName=name,
                    fargateProfileName="jobs",
                    podExecutionRoleArn=SERVICE_ROLE.format("eks-pod"),
                    subnets=self.alb_subnets,
                    selectors=[{"namespace": "jobs"}],
                )
            self.note(name, "eks-cluster", detectors)
