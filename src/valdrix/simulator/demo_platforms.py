"""The demo account's analytics and machine-learning platforms: Redshift clusters, waste beside
resources to keep (mixed into ``demo_region.RegionSeeder``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from valdrix.simulator.demo_seeding import Series, expect_tags

REDSHIFT_IDLE = "aws.redshift-idle"


class PlatformSeeding:
    """Seeds one region's platforms; the seeder it is mixed into provides the region, its
    clients, the record of seeded resources and the metric series."""

    region: str
    series: list[Series]

    def client(self, service: str) -> Any:
        raise NotImplementedError

    def note(self, resource_id: str, kind: str, detectors: Sequence[str] = ()) -> str:
        raise NotImplementedError

    def platforms(self) -> None:
        self.warehouses()

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
