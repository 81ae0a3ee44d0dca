"""aws.s3-multipart-incomplete under moto (and botocore's Stubber for sizes and storage classes
moto cannot report: it holds every part in memory and calls every upload STANDARD)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from valdrix.kit.orm import utcnow
from valdrix.scanning.base import RegionScope, Waste
from valdrix.scanning.detectors.aws.s3 import (
    IncompleteMultipartUploads,
    IncompleteMultipartUploadThresholds,
)

MakeScope = Callable[..., RegionScope]
DAY = dt.timedelta(days=1)
MB = 2**20
GB = 2**30


def s3(region: str = "us-east-1") -> Any:
    return boto3.client("s3", region_name=region)


def bucket(name: str, region: str = "us-east-1") -> None:
    config = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3(region).create_bucket(
        Bucket=name, **({"CreateBucketConfiguration": config} if config else {})
    )


def upload(bucket_name: str, key: str, part_sizes: list[int], region: str = "us-east-1") -> str:
    """A multipart upload with these parts, left unfinished; returns its upload id."""
    client = s3(region)
    upload_id: str = client.create_multipart_upload(Bucket=bucket_name, Key=key)["UploadId"]
    for number, size in enumerate(part_sizes, start=1):
        client.upload_part(
            Bucket=bucket_name, Key=key, UploadId=upload_id, PartNumber=number, Body=b"x" * size
        )
    return upload_id


def initiated(bucket_name: str, region: str = "us-east-1") -> dt.datetime:
    """When the bucket's first upload started (moto dates every upload alike)."""
    started: dt.datetime = s3(region).list_multipart_uploads(Bucket=bucket_name)["Uploads"][0][
        "Initiated"
    ]
    return started


def scan(scope: RegionScope, **thresholds: Any) -> dict[str, Waste]:
    settings = IncompleteMultipartUploadThresholds(**thresholds)
    found = IncompleteMultipartUploads().detect(scope, settings)
    return {waste.resource_id: waste for waste in found}


def test_bucket_with_old_incomplete_uploads_is_reported_with_their_parts(
    make_scope: MakeScope,
) -> None:
    bucket("media-ingest")
    s3().put_bucket_tagging(
        Bucket="media-ingest", Tagging={"TagSet": [{"Key": "team", "Value": "video"}]}
    )
    first = upload("media-ingest", "raw/a.mov", [3 * MB, MB])
    upload("media-ingest", "raw/b.mov", [2 * MB])

    found = scan(make_scope(now=initiated("media-ingest") + 30 * DAY))

    waste = found["media-ingest"]
    assert waste.resource_type == "s3-bucket"
    assert waste.tags == {"team": "video"}
    assert waste.evidence["incomplete_uploads"] == 2
    assert waste.evidence["parts_bytes"] == 6 * MB
    assert first in {u["upload_id"] for u in waste.evidence["uploads"]}
    assert waste.price.basis == "list_price"
    assert waste.price.detail["storage_classes"]["STANDARD"]["unit_price_usd"] == "0.023"


@pytest.mark.parametrize(
    ("age", "reported"), [(7 * DAY, True), (7 * DAY - dt.timedelta(seconds=1), False)]
)
def test_upload_is_judged_only_once_min_age_days_old(
    make_scope: MakeScope, age: dt.timedelta, reported: bool
) -> None:
    bucket("media-ingest")
    upload("media-ingest", "raw/a.mov", [MB])

    found = scan(make_scope(now=initiated("media-ingest") + age))

    assert ("media-ingest" in found) is reported


def test_completed_uploads_and_other_regions_buckets_are_not_reported(
    make_scope: MakeScope,
) -> None:
    bucket("backups")
    client = s3()
    upload_id = upload("backups", "db.dump", [5 * MB])
    client.complete_multipart_upload(
        Bucket="backups",
        Key="db.dump",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [
                {
                    "PartNumber": 1,
                    "ETag": client.list_parts(Bucket="backups", Key="db.dump", UploadId=upload_id)[
                        "Parts"
                    ][0]["ETag"],
                }
            ]
        },
    )
    bucket("eu-archive", region="eu-west-1")
    upload("eu-archive", "raw/a.mov", [MB], region="eu-west-1")

    assert scan(make_scope(now=utcnow() + 400 * DAY)) == {}


# Stubbed: sizes of real uploads, storage classes other than STANDARD, and pages.


def stubbed_scope(
    make_scope: MakeScope, uploads: list[dict[str, Any]], parts: list[list[int]]
) -> tuple[RegionScope, Stubber]:
    client = s3()
    stubber = Stubber(client)
    stubber.add_response(
        "list_buckets", {"Buckets": [{"Name": "lake"}]}, {"BucketRegion": "us-east-1"}
    )
    stubber.add_response("list_multipart_uploads", {"Uploads": uploads}, {"Bucket": "lake"})
    for upload_, sizes in zip(uploads, parts, strict=True):
        request = {"Bucket": "lake", "Key": upload_["Key"], "UploadId": upload_["UploadId"]}
        pages = [sizes[:1], sizes[1:]] if len(sizes) > 1 else [sizes]
        for number, page in enumerate(pages):
            response: dict[str, Any] = {
                "Parts": [{"PartNumber": 1, "Size": size} for size in page],
                "IsTruncated": number < len(pages) - 1,
            }
            if response["IsTruncated"]:
                response["NextPartNumberMarker"] = 1
            stubber.add_response(
                "list_parts", response, request | ({"PartNumberMarker": 1} if number else {})
            )
    stubber.add_client_error(
        "get_bucket_tagging", service_error_code="NoSuchTagSet", http_status_code=404
    )
    stubber.activate()
    return dataclasses.replace(make_scope(), client=lambda service: client), stubber


def stubbed_upload(key: str, storage_class: str) -> dict[str, Any]:
    return {
        "Key": key,
        "UploadId": f"upload-{key}",
        "Initiated": utcnow() - 60 * DAY,
        "StorageClass": storage_class,
    }


def test_parts_are_priced_per_gb_month_of_their_storage_class_on_every_page(
    make_scope: MakeScope,
) -> None:
    scope, stubber = stubbed_scope(
        make_scope,
        [stubbed_upload("a.parquet", "STANDARD"), stubbed_upload("b.parquet", "STANDARD_IA")],
        [[60 * GB, 40 * GB], [40 * GB]],
    )

    [waste] = scan(scope).values()

    # 100 GB x 0.023 $/GB-month (STANDARD) + 40 GB x 0.0125 $/GB-month (STANDARD_IA).
    assert waste.price.monthly_usd == Decimal("2.30") + Decimal("0.50")
    assert waste.evidence["parts_bytes"] == 140 * GB
    assert waste.tags == {}
    stubber.assert_no_pending_responses()


def test_parts_of_an_unpriced_storage_class_make_the_figure_unknown(
    make_scope: MakeScope,
) -> None:
    scope, _ = stubbed_scope(make_scope, [stubbed_upload("a.tar", "DEEP_ARCHIVE")], [[GB]])

    [waste] = scan(scope).values()

    assert waste.price.basis == "unknown"
    assert "DEEP_ARCHIVE" in waste.price.detail["why"]
