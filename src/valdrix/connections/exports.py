"""Where a connection's FOCUS exports land (an S3 bucket and prefix), and what reading them
needs of the connection's role."""

from __future__ import annotations

import re
from dataclasses import dataclass

# What the customer's role must allow for the pull (granted on the export location only).
PERMISSIONS = ("s3:ListBucket", "s3:GetObject")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_URI_LENGTH = 1024


@dataclass(frozen=True)
class ExportLocation:
    bucket: str
    prefix: str  # empty, or ending in "/"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_export_uri(uri: str) -> ExportLocation:
    """``s3://<bucket>/<optional prefix>``; the prefix is taken as a folder (a ``/`` is added)
    so that ``exports`` does not also match ``exports-old/``. Raises ValueError saying why not."""
    text = uri.strip()
    if not text.startswith("s3://"):
        raise ValueError("must look like s3://<bucket>/<optional prefix>/")
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    if not BUCKET_NAME.match(bucket) or ".." in bucket:
        raise ValueError(
            f"'{bucket}' is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and"
            " hyphens, starting and ending with a letter or digit)"
        )
    if any(not character.isprintable() for character in prefix):
        raise ValueError("the prefix may not contain control characters")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    location = ExportLocation(bucket, prefix)
    if len(location.uri) > MAX_URI_LENGTH:
        raise ValueError(f"must be at most {MAX_URI_LENGTH} characters")
    return location
