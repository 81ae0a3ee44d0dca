"""The demo account's data services: S3 buckets, DynamoDB tables, EFS file systems and CloudWatch
log groups, waste beside resources to keep (mixed into ``demo_region.RegionSeeder``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from valdrix.simulator.aws_server import STORED_BYTES_TAG
from valdrix.simulator.demo_seeding import EXPECT_TAG, IGNORE, Series, expect_tags, expect_value

LOG_GROUP_NO_RETENTION = "aws.log-group-no-retention"
S3_MULTIPART = "aws.s3-multipart-incomplete"
DYNAMODB_IDLE = "aws.dynamodb-idle"
EFS_IDLE = "aws.efs-idle"
GB = 2**30


class DataServiceSeeding:
    """Seeds one region's data services; the seeder it is mixed into provides the region, its
    clients, the record of seeded resources and the metric series."""

    region: str
    series: list[Series]

    def client(self, service: str) -> Any:
        raise NotImplementedError

    def note(self, resource_id: str, kind: str, detectors: Sequence[str] = ()) -> str:
        raise NotImplementedError

    def data_services(self) -> None:
        self.tables()
        self.file_systems()
        self.log_groups()
        self.buckets()

    # --- S3 -------------------------------------------------------------------------------------

    def buckets(self) -> None:
        """Buckets with multipart uploads abandoned half-way (the simulator declares their parts'
        size) beside a bucket with none, and one whose owner asked to be left alone."""
        s3 = self.client("s3")
        buckets: list[tuple[str, int, list[str], list[dict[str, str]]]] = [
            (f"static-site-{self.region}", 0, [], []),
            (f"media-ingest-{self.region}", 2, [S3_MULTIPART], []),
            (f"scratch-uploads-{self.region}", 1, [], [IGNORE]),
        ]
        for name, abandoned, detectors, extra in buckets:
            located = {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
            s3.create_bucket(Bucket=name, **({} if self.region == "us-east-1" else located))
            tags = [
                *expect_tags(detectors, None, *extra),
                {"Key": STORED_BYTES_TAG, "Value": str(16 * GB)},
            ]
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
            s3.put_object(Bucket=name, Key="index.html", Body=b"<html></html>")
            for n in range(abandoned):
                key = f"raw/take-{n}.mov"
                upload_id = s3.create_multipart_upload(Bucket=name, Key=key)["UploadId"]
                for part in (1, 2):
                    s3.upload_part(
                        Bucket=name, Key=key, UploadId=upload_id, PartNumber=part, Body=b"x"
                    )
            self.note(name, "s3-bucket", detectors)

    # --- DynamoDB -------------------------------------------------------------------------------

    def tables(self) -> None:
        tables: list[tuple[str, bool, list[str], float]] = [
            ("orders-events", True, [], 40_000.0),
            ("legacy-sessions", True, [DYNAMODB_IDLE], 0.0),
            ("audit-log", False, [], 0.0),  # on demand: billed per request, never idle
        ]
        for name, provisioned, detectors, units in tables:
            capacity: dict[str, Any] = (
                {"ProvisionedThroughput": {"ReadCapacityUnits": 200, "WriteCapacityUnits": 100}}
                if provisioned
                else {"BillingMode": "PAY_PER_REQUEST"}
            )
            self.client("dynamodb").create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                Tags=expect_tags(detectors),
                **capacity,
            )
            self.note(name, "dynamodb-table", detectors)
            if provisioned:
                dimension = ("TableName", name)
                self.series += [
                    Series("AWS/DynamoDB", "ConsumedReadCapacityUnits", dimension, units),
                    Series("AWS/DynamoDB", "ConsumedWriteCapacityUnits", dimension, units / 4),
                ]

    # --- EFS ------------------------------------------------------------------------------------

    def file_systems(self) -> None:
        """File systems of a size the simulator declares (moto's store nothing)."""
        efs = self.client("efs")
        for name, detectors, clients in (
            ("shared-home", [], 12.0),
            ("ml-datasets-2021", [EFS_IDLE], 0.0),
        ):
            tags = [
                *expect_tags(detectors, name),
                {"Key": STORED_BYTES_TAG, "Value": str(300 * GB)},
            ]
            file_system_id = efs.create_file_system(CreationToken=name, Tags=tags)["FileSystemId"]
            self.note(file_system_id, "efs-file-system", detectors)
            dimension = ("FileSystemId", file_system_id)
            self.series += [
                Series("AWS/EFS", "ClientConnections", dimension, clients),
                Series("AWS/EFS", "TotalIOBytes", dimension, clients * 80e6),
            ]

    # --- CloudWatch Logs ---------------------------------------------------------------------

    def log_groups(self) -> None:
        """Log groups of a size the simulator declares (it cannot hold gigabytes of events)."""
        groups: list[tuple[str, int | None, int, list[str]]] = [
            ("/aws/lambda/checkout", 30, 120 * GB, []),
            ("/aws/lambda/nightly-export", None, 2 * GB // 1000, []),  # no retention, but small
            ("/ecs/legacy-api", None, 250 * GB, [LOG_GROUP_NO_RETENTION]),
        ]
        logs = self.client("logs")
        for name, retention, stored, detectors in groups:
            tags = {EXPECT_TAG: expect_value(detectors), STORED_BYTES_TAG: str(stored)}
            logs.create_log_group(logGroupName=name, tags=tags)
            if retention:
                logs.put_retention_policy(logGroupName=name, retentionInDays=retention)
            self.note(name, "log-group", detectors)
