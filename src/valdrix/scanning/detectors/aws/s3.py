"""S3 waste: multipart uploads started long ago and never completed nor aborted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError
from pydantic import Field

from valdrix.scanning.base import Detector, RegionScope, Thresholds, Waste
from valdrix.scanning.detectors.aws._common import (
    BYTES_PER_GB,
    age_days,
    is_at_least_days_old,
    stored_bytes_price,
)
from valdrix.scanning.registry import detectors

# The uploads named in a finding's evidence (the count and the bytes cover them all).
EVIDENCE_UPLOADS_MAX = 20


class IncompleteMultipartUploadThresholds(Thresholds):
    min_age_days: int = Field(
        7,
        ge=0,
        description="Report multipart uploads started at least this many days ago and still "
        "neither completed nor aborted.",
    )


@detectors.register("aws.s3-multipart-incomplete")
class IncompleteMultipartUploads(Detector):
    """Flags S3 buckets holding multipart uploads started longer ago than the threshold and never
    completed nor aborted, one finding per bucket.

    S3 bills the parts of an unfinished upload like any stored object, every month, yet they are
    invisible in the bucket's object listing and nothing ever removes them unless a lifecycle rule
    aborts incomplete uploads. The figure is the parts' size at their storage class's price.
    """

    provider = "aws"
    resource_type = "s3-bucket"
    permissions = (
        "s3:ListAllMyBuckets",
        "s3:ListBucketMultipartUploads",
        "s3:ListMultipartUploadParts",
        "s3:GetBucketTagging",
    )
    thresholds = IncompleteMultipartUploadThresholds

    def detect(
        self, scope: RegionScope, thresholds: IncompleteMultipartUploadThresholds
    ) -> Iterator[Waste]:
        s3 = scope.client("s3")
        # ListBuckets lists every region's buckets: ask only for this region's.
        buckets = s3.get_paginator("list_buckets").paginate(BucketRegion=scope.region)
        for name in [bucket["Name"] for page in buckets for bucket in page.get("Buckets", [])]:
            uploads = s3.get_paginator("list_multipart_uploads").paginate(Bucket=name)
            stale = [
                upload
                for page in uploads
                for upload in page.get("Uploads", [])
                if is_at_least_days_old(upload["Initiated"], scope.now, thresholds.min_age_days)
            ]
            if stale:
                yield self._waste(scope, s3, name, stale, thresholds)

    def _waste(
        self,
        scope: RegionScope,
        s3: Any,
        bucket: str,
        uploads: list[dict[str, Any]],
        thresholds: IncompleteMultipartUploadThresholds,
    ) -> Waste:
        bytes_by_class: Counter[str] = Counter()
        listed: list[dict[str, Any]] = []
        for upload in sorted(uploads, key=lambda u: u["Initiated"]):
            size = _parts_bytes(s3, bucket, upload)
            bytes_by_class[upload.get("StorageClass") or "STANDARD"] += size
            if len(listed) < EVIDENCE_UPLOADS_MAX:
                listed.append(
                    {
                        "key": upload["Key"],
                        "upload_id": upload["UploadId"],
                        "initiated": upload["Initiated"].isoformat(),
                        "age_days": age_days(upload["Initiated"], scope.now),
                        "parts_bytes": size,
                    }
                )
        total_bytes = sum(bytes_by_class.values())
        return Waste(
            resource_id=bucket,
            resource_type=self.resource_type,
            reason=f"{len(uploads)} multipart upload(s) started at least "
            f"{thresholds.min_age_days} days ago were never completed nor aborted; their parts "
            f"({total_bytes / BYTES_PER_GB:.2f} GB) are still billed",
            price=stored_bytes_price(
                scope,
                bytes_by_class,
                lambda storage_class: scope.prices.s3_storage_gb_month(scope.region, storage_class),
                what="S3 storage of the uploads' parts",
                note="first-tier (up to 50 TB a month) storage prices",
            ),
            evidence={
                "incomplete_uploads": len(uploads),
                "parts_bytes": total_bytes,
                "oldest_initiated": listed[0]["initiated"],
                "uploads": listed,
                "min_age_days": thresholds.min_age_days,
            },
            resource_name=bucket,
            tags=_bucket_tags(s3, bucket),
        )


def _parts_bytes(s3: Any, bucket: str, upload: dict[str, Any]) -> int:
    pages = s3.get_paginator("list_parts").paginate(
        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
    )
    return sum(int(part["Size"]) for page in pages for part in page.get("Parts", []))


def _bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        tag_set = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchTagSet":
            return {}
        raise
    return {tag["Key"]: tag["Value"] for tag in tag_set}
