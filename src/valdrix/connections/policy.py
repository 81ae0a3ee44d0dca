"""What a customer creates in their AWS account: an IAM policy generated from the permissions the
scans (the AWS scan provider and its detectors) and the cost imports declare
(``needs.ROLE_PERMISSIONS``), and a CloudFormation template for the role Valdrix assumes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

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
        statements += _export_statements(
            f"arn:aws:s3:::{location.bucket}",
            f"arn:aws:s3:::{location.bucket}/{location.prefix}*",
            f"{location.prefix}*",
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def _export_statements(bucket: Any, objects: Any, prefix: Any) -> list[dict[str, Any]]:
    """Listing the export prefix and reading its objects (values, or CloudFormation
    expressions of the template's parameters)."""
    return [
        {
            "Sid": "ValdrixFocusExportsList",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket,
            "Condition": {"StringLike": {"s3:prefix": prefix}},
        },
        {
            "Sid": "ValdrixFocusExportsRead",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": objects,
        },
    ]


def aws_trust_policy(principal_arn: Any, external_id: Any) -> dict[str, Any]:
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


ROLE_NAME = "ValdrixScanRole"
EXTERNAL_ID_PATTERN = "vdx-[0-9a-f]{16}-[0-9a-f]{24}"
_EXPORT_GRANTS = "ReadsFocusExports"


def aws_cloudformation_template(
    principal_arn: str | None, external_id: str, focus_export_uri: str | None = None
) -> dict[str, Any]:
    """The role for one external id, with the principal and the export location written in (a
    file to upload); without a known principal, the template asks for it."""
    principal: Any = principal_arn or {"Ref": "ValdrixPrincipalArn"}
    parameters = {} if principal_arn else {"ValdrixPrincipalArn": _PRINCIPAL_PARAMETER}
    return _role_template(
        parameters,
        trust=aws_trust_policy(principal, external_id),
        policy=aws_iam_policy(focus_export_uri),
    )


def aws_quick_create_template() -> dict[str, Any]:
    """The same role for any tenant: the external id, the principal and the export location
    are parameters, which a CloudFormation quick-create link fills in. An operator publishes
    it once on S3 (the console's quick-create reads templates only from there), and again
    whenever an upgrade changes the permissions (its metadata names them)."""
    parameters = {
        "ExternalId": {
            "Type": "String",
            "AllowedPattern": EXTERNAL_ID_PATTERN,
            "Description": "The external id Valdrix issued to your tenant.",
        },
        "ValdrixPrincipalArn": _PRINCIPAL_PARAMETER,
        "FocusExportBucket": {
            "Type": "String",
            "Default": "",
            "Description": "The bucket of your FOCUS exports (empty: Valdrix reads none).",
        },
        "FocusExportPrefix": {
            "Type": "String",
            "Default": "",
            "Description": "Their folder in the bucket, ending in / (empty: the whole bucket).",
        },
    }
    scan, *_ = aws_iam_policy()["Statement"]
    exports = _export_statements(
        {"Fn::Sub": "arn:aws:s3:::${FocusExportBucket}"},
        {"Fn::Sub": "arn:aws:s3:::${FocusExportBucket}/${FocusExportPrefix}*"},
        {"Fn::Sub": "${FocusExportPrefix}*"},
    )
    template = _role_template(
        parameters,
        trust=aws_trust_policy({"Ref": "ValdrixPrincipalArn"}, {"Ref": "ExternalId"}),
        policy={
            "Version": POLICY_VERSION,
            "Statement": {"Fn::If": [_EXPORT_GRANTS, [scan, *exports], [scan]]},
        },
    )
    template["Conditions"] = {
        _EXPORT_GRANTS: {"Fn::Not": [{"Fn::Equals": [{"Ref": "FocusExportBucket"}, ""]}]}
    }
    template["Metadata"] = {"ValdrixPermissions": aws_permissions("s3://exports/")}
    return template


def aws_quick_create_url(
    template_url: str, console_region: str, external_id: str, principal_arn: str,
    focus_export_uri: str | None = None,
) -> str:  # fmt: skip
    """The CloudFormation console's quick-create page for ``aws_quick_create_template``
    published at ``template_url``, every parameter filled in."""
    parameters = {
        "templateURL": template_url,
        "stackName": ROLE_NAME,
        "param_ExternalId": external_id,
        "param_ValdrixPrincipalArn": principal_arn,
    }
    if focus_export_uri:
        location = parse_export_uri(focus_export_uri)
        parameters |= {
            "param_FocusExportBucket": location.bucket,
            "param_FocusExportPrefix": location.prefix,
        }
    return (
        f"https://{_console_host(console_region)}/cloudformation/home"
        f"?region={console_region}#/stacks/quickcreate?{urlencode(parameters, quote_via=quote)}"
    )


def _console_host(region: str) -> str:
    """The AWS console of the region's partition (China and GovCloud have their own)."""
    if region.startswith("cn-"):
        return "console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return "console.amazonaws-us-gov.com"
    return f"{region}.console.aws.amazon.com"


_PRINCIPAL_PARAMETER = {
    "Type": "String",
    "Description": "The AWS principal of your Valdrix deployment (ask your operator).",
}


def _role_template(
    parameters: dict[str, Any], *, trust: dict[str, Any], policy: dict[str, Any]
) -> dict[str, Any]:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Read-only role that lets Valdrix find idle and orphaned resources.",
        "Parameters": parameters,
        "Resources": {
            ROLE_NAME: {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": ROLE_NAME,
                    "AssumeRolePolicyDocument": trust,
                    "MaxSessionDuration": 3600,
                    "Policies": [{"PolicyName": "ValdrixWasteScan", "PolicyDocument": policy}],
                },
            }
        },
        "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": [ROLE_NAME, "Arn"]}}},
    }
