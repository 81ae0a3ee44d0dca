"""What a customer creates in their AWS account: an IAM policy generated from the permissions the
scans (the AWS scan provider and its detectors) and the cost imports declare
(``needs.ROLE_PERMISSIONS``), and a CloudFormation template for the role Valdrix assumes."""

from __future__ import annotations

from typing import Any

from valdrix.connections.exports import PERMISSIONS as FOCUS_EXPORT_PERMISSIONS
from valdrix.connections.exports import parse_export_uri
from valdrix.connections.needs import role_permissions

POLICY_VERSION = "2012-10-17"


def aws_permissions(focus_export_uri: str | None = None) -> list[str]:
    exports = FOCUS_EXPORT_PERMISSIONS if focus_export_uri else ()
    return sorted({*role_permissions("aws"), *exports})


def aws_iam_policy(focus_export_uri: str | None = None) -> dict[str, Any]:
    """Read-only and least-privilege: exactly the actions the scans and cost imports call.

    Reading FOCUS exports is granted on the export bucket and prefix only (never on every
    object of the account), and only when the export location is given.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ValdrixWasteScanReadOnly",
            "Effect": "Allow",
            "Action": aws_permissions(),
            "Resource": "*",
        }
    ]
    if focus_export_uri:
        location = parse_export_uri(focus_export_uri)
        statements += [
            {
                "Sid": "ValdrixFocusExportsList",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{location.bucket}",
                "Condition": {"StringLike": {"s3:prefix": f"{location.prefix}*"}},
            },
            {
                "Sid": "ValdrixFocusExportsRead",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{location.bucket}/{location.prefix}*",
            },
        ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def aws_trust_policy(principal_arn: str, external_id: str) -> dict[str, Any]:
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": principal_arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def aws_cloudformation_template(
    principal_arn: str | None, external_id: str, focus_export_uri: str | None = None
) -> dict[str, Any]:
    principal: Any = principal_arn or {"Ref": "ValdrixPrincipalArn"}
    template: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Read-only role that lets Valdrix find idle and orphaned resources.",
        "Parameters": {},
        "Resources": {
            "ValdrixScanRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": "ValdrixScanRole",
                    "AssumeRolePolicyDocument": aws_trust_policy(principal, external_id),
                    "MaxSessionDuration": 3600,
                    "Policies": [
                        {
                            "PolicyName": "ValdrixWasteScan",
                            "PolicyDocument": aws_iam_policy(focus_export_uri),
                        }
                    ],
                },
            }
        },
        "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": ["ValdrixScanRole", "Arn"]}}},
    }
    if principal_arn is None:
        template["Parameters"]["ValdrixPrincipalArn"] = {
            "Type": "String",
            "Description": "The AWS principal of your Valdrix deployment (ask your operator).",
        }
    return template
