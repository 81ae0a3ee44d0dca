"""The AWS regions the price catalog answers for, and the one it quotes others from."""

from __future__ import annotations

import re

# Where a region without price input of its own is quoted from (marked estimated): the region
# AWS lists first and most services launch in.
REFERENCE_REGION = "us-east-1"

# AWS's commercial regions (the ``aws`` partition) as of mid-2025. China (``aws-cn``, priced
# in CNY) and GovCloud (``aws-us-gov``) are other partitions with their own price lists.
COMMERCIAL_REGIONS: tuple[str, ...] = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    "af-south-1",
    "ap-east-1", "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-7",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ca-central-1", "ca-west-1",
    "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-south-1", "eu-south-2", "eu-north-1",
    "il-central-1", "me-south-1", "me-central-1",
    "mx-central-1",
    "sa-east-1",
)  # fmt: skip

# Regions of AWS's other partitions: China (priced in CNY), GovCloud, the isolated regions.
_OTHER_PARTITIONS = ("cn-", "us-gov-", "us-iso")
# A region's code (``eu-west-1``), not a Local Zone's (``us-west-2-lax-1``).
_REGION_CODE = re.compile(r"[a-z]{2}-[a-z]+-\d+")


def is_commercial(region: str) -> bool:
    """Whether ``region`` is in AWS's commercial partition (a region of it not yet in
    ``COMMERCIAL_REGIONS`` counts: its price files say it exists)."""
    return _REGION_CODE.fullmatch(region) is not None and not region.startswith(_OTHER_PARTITIONS)
